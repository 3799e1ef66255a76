"""Spherical k-means (cosine) over embeddings: k-means++ seeding, Lloyd iterations on a sample, then every row to
its nearest centroid. Streams rows in chunks, so the embeddings may be a memory map. Pure: no I/O."""

from __future__ import annotations

import numpy as np

_CHUNK = 16384  # rows per assignment chunk


def normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def assign(emb: np.ndarray, centroids: np.ndarray, unit: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid (by cosine) of every row, and that cosine; streamed in chunks."""
    n = len(emb)
    labels = np.empty(n, dtype=np.int64)
    best = np.empty(n, dtype=np.float32)
    for s in range(0, n, _CHUNK):
        rows = emb[s : s + _CHUNK]
        sims = (rows if unit else normalise(rows)) @ centroids.T
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
    x = normalise(emb[fit_idx])
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
        new_labels, _sims = assign(x, centroids, unit=True)
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
        for empty in np.nonzero(counts == 0)[0]:  # an empty cluster restarts at a random row
            sums[empty] = x[rng.integers(m)]
        centroids = normalise(sums)
    full_labels, _ = assign(emb, centroids)  # every row to its nearest final centroid
    return centroids, full_labels
