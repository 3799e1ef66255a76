"""Data search: rank passages by relevance to the task with BM25 (bm25s), so the budget goes to relevant text.

English is tokenised by bm25s with English stop words and a Snowball stemmer; Chinese (and other CJK text) as
character unigrams and bigrams, since whitespace splitting would make whole sentences single tokens.
"""

from __future__ import annotations

import logging

import numpy as np

from sftforge.text import is_cjk, tokens

log = logging.getLogger(__name__)


def cjk_terms(text: str) -> list[str]:
    """Unigrams plus bigrams of consecutive CJK characters; other words as they are."""
    toks = tokens(text)
    terms = list(toks)
    for a, b in zip(toks, toks[1:]):
        if len(a) == 1 and len(b) == 1 and is_cjk(a) and is_cjk(b):
            terms.append(a + b)
    return terms


def bm25_scores(passages: list[str], query: str, lang: str) -> np.ndarray:
    """BM25 score of every passage for `query` (0 for passages sharing no term with it)."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets DEBUG on its logger at import
    if not passages:
        return np.zeros(0, dtype=np.float32)
    if lang == "zh":
        corpus_tokens = [cjk_terms(p) or ["\u2205"] for p in passages]
        query_tokens = [cjk_terms(query)]
        retriever = bm25s.BM25()
        retriever.index(corpus_tokens, show_progress=False)
    else:
        import Stemmer

        stemmer = Stemmer.Stemmer("english")
        corpus_tokens = bm25s.tokenize(passages, stopwords="en", stemmer=stemmer, show_progress=False)
        retriever = bm25s.BM25()
        retriever.index(corpus_tokens, show_progress=False)
        query_tokens = bm25s.tokenize([query], stopwords="en", stemmer=stemmer, show_progress=False)
    docs, scores = retriever.retrieve(query_tokens, k=len(passages), show_progress=False, n_threads=1)
    out = np.zeros(len(passages), dtype=np.float32)
    out[docs[0]] = scores[0]
    return out
