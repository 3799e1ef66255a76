"""Does the responsiveness check tell an answer that answers its question from one that does not? Measured as a
classifier on human-written QA that nobody here wrote.

Data: XQuAD (Artetxe et al. 2020; CC BY-SA 4.0) in ../shared/data/corpus: 240 Wikipedia paragraphs, 1,190
crowd-written SQuAD questions each, in English and Chinese. For each question, its gold answer sentence (the
paragraph sentence, split by `sftforge.lib.grounding.sentence_spans`, that holds the start of the human answer) is
a positive pair; the same question with every other sentence of its paragraph is a negative pair.

Figures:
- top-1: the share of questions (paragraphs of two sentences or more) whose gold sentence the ranker puts first;
- precision and recall of accept/reject at the recipe's default threshold, over every (question, sentence) pair
  of both languages: a pair is accepted when its sentence ranks first by a margin of at least
  `task.constraints.responsiveness.min_margin` (the default) over the next best. Precision: accepted pairs that are
  gold; recall: gold pairs accepted.
- cross-fitted top-1: the weights are the library's defaults, chosen on this data by the grid below; to show what
  to expect on unseen text, the grid is also fit on the paragraphs of even-numbered articles and scored on the odd
  ones, and the other way round (pooled).
- time per question (signals for one question and its paragraph; MiniLM token vectors cached per sentence, as in a
  generation run).

    python benchmarks/answer_check.py [--langs en zh] [--no-grid]

Last lines: `answer check top-1: en A zh B` and `answer check precision: P recall: R`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sftforge.config import Responsiveness
from sftforge.lib.embed import Embedder
from sftforge.lib.grounding import sentence_spans
from sftforge.lib.responsiveness import SIGNALS, WEIGHTS, AnswerRanker, combine, zscores

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "corpus"


@dataclass
class Question:
    article: int
    question: str
    sentences: list[str]
    gold: int
    signals: dict[str, np.ndarray]


def load(lang: str) -> list[Question]:
    data = json.loads((DATA / f"xquad.{lang}.json").read_text(encoding="utf-8"))
    out = []
    for a, article in enumerate(data["data"]):
        for para in article["paragraphs"]:
            ctx = para["context"]
            spans = sentence_spans(ctx)
            sentences = [ctx[s:e] for s, e in spans]
            for qa in para["qas"]:
                start = qa["answers"][0]["answer_start"]
                gold = next((i for i, (s, e) in enumerate(spans) if s <= start < e), None)
                if gold is None:  # the answer starts in the space between two sentences
                    gold = next((i for i, (s, _) in enumerate(spans) if s >= start), len(spans) - 1)
                out.append(Question(a, qa["question"], sentences, gold, {}))
    return out


def compute_signals(lang: str, questions: list[Question], embedder: Embedder) -> float:
    """Every signal for every question (all weights on, so the grid can weigh them); seconds per question."""
    ranker = AnswerRanker(lang, embedder.token_vectors, {s: 1.0 for s in SIGNALS})
    t = time.perf_counter()
    for q in questions:
        q.signals = ranker.signals(q.question, q.sentences)
    return (time.perf_counter() - t) / len(questions)


def combined(q: Question, weights: dict[str, float]) -> np.ndarray:
    return combine(q.signals, weights)


def top1(questions: list[Question], weights: dict[str, float]) -> float:
    """Share of questions whose gold sentence scores highest (a tie for first counts as a share of a hit)."""
    hits = 0.0
    for q in questions:
        s = combined(q, weights)
        best = np.flatnonzero(np.isclose(s, s.max(), rtol=0, atol=1e-9))
        hits += (q.gold in best) / len(best)
    return hits / len(questions)


def accept_pairs(questions: list[Question], weights: dict[str, float], min_margin: float) -> tuple[int, int, int]:
    """(accepted pairs, accepted gold pairs, gold pairs): a pair is accepted when its sentence leads the others by
    at least `min_margin`."""
    accepted = accepted_gold = 0
    for q in questions:
        s = combined(q, weights)
        for i in range(len(s)):
            if s[i] - max(s[j] for j in range(len(s)) if j != i) >= min_margin:
                accepted += 1
                accepted_gold += i == q.gold
    return accepted, accepted_gold, len(questions)


GRID = [round(x * 0.1, 1) for x in range(0, 11)]


def fit(questions: list[Question], names: list[str]) -> dict[str, float]:
    """The weights (tenths summing to one) with the best top-1 on `questions`, all candidates scored at once."""
    combos = np.array([c for c in itertools.product(GRID, repeat=len(names)) if abs(sum(c) - 1.0) < 1e-9])
    hits = np.zeros(len(combos))
    for q in questions:
        z = np.stack([zscores(q.signals[n]) for n in names])  # [signals, sentences]
        s = combos @ z  # [combos, sentences]
        best = np.isclose(s, s.max(axis=1, keepdims=True), rtol=0, atol=1e-9)
        hits += best[:, q.gold] / best.sum(axis=1)
    return dict(zip(names, (float(w) for w in combos[int(np.argmax(hits))])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--langs", nargs="+", default=["en", "zh"])
    ap.add_argument("--no-grid", action="store_true", help="skip the weight grid and the cross-fitted figure")
    args = ap.parse_args()
    min_margin = Responsiveness().min_margin
    embedder = Embedder()
    results: dict[str, float] = {}
    pairs = [0, 0, 0]
    for lang in args.langs:
        questions = [q for q in load(lang) if len(q.sentences) >= 2]
        per_q = compute_signals(lang, questions, embedder)
        default = WEIGHTS[lang]
        print(f"## {lang}: {len(questions)} questions with two or more sentences; {per_q * 1e3:.1f} ms per question")
        baseline = np.mean([1 / len(q.sentences) for q in questions])
        print(f"  random pick: top-1 {baseline:.3f}")
        for name in SIGNALS:
            if name in questions[0].signals:
                print(f"  {name:12s} alone: top-1 {top1(questions, {name: 1.0}):.3f}")
        results[lang] = top1(questions, default)
        acc, acc_gold, gold = accept_pairs(questions, default, min_margin)
        pairs = [pairs[0] + acc, pairs[1] + acc_gold, pairs[2] + gold]
        n_pairs = sum(len(q.sentences) for q in questions)
        print(
            f"  default weights {default}: top-1 {results[lang]:.3f}; at min_margin {min_margin}: {acc} of "
            f"{n_pairs} pairs accepted, precision {acc_gold / max(acc, 1):.3f} recall {acc_gold / gold:.3f}"
        )
        for m in (0.0, 0.25, 0.5, 1.0, 1.5):
            a, g, n = accept_pairs(questions, default, m)
            print(f"    min_margin {m:4.2f}: precision {g / max(a, 1):.3f} recall {g / n:.3f}")
        if not args.no_grid:
            names = [n for n in SIGNALS if n in questions[0].signals and (lang == "en" or n != "maxsim")]
            whole = fit(questions, names)
            print(f"  grid on all questions: {whole} top-1 {top1(questions, whole):.3f}")
            even = [q for q in questions if q.article % 2 == 0]
            odd = [q for q in questions if q.article % 2 == 1]
            w_even, w_odd = fit(even, names), fit(odd, names)
            hits = top1(odd, w_even) * len(odd) + top1(even, w_odd) * len(even)
            print(
                f"  cross-fitted: fit on even articles {w_even} -> odd {top1(odd, w_even):.3f}; fit on odd "
                f"{w_odd} -> even {top1(even, w_odd):.3f}; pooled top-1 {hits / len(questions):.3f}"
            )
    print("answer check top-1: " + " ".join(f"{lang} {acc:.3f}" for lang, acc in results.items()))
    print(f"answer check precision: {pairs[1] / max(pairs[0], 1):.3f} recall: {pairs[1] / max(pairs[2], 1):.3f}")


if __name__ == "__main__":
    main()
