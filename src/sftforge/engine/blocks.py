"""Blocks: the unit both engines process. A block is one input shard (or a group of source files); a worker
(`SourcesWorker`, `FeaturesWorker`, `CleanWorker`) builds its tokenizer or operators once and processes whole
blocks; a runner feeds it blocks, in this process (`LocalRunner`) or on Ray (`engine/ray_engine.RayRunner`).
Results come back in block order, so every engine makes the same decisions on the same records.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# -- operator figures from many workers ------------------------------------------------------------------------------


def _is_item_list(x: Any) -> bool:
    """A list of counted items, like decontamination's top items: [{"benchmark": .., "item": .., "records": n}]."""
    return isinstance(x, list) and all(isinstance(i, dict) and "records" in i for i in x)


def _item_key(item: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(sorted((k, v) for k, v in item.items() if k != "records"))


def stats_delta(new: Any, old: Any) -> Any:
    """What one block added to an operator's cumulative figures: numbers are subtracted, dicts recurse, other
    values (names) are kept as they are now. Lists of counted items are diffed item by item (they are top-N
    lists: an item that left the top N and came back is counted again)."""
    if _is_item_list(new):
        before = {_item_key(x): x["records"] for x in (old if _is_item_list(old) else [])}
        changed = [x | {"records": x["records"] - before.get(_item_key(x), 0)} for x in new]
        return [x for x in changed if x["records"]]
    if isinstance(new, bool) or not isinstance(new, (int, float, dict)):
        return new
    if isinstance(new, dict):
        old = old if isinstance(old, dict) else {}
        return {k: stats_delta(v, old.get(k)) for k, v in new.items()}
    return new - (old if isinstance(old, (int, float)) and not isinstance(old, bool) else 0)


def stats_add(total: Any, delta: Any) -> Any:
    """Sum per-block figures: numbers add, dicts merge key by key; lists of {..., "records": n} items are merged
    by their other fields and the 20 largest kept; other values take the latest."""
    if isinstance(delta, dict):
        total = dict(total) if isinstance(total, dict) else {}
        for k, v in delta.items():
            total[k] = stats_add(total.get(k), v)
        return total
    if isinstance(delta, (int, float)) and not isinstance(delta, bool):
        return (total if isinstance(total, (int, float)) and not isinstance(total, bool) else 0) + delta
    if _is_item_list(delta):
        merged: dict[tuple[Any, ...], int] = {}
        for item in (total if _is_item_list(total) else []) + delta:
            merged[_item_key(item)] = merged.get(_item_key(item), 0) + item["records"]
        top = sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
        return [dict(key) | {"records": n} for key, n in top]
    return delta


# -- the workers -----------------------------------------------------------------------------------------------------


class FeaturesWorker:
    """Computes the recipe's features for whole blocks; the operators (and their models) load once per worker."""

    def __init__(self, configs: list[Any], base_dir: Path) -> None:
        from sftforge.ops import build

        self.ops = [build(c, base_dir) for c in configs]
        for op in self.ops:
            op.setup()

    def process(self, part: str) -> tuple[Any, dict[str, np.ndarray]]:
        """(the block's records with features, as a table; vector features by name)."""
        import pyarrow.parquet as pq

        from sftforge.engine.processing import compute_features
        from sftforge.sample import records_to_table, table_to_records

        records = table_to_records(pq.read_table(part))
        vectors = compute_features(self.ops, records)
        return records_to_table(records), vectors


@dataclass(slots=True)
class CleanBlock:
    """What a clean worker returns for one block."""

    n_in: int
    kept: Any  # pyarrow Table (RECORD_SCHEMA)
    rejected: Any  # pyarrow Table (REJECT_SCHEMA)
    keys: list[np.ndarray]  # per deduplicator, rows of the kept records
    seen: dict[str, int]
    removed: dict[str, int]
    figures: dict[str, Any]  # what this block added to each operator's own figures


class CleanWorker:
    """Mappers and filters for whole blocks, plus each deduplicator's keys of the survivors. Its operators' own
    figures are returned per block as what the block added, so figures from many workers can be summed."""

    def __init__(self, stage: str, op_configs: list[Any], dedup_configs: list[Any], base_dir: Path) -> None:
        from sftforge.engine.processing import RecordProcessor
        from sftforge.ops import Deduplicator, build

        self.processor = RecordProcessor(stage, [build(c, base_dir) for c in op_configs])
        self.dedups: list[Deduplicator] = []
        for c in dedup_configs:
            op = build(c, base_dir)
            if not isinstance(op, Deduplicator):
                raise TypeError(f"operator {c.name!r} is not a deduplicator")
            self.dedups.append(op)
        for d in self.dedups:
            d.setup()
        self._figures: dict[str, Any] = {}

    def process(self, part: str) -> CleanBlock:
        import pyarrow.parquet as pq

        from sftforge.engine.processing import OpStats
        from sftforge.sample import records_to_table, rejected_to_table, table_to_records

        records = table_to_records(pq.read_table(part))
        self.processor.stats = OpStats()
        kept, rejected = self.processor.process(records)
        keys = [d.keys(kept) if kept else np.zeros((0, d.key_width()), d.key_dtype) for d in self.dedups]
        figures = self.processor.figures()
        delta = {k: stats_delta(v, self._figures.get(k)) for k, v in figures.items()}
        self._figures = figures
        return CleanBlock(
            len(records),
            records_to_table(kept),
            rejected_to_table(rejected),
            keys,
            self.processor.stats.seen,
            self.processor.stats.removed,
            delta,
        )
