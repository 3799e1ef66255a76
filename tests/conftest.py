"""Shared fixtures: the real bundled model, small corpora, recipe files."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
SHARED = REPO.parent / "shared" / "data"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def bundled_path() -> Path:
    from sftforge.llm.bundled import bundled_gguf

    return bundled_gguf()


@pytest.fixture(scope="session")
def tokenizer(bundled_path):
    from sftforge.llm.llamacpp import LlamaTokenizer

    return LlamaTokenizer(bundled_path)


@pytest.fixture(scope="session")
def llm(bundled_path):
    """One real llama.cpp model for the whole session (loading it takes a second)."""
    from sftforge.llm.llamacpp import LlamaCppLLM

    model = LlamaCppLLM(bundled_path, n_ctx=1024, parallel=4)
    yield model
    model.close()


@pytest.fixture(scope="session")
def hf_cache(tmp_path_factory) -> Path:
    """A fresh SFTFORGE_CACHE for the session: the bundled model is converted to transformers once, here."""
    import os

    path = tmp_path_factory.mktemp("sftforge-cache")
    os.environ["SFTFORGE_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def bundled_dir(hf_cache) -> Path:
    """The bundled model as a transformers model directory."""
    from sftforge.llm.hf import model_dir

    return model_dir("bundled")


@pytest.fixture(scope="session")
def tiny_dir(bundled_dir, tmp_path_factory) -> Path:
    """The bundled tokenizer with a small randomly initialised 2-layer Llama: fast enough for training loops."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(str(bundled_dir))
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-llm")
    LlamaForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture
def three_peps(tmp_path: Path) -> Path:
    """A corpus of three real PEPs (shipped in examples/data)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("pep-0008.rst", "pep-0257.rst", "pep-0020.rst"):
        (corpus / name).write_bytes((EXAMPLES / "data" / "peps" / name).read_bytes())
    return corpus


def recipe_dict(corpus: Path, target: int = 6) -> dict:
    """A quick recipe over `corpus` on the bundled model, as a dict to adjust per test."""
    return {
        "name": "small",
        "task": {
            "type": "qa",
            "qa_mode": "extractive",
            "description": "Python docstring conventions and code style",
            "language": "en",
            "target_count": target,
        },
        "sources": {
            "documents": [{"path": str(corpus)}],
            "chunking": {"max_tokens": 128, "overlap_tokens": 16, "min_tokens": 30},
        },
        "generation": {
            "model": {"path": "bundled", "n_ctx": 768, "parallel": 4},
            "sampling": {"temperature": 0.3, "max_tokens": 48, "seed": 3},
            "per_passage": 1,
            "max_attempts": 2,
            "shard_size": 2,
        },
    }


def write_recipe(path: Path, data: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def run_recipe(recipe_path: Path, out: Path):  # -> RunDir
    """Run every stage of a recipe file into `out` (a rerun on the same folder resumes), as `sftforge run` does."""
    from sftforge.recipe import load_recipe
    from sftforge.run import RunDir
    from sftforge.stages import Context, run_pipeline

    recipe, text = load_recipe(recipe_path)
    rd = RunDir.create(out, text, recipe.name, recipe_path.parent)
    run_pipeline(Context(run=rd, recipe=recipe))
    return rd


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium driven by Playwright (no browser download: the system one is used)."""
    from playwright.sync_api import sync_playwright

    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (`make test` installs it)")
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        yield b
        b.close()


def open_page(browser, url: str):
    """A page at `url` once its script has drawn everything, and the list its errors are collected into."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url)
    page.wait_for_selector("body[data-ready=yes]", timeout=20_000)
    return page, errors


# The unit tier (`make test-fast`) leaves out what loads a real model, trains, starts a server, a browser or Ray:
# tests marked slow, and tests that use one of these fixtures, are marked `heavy`.
HEAVY_FIXTURES = frozenset(
    {
        "llm",
        "bundled_dir",
        "tiny_dir",
        "hf_cache",
        "browser",
        "minilm",
        "server",
        "local_ray",
        "finished_run",
    }
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("slow") or HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.heavy)
