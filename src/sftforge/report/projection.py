"""A 2-D map of record embeddings: t-SNE for up to a few thousand records (neighbourhoods show as clusters),
PCA beyond that (t-SNE's cost grows too fast for a report written after every run)."""

from __future__ import annotations

import numpy as np

TSNE_MAX_POINTS = 2000


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """The first two principal components (sign fixed so the map does not flip between runs)."""
    centred = vectors - vectors.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    comps = vt[:2]
    comps *= np.where(comps.sum(axis=1, keepdims=True) < 0, -1.0, 1.0)
    out = centred @ comps.T
    if out.shape[1] < 2:  # one-dimensional input
        out = np.hstack([out, np.zeros((len(out), 2 - out.shape[1]))])
    return out


def project_2d(vectors: np.ndarray, seed: int = 0) -> tuple[np.ndarray, str]:
    """(n, 2) coordinates and the method's name. Deterministic for the same vectors and seed."""
    n = len(vectors)
    if n == 0:
        return np.zeros((0, 2)), "none"
    vectors = np.asarray(vectors, dtype=np.float64)
    if n < 5:
        return pca_2d(vectors), "pca"
    if n > TSNE_MAX_POINTS:
        return pca_2d(vectors), "pca"
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, (n - 1) / 3))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, metric="cosine")
    return tsne.fit_transform(vectors), "t-SNE"
