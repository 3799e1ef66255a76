"""Data search: rank passages by relevance to the task with a BM25 index (bm25s), so the budget goes to relevant text.
The scoring arithmetic over term counts, for work split across workers, is `sftforge.lib.bm25`.

English is tokenised by bm25s with English stop words and a Snowball stemmer; Chinese (and other CJK text) as
character unigrams and bigrams, since whitespace splitting would make whole sentences single tokens.
"""

from __future__ import annotations

import logging

import numpy as np

from sftforge.lib.bm25 import cjk_terms

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
