"""Exact deduplication on normalised text."""

from __future__ import annotations

import hashlib
from typing import ClassVar, Literal

from sftforge.ops.base import Deduplicator, OpConfig, register
from sftforge.sample import Record
from sftforge.text import normalize


class ExactDedupConfig(OpConfig):
    name: Literal["exact_dedup"] = "exact_dedup"
    scope: Literal["all", "user", "assistant"] = "user"


@register
class ExactDedup(Deduplicator):
    """Records whose normalised text (NFKC, case, spacing, punctuation) is equal are duplicates.

    The default scope is the user turns: two records asking the same question are duplicates even if the
    answers differ, since training on both teaches conflicting answers.
    """

    name: ClassVar[str] = "exact_dedup"
    Config = ExactDedupConfig
    config: ExactDedupConfig

    def signature(self, record: Record) -> str:
        text = record.text() if self.config.scope == "all" else record.content(self.config.scope)
        return hashlib.blake2b(normalize(text).encode("utf-8"), digest_size=16).hexdigest()
