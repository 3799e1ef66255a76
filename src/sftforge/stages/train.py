"""Stage `train`: fine-tune on the selection; with a bandit strategy, learn the arm values and choose the subset.

Output in `train/`: `metrics.jsonl` and `tensorboard/` (loss, held-out loss, learning rate, and for a bandit the
arm, reward and arm probabilities of every step), `checkpoints/` (resume points), the final `adapter/` (LoRA) or
`model/` (full), `merged/` when asked, and `arms.json` (arm names, sizes, final values and probabilities). For a
bandit strategy the records chosen within the budget are this stage's shards, the rest of the training split goes
to `rejected/train`; for a static strategy the select stage's choice stands.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from sftforge.config import Selection
from sftforge.errors import StageError
from sftforge.figures import SelectFigures, TrainFigures, read_figures
from sftforge.recipe import Recipe
from sftforge.run import ShardLog
from sftforge.sample import Record, Rejected
from sftforge.select.bandit import Exp3S, OnlineDataMixing, RewardScaler
from sftforge.select.pool import BANDITS, EVAL, PROBE, TRAIN, scores, why_unscored
from sftforge.select.static import allocate_by_arm, distinct_scores, score_prior, scored_members
from sftforge.stages.base import Context, Stage
from sftforge.stages.select import record_vectors
from sftforge.storage import ArmValue, read_assignments, weights_dir, write_arms
from sftforge.train.data import TrainingError, encode_all
from sftforge.train.loop import TrainData, Trainer, latest_checkpoint
from sftforge.train.model import load_trainable, merge_adapter, save_weights, set_threads, trainable_parameters
from sftforge.train.samplers import BanditSampler, Sampler, SubsetSampler

log = logging.getLogger(__name__)


def make_sampler(
    sel: Selection,
    arm_of: np.ndarray,
    seed: int,
    record_scores: np.ndarray | None = None,
    vectors: np.ndarray | None = None,
) -> Sampler:
    """The batch sampler for a strategy: a bandit over the arms, or shuffled epochs over every example given.
    `record_scores` (the selection score of each example, higher is better) order the arms' records when the
    recipe asks for `within_arm: score` or `deita`; `vectors` (an embedding per example) tell deita's repeats."""
    if sel.strategy not in BANDITS:
        return SubsetSampler(np.arange(len(arm_of)), seed)
    n_arms = int(arm_of.max()) + 1
    b = sel.bandit
    ranked = b.within_arm in ("score", "deita")
    if (ranked or b.prior == "score") and record_scores is None:
        raise ValueError("within_arm: score or deita and prior: score need the examples' scores")
    if b.within_arm == "deita":
        if vectors is None:
            raise ValueError("within_arm: deita needs the examples' embeddings")
        assert record_scores is not None
        record_scores = distinct_scores(record_scores, vectors, sel.diversity_threshold)
    if ranked:
        assert record_scores is not None
        members = scored_members(arm_of, record_scores, n_arms)
    else:
        members = [np.nonzero(arm_of == a)[0] for a in range(n_arms)]
    if sel.strategy == "odm":
        return BanditSampler(
            OnlineDataMixing(n_arms, alpha=b.smoothing), members, seed, "loss", batches=b.batches, ranked=ranked
        )
    prior: list[float] | None = None
    if b.prior == "size":
        prior = [float(len(m)) for m in members]
    elif b.prior == "score":
        assert record_scores is not None
        prior = score_prior(members, record_scores)
    policy = Exp3S(n_arms, eta=b.eta, epsilon=b.epsilon, alpha=b.alpha, prior=prior)
    # Alignments do not shrink as the loss flattens, as gains do: nothing to detrend.
    detrend = 0 if b.reward == "gradient_alignment" else b.detrend
    return BanditSampler(
        policy,
        members,
        seed,
        b.reward,
        RewardScaler(window=b.window, detrend=detrend),
        b.batches,
        ranked,
        probe_every=b.probe_every,
        drop_below=b.drop_below,
    )


class TrainStage(Stage):
    name = "train"
    version = 2  # 2: sampler state per queue (records the bandit dropped), cached probe gradient
    after = "select"
    resumable = True  # from the newest checkpoint

    def config(self, ctx: Context) -> Any:
        r = ctx.recipe
        sel = r.selection_in_force
        return {
            "training": r.training.model_dump() if r.training else None,
            "selection": sel.model_dump() if sel else None,
        }

    def execute(self, ctx: Context, out: ShardLog) -> tuple[dict[str, int], TrainFigures]:
        recipe: Recipe = ctx.recipe
        cfg, sel = recipe.training, recipe.selection_in_force
        if cfg is None or sel is None:
            raise StageError("the recipe has no `training` section")
        stage_dir = ctx.run.stage_dir(self.name)
        assigned = read_assignments(ctx.run)
        split = {rid: a.split for rid, a in assigned.items()}
        arm = {rid: a.arm for rid, a in assigned.items()}
        tokens = {rid: a.tokens for rid, a in assigned.items()}
        clean = ctx.run.read_records("clean")
        bandit = sel.strategy in BANDITS
        pool = [r for r in clean if split.get(r.id) == TRAIN] if bandit else ctx.run.read_records("select")
        heldout = [r for r in clean if split.get(r.id) == EVAL]
        probe = [r for r in clean if split.get(r.id) == PROBE]

        set_threads(cfg.threads)
        ckpt = latest_checkpoint(stage_dir)
        if ckpt is not None:
            log.info("resuming training from %s", ckpt)
        model, tokenizer, base = load_trainable(cfg, recipe.base_dir, ckpt / "weights" if ckpt else None)
        train_ex, dropped = encode_all(tokenizer, pool, cfg.max_seq_len)
        eval_ex, _ = encode_all(tokenizer, heldout, cfg.max_seq_len)
        probe_ex, _ = encode_all(tokenizer, probe, cfg.max_seq_len)
        if not train_ex:
            raise TrainingError(
                f"none of the {len(pool)} training records keeps an answer token within training.max_seq_len "
                f"{cfg.max_seq_len}: raise it"
            )
        arm_of = np.array([arm[e.record_id] for e in train_ex], dtype=np.int64)
        if bandit:
            n_arms = int(max(arm.values())) + 1
            empty = sorted(set(range(n_arms)) - set(arm_of.tolist()))
            if empty:
                raise TrainingError(
                    f"arm(s) {empty} have no record left within training.max_seq_len {cfg.max_seq_len} "
                    f"({len(dropped)} records are too long): raise it, or choose fewer arms"
                )
        record_scores, vectors = None, None
        by_id = {r.id: r for r in pool}
        trained = [by_id[e.record_id] for e in train_ex]  # the records behind the examples, in example order
        if bandit and (sel.bandit.within_arm != "shuffled" or sel.bandit.prior == "score"):
            if not any(sel.score in r.features for r in trained):
                raise StageError(
                    f"selection.bandit.within_arm: {sel.bandit.within_arm} / prior: {sel.bandit.prior} rank records "
                    f"by the {sel.score} feature, which no record has: add it to `features`, or set selection.score"
                )
            record_scores = scores(trained, sel.score, sel.score_higher_is_better, sel.max_end_loss)
        if bandit and sel.bandit.within_arm == "deita":
            vectors = record_vectors(ctx.run, sel.arms.vectors, trained)
            if vectors is None:
                raise StageError(
                    f"selection.bandit.within_arm: deita compares records by their '{sel.arms.vectors}' vectors: "
                    "add `- name: embedding` to the recipe's `features`"
                )
        sampler = make_sampler(sel, arm_of, cfg.seed, record_scores, vectors)
        trainer = Trainer(
            cfg, model, tokenizer, TrainData(train_ex, eval_ex, probe_ex), sampler, stage_dir, ctx.reporter
        )
        outcome = trainer.run(resume_from=ckpt)

        final = weights_dir(ctx.run, cfg.method)
        save_weights(model, tokenizer, final)
        if cfg.merge and cfg.method == "lora":
            merge_adapter(base, final, stage_dir / "merged", cfg.dtype)
        trainable, total = trainable_parameters(model)
        figures = TrainFigures(
            strategy=sel.strategy,
            steps=outcome.steps,
            resumed_from=outcome.resumed_from,
            eval_curve=outcome.eval_curve,
            train_examples=len(train_ex),
            not_trained_too_long=len(dropped),
            trainable_parameters=trainable,
            parameters=total,
            base_model=str(base),
            weights=str(final),
        )
        counts = {"steps": outcome.steps}
        if isinstance(sampler, BanditSampler):
            dropped_ids = {train_ex[i].record_id for i in sampler.dropped().tolist()}
            figures.arms = self._choose(ctx, out, sel, sampler, pool, arm, tokens, dropped_ids)
            if sampler.drop_below is not None:
                figures.dropped = len(dropped_ids)
            write_arms(ctx.run, figures.arms)
            counts.update(records=out.counts["records"], rejected=out.counts["rejected"])
        return counts, figures

    def _choose(
        self,
        ctx: Context,
        out: ShardLog,
        sel: Selection,
        sampler: BanditSampler,
        pool: list[Record],
        arm: dict[str, int],
        tokens: dict[str, int],
        dropped: set[str],
    ) -> list[ArmValue]:
        """Budgeted selection by the learnt arm values and the per-record score, the records the bandit dropped
        last; committed once."""
        values = np.array(sampler.values())
        probs = sampler.probabilities() or []
        arm_of = np.array([arm[r.id] for r in pool], dtype=np.int64)
        selected = read_figures(ctx.run, SelectFigures)  # arm names live in the select stage's figures
        arm_names = [a.name for a in selected.arms] if selected else []
        if "final" not in out.done:
            score = scores(pool, sel.score, sel.score_higher_is_better, sel.max_end_loss)
            score[[i for i, r in enumerate(pool) if r.id in dropped]] = np.nan  # unscored records come last
            if sel.budget.tokens is not None:
                costs, budget = np.array([tokens[r.id] for r in pool], dtype=np.float64), float(sel.budget.tokens)
            else:
                costs, budget = np.ones(len(pool)), float(sel.budget.records or len(pool))
            chosen = allocate_by_arm(values, arm_of, score, costs, budget, temperature=sel.bandit.temperature)
            keep_mask = np.zeros(len(pool), dtype=bool)
            keep_mask[chosen] = True
            keep = [pool[i] for i in chosen]
            left_out = np.flatnonzero(~keep_mask)
            unscored = why_unscored(sel, [pool[i] for i in left_out])
            rejected = [
                Rejected(
                    pool[i],
                    self.name,
                    sel.strategy,
                    f"not chosen within the budget (arm {arm_of[i]}, value {values[arm_of[i]]:.3f})"
                    + (f"; unscored: {why}" if why else "")
                    + (
                        "; the bandit stopped drawing it (selection.bandit.drop_below)" if pool[i].id in dropped else ""
                    ),
                )
                for i, why in zip(left_out, unscored, strict=True)
            ]
            out.commit(keep, rejected, ["final"])
        chosen_ids = {r.id for r in ctx.run.read_records(self.name)}
        return [
            ArmValue(
                arm=a,
                name=arm_names[a] if a < len(arm_names) else str(a),
                records=int((arm_of == a).sum()),
                chosen=sum(1 for r in pool if arm[r.id] == a and r.id in chosen_ids),
                value=float(values[a]),
                probability=float(probs[a]) if probs else None,
            )
            for a in range(len(values))
        ]
