"""Shared fixtures: the real bundled model, small corpora, recipe files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
SHARED = REPO.parent / "shared" / "data"


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
