"""Does each reply respond to the message before it? A degenerate-text detector for generated conversations.

Small generators fail in two ways that read as fluent text: they loop (the presets' distinct-2 and Gopher
repetition rules catch that) and they continue or drift away from the instruction, writing something that would
follow it in a web page rather than answer it. The second leaves the reply unrelated to what was asked, which
is what this feature measures: the cosine of the MiniLM embeddings (`sftforge.lib.embed`) of each user message
and the assistant reply that follows it, the lowest over the conversation's turns (one ignored turn is enough to
teach ignoring). `benchmarks/degenerate.py` measures it on human-written instructions and replies: each reply
against its own instruction (kept) and against another task's (to be caught), with the presets' loop rules beside
it; the English preset's bound (min 0.03) comes from there: 2.1% of human replies fall under it, and 56% of
replies to another task (min 0.1 would catch 83% and flag 7% of human replies).

English in effect: the packaged MiniLM was trained on English, and on Chinese its cosines separate a reply from
another task's far less well (AUC 0.73 against 0.96 in English), so the Chinese preset does not apply it; a recipe
can, with a multilingual `model`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from sftforge.lib.embed import LazyEmbedder
from sftforge.ops.base import BoundsConfig, Feature, register
from sftforge.sample import Record, turn_pairs

MAX_TURNS = 8  # turn pairs scored per conversation: the first ones, where a drift starts


class RelevanceConfig(BoundsConfig):
    name: Literal["relevance"] = "relevance"
    model: str | None = Field(
        None, description="Sentence-transformers directory; default: the packaged all-MiniLM-L6-v2."
    )


@register
class Relevance(Feature):
    """Lowest cosine between a user message and the reply to it (MiniLM embeddings): low means a reply that
    ignores what it was asked. NaN for a record with no user-assistant turn (fails any bound)."""

    name: ClassVar[str] = "relevance"
    Config = RelevanceConfig
    config: RelevanceConfig
    batch_size: ClassVar[int] = 64

    def __init__(self, config: RelevanceConfig, base_dir: Path | None = None) -> None:
        super().__init__(config, base_dir)
        model = config.model  # relative to the recipe's folder
        self.encoder = LazyEmbedder(None if model is None else self.resolve_path(model))

    def setup(self) -> None:
        self.encoder.get()

    def score_batch(self, records: list[Record]) -> list[float]:
        pairs = [turn_pairs(r.messages)[:MAX_TURNS] for r in records]
        texts = list(dict.fromkeys(t for ps in pairs for pair in ps for t in pair))
        vectors = self.encoder.encode(texts, batch_size=self.batch_size) if texts else np.zeros((0, 1))
        row = {t: i for i, t in enumerate(texts)}
        out = []
        for ps in pairs:
            cosines = [float(vectors[row[u]] @ vectors[row[a]]) for u, a in ps]
            out.append(min(cosines) if cosines else math.nan)
        return out
