"""Text statistics behind the cheap quality features: n-grams, distinct-n, Gopher's repetition measures (Rae et al.
2021) and character-class ratios. Pure; words come from `sftforge.lib.text.tokens` (CJK characters count as words).
"""

from __future__ import annotations

import unicodedata
from collections import Counter


def ngrams(words: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def distinct_n(words: list[str], n: int) -> float:
    """Unique n-grams over all n-grams (Li et al. 2016); 1.0 for texts too short to repeat anything."""
    grams = ngrams(words, n)
    return len(set(grams)) / len(grams) if grams else 1.0


def duplicate_line_share(text: str) -> float:
    """Share of non-empty lines that repeat an earlier line (Gopher, Rae et al. 2021)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return (len(lines) - len(set(lines))) / len(lines) if lines else 0.0


def _chars(gram: tuple[str, ...]) -> int:
    return sum(len(w) for w in gram)


def top_ngram_share(words: list[str], n: int) -> float:
    """Characters covered by the most frequent n-gram over all word characters (Gopher's top n-gram check)."""
    grams = ngrams(words, n)
    total = sum(len(w) for w in words)
    if not grams or not total:
        return 0.0
    gram, count = Counter(grams).most_common(1)[0]
    return 0.0 if count < 2 else min(1.0, _chars(gram) * count / total)


def duplicate_ngram_share(words: list[str], n: int) -> float:
    """Characters of words inside n-grams that occur more than once, over all word characters (Gopher)."""
    grams = ngrams(words, n)
    total = sum(len(w) for w in words)
    if not grams or not total:
        return 0.0
    counts = Counter(grams)
    covered = [False] * len(words)
    for i, g in enumerate(grams):
        if counts[g] > 1:
            for j in range(i, i + n):
                covered[j] = True
    return sum(len(w) for w, c in zip(words, covered) if c) / total


def char_class_ratios(text: str) -> tuple[float, float]:
    """(alphanumeric share, symbol share) of the non-space characters. Symbols are what Gopher counts against
    boilerplate and hashtag spam, '#' and the ellipsis, plus Unicode's "other symbols" (emoji, box drawing, (c));
    maths, currency and modifier symbols (= + < $ ` ^) are left out: code and prices are full of them."""
    chars = [c for c in text if not c.isspace()]
    if not chars:
        return 0.0, 0.0
    alnum = sum(c.isalnum() for c in chars)
    symbols = sum(c in "#…" or unicodedata.category(c) == "So" for c in chars)
    return alnum / len(chars), symbols / len(chars)
