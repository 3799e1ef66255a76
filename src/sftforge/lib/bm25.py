"""BM25 as arithmetic over term counts: the terms a text gives in its language, the counts a set of passages holds
for a query, and the Lucene-variant score. Pure, so a check can rank a passage's sentences and a worker can count
its block of passages without an index (`sftforge.sources.retrieval` builds the searchable index on top).

English is tokenised by bm25s with English stop words and a Snowball stemmer; Chinese (and other CJK text) as
character unigrams and bigrams, since whitespace splitting would make whole sentences single tokens.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from sftforge.lib.text import is_cjk, tokens


def cjk_terms(text: str) -> list[str]:
    """Unigrams plus bigrams of consecutive CJK characters; other words as they are."""
    toks = tokens(text)
    terms = list(toks)
    for a, b in zip(toks, toks[1:]):
        if len(a) == 1 and len(b) == 1 and is_cjk(a) and is_cjk(b):
            terms.append(a + b)
    return terms


K1, B = 1.5, 0.75  # bm25s' defaults, the Lucene variant


def terms(texts: list[str], lang: str) -> list[list[str]]:
    """Each text's index terms, as `BM25Index` makes them: English words less stop words, Snowball-stemmed; CJK
    unigrams and bigrams (a text without any term gets the placeholder term, so it still has length 1)."""
    if lang == "zh":
        return [cjk_terms(t) or ["\u2205"] for t in texts]
    import bm25s
    import Stemmer

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s.tokenize(
        texts, stopwords="en", stemmer=Stemmer.Stemmer("english"), return_ids=False, show_progress=False
    )


@dataclass(slots=True)
class TermCounts:
    """What a block of passages brings to BM25 for one query: each passage's length in terms and how often it
    holds each query term. That is all the ranking needs, so blocks tokenised in separate workers add up to the
    statistics of one index over every passage (document frequencies, mean length) without any worker holding it."""

    lengths: np.ndarray  # [passages] int64
    tf: np.ndarray  # [passages, query terms] int32

    @classmethod
    def of(cls, passages: list[str], query: list[str], lang: str) -> TermCounts:
        column = {t: j for j, t in enumerate(dict.fromkeys(query))}
        lengths = np.zeros(len(passages), dtype=np.int64)
        tf = np.zeros((len(passages), len(column)), dtype=np.int32)
        for i, words in enumerate(terms(passages, lang)):
            lengths[i] = len(words)
            for w in words:
                j = column.get(w)
                if j is not None:
                    tf[i, j] += 1
        return cls(lengths, tf)

    @classmethod
    def concat(cls, parts: list[TermCounts], n_terms: int) -> TermCounts:
        if not parts:
            return cls(np.zeros(0, dtype=np.int64), np.zeros((0, n_terms), dtype=np.int32))
        return cls(np.concatenate([p.lengths for p in parts]), np.concatenate([p.tf for p in parts]))


def query_terms(query: str, lang: str) -> list[str]:
    """The query's terms, made as passages' are; a term given twice weighs twice, as in `BM25Index.search`."""
    return [t for t in terms([query], lang)[0] if t != "\u2205"]


def bm25_from_counts(counts: TermCounts, query: list[str]) -> np.ndarray:
    """BM25 (Lucene variant: idf = ln(1 + (N - df + 0.5) / (df + 0.5)), tf / (tf + k1 (1 - b + b len / avg len)))
    of every passage for the query whose terms `counts` were taken with."""
    n = len(counts.lengths)
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    weight = np.array([query.count(t) for t in dict.fromkeys(query)], dtype=np.float64)
    tf = counts.tf.astype(np.float64)
    df = (tf > 0).sum(axis=0)
    idf = np.log1p((n - df + 0.5) / (df + 0.5))
    avg = float(counts.lengths.mean()) or 1.0
    norm = K1 * ((1 - B) + B * counts.lengths.astype(np.float64) / avg)
    return ((tf / (tf + norm[:, None])) @ (idf * weight)).astype(np.float32)


def bm25_scores(passages: list[str], query: str, lang: str) -> np.ndarray:
    """BM25 score of every passage for `query` (0 for passages sharing no term with it)."""
    q = query_terms(query, lang)
    return bm25_from_counts(TermCounts.of(passages, q, lang), q)
