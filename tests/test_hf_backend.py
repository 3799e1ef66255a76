"""transformers backend: GGUF conversion, left-padded batched generation, scoring; a tiny random model where the
weights do not matter and the real bundled model where they do."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from sftforge.llm.base import ChatRequest, SamplingParams


def test_gguf_is_converted_once(bundled_dir: Path):
    from sftforge.llm.hf import model_dir

    assert (bundled_dir / "config.json").exists() and list(bundled_dir.glob("*.safetensors"))
    t = time.perf_counter()
    assert model_dir("bundled") == bundled_dir
    assert time.perf_counter() - t < 1.0


def test_scoring_is_batch_invariant_and_matches_a_manual_forward(tiny_dir: Path):
    import torch

    from sftforge.llm.hf import HFLLM, render_prompt

    llm = HFLLM(tiny_dir, dtype="float32", batch_size=3)
    pairs = [
        ([{"role": "user", "content": "What is two plus two?"}], "Four."),
        ([{"role": "user", "content": "Name a colour."}], "Blue, or perhaps a deep green."),
        ([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], "Hello there, friend!"),
    ]
    batched = llm.score(pairs)
    single = [llm.score([p])[0] for p in pairs]
    for a, b in zip(batched, single):
        assert len(a.token_losses) == len(b.token_losses)
        assert a.mean_loss == pytest.approx(b.mean_loss, abs=1e-4)
    tok = llm.tokenizer
    prompt = tok(render_prompt(tok, pairs[1][0]), add_special_tokens=False)["input_ids"]
    resp = tok(pairs[1][1], add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt + resp])
    with torch.no_grad():
        logits = llm.model(input_ids=ids).logits[0]
    manual = [
        -torch.log_softmax(logits[len(prompt) + j - 1], -1)[t].item() for j, t in enumerate(resp)
    ]
    assert batched[1].token_losses == pytest.approx(manual, abs=1e-4)


def test_left_padded_batch_generates_what_single_requests_do(bundled_dir: Path):
    from sftforge.llm.hf import HFLLM

    llm = HFLLM(bundled_dir, dtype="float32", batch_size=4)
    questions = ["What is the capital of France?", "Name a fruit that is yellow.", "Hi", "Count to three."]
    reqs = [
        ChatRequest.of(str(i), [{"role": "user", "content": q}], SamplingParams(temperature=0, max_tokens=10))
        for i, q in enumerate(questions)
    ]
    batched = llm.generate(reqs)
    single = [llm.generate([r])[0] for r in reqs]
    assert [c.text for c in batched] == [c.text for c in single]
    assert all(c.completion_tokens <= 10 for c in batched)
    assert any(c.finish_reason == "length" for c in batched)
    assert "Paris" in batched[0].text


def test_scores_prefer_the_right_answer(bundled_dir: Path):
    from sftforge.llm.hf import HFLLM

    llm = HFLLM(bundled_dir, dtype="float32")
    q = [{"role": "user", "content": "What is the capital of France?"}]
    right, wrong = llm.score([(q, "The capital of France is Paris."), (q, "The capital of France is Banana.")])
    assert right.mean_loss < wrong.mean_loss
    assert all(math.isfinite(x) and x >= 0 for x in right.token_losses)


def test_auto_dtype_is_a_measured_choice():
    import torch

    from sftforge.llm.hf import bf16_is_faster, resolve_dtype

    assert resolve_dtype("auto") == (torch.bfloat16 if bf16_is_faster() else torch.float32)
    assert resolve_dtype("bfloat16") == torch.bfloat16


def test_directory_without_config_is_an_error(tmp_path: Path):
    from sftforge.errors import ModelError
    from sftforge.llm.hf import model_dir

    with pytest.raises(ModelError, match="not a transformers model directory"):
        model_dir(str(tmp_path))


def test_same_recipe_on_the_transformers_backend(bundled_dir: Path, tmp_path: Path):
    import json
    import subprocess
    import sys

    import pyarrow.parquet as pq

    from conftest import EXAMPLES, recipe_dict, write_recipe

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "pep-0257.rst").write_bytes((EXAMPLES / "data" / "peps" / "pep-0257.rst").read_bytes())
    data = recipe_dict(corpus, target=2)
    data["generation"]["model"] = {"backend": "transformers", "path": "bundled", "dtype": "float32", "batch_size": 4}
    recipe = write_recipe(tmp_path / "recipe.yaml", data)
    proc = subprocess.run(
        [sys.executable, "-m", "sftforge.cli", "run", str(recipe), "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    gen = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]["generate"]
    assert gen["extra"]["model"].startswith("transformers:") and gen["extra"]["model"].endswith(":float32")
    rows = pq.read_table(tmp_path / "run" / "generate").to_pylist()
    assert len(rows) >= 2 and all(r["answer_check"]["passed"] for r in rows)


def test_magpie_pre_query_on_the_transformers_backend(bundled_dir: Path, bundled_path):
    """Both in-process backends render the same pre-query template from the model's own chat template, and the
    model writes a user's query from it."""
    from sftforge.llm.hf import HFLLM, render_prompt
    from sftforge.llm.llamacpp import LlamaCppLLM

    llm = HFLLM(bundled_dir, dtype="float32", batch_size=2)
    pre = [{"role": "user", "content": ""}]
    text = render_prompt(llm.tokenizer, pre)
    assert text.endswith("<|im_start|>user\n") and "<|im_start|>assistant" not in text
    gguf = LlamaCppLLM(bundled_path, n_ctx=256, parallel=1)
    try:
        assert gguf.chat_template.render(pre) == text
    finally:
        gguf.close()
    out = llm.generate([ChatRequest.of("q", pre, SamplingParams(temperature=0, max_tokens=40))])[0]
    assert len(out.text.split()) >= 3 and "<|im_start|>" not in out.text
