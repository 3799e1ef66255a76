"""The local engine: streams record batches through operators in this process.

Operators stay pure; this is where scores are written to `features`, removed records become `Rejected` with
their operator and reason, and dedup state lives.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from sftforge.ops.base import Deduplicator, Filter, Mapper, Operator
from sftforge.sample import Record, Rejected


@dataclass
class OpStats:
    """Per-operator counts for the manifest: records seen and removed."""

    seen: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)

    def count(self, op: str, removed: bool) -> None:
        self.seen[op] = self.seen.get(op, 0) + 1
        if removed:
            self.removed[op] = self.removed.get(op, 0) + 1


class LocalEngine:
    def __init__(self, stage: str, ops: list[Operator]) -> None:
        self.stage = stage
        self.ops = ops
        self.stats = OpStats()
        self._seen: dict[str, dict[str, str]] = {op.name: {} for op in ops if isinstance(op, Deduplicator)}
        for op in ops:
            op.setup()

    def _one(self, record: Record) -> tuple[Record | None, Rejected | None]:
        for op in self.ops:
            if isinstance(op, Mapper):
                record = op.map(record)
            elif isinstance(op, Filter):
                score = op.score(record)
                record.features[op.feature_name] = float(score)
                keep = op.keep(score)
                self.stats.count(op.name, not keep)
                if not keep:
                    return None, Rejected(record, self.stage, op.name, op.reason(record, score))
            elif isinstance(op, Deduplicator):
                sig = op.signature(record)
                first = self._seen[op.name].setdefault(sig, record.id)
                dup = first != record.id
                self.stats.count(op.name, dup)
                if dup:
                    return None, Rejected(record, self.stage, op.name, f"duplicate of {first}")
        return record, None

    def run(self, batches: Iterable[list[Record]]) -> Iterator[tuple[list[Record], list[Rejected]]]:
        """Yield (kept, rejected) per input batch, records in input order."""
        for batch in batches:
            kept: list[Record] = []
            rejected: list[Rejected] = []
            for record in batch:
                r, rej = self._one(record)
                if r is not None:
                    kept.append(r)
                else:
                    assert rej is not None
                    rejected.append(rej)
            yield kept, rejected
