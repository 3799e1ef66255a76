"""ROUGE-L novelty filter for generated instructions, exact and fast against a pool of tens of thousands.

Self-Instruct keeps a generated instruction only if its ROUGE-L F-measure against every instruction already in
the pool is at most 0.7, and then adds it to the pool. Done naively that is one LCS per pool entry per new
instruction: quadratic in the pool, hours at 50,000. Here:

- `rouge_l_f(a_tokens, b_tokens)` is ROUGE-L F exactly as the `rouge-score` package computes it
  (`rouge_scorer._score_lcs`: precision = LCS/|b|, recall = LCS/|a|, F = 2PR/(P+R), 0 for an empty side), same
  float expression, so the same values; the LCS is bit-parallel (Allison-Dix / Hyyro: one Python big int of
  |a| bits, a few integer operations per token of b) instead of the O(|a||b|) table of Python lists.
- `rouge_tokens(text)` is rouge-score's default tokenizer (lowercase; maximal runs of ``[a-z0-9]``; no stemming,
  as Self-Instruct used it) except that every CJK character is also a token. On text without CJK characters
  it gives exactly rouge-score's tokens; rouge-score drops CJK text entirely (its tokens are ASCII only), so
  Chinese is compared by characters instead. `tokenizer="words"` uses `sftforge.lib.text.tokens` (NFKC, Unicode
  words, CJK characters); any callable ``str -> sequence of tokens`` may be given.
- `NoveltyIndex` answers "is this text's best ROUGE-L F against the pool above the threshold?" with the same
  decisions as the exhaustive loop, computing few LCS. Because LCS(a, b) <= |tokens(a) ∩ tokens(b)| (multiset
  intersection) and <= min(|a|, |b|), F <= 2 * min(overlap, |b|) / (|a| + |b|). The k-th occurrence of token t
  is the key (t, k), so the multiset overlap is the number of shared keys; an inverted index maps each key to
  the pool entries holding it. Per query:

  1. Frequent keys ("the", "a", "of") have posting lists nearly as long as the pool, so the query's s keys
     with the longest lists are skipped, for as long as 2s / (|a| + s) stays below the threshold (at 0.7, up
     to ~54% of the query's tokens). The bound stays exact: an entry reached by no counted list shares at most
     the s skipped keys, so its F <= 2s / (|a| + s) and it cannot be rejected against.
  2. The counted lists give each entry reached its counted overlap c (`np.unique` / `np.bincount` over their
     concatenation); entries with 2 * min(c + s, |b|) / (|a| + |b|) above the threshold go on.
  3. Their exact overlap (set intersection of key ids, in C) gives the tight bound; those above it get the
     exact LCS, in decreasing order of the bound, stopping once no remaining bound can reach the best score.

  Bounds are compared with the threshold minus 1e-9, so rouge-score's float rounding (0.7000000000000001 for
  an LCS of 7 between 8 and 12 tokens, exactly 0.7) cannot make a pruned entry a rejection. On 50,000
  Self-Instruct-like instructions (benchmarks/novelty.py) fewer than one exact LCS is computed per check.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import numpy as np

from sftforge.lib.text import CJK_RANGES
from sftforge.lib.text import tokens as _word_tokens

Tokenizer = Callable[[str], Sequence[str]]

# Margin between the bounds (exact rationals, computed in float) and the threshold, so that float rounding of
# rouge-score's 2PR/(P+R) can never turn a pruned entry into a rejection: pruned entries have true F at most
# threshold - 1e-9, far more than float error below it.
_EPS = 1e-9

_CJK_CLASS = "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in CJK_RANGES)
_ROUGE_TOKEN = re.compile(f"[a-z0-9]+|[{_CJK_CLASS}]")


def rouge_tokens(text: str) -> list[str]:
    """rouge-score's default tokens (lowercase, runs of [a-z0-9], no stemming), plus each CJK character."""
    return _ROUGE_TOKEN.findall(text.lower())


TOKENIZERS: dict[str, Tokenizer] = {"rouge": rouge_tokens, "words": _word_tokens}


def _masks(seq: Iterable) -> dict:
    """Token -> bit mask of its positions in seq (bit i set where seq[i] is the token)."""
    masks: dict = {}
    bit = 1
    for t in seq:
        masks[t] = masks.get(t, 0) | bit
        bit <<= 1
    return masks


def _lcs(masks: dict, m: int, seq: Iterable) -> int:
    """LCS length of the m-token sequence described by masks and seq (bit-parallel, Allison-Dix / Hyyro)."""
    full = (1 << m) - 1
    v = full
    get = masks.get
    for t in seq:
        u = get(t)
        if u is not None:
            u &= v
            v = (v + u) | (v - u)
    return m - (v & full).bit_count()


def lcs_length(a_tokens: Sequence, b_tokens: Sequence) -> int:
    """Length of the longest common subsequence of two token sequences."""
    if not a_tokens or not b_tokens:
        return 0
    return _lcs(_masks(a_tokens), len(a_tokens), b_tokens)


def _f(lcs: int, la: int, lb: int) -> float:
    """rouge_scorer._score_lcs's F-measure: the same float operations in the same order."""
    if la == 0 or lb == 0:
        return 0.0
    precision = lcs / lb
    recall = lcs / la
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def rouge_l_f(a_tokens: Sequence, b_tokens: Sequence) -> float:
    """ROUGE-L F-measure of two token sequences, equal to rouge-score's ``score(a, b)["rougeL"].fmeasure``
    when both are given its tokens (a is its target, b its prediction; the value is symmetric)."""
    return _f(lcs_length(a_tokens, b_tokens), len(a_tokens), len(b_tokens))


class Novelty(NamedTuple):
    """`novel`: best ROUGE-L F against the pool <= threshold. When not novel, `score` is the exact best F over
    the pool and `match` the first pool index reaching it. When novel, `score`/`match` are the best among the
    entries whose bound made them worth checking (<= threshold; 0.0 and -1 when none was)."""

    novel: bool
    score: float
    match: int


class _Growable:
    """An int32 array with amortised O(1) append."""

    __slots__ = ("buf", "n")

    def __init__(self, capacity: int = 4):
        self.buf = np.empty(capacity, dtype=np.int32)
        self.n = 0

    def append(self, x: int) -> None:
        if self.n == len(self.buf):
            grown = np.empty(2 * len(self.buf), dtype=np.int32)
            grown[: self.n] = self.buf
            self.buf = grown
        self.buf[self.n] = x
        self.n += 1

    def view(self) -> np.ndarray:
        return self.buf[: self.n]


def _keys(ids: Iterable[int]) -> list[tuple[int, int]]:
    """(token id, occurrence number) for each token: the k-th occurrence of t is (t, k). Two sequences share
    exactly |multiset intersection| keys."""
    seen: dict[int, int] = {}
    out = []
    for t in ids:
        k = seen.get(t, 0)
        seen[t] = k + 1
        out.append((t, k))
    return out


class NoveltyIndex:
    """A growing pool of texts; `is_novel(text)` tells whether text's best ROUGE-L F against the pool is at most
    `threshold` (Self-Instruct rejects when it is above), with the decisions of the exhaustive loop.

        index = NoveltyIndex(threshold=0.7, texts=seed_instructions)
        for instruction in generated:
            if index.check_and_add(instruction).novel:
                keep(instruction)

    Each pool entry is kept as the tuple of its keys (one per token: the k-th occurrence of token t is key
    (t, k), numbered densely), which gives both its multiset overlap with a query (set intersection) and, through
    the key's token, its token sequence for the LCS. Each key has a posting list of the entries holding it.
    """

    def __init__(self, threshold: float = 0.7, tokenizer: str | Tokenizer = "rouge", texts: Iterable[str] = ()):
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        if isinstance(tokenizer, str):
            if tokenizer not in TOKENIZERS:
                raise ValueError(f"unknown tokenizer {tokenizer!r}; one of {sorted(TOKENIZERS)} or a callable")
            tokenizer = TOKENIZERS[tokenizer]
        self.threshold = float(threshold)
        self.tokenize: Tokenizer = tokenizer
        self.texts: list[str] = []
        self._vocab: dict[str, int] = {}  # token -> token id
        self._key_ids: dict[tuple[int, int], int] = {}  # (token id, occurrence) -> key id
        self._token_keys: list[list[int]] = []  # token id -> its key ids, by occurrence
        self._postings: list[_Growable] = []  # key id -> pool indices holding it (ascending)
        self._entries: list[tuple[int, ...]] = []  # pool index -> key ids of its tokens, in order
        self._lens = _Growable(1024)  # pool index -> number of tokens
        # counters, for benchmarks and tests: queries answered, exact LCS computed
        self.queries = 0
        self.comparisons = 0
        for text in texts:
            self.add(text)

    def __len__(self) -> int:
        return len(self.texts)

    # ------------------------------------------------------------------------------------------------ adding

    def add(self, text: str) -> int:
        """Add text to the pool unconditionally; returns its pool index."""
        return self._add(text, self.tokenize(text))

    def _add(self, text: str, toks: Sequence[str]) -> int:
        idx = len(self.texts)
        vocab, key_ids, token_keys, postings = self._vocab, self._key_ids, self._token_keys, self._postings
        ids = []
        for tok in toks:
            t = vocab.get(tok)
            if t is None:
                t = vocab[tok] = len(vocab)
                token_keys.append([])
            ids.append(t)
        entry = []
        for key in _keys(ids):
            k = key_ids.get(key)
            if k is None:
                k = key_ids[key] = len(postings)
                postings.append(_Growable())
                token_keys[key[0]].append(k)
            postings[k].append(idx)
            entry.append(k)
        self.texts.append(text)
        self._entries.append(tuple(entry))
        self._lens.append(len(entry))
        return idx

    # ------------------------------------------------------------------------------------------------ checking

    def is_novel(self, text: str) -> Novelty:
        """Whether text's best ROUGE-L F against the pool is <= threshold (see `Novelty`). Does not add it."""
        return self._query(self.tokenize(text))

    def check_and_add(self, text: str) -> Novelty:
        """`is_novel(text)`, and add text to the pool when it is novel."""
        toks = self.tokenize(text)
        result = self._query(toks)
        if result.novel:
            self._add(text, toks)
        return result

    def scores(self, text: str) -> np.ndarray:
        """ROUGE-L F of text against every pool entry (exhaustive: for checks and small pools)."""
        ids = [self._vocab.get(tok, -1) for tok in self.tokenize(text)]
        m = len(ids)
        masks = self._key_masks(ids)
        return np.array([_f(_lcs(masks, m, e), m, len(e)) if m and e else 0.0 for e in self._entries])

    def _key_masks(self, ids: list[int]) -> dict[int, int]:
        """Bit masks of the query's token positions (see `_masks`), keyed by every key id of each token, so that
        the LCS can run on pool entries' key tuples directly."""
        out: dict[int, int] = {}
        token_keys = self._token_keys
        for t, mask in _masks(ids).items():
            if t >= 0:
                for k in token_keys[t]:
                    out[k] = mask
        return out

    def _query(self, toks: Sequence[str]) -> Novelty:
        self.queries += 1
        m = len(toks)
        if m == 0 or not self.texts:
            return Novelty(True, 0.0, -1)
        thr = self.threshold
        lo = thr - _EPS
        vocab, key_ids, postings = self._vocab, self._key_ids, self._postings
        ids = [vocab.get(tok, -1) for tok in toks]  # -1: in no pool entry; still takes its position in the query
        qkeys = [k for key in _keys(ids) if (k := key_ids.get(key)) is not None]
        if not qkeys:
            return Novelty(True, 0.0, -1)
        # Skip the longest posting lists while an entry that shares only skipped keys stays below the threshold.
        lists = sorted((postings[k] for k in qkeys), key=lambda p: p.n, reverse=True)
        s = 0
        while s < len(lists) and 2 * (s + 1) / (m + s + 1) <= lo:
            s += 1
        counted = lists[s:]
        if not counted:
            return Novelty(True, 0.0, -1)
        hits = counted[0].view() if len(counted) == 1 else np.concatenate([p.buf[: p.n] for p in counted])
        if 16 * len(hits) < len(self.texts):  # few hits: sort them rather than touch an array the pool's size
            entries, counts = np.unique(hits, return_counts=True)
        else:
            counts = np.bincount(hits)
            entries = np.flatnonzero(counts)
            counts = counts[entries]
        lens = self._lens.buf[entries]
        keep = 2.0 * np.minimum(counts + s, lens) / (m + lens) > lo
        if not keep.any():
            return Novelty(True, 0.0, -1)
        entries = entries[keep].tolist()
        lens = lens[keep].tolist()
        # Exact multiset overlap for the entries left (the skipped keys included): the tight bound.
        qset = set(qkeys)
        pool = self._entries
        cands = []
        for i, n in zip(entries, lens):
            b = 2 * len(qset.intersection(pool[i])) / (m + n)
            if b > lo:
                cands.append((-b, i))
        if not cands:
            return Novelty(True, 0.0, -1)
        cands.sort()  # highest bound first, then lowest index
        masks = self._key_masks(ids)
        best, best_i = -1.0, -1
        for nb, i in cands:
            if -nb < best - _EPS:  # no remaining entry can reach the best score
                break
            e = pool[i]
            f = _f(_lcs(masks, m, e), m, len(e))
            self.comparisons += 1
            if f > best or (f == best and i < best_i):
                best, best_i = f, i
        return Novelty(best <= thr, best, best_i)
