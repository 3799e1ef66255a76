"""Near-duplicate detection: sftforge's vectorised MinHash against datasketch's MinHash + MinHashLSH, same run.

Corpus (fixed seed): documents of 50-300 words drawn from a Zipfian vocabulary (the words of the Python PEPs in
shared/data ranked by frequency, padded with made-up words to 30k; made-up words only if the PEPs are absent),
with commas, full stops and capitals. Planted near-duplicates: ~10% of documents are copies of an earlier one
(original or copy) with 5-15% of the words edited by substitutions, deletions and insertions of 1-8 word spans;
an edit is redrawn until the copy's exact Jaccard with its source, on the benchmark's shingles, is at least the
threshold, so every planted copy is a true duplicate. ~2% are hard negatives: an earlier document's 40-60%
kept, the rest new (Jaccard ~0.3-0.5), which no method should remove.

Both methods use the same shingles (word 3-grams of sftforge.lib.text.tokens), num_perm, seed and LSH (bands, rows)
from `lsh_params`; each runs in its own subprocess (separate peak memory). Wall-clock time covers shingling,
signatures and duplicate resolution, texts in -> removal decisions out. datasketch: the standard streaming loop
(query, then insert; a document is removed if the query returns any earlier document). sftforge: signatures of
the whole corpus, then `find_duplicates` with verification (the default) and without.

Precision and recall of the removals against the planted copies. Last two lines:
`dedup speedup vs datasketch: R` and `recall: r precision: p (datasketch recall: r2 precision: p2)`.

    python benchmarks/dedup.py [--docs 200000] [--threshold 0.7] [--reps 3] [--skip-datasketch]
"""

from __future__ import annotations

import argparse
import collections
import json
import pickle
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sftforge.lib import minhash as M

PEPS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "corpus" / "python_peps"
UNIT, N = "word", 3


# ---------------------------------------------------------------------------------------------------- corpus


def vocabulary(size: int, rng: np.random.Generator) -> list[str]:
    counts: collections.Counter[str] = collections.Counter()
    for path in sorted(PEPS.glob("*")) if PEPS.is_dir() else []:
        counts.update(re.findall(r"[a-z]+", path.read_text(errors="ignore").lower()))
    words = [w for w, _ in counts.most_common(size)]
    seen = set(words)
    while len(words) < size:
        w = "".join(chr(97 + c) for c in rng.integers(0, 26, rng.integers(3, 11)))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def shingle_set(text: str) -> set:
    """The set of `M.shingles(text, UNIT, N)`, as token tuples (faster than joined strings, same set)."""
    toks = M.word_tokens(text)
    return set(zip(*(toks[i:] for i in range(N)), strict=False)) if len(toks) >= N else {tuple(toks)}


class Corpus:
    def __init__(self, n_docs: int, threshold: float, seed: int, dup_rate=0.10, miss_rate=0.02, sibling_rate=0.02):
        self.rng = rng = np.random.default_rng(seed)
        self.vocab = vocabulary(30_000, rng)
        p = 1.0 / np.arange(1, len(self.vocab) + 1)  # Zipf, exponent 1
        self.cdf = np.cumsum(p / p.sum())
        forms = [w2 + mark for w in self.vocab for w2 in (w, w.capitalize()) for mark in ("", ".", ",")]
        self.forms = np.array(forms, dtype=object)  # word i, capitalised c, mark k: forms[6 * i + 3 * c + k]
        self.pool: list[str] = []
        self.pos = 0
        self.threshold = threshold
        self.docs: list[list[str]] = []
        self.texts: list[str] = []
        self.planted = np.zeros(n_docs, dtype=bool)
        self.jaccards: list[float] = []
        self.miss_jaccards: list[float] = []
        self.edit_rates: list[float] = []
        self.siblings = 0
        kinds = rng.random(n_docs)
        for i in range(n_docs):
            if i > 0 and kinds[i] < dup_rate:
                words, j, rate = self.copy(self.docs[rng.integers(0, i)], 0.05, 0.15, threshold, 1.0)
                self.planted[i] = True
                self.jaccards.append(j)
                self.edit_rates.append(rate)
            elif i > 0 and kinds[i] < dup_rate + miss_rate:
                words, j, _ = self.copy(self.docs[rng.integers(0, i)], 0.12, 0.30, threshold - 0.2, threshold)
                self.miss_jaccards.append(j)
            elif i > 0 and kinds[i] < dup_rate + miss_rate + sibling_rate:
                words = self.sibling(self.docs[rng.integers(0, i)])
                self.siblings += 1
            else:
                words = self.fresh(int(rng.integers(50, 301)))
            self.docs.append(words)
            self.texts.append(" ".join(words))

    def fresh(self, n: int) -> list[str]:
        """n Zipfian words with some punctuation and capitals (which tokenisation must see through)."""
        if self.pos + n > len(self.pool):  # draw words a million at a time
            rng, size = self.rng, max(n, 1 << 20)
            ids = np.minimum(np.searchsorted(self.cdf, rng.random(size)), len(self.vocab) - 1)
            marks = rng.random(size)
            stop = marks < 0.07
            cap = np.concatenate(([True], stop[:-1]))
            suffix = np.where(stop, 1, np.where(marks < 0.12, 2, 0))
            self.pool, self.pos = self.forms[ids * 6 + cap * 3 + suffix].tolist(), 0
        self.pos += n
        return self.pool[self.pos - n : self.pos]

    def edit(self, words: list[str], rate: float) -> list[str]:
        rng = self.rng
        out = list(words)
        budget = max(1, round(rate * len(words)))
        while budget > 0:
            span = int(min(budget, rng.integers(1, 9)))
            kind = rng.integers(0, 3)
            at = int(rng.integers(0, max(1, len(out) - span)))
            if kind == 0:  # substitute
                out[at : at + span] = self.fresh(span)
            elif kind == 1 and len(out) > span + 10:  # delete
                del out[at : at + span]
            else:  # insert
                out[at:at] = self.fresh(span)
            budget -= span
        return out

    def copy(
        self, source: list[str], lo: float, hi: float, j_min: float, j_max: float
    ) -> tuple[list[str], float, float]:
        """An edited copy (edit rate drawn in [lo, hi]) whose exact Jaccard with the source is in [j_min, j_max)
        (j_max 1 included); the rate moves towards the range when five draws in a row miss it."""
        src = shingle_set(" ".join(source))
        rate = float(self.rng.uniform(lo, hi))
        while True:
            for _ in range(5):
                words = self.edit(source, rate)
                got = shingle_set(" ".join(words))
                j = len(src & got) / len(src | got)
                if j_min <= j < j_max or j == j_max == 1.0:
                    return words, j, rate
            rate *= 0.8 if j < j_min else 1.25

    def sibling(self, source: list[str]) -> list[str]:
        keep = int(len(source) * self.rng.uniform(0.4, 0.6))
        at = int(self.rng.integers(0, len(source) - keep + 1))
        return self.fresh(int(self.rng.integers(10, 100))) + source[at : at + keep] + self.fresh(len(source) - keep)


# ---------------------------------------------------------------------------------------------------- workers


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def peak_mib() -> float:
    """Peak RSS of this process image (VmHWM; ru_maxrss would also count the forking parent's peak)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


MODES = ("none", "exact", "estimate", "exact-fn", "estimate-fn")


def sftforge_params(a: argparse.Namespace, mode: str) -> tuple[int, int]:
    if mode.endswith("-fn"):
        return M.lsh_params(a.threshold, a.num_perm, fp_weight=1 - a.fn_weight, fn_weight=a.fn_weight)
    return M.lsh_params(a.threshold, a.num_perm)


def run_sftforge(texts: list[str], a: argparse.Namespace) -> dict:
    """One verification mode: exact (shingle sets), estimate (signatures) or none; *-fn: recall-leaning (bands, rows)."""
    bands, rows = sftforge_params(a, a.mode)
    hashing, resolving = [], []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        hasher = M.MinHasher(num_perm=a.num_perm, seed=1, unit=UNIT, n=N)
        sets = hasher.shingle_sets(texts) if a.mode.startswith("exact") else None
        sigs = hasher.signatures(sets if sets is not None else texts)
        t1 = time.perf_counter()
        result = M.find_duplicates(sigs, bands, rows, threshold=a.threshold, verify=a.mode != "none", shingle_sets=sets)
        t2 = time.perf_counter()
        hashing.append(t1 - t0)
        resolving.append(t2 - t1)
        del sets, sigs
    return {
        "seconds": [h + r for h, r in zip(hashing, resolving, strict=True)],
        "hashing": statistics.median(hashing),
        "resolving": statistics.median(resolving),
        "removed": result.duplicates.tolist(),
    }


def run_datasketch(texts: list[str], a: argparse.Namespace) -> dict:
    from datasketch import MinHash, MinHashLSH

    bands, rows = M.lsh_params(a.threshold, a.num_perm)
    times, removed = [], []
    for _ in range(a.ds_reps):
        t0 = time.perf_counter()
        lsh = MinHashLSH(threshold=a.threshold, num_perm=a.num_perm, params=(bands, rows))
        removed = []
        for i, text in enumerate(texts):
            shingles = M.shingles(text, UNIT, N)
            if not shingles:
                continue  # an empty document is nobody's duplicate
            m = MinHash(num_perm=a.num_perm, seed=1)
            m.update_batch([s.encode("utf-8") for s in shingles])
            if lsh.query(m):
                removed.append(i)
            lsh.insert(i, m)
        times.append(time.perf_counter() - t0)
        del lsh
    return {"seconds": times, "removed": removed}


def worker(a: argparse.Namespace) -> None:
    with open(a.corpus, "rb") as f:
        texts = pickle.load(f)
    loaded = rss_mib()
    out = (run_sftforge if a.worker == "sftforge" else run_datasketch)(texts, a)
    out.update(rss_loaded_mib=loaded, peak_mib=peak_mib())
    json.dump(out, sys.stdout)


# ---------------------------------------------------------------------------------------------------- report


def scores(removed: list[int], planted: np.ndarray) -> tuple[float, float]:
    pred = np.zeros(len(planted), dtype=bool)
    pred[removed] = True
    tp = int((pred & planted).sum())
    return tp / max(1, int(planted.sum())), tp / max(1, int(pred.sum()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=200_000)
    ap.add_argument("--threshold", type=float, default=0.7)
    ap.add_argument("--num-perm", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3, help="timed runs of the headline sftforge mode (median)")
    ap.add_argument("--other-reps", type=int, default=1, help="timed runs of the other sftforge modes")
    ap.add_argument("--ds-reps", type=int, default=1, help="timed runs of datasketch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--verify",
        choices=MODES,
        default="estimate-fn",
        help="the sftforge mode of the last two lines; estimate-fn is what minhash_dedup does by default "
        "(recall-leaning bands and rows, candidate pairs verified on their signatures)",
    )
    ap.add_argument("--fn-weight", type=float, default=0.8, help="exact-fn row: lsh_params(fn_weight=...)")
    ap.add_argument("--skip-datasketch", action="store_true")
    ap.add_argument("--worker", choices=["sftforge", "datasketch"], help=argparse.SUPPRESS)
    ap.add_argument("--mode", choices=[*MODES, "-"], default="exact", help=argparse.SUPPRESS)
    ap.add_argument("--corpus", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker(a)

    t = time.perf_counter()
    corpus = Corpus(a.docs, a.threshold, a.seed)
    bands, rows = M.lsh_params(a.threshold, a.num_perm)
    words = [len(d) for d in corpus.docs]
    j = np.array(corpus.jaccards)
    print(
        f"corpus: {a.docs} docs, {np.mean(words):.0f} words mean ({min(words)}-{max(words)}), vocabulary "
        f"{len(corpus.vocab)}; built in {time.perf_counter() - t:.0f} s"
    )
    miss = np.array(corpus.miss_jaccards)
    print(
        f"planted near-duplicates: {int(corpus.planted.sum())} (edit rate {np.mean(corpus.edit_rates):.3f} mean; "
        f"exact Jaccard with source min {j.min():.3f}, median {np.median(j):.3f}); negatives: {len(miss)} near "
        f"misses (Jaccard {miss.min():.3f} to <{a.threshold}, median {np.median(miss):.3f}), {corpus.siblings} "
        "siblings (40-60% of a document)"
    )
    print(
        f"shingles: {UNIT} {N}-grams; num_perm {a.num_perm}; threshold {a.threshold}; LSH {bands} bands x {rows} rows "
        f"(S-curve midpoint {(1 / bands) ** (1 / rows):.3f})"
    )
    jobs = [("sftforge", m) for m in (a.verify, *(m for m in MODES if m != a.verify))]
    jobs += [] if a.skip_datasketch else [("datasketch", "-")]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "corpus.pkl"
        with open(path, "wb") as f:
            pickle.dump(corpus.texts, f, protocol=pickle.HIGHEST_PROTOCOL)
        for name, mode in jobs:
            reps = a.ds_reps if name == "datasketch" else a.reps if mode == a.verify else a.other_reps
            cmd = [sys.executable, __file__, "--worker", name, "--corpus", str(path), "--mode", mode]
            cmd += ["--threshold", str(a.threshold), "--num-perm", str(a.num_perm), "--fn-weight", str(a.fn_weight)]
            cmd += ["--reps", str(reps), "--ds-reps", str(reps)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode:
                sys.exit(f"{name} {mode} worker failed:\n{proc.stderr}")
            results[name, mode] = json.loads(proc.stdout)

    fb, fr = sftforge_params(a, "exact-fn")
    labels = {
        "exact": "sftforge, exact verify",
        "estimate": "sftforge, estimate verify",
        "none": "sftforge, no verify",
        "exact-fn": f"sftforge, exact, {fb}x{fr}",
        "estimate-fn": f"sftforge, estimate, {fb}x{fr}",
        "-": "datasketch",
    }
    print()
    print(
        f"{'method':<26} {'runs':>4} {'seconds':>8} {'hash s':>7} {'find s':>7} {'docs/s':>8} {'removed':>8} "
        f"{'recall':>7} {'precision':>9} {'peak MiB':>9} {'extra MiB':>9}"
    )
    rate, score = {}, {}
    for (name, mode), res in results.items():
        med = statistics.median(res["seconds"])
        rate[mode] = a.docs / med
        score[mode] = scores(res["removed"], corpus.planted)
        phases = f"{res['hashing']:>7.2f} {res['resolving']:>7.2f}" if name == "sftforge" else f"{'-':>7} {'-':>7}"
        print(
            f"{labels[mode]:<26} {len(res['seconds']):>4} {med:>8.2f} {phases} {rate[mode]:>8.0f} "
            f"{len(res['removed']):>8} {score[mode][0]:>7.3f} {score[mode][1]:>9.3f} {res['peak_mib']:>9.0f} "
            f"{res['peak_mib'] - res['rss_loaded_mib']:>9.0f}"
        )
    print(
        f"(hash s: shingles + signatures; find s: find_duplicates. {fb}x{fr}: lsh_params(fn_weight={a.fn_weight}), "
        "recall-leaning, which verification allows. peak MiB: the worker's peak RSS (VmHWM); extra: minus its RSS "
        "with the texts loaded)"
    )
    print()
    recall, precision = score[a.verify]
    if "-" in score:
        print(f"dedup speedup vs datasketch: {rate[a.verify] / rate['-']:.2f}")
        theirs = f"(datasketch recall: {score['-'][0]:.3f} precision: {score['-'][1]:.3f})"
        print(f"recall: {recall:.3f} precision: {precision:.3f} {theirs}")
    else:
        print(f"recall: {recall:.3f} precision: {precision:.3f}")


if __name__ == "__main__":
    main()
