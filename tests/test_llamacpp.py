"""The embedded llama.cpp backend on the real bundled model: batching, limits, seeds, stops, prefix reuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from sftforge.errors import ModelError
from sftforge.llm.base import ChatRequest, SamplingParams
from sftforge.llm.bundled import resolve_model_path
from sftforge.llm.llamacpp import LlamaCppLLM


def req(i: int, text: str, **sampling) -> ChatRequest:
    params = {"temperature": 0.7, "max_tokens": 24, "seed": i} | sampling
    return ChatRequest.of(str(i), [{"role": "user", "content": text}], SamplingParams(**params))


def test_chat_template_comes_from_the_gguf(llm):
    text = llm.chat_template.render([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}])
    assert text == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    prefilled = llm.chat_template.render([{"role": "user", "content": "U"}, {"role": "assistant", "content": "Q:"}])
    assert prefilled.endswith("<|im_start|>assistant\nQ:")


def test_more_requests_than_slots_all_complete(llm):
    reqs = [req(i, f"Name a colour number {i}.") for i in range(10)]  # 10 requests, 4 slots
    outs = llm.generate(reqs)
    assert [c.request.id for c in outs] == [r.id for r in reqs]
    for c in outs:
        assert c.finish_reason in ("stop", "length")
        assert 0 < c.completion_tokens <= 24
        assert c.prompt_tokens > 5
    assert any(c.text.strip() for c in outs)
    assert llm.pending() == 0


def test_max_tokens_is_respected(llm):
    (c,) = llm.generate([req(1, "Write a very long story about the sea.", max_tokens=5)])
    assert c.finish_reason == "length" and c.completion_tokens == 5


def test_same_seed_same_text_different_seed_differs(llm):
    prompt = "Write one sentence about a cat."
    a, b = llm.generate(
        [req(1, prompt, temperature=1.0, max_tokens=20), req(1, prompt, temperature=1.0, max_tokens=20)]
    )
    assert a.text == b.text
    others = llm.generate([req(s, prompt, temperature=1.0, max_tokens=20) for s in range(2, 6)])
    assert any(o.text != a.text for o in others)


def test_stop_strings_cut_the_output(llm):
    (c,) = llm.generate(
        [req(3, "Count from 1 to 20, one number per line.", temperature=0.0, max_tokens=60, stop=("\n",))]
    )
    assert "\n" not in c.text
    assert c.finish_reason in ("stop", "length")


def test_prompt_longer_than_context_is_a_clear_error(bundled_path):
    small = LlamaCppLLM(bundled_path, n_ctx=256, parallel=1)
    try:
        small.submit(req(1, "word " * 400))
        with pytest.raises(ModelError, match="does not fit the context"):
            small.poll()
    finally:
        small.close()


def test_prefix_reuse_gives_the_same_tokens(bundled_path):
    """With one token per decode call the arithmetic does not depend on batching, so a prompt whose prefix was
    reused from the KV cache must give exactly the text a fresh model gives."""
    system = {"role": "system", "content": "You answer questions about animals in one short sentence."}
    reqs = [
        ChatRequest.of(str(i), [system, {"role": "user", "content": q}], SamplingParams(temperature=0, max_tokens=12))
        for i, q in enumerate(["What do cats eat?", "What do dogs eat?", "What do cats eat?"])
    ]
    reuse = LlamaCppLLM(bundled_path, n_ctx=256, parallel=1, n_batch=1)
    got = [c.text for c in reuse.generate(reqs)]
    assert reuse.reused_prompt_tokens > 20
    reuse.close()
    fresh = []
    for r in reqs:
        model = LlamaCppLLM(bundled_path, n_ctx=256, parallel=1, n_batch=1)
        fresh.append(model.generate([r])[0].text)
        model.close()
    assert got == fresh
    assert got[0] == got[2]


def test_model_path_errors(tmp_path: Path):
    with pytest.raises(ModelError, match="model file not found"):
        resolve_model_path(str(tmp_path / "missing.gguf"))
    not_gguf = tmp_path / "fake.gguf"
    not_gguf.write_bytes(b"this is not a model")
    with pytest.raises(ModelError, match="not a GGUF file"):
        resolve_model_path(str(not_gguf))
    with pytest.raises(ModelError, match="is a directory"):
        resolve_model_path(str(tmp_path))


def test_any_gguf_path_works_like_bundled(bundled_path, tmp_path: Path):
    copy = tmp_path / "my-model.gguf"
    copy.symlink_to(bundled_path)
    model = LlamaCppLLM(resolve_model_path("my-model.gguf", tmp_path), n_ctx=256, parallel=1)
    try:
        (c,) = model.generate([req(1, "Say hello.", max_tokens=4)])
        assert c.completion_tokens > 0
        assert model.model_id.startswith("llamacpp:my-model.gguf:")
    finally:
        model.close()


def test_batch_after_batch_mode_admits_only_into_an_empty_batch(bundled_path):
    model = LlamaCppLLM(bundled_path, n_ctx=256, parallel=2, continuous=False)
    try:
        for i in range(3):
            model.submit(req(i, "Say yes.", max_tokens=3 + 10 * i))
        first = []
        while not first:
            first = model.poll()
        # one sequence of the first batch finished; the queued third request waits for the other one
        assert sum(s is not None for s in model._slots) == 2 - len(first)
        assert len(model._queue) == 1
        rest = []
        while model.pending():
            rest += model.poll()
        assert len(first) + len(rest) == 3
    finally:
        model.close()
