"""The closed loop: after a round's training, the bandit's arm values decide where the next round's generation
budget goes.

Round 1 is the run directory itself; round r > 1 is a run directory of its own, `RUN_DIR/rounds/<r>`, with the same
recipe and a `plan.json` that its generate stage reads:
- `weights`: a weight per passage (chunk id). Each arm's share of the budget is softmax(arm value / temperature),
  as for the budgeted export; a passage belongs to the arm of its source document (`arms.by: source`) or to the
  arm whose records' embeddings its own embedding is closest to (`arms.by: cluster`), and an arm's share is split
  evenly over its passages not used yet. Passages used by an earlier round get no weight: the new round writes
  new records rather than resampling old prompts.
- `carry`: the run directory whose cleaned records join this round's pool (they keep their features and their
  `lineage.round`), so selection and training in round r see every round's records, and dedup removes a new record
  that repeats an old one.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from sftforge.config import Selection
from sftforge.errors import StageError
from sftforge.ops.base import VectorFeature, build
from sftforge.recipe import Recipe
from sftforge.run import RunDir
from sftforge.sample import Record
from sftforge.storage import (
    ArmShare,
    RoundPlan,
    read_arms,
    read_assignments,
    read_chunks,
    read_plan,
    read_vectors,
    write_plan,
)

log = logging.getLogger(__name__)


def round_path(root: Path, r: int) -> Path:
    return root if r == 1 else root / "rounds" / str(r)


def carried_run(run: RunDir, plan: RoundPlan) -> RunDir:
    """The earlier round whose cleaned records join this round's pool."""
    return RunDir.open((run.path / plan.carry).resolve())


def used_chunks(run: RunDir) -> set[str]:
    """Chunk ids that records of this round and the rounds it carries were generated from."""
    used: set[str] = set()
    for table in (run.read_table("generate"), run.read_table("generate", rejected=True)):
        for sources in table.column("source").to_pylist():
            used.update(s["id"] for s in sources or [] if s["kind"] == "chunk")
    return used


def arm_shares(values: np.ndarray, temperature: float) -> np.ndarray:
    z = values / temperature
    z = np.exp(z - z.max())
    return z / z.sum()


def _chunk_arms(prev: RunDir, recipe: Recipe, chunks: list[dict[str, Any]], arm_names: list[str]) -> np.ndarray:
    """The arm of each passage: its document's arm (by source), or the nearest arm centroid (by cluster); -1 when
    no arm covers it."""
    sel = _selection(recipe)
    if sel.arms.by == "source":
        index = {name: a for a, name in enumerate(arm_names)}
        return np.array([index.get(c["doc_id"], -1) for c in chunks], dtype=np.int64)
    arm_of = {rid: a.arm for rid, a in read_assignments(prev).items()}
    ids, vectors = read_vectors(prev, sel.arms.vectors)
    dim = vectors.shape[1]
    centroids = np.zeros((len(arm_names), dim), dtype=np.float32)
    for i, rid in enumerate(ids):
        a = arm_of.get(rid, -1)
        if a >= 0:
            centroids[a] += vectors[i] / (np.linalg.norm(vectors[i]) or 1.0)
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    entry = next(f for f in recipe.features if f.name == sel.arms.vectors)
    op = build(entry, recipe.base_dir)
    if not isinstance(op, VectorFeature):
        raise TypeError(f"operator {entry.name!r} does not make vectors")
    texts = [
        Record(
            id=c["chunk_id"],
            messages=[{"role": "user", "content": c["text"]}, {"role": "assistant", "content": c["text"]}],
            task="",
            lang="",
        )
        for c in chunks
    ]
    embedded = op.embed_batch(texts)
    embedded /= np.maximum(np.linalg.norm(embedded, axis=1, keepdims=True), 1e-12)
    return (embedded @ centroids.T).argmax(axis=1).astype(np.int64)


def _selection(recipe: Recipe) -> Selection:
    sel = recipe.selection_in_force
    if sel is None:  # the recipe's validation requires a bandit selection for rounds > 1
        raise StageError("rounds > 1 needs a `selection` section with a bandit strategy")
    return sel


def make_plan(prev: RunDir, recipe: Recipe, r: int, run_path: Path) -> RoundPlan:
    """Round r's plan (for the run directory `run_path`) from round r-1's learnt arm values."""
    arms = read_arms(prev)
    if arms is None:
        raise StageError(f"round {r - 1} in {prev.path} has no learnt arm values (train/arms.json)")
    values = np.array([a.value for a in arms], dtype=np.float64)
    sel = _selection(recipe)
    shares = arm_shares(values, sel.bandit.temperature)
    chunks = read_chunks(prev)
    done = used_chunks(prev)
    chunk_arm = _chunk_arms(prev, recipe, chunks, [a.name for a in arms])
    fresh = np.array([c["chunk_id"] not in done for c in chunks])
    per_arm = np.bincount(chunk_arm[(chunk_arm >= 0) & fresh], minlength=len(arms))
    uncovered = fresh & (chunk_arm < 0)
    weights: dict[str, float] = {}
    for i, c in enumerate(chunks):
        if not fresh[i]:
            continue
        a = int(chunk_arm[i])
        # a passage no arm covers gets the weight of an average arm's passage: not favoured, not excluded
        weights[c["chunk_id"]] = float(shares[a] / per_arm[a]) if a >= 0 else float(1.0 / max(fresh.sum(), 1))
    return RoundPlan(
        round=r,
        carry=os.path.relpath(prev.path.resolve(), run_path.resolve()),
        weights=weights,
        arms=[
            ArmShare(name=a.name, value=a.value, share=float(s), fresh_passages=int(n))
            for a, s, n in zip(arms, shares, per_arm, strict=True)
        ],
        uncovered_passages=int(uncovered.sum()),
        used_passages=len(done),
    )


def prepare_round(root: Path, recipe_text: str, recipe: Recipe, r: int) -> RunDir:
    """The run directory of round r (> 1), with its plan written from round r-1 (once: a rerun keeps the plan)."""
    prev = RunDir.open(round_path(root, r - 1))
    run = RunDir.create(round_path(root, r), recipe_text, recipe.name, recipe.base_dir)
    if read_plan(run) is None:
        plan = make_plan(prev, recipe, r, run.path)
        write_plan(run, plan)
        log.info("round %d: generation shares by arm: %s", r, ", ".join(f"{a.name} {a.share:.2f}" for a in plan.arms))
    return run
