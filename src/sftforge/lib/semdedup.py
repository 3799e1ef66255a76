"""Semantic deduplication, the algorithm (SemDeDup: Abbas et al. 2023, "SemDeDup: Data-efficient learning at web-scale through
semantic deduplication", arXiv 2303.09540).

Records are embedded (MiniLM by default, L2-normalised), clustered with spherical k-means, and compared pairwise
within their cluster only: a record whose cosine similarity to an already kept record of its cluster is at least
`threshold` is a duplicate of the most similar one. Within a cluster, records are visited in the order of the `keep`
policy, and the first visited of a group of near-duplicates survives:

- `first`: stream order (the engine's convention for every deduplicator);
- `central`: the record closest to the cluster centroid survives (most typical);
- `outlier`: the record farthest from the centroid survives, as in the paper (it found keeping the least
  prototypical examples best).

With `central` or `outlier` a survivor can come later in the stream than its duplicates.

Like the paper, near-duplicates that k-means puts in different clusters are not compared; with few clusters
(the default is about sqrt(n / 2)) this rarely matters at high thresholds. Memory is bounded: k-means streams the
rows in chunks (so the keys can be a memmap), and each cluster is compared in blocks of rows against its kept
records, never as a full similarity matrix.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from sftforge.lib.duplicates import Duplicates
from sftforge.lib.kmeans import normalise, spherical_kmeans

KeepPolicy = Literal["first", "central", "outlier"]

_BLOCK = 512  # rows of a cluster compared at once
_KEPT_CHUNK = 8192  # kept rows compared at once


def auto_clusters(n: int) -> int:
    """About sqrt(n / 2) clusters (average cluster size sqrt(2n)), at least 1, at most 1000."""
    return int(max(1, min(1000, round((n / 2) ** 0.5))))


def _dedup_cluster(
    x: np.ndarray, members: np.ndarray, threshold: float, survivor: np.ndarray, similarity: np.ndarray
) -> None:
    """Greedy dedup of one cluster's rows `x` (unit vectors, already in visiting order; `members` their record
    indices): a row is kept unless its cosine to a kept row is >= threshold, in which case it points at the most
    similar kept row. Processed in blocks; kept rows are compared in chunks."""
    kept_rows: list[int] = []  # positions in x
    for s in range(0, len(x), _BLOCK):
        block = x[s : s + _BLOCK]
        b = len(block)
        best = np.full(b, -np.inf, dtype=np.float32)
        arg = np.full(b, -1, dtype=np.int64)
        for c in range(0, len(kept_rows), _KEPT_CHUNK):
            ks = np.asarray(kept_rows[c : c + _KEPT_CHUNK])
            sims = block @ x[ks].T
            j = sims.argmax(axis=1)
            v = sims[np.arange(b), j]
            better = v > best
            best[better], arg[better] = v[better], ks[j[better]]
        inner = block @ block.T
        # Only a row with an earlier row of the block at >= threshold can depend on the block's own kept rows;
        # every other row's fate is known from the previous blocks, so the sequential pass visits few rows.
        earlier = np.tril(inner, k=-1)
        earlier[np.triu_indices(b)] = -np.inf
        kept = best < threshold
        for i in np.nonzero(earlier.max(axis=1) >= threshold)[0]:
            prev = np.nonzero(kept[:i])[0]
            if len(prev):
                j = int(inner[i, prev].argmax())
                if inner[i, prev[j]] > best[i]:
                    best[i], arg[i] = inner[i, prev[j]], s + prev[j]
            kept[i] = best[i] < threshold
        for i in np.nonzero(~kept)[0]:
            survivor[members[s + i]] = members[arg[i]]
            similarity[members[s + i]] = min(float(best[i]), 1.0)
        kept_rows.extend(int(s + i) for i in np.nonzero(kept)[0])


def semantic_duplicates(
    emb: np.ndarray,
    threshold: float = 0.95,
    clusters: int | None = None,
    keep: KeepPolicy = "first",
    seed: int = 0,
) -> Duplicates:
    """SemDeDup over embeddings `emb` (n, d) in stream order (any float array or memmap; rows are normalised
    here). Returns, per row, its survivor (itself when kept) and the cosine similarity to it (1.0 when kept)."""
    n = len(emb)
    survivor = np.arange(n, dtype=np.int64)
    similarity = np.ones(n, dtype=np.float32)
    if n < 2:
        return Duplicates(survivor, similarity)
    k = clusters if clusters is not None else auto_clusters(n)
    centroids, labels = spherical_kmeans(emb, k, seed=seed)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(len(centroids) + 1))
    for c in range(len(centroids)):
        members = order[bounds[c] : bounds[c + 1]]  # ascending record index
        if len(members) < 2:
            continue
        x = normalise(emb[members])
        if keep != "first":
            to_centre = x @ centroids[c]
            rank = np.argsort(-to_centre if keep == "central" else to_centre, kind="stable")
            members, x = members[rank], x[rank]
        _dedup_cluster(x, members, threshold, survivor, similarity)
    return Duplicates(survivor, similarity)
