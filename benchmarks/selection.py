"""Does learning which data helps pay off? Held-out loss curves of the same LoRA fine-tuning under each selection
strategy, on a pool with realistic planted defects, with the same step budget for each, over several seeds.

The pool: closed-book QA over six PEPs, made by the sftforge pipeline with the bundled model
(benchmarks/recipes/selection_pool.yaml; the first run generates it, ~9 minutes, later runs reuse
benchmarks/.cache/). Per seed, clean records are held out for evaluation (50) and as the bandit's probe set (8);
in the rest, half the records get planted defects (benchmarks/defects.py: truncated answers, answers swapped
between questions, off-topic text, one-word answers, near-duplicates). Features (IFD, MiniLM embeddings) are
computed by sftforge's own operators on the planted pool (cached per seed), arms are k-means clusters of the
answers' embeddings, exactly as a recipe with `selection.arms.by: cluster` gets them.

Strategies, each with the same steps, batch size, learning rate and seed: uniform (a random half of the pool),
ifd_topk, deita (IFD score x cosine diversity), kcenter (k-center greedy), all static strategies choosing half
the pool; and exp3s, Exp3.S (Graves et al. 2017) over the arms, set as `pep_qa.yaml` sets it:
- mixed batches (an arm drawn per example), each example rewarded by the cosine between its gradient and the
  probe set's (the first-order estimate of how much a step on it lowers the probe loss: LESS, Xia et al. 2024,
  arXiv 2402.04333, which scores data by this cosine over LoRA gradients; here it is read off the batch's own
  backward pass, sftforge/train/alignment.py, and the probe gradient is recomputed every 10 steps);
- what the static filters know as the bandit's prior: the policy starts from each arm's count of records with IFD
  below 1 and an answer that ends (`prior: score`), and each arm serves those records best IFD first, passing
  over any as similar as 0.9 (cosine of the MiniLM embeddings) to a better-scored record (`within_arm: deita`:
  DEITA's walk, Liu et al. 2023, arXiv 2312.15685), the others never unless the arm has no other. An answer
  "ends" where the bundled model's loss of the end-of-turn token after it (sftforge's `end_loss` feature) is at
  most 8 (`selection.max_end_loss: 8`): a cut-off answer is far from where a turn ends, which IFD cannot see; the
  gate unscores those answers for ifd_topk and deita too (`--max-end-loss nan` turns it off for all);
- what the bandit can learn about single records (`--drop-below 0`, off by default): an example whose gradient
  points away from the probe's (cosine at or below 0) is taken back out of its step and not drawn again, the
  online counterpart of LESS's selection. Before the end-of-turn gate it lowered the steps (64% of the records it
  dropped were defective); with the gate it no longer does (seeds 3-5: 11.91 steps with it, 11.87 without), and
  76% of what it dropped on seeds 0-2 was clean, so `pep_qa.yaml` leaves it off;
- ODM (Albalak et al. 2023, arXiv 2312.02406) is the other bandit (`--strategies ...,odm`): Exp3 rewarded by the
  training loss, which favours the hardest (here: the defective) data.
`--batches arm --reward target_prediction_gain --prior uniform --within-arm shuffled --drop-below nan` is the
paper's form. `--strategies uniform,clean` adds the oracle, a reference no strategy can be: every record without a
planted defect, in shuffled epochs (what perfect defect removal alone would give). Reported per strategy: steps to
reach uniform's final held-out loss in the same seed (per seed, mean and spread), the final loss, the share of
training examples that were defective, and the cost of its steps against uniform's (evaluation left out). Training runs in `dtype: mixed` (fp32 weights, bf16 products) where the
CPU has native bf16, else in fp32 (`--dtype` to choose): on seed 0, mixed moved uniform's final loss by 0.010 and
the bandit's steps ratio from 0.54 to 0.52 against fp32, at 0.55x the time.

    python benchmarks/selection.py                # about 17 minutes on 2 cores with bf16, pool and features cached
    python benchmarks/selection.py --seeds 0 --strategies uniform,exp3s   # a quicker look

Last lines: `bandit step cost vs uniform: C`, `bandit vs best static: S` (exp3s's mean steps over the best static
strategy's) and `bandit steps ratio: R` (exp3s's mean steps over uniform's).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import logging
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = HERE / ".cache"


def load_defects():  # benchmarks/ is not a package
    spec = importlib.util.spec_from_file_location("defects", HERE / "defects.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_pool(out: Path):
    """Run the pipeline (sources -> generate -> features -> clean) for the pool recipe, or reuse a finished run."""
    from rich.console import Console

    from sftforge.progress import RichReporter
    from sftforge.recipe import load_recipe
    from sftforge.run import RunDir
    from sftforge.stages import Context, run_pipeline

    recipe_path = HERE / "recipes" / "selection_pool.yaml"
    recipe, text = load_recipe(recipe_path)
    run = RunDir.create(out, text, recipe.name, recipe_path.parent)
    t = time.perf_counter()
    with RichReporter(Console(stderr=True)) as reporter:
        ran = run_pipeline(Context(run=run, recipe=recipe, reporter=reporter))
    took = time.perf_counter() - t
    print(f"pool: {'made' if any(r for _, r in ran) else 'reused'} in {took:.0f} s ({out})")
    return run.read_records("clean")


def features(records, cache: Path):
    """IFD under the bundled model and MiniLM embeddings (of the whole conversation and of the answer alone), by
    sftforge's operators; kept in `cache` for the same pool."""
    from sftforge.engine.processing import compute_features
    from sftforge.ops.base import build
    from sftforge.ops.embedding import EmbeddingConfig
    from sftforge.ops.model_features import IFDConfig

    ids = [r.id for r in records]
    if cache.exists():
        data = np.load(cache, allow_pickle=False)
        if data["ids"].tolist() == ids:
            return data["ifd"], data["emb"], data["emb_answer"]
    for r in records:
        r.features.pop("ifd", None)
    vectors = compute_features([build(IFDConfig()), build(EmbeddingConfig())], records)
    answer = compute_features([build(EmbeddingConfig(role="assistant"))], records)
    ifd = np.array([r.features["ifd"] for r in records])
    np.savez(cache, ids=np.array(ids), ifd=ifd, emb=vectors["embedding"], emb_answer=answer["embedding"])
    return ifd, vectors["embedding"], answer["embedding"]


def end_losses(records, cache: Path) -> np.ndarray:
    """The end-of-turn loss of each answer under the bundled model (sftforge's `end_loss` operator: high where an
    answer is cut off); kept in `cache` for the same pool."""
    from sftforge.engine.processing import compute_features
    from sftforge.ops.base import build
    from sftforge.ops.model_features import EndLossConfig

    ids = [r.id for r in records]
    if cache.exists():
        data = np.load(cache, allow_pickle=False)
        if data["ids"].tolist() == ids:
            return data["end_loss"]
    for r in records:
        r.features.pop("end_loss", None)
    compute_features([build(EndLossConfig())], records)
    end = np.array([r.features["end_loss"] for r in records])
    np.savez(cache, ids=np.array(ids), end_loss=end)
    return end


def first_step_at(curve: list[tuple[int, float]], target: float) -> int | None:
    """The first evaluated step whose held-out loss is at or below `target`."""
    return next((s for s, v in curve if v <= target + 1e-9), None)


@dataclass
class SeedData:
    """One seed's split, planted pool, features and arms: every strategy of the seed trains on the same."""

    seed: int
    pool: list
    heldout: list
    probe: list
    bad: np.ndarray
    ifd: np.ndarray
    end_loss: np.ndarray
    emb: np.ndarray
    arm_of: np.ndarray
    arm_names: list[str]
    base_loss: float | None = None  # held-out loss before training, measured once


def prepare(seed: int, records: list, args: argparse.Namespace, defects) -> SeedData:
    from sftforge.config import Arms
    from sftforge.select.pool import arm_labels, split_records

    split = split_records([r.id for r in records], args.eval / len(records), args.probe, seed)
    heldout = [r for r, s in zip(records, split) if s == "eval"]
    probe = [r for r, s in zip(records, split) if s == "probe"]
    candidates = [r for r, s in zip(records, split) if s == "train"]
    pool, labels = defects.plant_defects(candidates, args.defects, seed)
    kinds = defects.defect_summary(labels)
    t = time.perf_counter()
    ifd, emb, emb_answer = features(pool, CACHE / f"selection_features-{seed}-{args.defects}.npz")
    gated = not np.isnan(args.max_end_loss)
    end = (
        end_losses(pool, CACHE / f"selection_end_loss-{seed}-{args.defects}.npz")
        if gated
        else np.full(len(pool), np.nan)
    )
    print(
        f"seed {seed}: held out {len(heldout)} eval + {len(probe)} probe (clean); pool {len(pool)}: "
        + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
        + f"; features (IFD, MiniLM{', end-of-turn loss' if gated else ''}) {time.perf_counter() - t:.0f} s"
    )
    if args.arms_by == "difficulty":  # what `arms: {by: difficulty, feature: ifd, k: K}` gives a recipe
        for r, v in zip(pool, ifd):
            r.features["ifd"] = float(v)
    vectors = emb_answer if args.arms_on == "answer" else emb
    arm_of, arm_names = arm_labels(pool, Arms(by=args.arms_by, k=args.arms, feature="ifd"), vectors, seed)
    bad = np.array([labels[r.id] != "clean" for r in pool])
    kind_of = [labels[r.id] for r in pool]
    for a, name in enumerate(arm_names):
        members = np.nonzero(arm_of == a)[0]
        mix = Counter(kind_of[i] for i in members)
        print(
            f"  arm {a} ({name}): {len(members)} records, defective {bad[members].mean():.0%}  "
            + ", ".join(f"{k} {v}" for k, v in sorted(mix.items()))
        )
    return SeedData(seed, pool, heldout, probe, bad, ifd, end, emb, arm_of, arm_names)


def sampler_for(name: str, data: SeedData, args: argparse.Namespace):
    """The batch sampler of a strategy: a static subset of half the pool in shuffled epochs, or a bandit."""
    from sftforge.config import BanditSettings, Selection
    from sftforge.select import static
    from sftforge.select.pool import scores
    from sftforge.stages.train import make_sampler
    from sftforge.train.samplers import SubsetSampler

    n, seed, ifd = len(data.pool), data.seed, data.ifd
    ones, budget = np.ones(n), float(n // 2)
    # What `selection.score: ifd` gives a recipe: IFD >= 1 unscored, and cut-off answers (end-of-turn loss above
    # `selection.max_end_loss`) too, for ifd_topk, deita and the bandit alike.
    scored = [
        dataclasses.replace(r, features={"ifd": float(i), "end_loss": float(e)})
        for r, i, e in zip(data.pool, ifd, data.end_loss)
    ]
    valid_ifd = scores(scored, "ifd", True, None if np.isnan(args.max_end_loss) else args.max_end_loss)
    if name in ("exp3s", "odm"):  # built by the train stage's own code, from the settings a recipe would give
        bandit = BanditSettings(
            reward=args.reward,
            batches=args.batches,
            within_arm=args.within_arm,
            prior=args.prior,
            eta=args.eta,
            probe_every=args.probe_every,
            drop_below=None if np.isnan(args.drop_below) else args.drop_below,
            window=args.window,
            detrend=args.detrend,
        )
        return make_sampler(Selection(strategy=name, bandit=bandit), data.arm_of, seed, valid_ifd, data.emb)
    if name == "all":
        chosen = np.arange(n)
    elif name == "uniform":
        chosen = static.uniform(n, ones, budget, seed)
    elif name == "ifd_topk":
        chosen = static.top_k(ifd, ones, budget, descending=True, valid=~np.isnan(valid_ifd))
    elif name == "deita":  # IFD as the score, below 1 as for ifd_topk (what `selection.score: ifd` does)
        chosen = static.deita(valid_ifd, data.emb, ones, budget, threshold=0.9)
    elif name == "kcenter":
        chosen = static.k_center_greedy(data.emb, ones, budget, seed)
    elif name == "clean":  # the oracle: every record without a planted defect (no strategy knows the labels)
        chosen = np.flatnonzero(~data.bad)
    else:
        raise ValueError(name)
    return SubsetSampler(chosen, seed)


def train(name: str, data: SeedData, args: argparse.Namespace) -> dict:
    """Fine-tune the bundled model's LoRA under one strategy; its curve, costs and what it trained on."""
    from sftforge.config import LoRA, Training
    from sftforge.storage import read_metrics
    from sftforge.train.data import encode_all
    from sftforge.train.loop import TrainData, Trainer
    from sftforge.train.model import load_trainable

    cfg = Training(
        model="bundled",
        method="lora",
        lora=LoRA(top_layers=args.top_layers),
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        schedule=args.schedule,
        warmup_steps=0,
        eval_every=args.eval_every,
        save_every=10**6,
        max_seq_len=args.max_seq_len,
        dtype=args.dtype,
        seed=data.seed,
    )
    model, tokenizer, _ = load_trainable(cfg, None)
    train_ex, dropped = encode_all(tokenizer, data.pool, cfg.max_seq_len)
    assert not dropped, "raise --max-seq-len: some records lose every answer token"
    eval_ex, _ = encode_all(tokenizer, data.heldout, cfg.max_seq_len)
    probe_ex, _ = encode_all(tokenizer, data.probe, cfg.max_seq_len)
    sampler = sampler_for(name, data, args)
    out = CACHE / "selection_runs" / f"{name}-{data.seed}"
    shutil.rmtree(out, ignore_errors=True)
    trainer = Trainer(cfg, model, tokenizer, TrainData(train_ex, eval_ex, probe_ex), sampler, out, tensorboard=False)
    t = time.perf_counter()
    if data.base_loss is None:  # every strategy of a seed starts from the same model on the same held-out set
        data.base_loss = trainer.evaluate()
    outcome = trainer.run(base_loss=data.base_loss)
    steps = [r for r in read_metrics(out / "metrics.jsonl") if r["kind"] == "train"]
    result = {
        "curve": outcome.eval_curve,
        "final": outcome.eval_curve[-1][1],
        "seconds": time.perf_counter() - t,
        "step_seconds": sum(r["seconds"] for r in steps),  # the steps alone, evaluation left out
        "defective_share": float(data.bad[sampler.served()].mean()),
        "probabilities": outcome.probabilities,
        "probe_drift": [r["probe_drift"] for r in steps if "probe_drift" in r],
        "dropped": int(len(sampler.dropped())) if hasattr(sampler, "dropped") else None,
        "dropped_defective": float(data.bad[sampler.dropped()].mean())
        if hasattr(sampler, "dropped") and len(sampler.dropped())
        else None,
    }
    print(
        f"  seed {data.seed} {name:9s} final held-out loss {result['final']:.4f}  defective share "
        f"{result['defective_share']:.0%}  steps {result['step_seconds']:.0f} s, all {result['seconds']:.0f} s"
        + (f"  dropped {result['dropped']} ({result['dropped_defective']:.0%} defective)" if result["dropped"] else ""),
        flush=True,
    )
    return result


def spread(values: list[float]) -> str:
    return f"{np.mean(values):.2f} ± {np.std(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds: split, defects, arms and training")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--schedule", choices=["constant", "linear", "cosine"], default="cosine")
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--max-seq-len", type=int, default=128)
    parser.add_argument(
        "--dtype",
        choices=["auto", "float32", "bfloat16", "mixed"],
        default=None,
        help="training precision; default mixed (fp32 weights, bf16 products) where this CPU runs bf16 clearly "
        "faster, else float32",
    )
    parser.add_argument("--top-layers", type=int, default=None, help="LoRA on the last N layers only (default all)")
    parser.add_argument("--defects", type=float, default=0.5, help="share of the candidate pool made defective")
    parser.add_argument("--arms", type=int, default=6)
    parser.add_argument("--eval", type=int, default=50, help="clean records held out for the loss curves")
    parser.add_argument("--probe", type=int, default=8, help="clean records held out as the bandit's probe set")
    parser.add_argument("--eta", type=float, default=0.3, help="Exp3.S step size")
    parser.add_argument(
        "--reward",
        choices=["target_prediction_gain", "gradient_alignment"],
        default="gradient_alignment",
        help="exp3s reward",
    )
    parser.add_argument(
        "--batches",
        choices=["arm", "mixed"],
        default="mixed",
        help="bandit batches: all from one arm per step, or an arm drawn per example",
    )
    parser.add_argument(
        "--within-arm",
        choices=["shuffled", "score", "deita"],
        default="deita",
        help="bandit: an arm's records in shuffled epochs, or best IFD (below 1) first, or that without records "
        "as similar as 0.9 (cosine) to a better one (DEITA's walk)",
    )
    parser.add_argument(
        "--prior",
        choices=["uniform", "size", "score"],
        default="score",
        help="Exp3.S start: each arm alike, each arm's share of the pool, or its count of records with IFD below 1",
    )
    parser.add_argument(
        "--max-end-loss",
        type=float,
        default=8.0,
        help="selection.max_end_loss with the end_loss feature computed: answers whose end-of-turn loss is above "
        "it are unscored for ifd_topk, deita and the bandit (default 8, as pep_qa.yaml; nan: no gate)",
    )
    parser.add_argument("--probe-every", type=int, default=10, help="steps between probe-gradient recomputations")
    parser.add_argument(
        "--drop-below",
        type=float,
        default=float("nan"),
        help="exp3s: leave out and stop drawing examples at this alignment (default nan: never, as pep_qa.yaml)",
    )
    parser.add_argument("--window", type=int, default=50, help="recent rewards whose quantiles rescale a reward")
    parser.add_argument("--detrend", type=int, default=5, help="rank gains against the mean of this many before")
    parser.add_argument(
        "--arms-by",
        choices=["cluster", "difficulty"],
        default="cluster",
        help="the bandit's arms: k-means clusters of embeddings, or IFD quantile bins (difficulty)",
    )
    parser.add_argument(
        "--arms-on",
        choices=["answer", "conversation"],
        default="answer",
        help="what the k-means arms cluster: MiniLM embeddings of the answer or of the whole record",
    )
    parser.add_argument(
        "--strategies",
        default="uniform,ifd_topk,deita,kcenter,exp3s",
        help="any of uniform, ifd_topk, deita, kcenter, exp3s, odm, all, clean (the oracle: the records without "
        "a planted defect, in shuffled epochs; a reference, not a strategy)",
    )
    parser.add_argument("--pool-dir", type=Path, default=CACHE / "selection_pool")
    parser.add_argument("--json", type=Path, default=CACHE / "selection_results.json")
    parser.add_argument(
        "--summary-only", action="store_true", help="print the table and last lines from the saved --json, no training"
    )
    args = parser.parse_args()
    if args.summary_only:
        saved = json.loads(args.json.read_text())
        results = {name: {int(k): v for k, v in by_seed.items()} for name, by_seed in saved["results"].items()}
        for key in ("steps", "batch_size", "eval", "eval_every", "probe_every"):
            setattr(args, key, int(saved["args"][key]))
        summarise(results, list(results), sorted(next(iter(results.values()))), args)
        return
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    strategies = [s for s in args.strategies.split(",") if s]
    if "uniform" not in strategies:
        parser.error("--strategies must include uniform: every other strategy is measured against it")
    strategies = ["uniform"] + [s for s in strategies if s != "uniform"]  # uniform first: its loss is the target
    seeds = [int(s) for s in args.seeds.split(",") if s]

    from sftforge.llm.hf import bf16_is_faster
    from sftforge.train.model import set_threads

    if args.dtype is None:
        args.dtype = "mixed" if bf16_is_faster() else "float32"
    print(f"training precision: {args.dtype}")
    defects = load_defects()
    records = make_pool(args.pool_dir)
    set_threads(None)
    results: dict[str, dict[int, dict]] = {name: {} for name in strategies}
    for seed in seeds:
        data = prepare(seed, records, args, defects)
        for name in strategies:
            results[name][seed] = train(name, data, args)

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=1))
    print(f"curves: {args.json}; total {(time.perf_counter() - started) / 60:.1f} min")
    summarise(results, strategies, seeds, args)


def summarise(results: dict[str, dict[int, dict]], strategies: list[str], seeds: list[int], args) -> None:
    """The table over seeds and the last lines; from a run just made, or from its saved curves (--summary-only)."""
    print()
    print(
        f"{len(seeds)} seeds; LoRA on the bundled model, {args.steps} steps of {args.batch_size}, held-out loss on "
        f"{args.eval} clean records every {args.eval_every} steps; target = uniform's final loss in the same seed. "
        "Steps to target: the first evaluated step at or below it, per seed ('>' = never within the run), and "
        "the step where the curve crosses it, interpolated linearly between evaluations (mean ± sd over seeds; "
        "a strategy that never crosses counts as one evaluation past the end); the ratios use the latter."
    )
    never = float(args.steps + args.eval_every)
    steps_of: dict[str, list[float]] = {}
    print(
        f"{'strategy':9s} {'first evaluated':>16s} {'crossing':>13s} {'vs uniform':>10s} {'final loss':>15s} "
        f"{'bad data':>8s} {'step cost':>9s}"
    )
    for name in strategies:
        listed, crossings = [], []
        for seed in seeds:
            curve = [(int(a), float(b)) for a, b in results[name][seed]["curve"]]
            target = float(results["uniform"][seed]["final"])
            first = first_step_at(curve, target)
            listed.append(str(first) if first is not None else f">{args.steps}")
            crossed = crossing_step(curve, target)
            crossings.append(crossed if crossed is not None else never)
        steps_of[name] = crossings
        cost = np.median([results[name][s]["step_seconds"] / results["uniform"][s]["step_seconds"] for s in seeds])
        finals = [results[name][s]["final"] for s in seeds]
        bad = np.mean([results[name][s]["defective_share"] for s in seeds])
        ratio = np.mean(crossings) / np.mean(steps_of["uniform"])
        print(
            f"{name:9s} {'/'.join(listed):>16s} {spread(crossings):>13s} {ratio:10.2f} "
            f"{np.mean(finals):7.4f} ± {np.std(finals):.4f} {bad:8.0%} {cost:8.2f}x"
        )
    if "exp3s" not in strategies:
        return
    bandit = np.mean(steps_of["exp3s"])
    statics = [s for s in strategies if s not in ("uniform", "exp3s", "odm", "all", "clean")]
    best = min(statics, key=lambda s: np.mean(steps_of[s])) if statics else None
    losses = [s for s, b, u in zip(seeds, steps_of["exp3s"], steps_of["uniform"]) if b > u]
    drift = [c for s in seeds for c in results["exp3s"][s].get("probe_drift", [])]
    if drift:
        print(
            f"probe gradient cached for {args.probe_every} steps: cosine of each recomputed one with the cached one "
            f"{np.mean(drift):.2f} on average (lowest {np.min(drift):.2f}, {len(drift)} recomputations)"
        )
    dropped = [results["exp3s"][s]["dropped"] or 0 for s in seeds]
    if any(dropped):
        share = [results["exp3s"][s]["dropped_defective"] for s in seeds if results["exp3s"][s]["dropped"]]
        print(
            f"records left out and dropped by the bandit: {sum(dropped)} over the seeds, {np.mean(share):.0%} defective"
        )
    print(f"seeds where the bandit is slower than uniform: {', '.join(map(str, losses)) or 'none'}")
    cost = np.median([results["exp3s"][s]["step_seconds"] / results["uniform"][s]["step_seconds"] for s in seeds])
    print(f"bandit step cost vs uniform: {cost:.2f}")
    if best is not None:
        print(f"bandit vs best static: {bandit / np.mean(steps_of[best]):.2f} (best static: {best})")
    print(f"bandit steps ratio: {bandit / np.mean(steps_of['uniform']):.2f}")


def crossing_step(curve: list[tuple[int, float]], target: float) -> float | None:
    """Where the held-out loss first reaches `target`, linearly interpolated between the evaluations around it."""
    if curve and curve[0][1] <= target + 1e-9:
        return float(curve[0][0])
    for (s0, v0), (s1, v1) in zip(curve, curve[1:]):
        if v1 <= target + 1e-9:  # v0 is above the target, so v0 > v1
            return s0 + (s1 - s0) * min(max((v0 - target) / (v0 - v1), 0.0), 1.0)
    return None


if __name__ == "__main__":
    sys.exit(main())
