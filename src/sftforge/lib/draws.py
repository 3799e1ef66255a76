"""Seeded random draws that must come out the same on every run (a resumed round draws the same order). Pure."""

from __future__ import annotations

import numpy as np


def weighted_order(chunk_ids: list[str], weights: dict[str, float], seed: int) -> list[str]:
    """Chunk ids in a weighted random order without replacement (Efraimidis-Spirakis keys u^(1/w)); ids without
    weight are left out. Seeded, so a resumed round draws the same order."""
    keep = [c for c in chunk_ids if weights.get(c, 0.0) > 0]
    if not keep:
        return []
    u = np.random.default_rng(seed).random(len(keep))
    w = np.array([weights[c] for c in keep])
    keys = np.log(u) / w
    return [keep[i] for i in np.argsort(-keys, kind="stable")]
