"""Running operators over records: what every engine shares (the local and Ray runners call it from their workers).

Operators stay pure; this is where scores are written to `features`, removed records become `Rejected` with
their operator and reason (`RecordProcessor`), and deduplicators decide over the whole stream's keys in turn
(`resolve_dedups`). The keys live on disk (clean/_blocks, then one memory map per deduplicator), so memory does
not grow with the dataset beyond what one resolution step needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sftforge.engine.base import Resolver
from sftforge.ops.base import Deduplicator, Duplicates, Feature, Mapper, Operator, VectorFeature
from sftforge.sample import Record, Rejected


@dataclass
class OpStats:
    """Per-operator counts for the manifest: records seen and removed."""

    seen: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)

    def count(self, op: str, seen: int, removed: int) -> None:
        self.seen[op] = self.seen.get(op, 0) + seen
        self.removed[op] = self.removed.get(op, 0) + removed


def op_label(op: Operator) -> str:
    """How the manifest and rejects name an operator: features by their feature name (two `length` filters on
    different roles are different filters), others by operator name."""
    return op.feature_name if isinstance(op, Feature) else op.name


def score_features(op: Feature, records: list[Record]) -> list[float]:
    """Scores of `op` for `records`, in batches of `op.batch_size`, reusing values the features stage stored."""
    name = op.feature_name
    missing = [r for r in records if name not in r.features or not op.reuse_stored]
    for i in range(0, len(missing), op.batch_size):
        batch = missing[i : i + op.batch_size]
        for r, s in zip(batch, op.score_batch(batch)):
            r.features[name] = float(s)
    return [r.features[name] for r in records]


def compute_features(ops: list[Operator], records: list[Record]) -> dict[str, np.ndarray]:
    """Write every scalar feature of `ops` into the records' `features`; return vector features by name."""
    vectors: dict[str, np.ndarray] = {}
    for op in ops:
        if isinstance(op, VectorFeature):
            vectors[op.name] = op.embed_batch(records) if records else np.zeros((0, op.dim()), np.float32)
        elif isinstance(op, Feature):
            score_features(op, records)
    return vectors


@dataclass
class DedupOutcome:
    """One deduplicator's decision over the whole stream: global index of each duplicate -> (survivor, similarity)."""

    op: Deduplicator
    duplicates: dict[int, tuple[int, float]]


class RecordProcessor:
    """Mappers and filters over a batch of records, in the recipe's order, counting what each saw and removed.
    Both engines use it: the local engine in this process, the Ray engine once per actor."""

    def __init__(self, stage: str, ops: list[Operator]) -> None:
        self.stage = stage
        self.ops = ops
        self.stats = OpStats()
        for op in ops:
            op.setup()

    def process(self, batch: list[Record]) -> tuple[list[Record], list[Rejected]]:
        """The records that pass every operator (in input order), and the rejected ones with their reason."""
        alive = list(batch)
        rejected: list[Rejected] = []
        for op in self.ops:
            if not alive:
                break
            label = op_label(op)
            if isinstance(op, Mapper):
                alive = [op.map(r) for r in alive]
                self.stats.count(label, len(alive), 0)
            elif isinstance(op, Feature):
                scores = score_features(op, alive)
                survivors = []
                for r, s in zip(alive, scores):
                    if op.keep(s):
                        survivors.append(r)
                    else:
                        rejected.append(Rejected(r, self.stage, label, op.reason(r, s)))
                self.stats.count(label, len(alive), len(alive) - len(survivors))
                alive = survivors
        return alive, rejected

    def figures(self) -> dict[str, Any]:
        """Each operator's own cumulative figures (PII by type, contamination by benchmark), for those with any."""
        return {op_label(op): f for op in self.ops if (f := op.stats())}


def resolve_dedups(
    dedups: list[Deduplicator],
    keys_of: Callable[[int], np.ndarray],
    n: int,
    stats: OpStats,
    resolver: Resolver | None = None,
) -> list[DedupOutcome]:
    """Each deduplicator in turn over the survivors of the one before; `keys_of(i)` gives deduplicator i's key
    rows for all `n` records in stream order, `resolver` may replace `Deduplicator.resolve` (an engine's
    distributed resolution, `Runner.dedup_resolver`) as long as it decides the same."""
    alive = np.arange(n, dtype=np.int64)
    outcomes = []
    for i, d in enumerate(dedups):
        keys = keys_of(i)
        sub = keys if len(alive) == n else keys[alive]
        result: Duplicates = resolver(d, sub) if resolver else d.resolve(sub)
        dup_local = np.nonzero(result.survivor != np.arange(len(alive)))[0]
        dups = {int(alive[j]): (int(alive[result.survivor[j]]), float(result.similarity[j])) for j in dup_local}
        stats.count(d.name, len(alive), len(dups))
        outcomes.append(DedupOutcome(d, dups))
        if dups:
            alive = alive[result.survivor == np.arange(len(alive))]
        del keys, sub
    return outcomes
