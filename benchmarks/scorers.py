"""Model-backed quality scorers against human preference: does each of `perplexity`, `ifd` and `llm_judge` (under
the bundled SmolLM2-135M-Instruct, or --model) score the reply people preferred better than the one they rejected?

Why: these features filter and rank records (`perplexity` with a `max` bound, `ifd` ranking `ifd_topk`, `deita` and
the bandit's within-arm order, `llm_judge` with a `min` bound). Before trusting them to decide what is kept, check
that they agree with human judgement of the same kind of text at all.

Data: `../shared/data/preference/hh_helpful_test_500.jsonl`, 500 pairs from Anthropic's HH-RLHF "helpful" test split
(Bai et al. 2022, MIT): each line is {"chosen": ..., "rejected": ...}, each a whole dialogue "\\n\\nHuman: ...\\n\\n
Assistant: ...". The two share the conversation and differ in the final Assistant reply. Each dialogue is parsed into
chat messages (Human -> user, Assistant -> assistant); the record scored is the conversation up to and including
that final reply (the scorers take the last assistant message as the response, everything before it as the prompt).

Odd pairs: in 2 of the 500 (lines 169 and 355) the rejected reply runs on into a second "Assistant:" turn with no
Human turn between (the model kept talking). `--odd merge` (default) keeps them: consecutive turns of the same role
are joined with a blank line into one message, so both sides still share the conversation and the rejected reply is
everything the raters saw after it. `--odd drop` leaves those pairs out. The same join is made where two Assistant
turns follow each other inside the shared conversation (line 356; both sides alike). One rejected reply (line 121)
is empty: the model scorers give it NaN, which fails any bound, so it is kept and NaN ranks as the worst score.

Measure: per scorer and direction, AUC = P(score(chosen) is better than score(rejected)) over the pairs, a tie
counting 0.5 and a NaN worse than any number (two NaNs tie): 0.5 is chance, below 0.5 the scorer prefers the
rejected reply. 95% intervals from 2,000 seeded bootstrap resamples of the pairs. Directions:

    judge       higher is better (the expected 1-5 rating; filtered with `min`)
    ifd         bandit: as `selection.score: ifd` ranks (sftforge.select.pool.scores): the highest IFD below 1 is best
                (Li et al. 2023 keep IFD < 1 and take the hardest); IFD >= 1 (the prompt does not help predict the
                reply) is never chosen, so it counts as the worst, like NaN. Also shown: lower is better (the prompt
                helps more) and the raw higher is better.
    perplexity  lower is better (the README's `max` filter: fluent, predictable text); also shown: higher is better
                (a weak model finds looping or generic text very predictable, so low perplexity can mean bad text)

For orientation, two baselines that need no model: Gopher's duplicated word 3-gram share of the reply
(`sftforge.lib.text_stats.duplicate_ngram_share`, lower is better) and the reply length in words (both directions).

Time: wall seconds of each scorer's `score_batch` over all its records (chosen and rejected in one call, so batches
are sorted by length). IFD runs after perplexity, as in a recipe naming both: its conditioned passes (the reply given
the conversation) are perplexity's, taken from the shared model's memo, so its seconds are the extra direct passes
(the reply after the bare assistant header); alone it costs about perplexity's seconds more. Model loading is timed
apart. HH dialogues are long (about 215 tokens a record with the chat template, up to 930). The default run (all 500
pairs, one torch thread) took 23 minutes on 2 CPU cores shared with other work (load average 2-5): perplexity 513 s,
ifd 159 s, judge 680 s. torch runs one thread (`--threads 1`) by default: with other work on these 2 cores, two
threads stalled on each other and were 2.5x (perplexity) to 6x (ifd's short direct passes) slower on a 10-pair probe.
The judge is timed on 100 seeded pairs first; if the rest would take longer than --judge-budget seconds, it is run on
a seeded sample that fits (the sample is printed and saved); in the default run all 500 fit.

Last line: `scorer AUC: judge J ifd I perplexity P`, each in the direction above that the project's filters use.
Results (every score too) go to benchmarks/.cache/scorers.json.

    python benchmarks/scorers.py [--pairs 500] [--model PATH] [--batch-size 8] [--odd merge|drop]
                                 [--judge-budget 1200] [--seed 0] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import time
from pathlib import Path

import numpy as np

from sftforge.lib.text import tokens
from sftforge.lib.text_stats import duplicate_ngram_share
from sftforge.ops import build
from sftforge.ops.model_features import IFDConfig, LLMJudgeConfig, PerplexityConfig
from sftforge.sample import Record

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "preference" / "hh_helpful_test_500.jsonl"
CACHE = REPO / "benchmarks" / ".cache" / "scorers.json"

TURN = re.compile(r"\n\n(Human|Assistant): ")
ROLES = {"Human": "user", "Assistant": "assistant"}


# ---------------------------------------------------------------------------------------------------- data


def parse(dialogue: str) -> list[dict[str, str]]:
    """Chat messages of an HH dialogue; consecutive turns of one role are joined with a blank line."""
    parts = TURN.split(dialogue)
    if parts[0].strip():
        raise ValueError(f"text before the first turn: {parts[0][:60]!r}")
    messages: list[dict[str, str]] = []
    for speaker, content in zip(parts[1::2], parts[2::2]):
        role = ROLES[speaker]
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] += "\n\n" + content
        else:
            messages.append({"role": role, "content": content})
    return messages


def load_pairs(path: Path, n: int, odd: str) -> tuple[list[tuple[Record, Record]], list[int]]:
    """(chosen, rejected) records of the first n usable pairs, and the 0-based lines of the run-on pairs."""
    pairs: list[tuple[Record, Record]] = []
    run_on: list[int] = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if len(pairs) == n:
            break
        row = json.loads(line)
        chosen, rejected = parse(row["chosen"]), parse(row["rejected"])
        if any(TURN.findall(row[k])[-2:] == ["Assistant"] * 2 for k in ("chosen", "rejected")):
            run_on.append(i)
            if odd == "drop":
                continue
        if chosen[:-1] != rejected[:-1] or chosen[-1]["role"] != "assistant" or rejected[-1]["role"] != "assistant":
            raise ValueError(f"line {i + 1}: the pair does not share its conversation up to the final reply")
        pairs.append(
            (
                Record(id=f"hh{i}-chosen", messages=chosen, task="instruction", lang="en"),
                Record(id=f"hh{i}-rejected", messages=rejected, task="instruction", lang="en"),
            )
        )
    return pairs, run_on


def reply(record: Record) -> str:
    return record.messages[-1]["content"]


# ---------------------------------------------------------------------------------------------------- AUC


def wins(chosen: np.ndarray, rejected: np.ndarray) -> np.ndarray:
    """Per pair 1 if chosen scores higher, 0.5 on a tie, 0 if lower; NaN is below every number, two NaNs tie."""
    c = np.where(np.isnan(chosen), -np.inf, chosen)
    r = np.where(np.isnan(rejected), -np.inf, rejected)
    return np.where(c > r, 1.0, np.where(c == r, 0.5, 0.0))


def auc(chosen: np.ndarray, rejected: np.ndarray, boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(AUC, 2.5th and 97.5th percentiles over pair bootstrap resamples); scores oriented higher-is-better."""
    w = wins(chosen, rejected)
    rng = np.random.default_rng(seed)
    means = w[rng.integers(0, len(w), size=(boot, len(w)))].mean(axis=1)
    return float(w.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def bandit_ifd(x: np.ndarray) -> np.ndarray:
    """IFD oriented as `selection.score: ifd` ranks it: higher below 1 is better, 1 or more is never chosen (NaN)."""
    return np.where(x < 1.0, x, np.nan)


# Directions per scorer: (label, orientation to higher-is-better, headline?). The headline is the project's own.
DIRECTIONS = {
    "judge": [("higher better", lambda x: x, True), ("lower better", lambda x: -x, False)],
    "ifd": [
        ("bandit: higher <1 better, >=1 worst", bandit_ifd, True),
        ("lower better (prompt helps more)", lambda x: -x, False),
        ("higher better (raw)", lambda x: x, False),
    ],
    "perplexity": [("lower better", lambda x: -x, True), ("higher better", lambda x: x, False)],
    "dup 3-gram share": [("lower better", lambda x: -x, False), ("higher better", lambda x: x, False)],
    "reply words": [("longer better", lambda x: x, False), ("shorter better", lambda x: -x, False)],
}


# ---------------------------------------------------------------------------------------------------- scoring


def score_pairs(op, pairs: list[tuple[Record, Record]]) -> tuple[np.ndarray, np.ndarray, float]:
    """(chosen scores, rejected scores, wall seconds) of one score_batch call over both sides."""
    records = [r for pair in pairs for r in pair]
    t0 = time.perf_counter()
    scores = np.asarray(op.score_batch(records), dtype=np.float64)
    return scores[0::2], scores[1::2], time.perf_counter() - t0


def judge_pairs(
    op, pairs: list[tuple[Record, Record]], budget_s: float, seed: int
) -> tuple[np.ndarray, np.ndarray, float, list[int], str]:
    """The judge on 100 seeded pairs, timed; then on the rest if the estimate fits the budget, else on a seeded
    sample that does. Returns scores (NaN where not judged), seconds, the pairs judged and the decision."""
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    first = order[:100]
    c, r, secs = score_pairs(op, [pairs[i] for i in first])
    per_pair = secs / len(first)
    rest = order[len(first) :]
    estimate = per_pair * len(rest)
    if estimate <= budget_s:
        more = rest
        decision = (
            f"all {len(pairs)} pairs ({len(first)} pairs took {secs:.0f} s; "
            f"the other {len(rest)} estimated {estimate:.0f} s)"
        )
    else:
        more = rest[: max(0, int(budget_s / per_pair) // 50 * 50)]
        decision = (
            f"a seeded sample of {len(first) + len(more)} of {len(pairs)} pairs ({len(first)} took {secs:.0f} s; "
            f"all {len(pairs)} estimated {per_pair * len(pairs):.0f} s, over --judge-budget {budget_s:.0f} s)"
        )
    print(f"judge: on {decision}", flush=True)
    chosen = np.full(len(pairs), np.nan)
    rejected = np.full(len(pairs), np.nan)
    chosen[first], rejected[first] = c, r
    if more:
        c2, r2, s2 = score_pairs(op, [pairs[i] for i in more])
        chosen[more], rejected[more] = c2, r2
        secs += s2
    return chosen, rejected, secs, sorted(first + more), decision


def nulls(x: np.ndarray) -> list[float | None]:
    """Scores for JSON: NaN (not scored, or a record the scorer cannot score) as null."""
    return [None if math.isnan(v) else float(v) for v in x]


def fmt(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.3f}" if abs(x) < 100 else f"{x:,.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--pairs", type=int, default=500, help="the first N pairs of the file")
    ap.add_argument("--model", default=None, help="GGUF file or transformers directory (default: the bundled model)")
    ap.add_argument("--batch-size", type=int, default=8, help="sequences per forward pass")
    ap.add_argument("--odd", choices=["merge", "drop"], default="merge", help="the 2 pairs whose reply runs on")
    ap.add_argument("--judge-budget", type=float, default=1200.0, help="seconds the judge may take after 100 pairs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (0: torch's default, one per core); 1 because other work shares these cores",
    )
    args = ap.parse_args()

    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)

    start = time.perf_counter()
    pairs, run_on = load_pairs(args.data, args.pairs, args.odd)
    n = len(pairs)
    turns = [len(c.messages) for c, _ in pairs]
    print(
        f"{args.data.name}: {n} pairs ({2 * n} records), {np.mean(turns):.1f} messages per record on average; "
        f"run-on pairs {[i + 1 for i in run_on]} (lines) {'merged' if args.odd == 'merge' else 'dropped'}"
    )
    print(
        f"model: {args.model or 'bundled SmolLM2-135M-Instruct'}, float32, batch size {args.batch_size}, "
        f"{torch.get_num_threads()} torch thread(s)"
    )
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")

    kw = {"model": args.model, "batch_size": args.batch_size}
    ops = {
        "perplexity": build(PerplexityConfig(**kw)),
        "ifd": build(IFDConfig(**kw)),
        "judge": build(LLMJudgeConfig(**kw)),
    }
    t0 = time.perf_counter()
    for op in ops.values():
        op.setup()  # one shared copy of the model
    load_s = time.perf_counter() - t0
    print(f"model load (and conversion on first use): {load_s:.1f} s\n")

    scores: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    seconds: dict[str, float] = {}
    judged = list(range(n))
    decision = ""
    for name in ("perplexity", "ifd"):  # ifd second: it reuses perplexity's conditioned passes (the memo)
        c, r, s = score_pairs(ops[name], pairs)
        scores[name], seconds[name] = (c, r), s
        note = " (direct passes only; conditioned ones from perplexity's memo)" if name == "ifd" else ""
        print(f"{name}: {s:.0f} s ({2 * n / s:.2f} records/s){note}", flush=True)
    c, r, s, judged, decision = judge_pairs(ops["judge"], pairs, args.judge_budget, args.seed)
    scores["judge"], seconds["judge"] = (c, r), s
    print(f"judge: {s:.0f} s ({2 * len(judged) / s:.2f} records/s) on {len(judged)} pairs", flush=True)

    t0 = time.perf_counter()
    dup = [[duplicate_ngram_share(tokens(reply(x)), 3) for x in pair] for pair in pairs]
    words = [[len(tokens(reply(x))) for x in pair] for pair in pairs]
    base_s = time.perf_counter() - t0
    for name, vals in (("dup 3-gram share", dup), ("reply words", words)):
        arr = np.asarray(vals, dtype=np.float64)
        scores[name], seconds[name] = (arr[:, 0], arr[:, 1]), base_s / 2

    print(
        "\nAUC = P(chosen scores better than rejected) in the direction named, ties 0.5, NaN worst; "
        "95% bootstrap interval; raw means over non-NaN scores\n"
    )
    print("| scorer | direction | AUC | 95% CI | pairs | mean chosen | mean rejected | NaN (c/r) | seconds |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    results: dict[str, dict] = {}
    headline: dict[str, float] = {}
    for name, dirs in DIRECTIONS.items():
        c, r = scores[name]
        idx = judged if name == "judge" else list(range(n))
        c, r = c[idx], r[idx]
        aucs: dict[str, dict] = {}
        entry: dict[str, object] = {
            "pairs": len(idx),
            "seconds": seconds[name],
            "mean_chosen": float(np.nanmean(c)) if not np.isnan(c).all() else None,
            "mean_rejected": float(np.nanmean(r)) if not np.isnan(r).all() else None,
            "nan_chosen": int(np.isnan(c).sum()),
            "nan_rejected": int(np.isnan(r).sum()),
            "auc": aucs,
        }
        for label, orient, main_dir in dirs:
            a, lo, hi = auc(orient(c), orient(r), seed=args.seed)
            aucs[label] = {"auc": a, "ci95": [lo, hi], "headline": main_dir}
            if main_dir:
                headline[name] = a
            print(
                f"| {name} | {label}{' (headline)' if main_dir else ''} | {a:.3f} | {lo:.2f}-{hi:.2f} | {len(idx)} | "
                f"{fmt(float(np.nanmean(c)))} | {fmt(float(np.nanmean(r)))} | "
                f"{entry['nan_chosen']}/{entry['nan_rejected']} | {seconds[name]:.1f} |"
            )
        if name == "ifd":
            entry["share_ge_1"] = {"chosen": float(np.mean(c >= 1.0)), "rejected": float(np.mean(r >= 1.0))}
        results[name] = entry

    ifd_c, ifd_r = scores["ifd"]
    print(
        f"\nifd >= 1 (never chosen by the ranking, counted worst in the bandit direction): chosen "
        f"{100 * np.mean(ifd_c >= 1):.0f}%, rejected {100 * np.mean(ifd_r >= 1):.0f}%"
    )
    total = time.perf_counter() - start
    print(
        f"total {total:.0f} s (model load {load_s:.0f} s); load average at the end "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}: other work shares these CPUs, so the seconds are noisy"
    )

    CACHE.parent.mkdir(parents=True, exist_ok=True)
    CACHE.write_text(
        json.dumps(
            {
                "data": str(args.data),
                "pairs": n,
                "run_on_lines": [i + 1 for i in run_on],
                "odd": args.odd,
                "model": args.model or "bundled",
                "batch_size": args.batch_size,
                "torch_threads": torch.get_num_threads(),
                "judge_decision": decision,
                "judged_pairs": judged,
                "model_load_s": load_s,
                "total_s": total,
                "headline": headline,
                "results": results,
                "scores": {k: {"chosen": nulls(v[0]), "rejected": nulls(v[1])} for k, v in scores.items()},
            },
            indent=1,
        )
    )
    print(f"results: {CACHE.relative_to(REPO)}")
    print(
        f"scorer AUC: judge {headline['judge']:.2f} ifd {headline['ifd']:.2f} perplexity {headline['perplexity']:.2f}"
    )


if __name__ == "__main__":
    main()
