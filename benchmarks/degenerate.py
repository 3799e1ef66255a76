"""Do the degenerate-text detectors catch replies that loop or ignore their instruction, and leave human replies
alone? Measured on instructions and replies nobody here wrote.

Data (../shared/data): HH-RLHF helpful test pairs (the last human message and the chosen reply, 500), the 175
Self-Instruct seed tasks (instruction + input, first output) in English; the 175 BELLE seed tasks in Chinese.

Each human reply is kept as it is (it should pass) and turned, mechanically, into two degenerate ones (they
should be caught):
- `off_topic`: another task's reply (a seeded derangement): fluent text that ignores the instruction, as a small
  model's continuation does;
- `loop`: the reply's first sentence (or first 12 words) repeated to the reply's length and at least 30 words;
- `cut`: the reply cut mid-sentence after 20-50% of its words (Chinese: characters), final punctuation dropped, as
  a token limit cuts it (`benchmarks/defects.py`'s `truncate`), on a seeded sample of `--cut-sample` pairs per
  language (the detector runs the reference model).

Detectors, at the presets' default bounds: `relevance` (`sftforge.ops.relevance`, MiniLM cosine of instruction and
reply), and the presets' loop rules (distinct 2-grams, Gopher repetition), each alone and all together as a
recipe's cleaning runs them. Figures: recall on each degenerate kind, false positives on the human replies, and
the AUC of relevance for own vs another task's reply. Cut replies have their own detector, `end_loss` (the
bundled model's loss of the end-of-turn token after the reply), opt-in because it runs a model: its recall on cut
replies and false positives on the same human replies at the bounds the README gives (`max: 8` English, 20
Chinese), and the AUC, are printed before the last line.

    python benchmarks/degenerate.py [--cut-sample 200]

Last lines: `end of turn: en recall cut C false positives F AUC A; zh ...`, and
`degenerate: en recall off_topic O loop L false positives F; zh ...`, at the presets' bounds.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from defects import truncate  # benchmarks/ is on the path when run as a script
from sftforge.ops import build
from sftforge.ops.model_features import EndLossConfig
from sftforge.ops.presets import preset_filters
from sftforge.ops.relevance import RelevanceConfig
from sftforge.sample import Record

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@dataclass
class Pair:
    source: str
    instruction: str
    reply: str


def hh() -> list[Pair]:
    out = []
    for line in (DATA / "preference" / "hh_helpful_test_500.jsonl").read_text(encoding="utf-8").splitlines():
        chosen = json.loads(line)["chosen"]
        head, _, reply = chosen.rpartition("\n\nAssistant:")
        human = head.rpartition("\n\nHuman:")[2]
        if human.strip() and reply.strip():
            out.append(Pair("hh", human.strip(), reply.strip()))
    return out


def seeds(name: str, source: str) -> list[Pair]:
    out = []
    for line in (DATA / "seeds" / name).read_text(encoding="utf-8").splitlines():
        task = json.loads(line)
        inst = task["instances"][0]
        instruction = task["instruction"] + (f"\n{inst['input']}" if inst.get("input") else "")
        if inst.get("output", "").strip():
            out.append(Pair(source, instruction, inst["output"].strip()))
    return out


_FIRST_SENTENCE = re.compile(r"^.+?[.!?。！？](?=\s|$)", re.S)


def looped(reply: str, lang: str) -> str:
    """The reply's first sentence (or first 12 words; Chinese: 20 characters) repeated to its length, >= 30 words."""
    m = _FIRST_SENTENCE.match(reply)
    unit = m.group(0) if m else (reply[:20] if lang == "zh" else " ".join(reply.split()[:12]))
    sep = "" if lang == "zh" else " "
    target = max(len(reply), 90 if lang == "zh" else 180)
    parts = [unit]
    while len(sep.join(parts)) < target:
        parts.append(unit)
    return sep.join(parts)


def record(instruction: str, reply: str, lang: str) -> Record:
    return Record(
        id="",
        messages=[{"role": "user", "content": instruction}, {"role": "assistant", "content": reply}],
        task="instruction",
        lang=lang,
    )


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(a positive scores above a negative), ties half."""
    allv = np.concatenate([pos, neg])
    ranks = allv.argsort().argsort().astype(float) + 1
    # average ranks of ties
    for v in np.unique(allv):
        idx = allv == v
        ranks[idx] = ranks[idx].mean()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


END_LOSS_MAX = {"en": 8.0, "zh": 20.0}  # the bounds the README gives for the bundled model (its scales differ)


def end_of_turn(pairs: list[Pair], lang: str, sample: int) -> tuple[float, float, float]:
    """(recall on cut replies, false positives on whole ones, AUC) of `end_loss` at the language's bound, on a
    seeded sample of the pairs."""
    rng = random.Random(1)
    chosen = rng.sample(pairs, min(sample, len(pairs)))
    cuts = [(p, truncate(p.reply, rng)) for p in chosen]
    cuts = [(p, c) for p, c in cuts if c.strip()]  # a one-character reply has nothing left to cut to
    whole = [record(p.instruction, p.reply, lang) for p, _ in cuts]
    cut = [record(p.instruction, c, lang) for p, c in cuts]
    op = build(EndLossConfig())
    w, c = np.array(op.score_batch(whole)), np.array(op.score_batch(cut))
    for q in (50, 90, 99):
        print(
            f"  end_loss {q}th percentile: whole replies {np.percentile(w, q):.2f}, cut {np.percentile(c, 100 - q):.2f} ({100 - q}th)"
        )
    bound = END_LOSS_MAX[lang]
    return float(np.mean(c > bound)), float(np.mean(w > bound)), auc(c, w)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cut-sample", type=int, default=200, help="pairs per language for the cut-reply detector")
    args = ap.parse_args()
    rng = random.Random(0)
    ends = []
    sets = {
        "en": hh() + seeds("self_instruct_seed_tasks.jsonl", "self_instruct"),
        "zh": seeds("belle_zh_seed_tasks.jsonl", "belle"),
    }
    last = []
    for lang, pairs in sets.items():
        preset = preset_filters(lang)
        loop_rules = [build(c) for c in preset if c.name in ("distinct_n", "repetition")]
        # the preset's relevance bound where the language has one (none: the feature is measured, not applied)
        relevance = build(next((c for c in preset if c.name == "relevance"), RelevanceConfig()))
        order = list(range(len(pairs)))
        while any(i == j for i, j in zip(order, range(len(pairs)))):
            rng.shuffle(order)
        kinds = {
            "human": [record(p.instruction, p.reply, lang) for p in pairs],
            "off_topic": [record(p.instruction, pairs[j].reply, lang) for p, j in zip(pairs, order)],
            "loop": [record(p.instruction, looped(p.reply, lang), lang) for p in pairs],
        }
        scores = {k: np.array(relevance.score_batch(v)) for k, v in kinds.items()}
        print(f"## {lang}: {len(pairs)} human instruction-reply pairs ({', '.join(sorted({p.source for p in pairs}))})")
        print(f"  relevance AUC own vs another task's reply: {auc(scores['human'], scores['off_topic']):.3f}")
        for q in (1, 2, 5, 10):
            print(
                f"  relevance {q}th percentile of human replies {np.percentile(scores['human'], q):.3f}, "
                f"{100 - q}th of another task's {np.percentile(scores['off_topic'], 100 - q):.3f}"
            )
        for bound in (0.02, 0.03, 0.05, 0.08, 0.1, 0.15, 0.2):
            print(
                f"    relevance min {bound:.2f}: human replies flagged {np.mean(scores['human'] < bound):.3f}, another "
                f"task's caught {np.mean(scores['off_topic'] < bound):.3f}"
            )
        rate: dict[str, float] = {}
        for kind, recs in kinds.items():
            by_rel = [not relevance.keep(s) for s in scores[kind]]
            by_loop = [any(not op.keep(op.score(r)) for op in loop_rules) for r in recs]
            caught = [a or b for a, b in zip(by_rel, by_loop)]
            rate[kind] = float(np.mean(caught))
            label = "flagged (false positives)" if kind == "human" else "caught (recall)"
            print(
                f"  {kind:9s}: {label} {np.mean(caught):.3f} (relevance {np.mean(by_rel):.3f}, loop rules "
                f"{np.mean(by_loop):.3f})"
            )
        recall, flagged, area = end_of_turn(pairs, lang, args.cut_sample)
        print(
            f"  cut      : caught (recall) by end_loss max {END_LOSS_MAX[lang]:g} {recall:.3f}; whole replies flagged {flagged:.3f}"
        )
        ends.append(f"{lang} recall cut {recall:.2f} false positives {flagged:.3f} AUC {area:.3f}")
        last.append(
            f"{lang} recall off_topic {rate['off_topic']:.2f} loop {rate['loop']:.2f} false positives "
            f"{rate['human']:.3f}"
        )
    print("end of turn: " + "; ".join(ends))
    print("degenerate: " + "; ".join(last))


if __name__ == "__main__":
    main()
