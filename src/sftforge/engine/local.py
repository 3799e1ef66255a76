"""The local engine: streams record batches through operators in this process.

Operators stay pure; this is where scores are written to `features`, removed records become `Rejected` with
their operator and reason, and dedup state lives. Dedup state is on disk: each deduplicator's key rows (hashes,
MinHash signatures, embeddings) are appended to a flat file as records stream past, and resolved afterwards from
a memory map, so memory does not grow with the dataset beyond what one resolution step needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

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


class KeyStore:
    """Append-only fixed-width rows on disk for one deduplicator; read back as a memory map."""

    def __init__(self, path: Path, width: int, dtype: str) -> None:
        self.path, self.width, self.dtype = path, width, np.dtype(dtype)
        self.rows = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "wb")

    def append(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.ndim != 2 or rows.shape[1] != self.width:
            raise ValueError(f"{self.path.name}: key rows of shape {rows.shape}, expected (n, {self.width})")
        self._fh.write(rows.tobytes())
        self.rows += len(rows)

    def read(self) -> np.ndarray:
        self._fh.close()
        if self.rows == 0:
            return np.zeros((0, self.width), self.dtype)
        return np.memmap(self.path, dtype=self.dtype, mode="r", shape=(self.rows, self.width))


@dataclass
class DedupOutcome:
    """One deduplicator's decision over the whole stream: global index of each duplicate -> (survivor, similarity)."""

    op: Deduplicator
    duplicates: dict[int, tuple[int, float]]


class LocalEngine:
    """Per-record operators (mappers, filters) in `process`, then the deduplicators in `resolve`."""

    def __init__(self, stage: str, ops: list[Operator], dedups: list[Deduplicator], scratch: Path) -> None:
        self.stage = stage
        self.ops = ops
        self.dedups = dedups
        self.stats = OpStats()
        self.kept = 0  # records that passed every per-record operator, i.e. the dedup stream's length
        self._stores = [KeyStore(scratch / f"keys-{i}-{d.name}.bin", d.key_width(), d.key_dtype) for i, d in enumerate(dedups)]
        for op in [*ops, *dedups]:
            op.setup()

    def process(self, batch: list[Record]) -> tuple[list[Record], list[Rejected]]:
        """Run mappers and filters over one batch (records in input order); queue dedup keys of the kept."""
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
        for d, store in zip(self.dedups, self._stores):
            if alive:
                store.append(d.keys(alive))
        self.kept += len(alive)
        return alive, rejected

    def resolve(self) -> list[DedupOutcome]:
        """Each deduplicator in turn over the survivors of the one before."""
        alive = np.arange(self.kept, dtype=np.int64)
        outcomes = []
        for d, store in zip(self.dedups, self._stores):
            keys = store.read()
            sub = keys if len(alive) == self.kept else keys[alive]
            result: Duplicates = d.resolve(sub)
            dup_local = np.nonzero(result.survivor != np.arange(len(alive)))[0]
            dups = {int(alive[i]): (int(alive[result.survivor[i]]), float(result.similarity[i])) for i in dup_local}
            self.stats.count(d.name, len(alive), len(dups))
            outcomes.append(DedupOutcome(d, dups))
            if dups:
                alive = alive[result.survivor == np.arange(len(alive))]
            del keys, sub
            store.path.unlink(missing_ok=True)
        return outcomes

    def op_stats(self) -> dict[str, Any]:
        """Each operator's own figures (PII by type, contamination by benchmark), for those that have any."""
        out = {}
        for op in [*self.ops, *self.dedups]:
            figures = op.stats()
            if figures:
                out[op_label(op)] = figures
        return out
