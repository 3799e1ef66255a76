"""Semantic deduplication (SemDeDup: Abbas et al. 2023, "SemDeDup: Data-efficient learning at web-scale through
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

from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from sftforge.embed import LazyEmbedder
from sftforge.ops.base import Deduplicator, Duplicates, OpConfig, register
from sftforge.sample import Record


KeepPolicy = Literal["first", "central", "outlier"]

_CHUNK = 16384  # rows per k-means assignment chunk
_BLOCK = 512  # rows of a cluster compared at once
_KEPT_CHUNK = 8192  # kept rows compared at once


def auto_clusters(n: int) -> int:
    """About sqrt(n / 2) clusters (average cluster size sqrt(2n)), at least 1, at most 1000."""
    return int(max(1, min(1000, round((n / 2) ** 0.5))))


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _assign(emb: np.ndarray, centroids: np.ndarray, unit: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid (by cosine) of every row, and that cosine; streamed in chunks."""
    n = len(emb)
    labels = np.empty(n, dtype=np.int64)
    best = np.empty(n, dtype=np.float32)
    for s in range(0, n, _CHUNK):
        rows = emb[s : s + _CHUNK]
        sims = (rows if unit else _normalise(rows)) @ centroids.T
        labels[s : s + _CHUNK] = sims.argmax(axis=1)
        best[s : s + _CHUNK] = sims.max(axis=1)
    return labels, best


def spherical_kmeans(
    emb: np.ndarray, k: int, seed: int = 0, iterations: int = 25, sample: int = 100_000, seed_sample: int = 20_000
) -> tuple[np.ndarray, np.ndarray]:
    """(centroids (k, d) unit vectors, labels (n,)). Fitted on at most `sample` rows (k-means++ seeding on at most
    `seed_sample` of them, then Lloyd iterations on cosine), then every row is assigned to its nearest centroid.
    Deterministic for a seed."""
    n = len(emb)
    k = max(1, min(k, n))
    rng = np.random.default_rng(seed)
    fit_idx = np.sort(rng.choice(n, size=sample, replace=False)) if n > sample else np.arange(n)
    x = _normalise(emb[fit_idx])
    m = len(x)
    # k-means++ seeding (cosine distance 1 - cos) on at most `seed_sample` of the rows.
    seeds = x[rng.choice(m, size=seed_sample, replace=False)] if m > seed_sample else x
    centroids = np.empty((k, x.shape[1]), dtype=np.float32)
    centroids[0] = seeds[rng.integers(len(seeds))]
    dist = np.clip(1.0 - seeds @ centroids[0], 0.0, None)
    for j in range(1, k):
        total = float(dist.sum())
        pick = int(rng.choice(len(seeds), p=dist / total)) if total > 0 else int(rng.integers(len(seeds)))
        centroids[j] = seeds[pick]
        dist = np.minimum(dist, np.clip(1.0 - seeds @ centroids[j], 0.0, None))
    labels = np.full(m, -1, dtype=np.int64)
    for _ in range(iterations):
        new_labels, _sims = _assign(x, centroids, unit=True)
        changed = int((new_labels != labels).sum())
        labels = new_labels
        if changed <= m // 1000:  # converged (at most 0.1% of the rows moved)
            break
        sums = np.zeros_like(centroids)
        for s in range(0, m, _CHUNK):  # one-hot matmul per chunk: sums[c] = sum of the rows labelled c
            part = labels[s : s + _CHUNK]
            onehot = np.zeros((k, len(part)), dtype=np.float32)
            onehot[part, np.arange(len(part))] = 1.0
            sums += onehot @ x[s : s + _CHUNK]
        counts = np.bincount(labels, minlength=k)
        for j in np.nonzero(counts == 0)[0]:  # an empty cluster restarts at a random row
            sums[j] = x[rng.integers(m)]
        centroids = _normalise(sums)
    full_labels, _ = _assign(emb, centroids)  # every row to its nearest final centroid
    return centroids, full_labels


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
        x = _normalise(emb[members])
        if keep != "first":
            to_centre = x @ centroids[c]
            rank = np.argsort(-to_centre if keep == "central" else to_centre, kind="stable")
            members, x = members[rank], x[rank]
        _dedup_cluster(x, members, threshold, survivor, similarity)
    return Duplicates(survivor, similarity)


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
        texts = [r.text() if scope == "all" else r.content(scope) for r in records]
        return self.encoder.encode(texts)

    def resolve(self, keys: np.ndarray) -> Duplicates:
        c = self.config
        return semantic_duplicates(keys, threshold=c.threshold, clusters=c.clusters, keep=c.keep, seed=c.seed)

    def describe(self, similarity: float) -> str:
        return f"semantic_dedup (cosine {similarity:.3f} >= {self.config.threshold:g})"
