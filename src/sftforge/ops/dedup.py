"""Exact deduplication on normalised text."""

from __future__ import annotations

import hashlib
from typing import ClassVar, Literal

import numpy as np

from sftforge.ops.base import Deduplicator, Duplicates, OpConfig, register
from sftforge.sample import Record
from sftforge.text import normalize


class ExactDedupConfig(OpConfig):
    name: Literal["exact_dedup"] = "exact_dedup"
    scope: Literal["all", "user", "assistant"] = "user"


def first_of_equal_rows(keys: np.ndarray) -> np.ndarray:
    """For each row, the index of the first row equal to it (stream order)."""
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64)
    _, first, inverse = np.unique(np.asarray(keys), axis=0, return_index=True, return_inverse=True)
    return first[inverse.reshape(-1)].astype(np.int64)


@register
class ExactDedup(Deduplicator):
    """Records whose normalised text (NFKC, case, spacing, punctuation) is equal are duplicates.

    The default scope is the user turns: two records asking the same question are duplicates even if the
    answers differ, since training on both teaches conflicting answers. Keys are 128-bit BLAKE2b digests.
    """

    name: ClassVar[str] = "exact_dedup"
    Config = ExactDedupConfig
    config: ExactDedupConfig

    def text(self, record: Record) -> str:
        return record.text() if self.config.scope == "all" else record.content(self.config.scope)

    def key_width(self) -> int:
        return 2

    def keys(self, records: list[Record]) -> np.ndarray:
        digests = b"".join(
            hashlib.blake2b(normalize(self.text(r)).encode("utf-8"), digest_size=16).digest() for r in records
        )
        return np.frombuffer(digests, dtype=np.uint64).reshape(len(records), 2).copy()

    def resolve(self, keys: np.ndarray) -> Duplicates:
        survivor = first_of_equal_rows(keys)
        return Duplicates(survivor, np.ones(len(survivor), dtype=np.float32))

    def describe(self, similarity: float) -> str:
        return f"same normalised {self.config.scope} text"
