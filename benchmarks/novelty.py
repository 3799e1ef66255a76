"""ROUGE-L novelty filtering (Self-Instruct's "keep an instruction only if its ROUGE-L F against every instruction
in the pool is <= 0.7; the pool grows as it goes"): sftforge's NoveltyIndex against the naive all-pairs loop.

Instructions (fixed seed): the 175 Self-Instruct seed instructions (shared/data/seeds) recombined and perturbed.
Each generated instruction is one of: a near-duplicate of a recent generated instruction or a seed (1-3 word
edits: substitution, deletion, insertion, swap of neighbours; sometimes a politeness prefix); a seed with
1-4 words replaced by topic words (vocabulary from the English XQuAD paragraphs in shared/data; the seeds' own
words if absent) and often a topic or style suffix; or the start of one seed spliced onto the end of another,
with a topic. So there are many near-duplicates and many novel ones. The pool starts as the 175 seeds.

sftforge: `NoveltyIndex(0.7)` and `check_and_add` on each of the N instructions (default 50,000): total time,
instructions/s, peak RSS increase during the run, pool size at the end, exact LCS computed, and the mean time
per check over the first and the last 1,000 checks (does it stay fast as the pool grows?).

Naive baseline: what the Self-Instruct code does, `rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
.score(new, p)` for every p in the pool, reject if the max F > 0.7, else append; here in a single process
(Self-Instruct spread the same loop over a multiprocessing pool). It is run on the first --naive instructions
of the same stream (default: as many as it gets through in 120 s, which is about 1,000-3,000 depending on the
machine's load), and sftforge is run again, from scratch, on that same sample.
Both use the same tokens on this English text (sftforge's default tokenizer is rouge-score's, plus CJK
characters as tokens), so the decisions must be identical; they are compared one by one. Speedup = naive time
over sftforge's time on that sample. The naive time for the whole stream is extrapolated from its measured time
per pair times the number of (instruction, pool entry) pairs the whole stream needs (known from sftforge's run).

Last two lines: `novelty speedup vs naive: R` and `same decisions: yes|no`.

    python benchmarks/novelty.py [--n 50000] [--naive-seconds 120 | --naive N] [--threshold 0.7] [--seed 0]
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import re
import time
from pathlib import Path

from sftforge.lib.novelty import NoveltyIndex

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SEEDS = DATA / "seeds" / "self_instruct_seed_tasks.jsonl"
XQUAD = DATA / "corpus" / "xquad.en.json"

PREFIXES = ["Please", "Can you", "I want you to", "Now", "Quickly", "Kindly", "Help me", "Could you please"]
SUFFIXES = [
    "in one sentence.",
    "for a five-year-old.",
    "using simple words.",
    "in the style of a pirate.",
    "with three examples.",
    "as a bulleted list.",
    "in less than 50 words.",
    "and explain your reasoning.",
    "for a job interview.",
    "in a formal tone.",
    "step by step.",
    "for a children's book.",
]
TOPICS = ["about", "related to", "on the topic of", "regarding", "in the context of", "focusing on"]


# ---------------------------------------------------------------------------------------------------- data


def load_seeds() -> list[str]:
    return [json.loads(line)["instruction"] for line in SEEDS.read_text().splitlines() if line.strip()]


def topic_words(seeds: list[str], size: int = 6000) -> list[str]:
    counts: collections.Counter[str] = collections.Counter()
    if XQUAD.exists():
        for article in json.loads(XQUAD.read_text())["data"]:
            for para in article["paragraphs"]:
                counts.update(re.findall(r"[A-Za-z][a-z]{3,}", para["context"]))
    else:
        for s in seeds:
            counts.update(re.findall(r"[A-Za-z][a-z]{3,}", s))
    return [w for w, _ in counts.most_common(size)]


def instructions(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    seeds = load_seeds()
    vocab = topic_words(seeds)
    seed_words = [w for s in seeds for w in s.split()]
    out: list[str] = []

    def word() -> str:
        return rng.choice(vocab) if rng.random() < 0.7 else rng.choice(seed_words)

    def topic() -> str:
        return f"{rng.choice(TOPICS)} {' '.join(word() for _ in range(rng.randint(1, 3)))}"

    for _ in range(n):
        r = rng.random()
        if r < 0.4:  # near-duplicate of a recent instruction or a seed
            base = rng.choice(out[-2000:]) if out and rng.random() < 0.7 else rng.choice(seeds)
            w = base.split()
            for _ in range(rng.randint(1, 3)):
                op = rng.random()
                if op < 0.35 and w:
                    w[rng.randrange(len(w))] = word()
                elif op < 0.55 and len(w) > 2:
                    del w[rng.randrange(len(w))]
                elif op < 0.8:
                    w.insert(rng.randint(0, len(w)), word())
                elif len(w) > 1:
                    i = rng.randrange(len(w) - 1)
                    w[i], w[i + 1] = w[i + 1], w[i]
            if rng.random() < 0.15:
                w.insert(0, rng.choice(PREFIXES))
            text = " ".join(w)
        elif r < 0.7:  # a seed with topic words swapped in
            w = rng.choice(seeds).split()
            for _ in range(rng.randint(1, 4)):
                w[rng.randrange(len(w))] = word()
            text = " ".join(w)
            if rng.random() < 0.6:
                text = f"{text.rstrip('.?:!')} {topic() if rng.random() < 0.5 else rng.choice(SUFFIXES)}"
        else:  # the start of one seed spliced onto the end of another, with a topic
            a, b = rng.choice(seeds).split(), rng.choice(seeds).split()
            head = a[: max(1, int(len(a) * rng.uniform(0.3, 0.7)))]
            tail = b[int(len(b) * rng.uniform(0.3, 0.7)) :]
            text = " ".join(head + tail).rstrip(".?:!") + " " + topic()
        out.append(text)
    return out


# ---------------------------------------------------------------------------------------------------- memory


def _status(field: str) -> int:
    """A /proc/self/status field in KiB (0 where there is no /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux >= 4.0)
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------------- runs


def run_sftforge(seeds: list[str], stream: list[str], threshold: float, window: int = 1000) -> dict:
    index = NoveltyIndex(threshold, texts=seeds)
    decisions: list[bool] = []
    times: list[float] = []
    pools: list[int] = []
    clock = time.perf_counter
    start = clock()
    for text in stream:
        t0 = clock()
        pools.append(len(index))
        decisions.append(index.check_and_add(text).novel)
        times.append(clock() - t0)
    total = clock() - start
    w = min(window, max(1, len(stream) // 2))
    return {
        "total": total,
        "decisions": decisions,
        "pool_end": len(index),
        "pairs": sum(pools),
        "comparisons": index.comparisons,
        "first_us": 1e6 * sum(times[:w]) / w,
        "last_us": 1e6 * sum(times[-w:]) / w,
        "first_pool": pools[w // 2],
        "last_pool": pools[-w // 2],
        "window": w,
    }


def run_naive(seeds: list[str], stream: list[str], threshold: float, budget_s: float = float("inf")) -> dict:
    """The Self-Instruct loop, single process; stops after budget_s (the sample is what it got through)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    pool = list(seeds)
    decisions: list[bool] = []
    pairs = 0
    start = time.perf_counter()
    for text in stream:
        if time.perf_counter() - start > budget_s:
            break
        scores = [scorer.score(text, p)["rougeL"].fmeasure for p in pool]
        pairs += len(pool)
        novel = max(scores, default=0.0) <= threshold
        decisions.append(novel)
        if novel:
            pool.append(text)
    return {"total": time.perf_counter() - start, "decisions": decisions, "pairs": pairs, "pool_end": len(pool)}


def fmt_s(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.2f} s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=50_000, help="instructions streamed through sftforge's index")
    ap.add_argument(
        "--naive",
        type=int,
        default=0,
        help="instructions (the first ones) for the naive loop; default: as many as it gets through in --naive-seconds",
    )
    ap.add_argument("--naive-seconds", type=float, default=120.0, help="time budget of the naive loop")
    ap.add_argument("--threshold", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    t0 = time.perf_counter()
    seeds = load_seeds()
    stream = instructions(args.n, args.seed)
    gen_s = time.perf_counter() - t0
    words = sum(len(s.split()) for s in stream) / len(stream)
    print(
        f"{len(stream):,} instructions (mean {words:.1f} words) generated from {len(seeds)} seeds in {gen_s:.1f} s;"
        f" pool starts with the seeds; threshold {args.threshold}"
    )

    rss0 = _status("VmRSS")
    peak_ok = _reset_peak()
    full = run_sftforge(seeds, stream, args.threshold)
    peak = (_status("VmHWM") - rss0) / 1024 if peak_ok else float("nan")
    kept = sum(full["decisions"])
    print(
        f"sftforge NoveltyIndex, {len(stream):,} instructions: {fmt_s(full['total'])}, "
        f"{len(stream) / full['total']:,.0f} instructions/s, kept {kept:,} ({100 * kept / len(stream):.1f}%), "
        f"pool at the end {full['pool_end']:,}, peak RSS increase {peak:.1f} MiB"
    )
    print(
        f"  exact LCS computed: {full['comparisons']:,} of {full['pairs']:,} (instruction, pool entry) pairs "
        f"({100 * full['comparisons'] / max(full['pairs'], 1):.3f}%)"
    )
    print(
        f"  time per check: first {full['window']:,} checks {full['first_us']:.0f} us (pool ~{full['first_pool']:,}),"
        f" last {full['window']:,} checks {full['last_us']:.0f} us (pool ~{full['last_pool']:,})"
    )

    if args.naive:
        naive = run_naive(seeds, stream[: args.naive], args.threshold)
    else:
        naive = run_naive(seeds, stream, args.threshold, args.naive_seconds)
    m = len(naive["decisions"])
    sample = stream[:m]
    ours = run_sftforge(seeds, sample, args.threshold)
    same = naive["decisions"] == ours["decisions"] == full["decisions"][:m]
    per_pair = naive["total"] / max(naive["pairs"], 1)
    naive_full = per_pair * full["pairs"]
    speedup = naive["total"] / ours["total"]
    print(f"naive loop (rouge-score RougeScorer(['rougeL'], use_stemmer=False), single process) on the first {m:,}:")
    rows = [
        ("method", "instructions", "pool at end", "time", "per instruction", "pairs/s"),
        (
            "naive rouge-score",
            f"{m:,}",
            f"{naive['pool_end']:,}",
            fmt_s(naive["total"]),
            f"{1e3 * naive['total'] / m:.2f} ms",
            f"{naive['pairs'] / naive['total']:,.0f}",
        ),
        (
            "sftforge",
            f"{m:,}",
            f"{ours['pool_end']:,}",
            fmt_s(ours["total"]),
            f"{1e3 * ours['total'] / m:.3f} ms",
            f"{ours['pairs'] / ours['total']:,.0f}",
        ),
        (
            "naive (extrapolated)",
            f"{len(stream):,}",
            f"{full['pool_end']:,}",
            fmt_s(naive_full),
            f"{1e3 * naive_full / len(stream):.1f} ms",
            f"{1 / per_pair:,.0f}",
        ),
        (
            "sftforge",
            f"{len(stream):,}",
            f"{full['pool_end']:,}",
            fmt_s(full["total"]),
            f"{1e3 * full['total'] / len(stream):.3f} ms",
            f"{full['pairs'] / full['total']:,.0f}",
        ),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    print(
        f"naive extrapolated to {len(stream):,}: {per_pair * 1e6:.1f} us per pair x {full['pairs']:,} pairs "
        f"= {fmt_s(naive_full)} ({naive_full / full['total']:,.0f}x sftforge's {fmt_s(full['total'])})"
    )
    diff = sum(a != b for a, b in zip(naive["decisions"], ours["decisions"]))
    print(
        f"decisions on the sample: naive kept {sum(naive['decisions']):,}, sftforge kept "
        f"{sum(ours['decisions']):,}, {diff} differ"
    )
    print(f"novelty speedup vs naive: {speedup:.0f}")
    print(f"same decisions: {'yes' if same else 'no'}")


if __name__ == "__main__":
    main()
