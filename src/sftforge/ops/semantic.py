"""`semantic_dedup`: near-duplicates by meaning as a deduplicator (SemDeDup, Abbas et al. 2023, arXiv 2303.09540).
The algorithm is `sftforge.lib.semdedup`; this operator embeds a role's text and hands the vectors to it."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from sftforge.lib.embed import LazyEmbedder
from sftforge.lib.semdedup import KeepPolicy, semantic_duplicates
from sftforge.ops.base import Deduplicator, Duplicates, OpConfig, register
from sftforge.sample import Record


class SemanticDedupConfig(OpConfig):
    name: Literal["semantic_dedup"] = "semantic_dedup"
    scope: Literal["user", "assistant", "all"] = "user"
    threshold: float = Field(0.95, gt=0.0, le=1.0)
    clusters: int | None = Field(None, ge=1)
    keep: KeepPolicy = "first"
    seed: int = 0
    model: str | None = None  # a sentence-transformers directory; None = the packaged MiniLM


@register
class SemanticDedup(Deduplicator):
    """Near-duplicates by meaning (SemDeDup, arXiv 2303.09540): records whose embeddings have cosine similarity
    >= `threshold` within a k-means cluster. The default scope is the user turns, as for exact dedup: two records
    asking the same question in other words are duplicates."""

    name: ClassVar[str] = "semantic_dedup"
    Config = SemanticDedupConfig
    config: SemanticDedupConfig
    key_dtype: ClassVar[str] = "float32"

    def __init__(self, config: SemanticDedupConfig, base_dir: Path | None = None) -> None:
        super().__init__(config, base_dir)
        model = config.model  # relative to the recipe's folder
        self.encoder = LazyEmbedder(None if model is None else self.resolve_path(model))

    def setup(self) -> None:
        self.encoder.get()

    def key_width(self) -> int:
        return self.encoder.dim

    def keys(self, records: list[Record]) -> np.ndarray:
        scope = self.config.scope
        texts = [r.text_of(scope) for r in records]
        return self.encoder.encode(texts)

    def resolve(self, keys: np.ndarray) -> Duplicates:
        c = self.config
        return semantic_duplicates(keys, threshold=c.threshold, clusters=c.clusters, keep=c.keep, seed=c.seed)

    def describe(self, similarity: float) -> str:
        return f"semantic_dedup (cosine {similarity:.3f} >= {self.config.threshold:g})"
