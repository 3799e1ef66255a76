"""Diversity figures of generated text, for the manifest: how varied the instructions are, so a user can trade
diversity (temperature, top_p) against coherence with numbers in hand.

- distinct-n (Li et al. 2016): distinct n-grams over all n-grams, over the texts' tokens (CJK by characters);
- mean pairwise ROUGE-L F over a seeded sample of at most `sample` texts (lower is more diverse).
Pure: no I/O.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from sftforge.lib.novelty import rouge_l_f, rouge_tokens
from sftforge.lib.text import tokens
from sftforge.lib.text_stats import ngrams


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams / n-grams over all texts (n-grams do not cross texts); 0.0 when there are none."""
    seen: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        grams = ngrams(tokens(text), n)
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0


def mean_pairwise_rouge_l(texts: Sequence[str], sample: int = 200, seed: int = 0) -> float:
    """Mean ROUGE-L F over all pairs of a seeded sample of the texts; 0.0 for fewer than two texts."""
    chosen = list(texts) if len(texts) <= sample else random.Random(seed).sample(list(texts), sample)
    toks = [rouge_tokens(t) for t in chosen]
    pairs = [(i, j) for i in range(len(toks)) for j in range(i + 1, len(toks))]
    if not pairs:
        return 0.0
    return sum(rouge_l_f(toks[i], toks[j]) for i, j in pairs) / len(pairs)


def diversity(texts: Sequence[str], seed: int = 0) -> dict[str, float | int]:
    """The manifest's diversity figures of a set of texts."""
    return {
        "texts": len(texts),
        "distinct_1": round(distinct_n(texts, 1), 4),
        "distinct_2": round(distinct_n(texts, 2), 4),
        "mean_pairwise_rouge_l": round(mean_pairwise_rouge_l(texts, seed=seed), 4),
    }
