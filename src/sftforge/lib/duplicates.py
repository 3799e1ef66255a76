"""A deduplication decision over records in stream order, as every deduplicator returns it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Duplicates:
    """A dedup decision over n records in stream order: `survivor[i] == i` keeps record i; otherwise record i
    duplicates record `survivor[i]`, the one its cluster keeps (usually the first in stream order; keep policies
    such as SemDeDup's `central` may keep a later one), with estimated `similarity[i]`."""

    survivor: np.ndarray  # int64, shape (n,)
    similarity: np.ndarray  # float32, shape (n,)

    def clusters(self) -> dict[int, list[int]]:
        """survivor index -> indices of its duplicates, for clusters with at least one duplicate."""
        out: dict[int, list[int]] = {}
        for i in np.nonzero(self.survivor != np.arange(len(self.survivor)))[0]:
            out.setdefault(int(self.survivor[i]), []).append(int(i))
        return out
