"""Data search: rank passages by relevance to the task with a BM25 index (bm25s), so the budget goes to relevant text;
rank imported examples by BM25 and the MiniLM embedder fused (`rank_texts`).
The scoring arithmetic over term counts, for work split across workers, is `sftforge.lib.bm25`.

English is tokenised by bm25s with English stop words and a Snowball stemmer; Chinese (and other CJK text) as
character unigrams and bigrams, since whitespace splitting would make whole sentences single tokens.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sftforge.lib.bm25 import bm25_scores, cjk_terms

if TYPE_CHECKING:
    from sftforge.lib.embed import Embedder

log = logging.getLogger(__name__)


class BM25Index:
    """A BM25 index over passages, tokenised the language's way, that answers tokenised queries."""

    def __init__(self, passages: list[str], lang: str) -> None:
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets DEBUG on its logger at import
        self.lang = lang
        self.size = len(passages)
        self.retriever = bm25s.BM25()
        if lang == "zh":
            self.retriever.index([cjk_terms(p) or ["\u2205"] for p in passages], show_progress=False)
        else:
            import Stemmer

            self.stemmer = Stemmer.Stemmer("english")
            self.retriever.index(self._tokenize(passages), show_progress=False)

    def _tokenize(self, texts: list[str]):
        import bm25s

        if self.lang == "zh":
            return [cjk_terms(t) or ["\u2205"] for t in texts]
        return bm25s.tokenize(texts, stopwords="en", stemmer=self.stemmer, show_progress=False)

    def search(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """(passage indices, scores), each [len(queries), k], best first."""
        return self.retriever.retrieve(self._tokenize(queries), k=k, show_progress=False, n_threads=1)

    def top(self, query: str, k: int) -> list[int]:
        """Indices of the (at most) k passages that match `query` best; passages sharing no term are left out."""
        docs, scores = self.search([query], k=min(k, self.size))
        return [int(d) for d, s in zip(docs[0], scores[0]) if s > 0]


def bm25_neighbours(passages: list[str], lang: str, k: int) -> list[list[tuple[int, float]]]:
    """Each passage's `k` most similar other passages by BM25 (the passage as the query), best first, with
    their scores; passages sharing no term are left out."""
    if len(passages) < 2:
        return [[] for _ in passages]
    want = min(k + 1, len(passages))
    docs, scores = BM25Index(passages, lang).search(passages, k=want)
    out = []
    for i in range(len(passages)):
        row = [(int(d), float(s)) for d, s in zip(docs[i], scores[i]) if int(d) != i and s > 0]
        out.append(row[:k])
    return out


RRF_K = 60  # reciprocal rank fusion's constant (Cormack, Clarke and Buettcher, SIGIR 2009)


def _ranks(scores: np.ndarray) -> np.ndarray:
    """Each item's 0-based rank by descending score (ties in input order)."""
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores), dtype=np.int64)
    ranks[order] = np.arange(len(scores))
    return ranks


@dataclass(frozen=True, slots=True)
class Ranking:
    """Examples ranked for a query: `order` (indices, most relevant first, after the thresholds) and each
    example's MiniLM cosine to the query (NaN where the dense part did not run)."""

    order: np.ndarray
    similarity: np.ndarray


def rank_texts(
    texts: list[str],
    query: str,
    lang: str,
    method: str,
    embedder: Embedder | None = None,
    min_similarity: float | None = None,
    top_k: int | None = None,
) -> Ranking:
    """Rank `texts` by relevance to `query`: BM25, the embedder's cosine, or both fused by reciprocal rank
    (1/(60 + rank) summed); `none` keeps their order. Texts below `min_similarity` (cosine) are left out, then the
    first `top_k` are kept."""
    n = len(texts)
    similarity = np.full(n, np.nan, dtype=np.float32)
    if method == "none" or n == 0:
        order = np.arange(n)
    else:
        fused = np.zeros(n, dtype=np.float64)
        if method in ("bm25", "hybrid"):
            bm25 = bm25_scores(texts, query, lang)
            fused += 1.0 / (RRF_K + _ranks(bm25)) if method == "hybrid" else bm25
        if method in ("dense", "hybrid"):
            if embedder is None:
                raise ValueError("dense ranking needs an embedder")
            unique, index = np.unique(np.array(texts, dtype=object), return_inverse=True)  # repeats encoded once
            similarity = (embedder.encode(list(unique)) @ embedder.encode([query])[0])[index]
            fused += 1.0 / (RRF_K + _ranks(similarity)) if method == "hybrid" else similarity
        order = np.argsort(-fused, kind="stable")
        if min_similarity is not None and method != "bm25":
            order = order[similarity[order] >= min_similarity]
    return Ranking(order[:top_k] if top_k is not None else order, similarity)
