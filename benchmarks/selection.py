"""Does learning which data helps pay off? Held-out loss curves of the same LoRA fine-tuning under each selection
strategy, on a pool with realistic planted defects, with the same step budget for each.

The pool: closed-book QA over six PEPs, made by the sftforge pipeline with the bundled model
(benchmarks/recipes/selection_pool.yaml; the first run generates it, ~5 minutes, later runs reuse
benchmarks/.cache/). Clean records are held out for evaluation and as the bandit's probe set; in the rest, a
share of the records get planted defects (benchmarks/defects.py: truncated answers, answers swapped between
questions, off-topic text, one-word answers, near-duplicates). Features (IFD, MiniLM embeddings) are computed by
sftforge's own operators on the planted pool, arms are k-means clusters of the embeddings, exactly as a recipe
with `selection.arms.by: cluster` gets them.

Strategies, each with the same steps, batch size, learning rate and seed: uniform (a random half of the pool),
ifd_topk, deita (IFD score x cosine diversity), kcenter (k-center greedy), exp3s, odm (Albalak et al. 2023), all
(every record). exp3s is Exp3.S (Graves et al. 2017) over the arms as `pep_qa.yaml` configures it: mixed batches
(an arm drawn per example), each example rewarded by its gradient's alignment with the probe set's, the policy
starting from the arms' sizes, each arm's records best IFD (below 1) first; `--batches arm --reward
target_prediction_gain --prior uniform --within-arm shuffled` is the paper's form. Reported per strategy: the
held-out loss curve, the final loss, the share of training examples that were defective, and the steps needed to
reach uniform's final held-out loss.

    python benchmarks/selection.py                # about 30 minutes on 2 cores, pool cached
    python benchmarks/selection.py --strategies uniform,exp3s   # a quicker look

The last line reads `bandit steps ratio: R` (exp3s's steps to reach uniform's final held-out loss over uniform's).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import shutil
import sys
import time
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


def first_step_at(curve: list[tuple[int, float]], target: float) -> int | None:
    """The first evaluated step whose held-out loss is at or below `target`."""
    return next((s for s, v in curve if v <= target + 1e-9), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--schedule", choices=["constant", "linear", "cosine"], default="cosine")
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--max-seq-len", type=int, default=128)
    parser.add_argument("--defects", type=float, default=0.5, help="share of the candidate pool made defective")
    parser.add_argument("--arms", type=int, default=6)
    parser.add_argument("--eval", type=int, default=12, help="clean records held out for the loss curves")
    parser.add_argument("--probe", type=int, default=6, help="clean records held out as the bandit's probe set")
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
        choices=["shuffled", "score"],
        default="score",
        help="bandit: an arm's records in shuffled epochs, or best IFD (below 1) first",
    )
    parser.add_argument(
        "--prior",
        choices=["uniform", "size"],
        default="size",
        help="Exp3.S start: each arm alike, or each arm's share of the pool",
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
        default="uniform,ifd_topk,deita,kcenter,exp3s,all",
        help="any of uniform, ifd_topk, deita, kcenter, exp3s, odm, all",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pool-dir", type=Path, default=CACHE / "selection_pool")
    parser.add_argument("--json", type=Path, default=CACHE / "selection_results.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()

    from sftforge.config import Arms, Training
    from sftforge.select import static
    from sftforge.select.bandit import Exp3S, OnlineDataMixing, RewardScaler
    from sftforge.select.pool import arm_labels, split_records
    from sftforge.train.data import encode_all
    from sftforge.train.loop import TrainData, Trainer
    from sftforge.train.model import load_trainable, set_threads
    from sftforge.train.samplers import BanditSampler, SubsetSampler

    defects = load_defects()
    records = make_pool(args.pool_dir)
    n = len(records)
    frac = args.eval / n
    split = split_records([r.id for r in records], frac, args.probe, args.seed)
    heldout = [r for r, s in zip(records, split) if s == "eval"]
    probe = [r for r, s in zip(records, split) if s == "probe"]
    candidates = [r for r, s in zip(records, split) if s == "train"]
    pool, labels = defects.plant_defects(candidates, args.defects, args.seed)
    kinds = defects.defect_summary(labels)
    print(
        f"records: {n} made by the pipeline; held out {len(heldout)} eval + {len(probe)} probe (clean); "
        f"pool {len(pool)}: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
    )

    t = time.perf_counter()
    ifd, emb, emb_answer = features(pool, CACHE / f"selection_features-{args.seed}-{args.defects}.npz")
    print(f"features (IFD, MiniLM) on the pool: {time.perf_counter() - t:.0f} s")
    arm_vectors = emb_answer if args.arms_on == "answer" else emb
    if args.arms_by == "difficulty":  # what `arms: {by: difficulty, feature: ifd, k: K}` gives a recipe
        for r, v in zip(pool, ifd):
            r.features["ifd"] = float(v)
    arm_of, arm_names = arm_labels(pool, Arms(by=args.arms_by, k=args.arms, feature="ifd"), arm_vectors, args.seed)
    bad = np.array([labels[r.id] != "clean" for r in pool])
    kind_of = [labels[r.id] for r in pool]
    for a, name in enumerate(arm_names):
        members = np.nonzero(arm_of == a)[0]
        mix = {}
        for i in members:
            mix[kind_of[i]] = mix.get(kind_of[i], 0) + 1
        print(
            f"  arm {a} ({name}): {len(members)} records, defective {bad[members].mean():.0%}  "
            + ", ".join(f"{k} {v}" for k, v in sorted(mix.items()))
        )

    set_threads(None)
    cfg = Training(
        model="bundled",
        method="lora",
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        schedule=args.schedule,
        warmup_steps=0,
        eval_every=args.eval_every,
        save_every=10**6,
        max_seq_len=args.max_seq_len,
        seed=args.seed,
    )
    ones = np.ones(len(pool))
    budget = float(len(pool) // 2)

    def subset(name: str) -> np.ndarray:
        if name == "all":
            return np.arange(len(pool))
        if name == "uniform":
            return static.uniform(len(pool), ones, budget, args.seed)
        if name == "ifd_topk":
            return static.top_k(ifd, ones, budget, descending=True, valid=ifd < 1.0)
        if name == "deita":  # IFD as the score, below 1 as for ifd_topk (what `selection.score: ifd` does)
            return static.deita(np.where(ifd < 1.0, ifd, np.nan), emb, ones, budget, threshold=0.9)
        if name == "kcenter":
            return static.k_center_greedy(emb, ones, budget, args.seed)
        raise ValueError(name)

    results: dict[str, dict] = {}
    strategies = [s for s in args.strategies.split(",") if s]
    if "uniform" not in strategies:
        parser.error("--strategies must include uniform: every other strategy is measured against it")
    for name in strategies:
        model, tokenizer, _ = load_trainable(cfg, None)
        train_ex, dropped = encode_all(tokenizer, pool, cfg.max_seq_len)
        assert not dropped, "raise --max-seq-len: some records lose every answer token"
        eval_ex, _ = encode_all(tokenizer, heldout, cfg.max_seq_len)
        probe_ex, _ = encode_all(tokenizer, probe, cfg.max_seq_len)
        if name in ("exp3s", "odm"):  # each arm's records, best IFD first when ranked (what `scores` gives a recipe)
            ranked = args.within_arm == "score"
            members = (
                static.members_by_score(arm_of, np.where(ifd < 1.0, ifd, np.nan), len(arm_names))
                if ranked
                else [np.nonzero(arm_of == a)[0] for a in range(len(arm_names))]
            )
        if name == "exp3s":
            detrend = 0 if args.reward == "gradient_alignment" else args.detrend  # as `sftforge train` does
            prior = [len(m) for m in members] if args.prior == "size" else None
            sampler = BanditSampler(
                Exp3S(len(arm_names), eta=args.eta, epsilon=0.05, prior=prior),
                members,
                args.seed,
                args.reward,
                RewardScaler(window=args.window, detrend=detrend),
                args.batches,
                ranked,
            )
        elif name == "odm":
            sampler = BanditSampler(
                OnlineDataMixing(len(arm_names)), members, args.seed, "loss", batches=args.batches, ranked=ranked
            )
        else:
            sampler = SubsetSampler(subset(name), args.seed)
        out = CACHE / "selection_runs" / name
        shutil.rmtree(out, ignore_errors=True)
        trainer = Trainer(
            cfg, model, tokenizer, TrainData(train_ex, eval_ex, probe_ex), sampler, out, tensorboard=False
        )
        t = time.perf_counter()
        outcome = trainer.run()
        results[name] = {
            "curve": outcome.eval_curve,
            "final": outcome.eval_curve[-1][1],
            "best": min(v for _, v in outcome.eval_curve),
            "seconds": time.perf_counter() - t,
            "defective_share": defective_share(sampler, bad),
            "probabilities": outcome.probabilities,
        }
        r = results[name]
        print(
            f"  {name:9s} final held-out loss {r['final']:.4f}  best {r['best']:.4f}  defective share "
            f"{r['defective_share']:.0%}  {r['seconds']:.0f} s",
            flush=True,
        )

    uniform_final = results["uniform"]["final"]
    print()
    print(
        f"held-out loss (nats/token) every {args.eval_every} steps, {args.steps} steps of batch {args.batch_size}, "
        f"LoRA on the bundled model; target = uniform's final loss {uniform_final:.4f}"
    )
    header = f"{'strategy':10s} {'start':>7s} {'final':>7s} {'best':>7s} {'bad data':>8s} {'steps to target':>16s} {'ratio':>6s}"
    print(header)
    steps_uniform = first_step_at(results["uniform"]["curve"], uniform_final)
    for name, r in results.items():
        s = first_step_at(r["curve"], uniform_final)
        r["steps_to_uniform_final"] = s
        ratio = f"{s / steps_uniform:.2f}" if s is not None else "never"
        print(
            f"{name:10s} {r['curve'][0][1]:7.4f} {r['final']:7.4f} {r['best']:7.4f} {r['defective_share']:8.0%} "
            f"{str(s) if s is not None else '-':>16s} {ratio:>6s}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=1))
    print(f"curves: {args.json}; total {time.perf_counter() - started:.0f} s")
    s_bandit = results.get("exp3s", {}).get("steps_to_uniform_final")
    ratio = s_bandit / steps_uniform if s_bandit is not None else float("inf")
    print(f"bandit steps ratio: {ratio:.2f}")


def defective_share(sampler, bad) -> float:
    """Share of the examples a strategy trained on that were defective, each counted as often as it was drawn."""
    return float(bad[sampler.served()].mean())


if __name__ == "__main__":
    sys.exit(main())
