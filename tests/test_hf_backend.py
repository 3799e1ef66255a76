"""transformers backend: GGUF conversion, left-padded batched generation, scoring; a tiny random model where the
weights do not matter and the real bundled model where they do."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sftforge.llm.base import ChatRequest, SamplingParams


def test_gguf_is_converted_once(bundled_dir: Path, monkeypatch):
    import transformers

    from sftforge.llm.hf import model_dir

    weights = list(bundled_dir.glob("*.safetensors"))
    assert (bundled_dir / "config.json").exists() and weights
    before = {p: p.stat().st_mtime_ns for p in bundled_dir.iterdir()}

    def no_conversion(*args, **kwargs):
        raise AssertionError("the converted model was loaded or converted again")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_conversion)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", no_conversion)
    assert model_dir("bundled") == bundled_dir
    assert {p: p.stat().st_mtime_ns for p in bundled_dir.iterdir()} == before  # nothing rewritten
    assert not list(bundled_dir.parent.glob(f"{bundled_dir.name}*.tmp*"))


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
    manual = [-torch.log_softmax(logits[len(prompt) + j - 1], -1)[t].item() for j, t in enumerate(resp)]
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

    from sftforge.llm import hf

    for faster, dtype in ((True, torch.bfloat16), (False, torch.float32)):
        with pytest.MonkeyPatch.context() as m:
            m.setattr(hf, "bf16_is_faster", lambda faster=faster: faster)
            assert hf.resolve_dtype("auto") is dtype
    assert hf.resolve_dtype("bfloat16") is torch.bfloat16 and hf.resolve_dtype("float32") is torch.float32
    # bf16 must be clearly faster: 10% or more
    assert hf.bf16_wins(0.5, 1.0) and hf.bf16_wins(0.89, 1.0)
    assert not hf.bf16_wins(0.95, 1.0) and not hf.bf16_wins(1.2, 1.0)
    assert isinstance(hf.bf16_is_faster(), bool)  # the real measurement runs on this CPU


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
        capture_output=True,
        text=True,
        timeout=900,
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
