"""Stage `select`: hold out the evaluation and probe splits, split the pool into arms, and pick the subset.

Writes the chosen records as its shards (what export and static training read), every cleaned record's split, arm
and cost to `select/assignments.parquet`, and the rest to `rejected/select` with the reason (held out, or not
chosen by the strategy within the budget). For a bandit strategy every training-split record goes on: the train
stage learns the arm values and makes the budgeted choice after training.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from sftforge.errors import StageError
from sftforge.figures import ArmSize, SelectFigures
from sftforge.llm.hf import model_dir
from sftforge.recipe import Recipe
from sftforge.run import RunDir, ShardLog
from sftforge.sample import Record, Rejected
from sftforge.select.pool import (
    BANDITS,
    EVAL,
    PROBE,
    TRAIN,
    arm_labels,
    split_records,
    static_choice,
    why_unscored,
)
from sftforge.stages.base import Context, Stage
from sftforge.storage import Assignment, read_vectors, write_assignments


def token_costs(recipe: Recipe, records: list[Record]) -> np.ndarray:
    """Model tokens of each whole conversation, by the training model's chat template (the bundled model's when
    there is no training section)."""
    from transformers import AutoTokenizer

    from sftforge.train.data import assistant_spans

    directory = model_dir(recipe.training.model if recipe.training else "bundled", recipe.base_dir)
    tok = AutoTokenizer.from_pretrained(str(directory))
    texts = [assistant_spans(tok, r.messages)[0] for r in records]
    return np.array([len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]], dtype=np.float64)


def record_vectors(run: RunDir, name: str, records: list[Record]) -> np.ndarray | None:
    """The vector feature `name` of each record, in record order; None when the features stage did not compute it."""
    ids, matrix = read_vectors(run, name)
    if not ids:
        return None
    row = {i: k for k, i in enumerate(ids)}
    missing = [r.id for r in records if r.id not in row]
    if missing:
        raise StageError(
            f"{len(missing)} records have no '{name}' vector (e.g. {missing[0]}); rerun `sftforge features {run.path}`"
        )
    return matrix[[row[r.id] for r in records]]


class SelectStage(Stage):
    name = "select"
    version = 1
    after = "clean"

    def config(self, ctx: Context) -> Any:
        r = ctx.recipe
        sel = r.selection_in_force
        return {
            "selection": sel.model_dump() if sel else None,
            "tokenizer": r.training.model if r.training else "bundled",
        }

    def execute(self, ctx: Context, out: ShardLog) -> tuple[dict[str, int], SelectFigures]:
        sel = ctx.recipe.selection_in_force
        if sel is None:
            raise StageError("the recipe has no `selection` section")
        records = ctx.run.read_records("clean")
        if not records:
            raise StageError(f"no cleaned records in {ctx.run.path} to select from")
        bar = ctx.reporter.task("select", total=3)
        bandit = sel.strategy in BANDITS
        # exp3s's probe-based rewards need the probe set; odm learns from the training loss alone
        needs_probe = sel.strategy == "exp3s" and sel.bandit.reward in ("target_prediction_gain", "gradient_alignment")
        probe = sel.probe_size if needs_probe else 0
        split = split_records([r.id for r in records], sel.eval_fraction, probe, sel.seed)
        costs = token_costs(ctx.recipe, records)
        ctx.reporter.advance(bar)
        needs_vectors = sel.strategy in ("deita", "kcenter") or (bandit and sel.arms.by == "cluster")
        vectors = record_vectors(ctx.run, sel.arms.vectors, records) if needs_vectors else None
        pool = [i for i, s in enumerate(split) if s == TRAIN]
        pool_records = [records[i] for i in pool]
        pool_vectors = vectors[pool] if vectors is not None else None
        arms = np.full(len(records), -1, dtype=np.int64)
        arm_names: list[str] = []
        if bandit:
            labels, arm_names = arm_labels(pool_records, sel.arms, pool_vectors, sel.seed)
            arms[pool] = labels
        budget = sel.budget.tokens if sel.budget.tokens is not None else sel.budget.records
        pool_costs = costs[pool] if sel.budget.tokens is not None else np.ones(len(pool))
        if bandit:  # the train stage chooses within the budget after learning the arm values
            chosen = np.arange(len(pool))
        else:
            chosen = static_choice(sel, pool_records, pool_costs, float(budget or np.inf), pool_vectors)
        ctx.reporter.advance(bar)
        selected = np.zeros(len(records), dtype=bool)
        selected[np.asarray(pool, dtype=np.int64)[chosen]] = True
        keep = [records[i] for i in np.nonzero(selected)[0]]
        rejected = []
        left_out = [i for i in pool if not selected[i]]
        unscored = dict(zip(left_out, why_unscored(sel, [records[i] for i in left_out]), strict=True))
        for i, r in enumerate(records):
            if split[i] == EVAL:
                rejected.append(Rejected(r, self.name, "holdout", "held out for evaluation (eval split)"))
            elif split[i] == PROBE:
                rejected.append(Rejected(r, self.name, "holdout", "held out as the bandit's probe set"))
            elif not selected[i]:
                why = f"not chosen by {sel.strategy} within the budget"
                rejected.append(
                    Rejected(r, self.name, sel.strategy, why + (f"; unscored: {unscored[i]}" if unscored[i] else ""))
                )
        out.commit(keep, rejected, ["all"])
        write_assignments(
            ctx.run,
            [r.id for r in records],
            [Assignment(split[i], int(arms[i]), bool(selected[i]), int(costs[i])) for i in range(len(records))],
        )
        ctx.reporter.advance(bar)
        ctx.reporter.done(bar)
        splits = Counter(split)
        counts = {"input": len(records), "records": len(keep), "rejected": len(rejected)}
        return counts, SelectFigures(
            strategy=sel.strategy,
            splits=dict(splits),
            selected_tokens=int(costs[selected].sum()),
            arms=[ArmSize(name=n, records=int((arms == a).sum())) for a, n in enumerate(arm_names)],
        )
