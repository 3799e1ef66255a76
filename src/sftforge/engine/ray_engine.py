"""The Ray engine: the same operators as the local engine, run on a Ray cluster one block (an input shard) at a
time, with the same decisions.

Blocks go through Ray Data (`map_blocks`): a `map_batches` over the block list with a callable class, so a pool
of actors each builds the stage's operators and calls `setup()` once (models load once per worker), reads whole
blocks (the run directory must be on storage every node sees) and returns their results, in block order, to the
driver, which writes them. Both engines see records in the same order, so they keep the same ones.

Dedup across the cluster (`minhash_band_pairs`): a shuffle on Ray tasks groups the band keys of every signature
by key; each bucket yields star edges from its first record to the others. Only those candidate pairs reach the
driver, which verifies them on the signatures (a memory map) and forms connected components: the same rule as
`ops/minhash.find_duplicates`, and no process holds a global band index.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sftforge.errors import StageError

log = logging.getLogger(__name__)


def import_ray():  # type: ignore[no-untyped-def]
    """The `ray` module, or a StageError that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise StageError("engine: ray needs Ray: pip install 'sftforge[ray]' (or 'ray[data]') on every node") from exc
    return ray


@dataclass(frozen=True, slots=True)
class RaySettings:
    """Where to run: a cluster's address (None: RAY_ADDRESS, else a local Ray), CPUs of a local Ray, actors."""

    address: str | None = None
    num_cpus: int | None = None
    workers: int | None = None


@contextlib.contextmanager
def ray_session(settings: RaySettings) -> Iterator[Any]:
    """Connect to the cluster (or start a local Ray) unless already connected; disconnect only what we started."""
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        address = settings.address or os.environ.get("RAY_ADDRESS")
        kwargs: dict[str, Any] = {"include_dashboard": False, "configure_logging": False, "log_to_driver": True}
        if address:
            kwargs["address"] = address
        else:
            kwargs["num_cpus"] = settings.num_cpus or os.cpu_count() or 1
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = address or "a local Ray"
            raise StageError(f"cannot start or reach Ray ({where}): {exc}. Check `ray status` on the head node, "
                             "or unset RAY_ADDRESS to use a local Ray") from exc
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def worker_count(ray: Any, settings: RaySettings) -> int:
    """Actors to start: the recipe's `ray.workers`, else one per CPU of the cluster."""
    if settings.workers:
        return settings.workers
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


class _BlockUDF:
    """A Ray Data callable class: builds `actor_cls(*init_args)` once per actor, then calls `method` per block and
    returns the result pickled (results hold tables and arrays of any shape)."""

    def __init__(self, actor_cls: Any, init_args: tuple[Any, ...], method: str) -> None:
        self.fn = getattr(actor_cls(*init_args), method)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import pickle

        out = [pickle.dumps(self.fn(str(block)), protocol=pickle.HIGHEST_PROTOCOL) for block in batch["block"]]
        return {"payload": np.array(out, dtype=object)}


def map_blocks(ray: Any, actor_cls: Any, init_args: tuple[Any, ...], method: str, blocks: Sequence[str],
               workers: int) -> Iterator[Any]:
    """Results of `actor_cls(*init_args).method(block)` for each block, in block order, through Ray Data: a pool
    of `workers` actors (one CPU each) that build the operators once. Ray retries a task whose actor died; what
    the caller stored before an error is kept."""
    import pickle

    if not blocks:
        return
    ctx = ray.data.DataContext.get_current()
    before = ctx.execution_options.preserve_order
    ctx.execution_options.preserve_order = True
    try:
        ds = ray.data.from_items([{"block": b} for b in blocks], override_num_blocks=len(blocks))
        ds = ds.map_batches(_BlockUDF, fn_constructor_args=(actor_cls, init_args, method), batch_size=1,
                            concurrency=max(1, min(workers, len(blocks))), num_cpus=1, batch_format="numpy")
        for batch in ds.iter_batches(batch_size=1, batch_format="numpy", prefetch_batches=0):
            yield pickle.loads(batch["payload"][0])
    finally:
        ctx.execution_options.preserve_order = before


# -- distributed MinHash candidate pairs -----------------------------------------------------------------------------


def _band_partitions(path: str, start: int, bands: int, rows: int, partitions: int) -> np.ndarray | tuple[np.ndarray, ...]:
    """Map side: one signature file's band keys as rows (band, key, global index), split by key hash into
    `partitions` arrays (one task return each; a single array for one partition); empty documents produce none."""
    from sftforge.ops.minhash import EMPTY, _band_key

    sigs = np.load(path, mmap_mode="r")
    live = np.flatnonzero(~(np.asarray(sigs) == EMPTY).all(axis=1))
    table = np.empty((len(live) * bands, 3), dtype=np.uint64)
    for band in range(bands):
        rows_of = slice(band * len(live), (band + 1) * len(live))
        table[rows_of, 0] = band
        table[rows_of, 1] = _band_key(sigs, band, rows)[live]
        table[rows_of, 2] = live + start
    if partitions == 1:
        return table
    which = (table[:, 1] ^ table[:, 0]) % np.uint64(partitions)
    return tuple(table[which == p] for p in range(partitions))


def _bucket_edges(*parts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reduce side: rows of one key partition grouped into buckets of equal (band, key); each bucket gives star
    edges from its smallest index to every other member (enough for connected components)."""
    table = np.concatenate(parts) if parts else np.zeros((0, 3), np.uint64)
    if len(table) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.lexsort((table[:, 2], table[:, 1], table[:, 0]))
    table = table[order]
    new = np.ones(len(table), dtype=bool)
    new[1:] = (table[1:, 0] != table[:-1, 0]) | (table[1:, 1] != table[:-1, 1])
    first = table[np.flatnonzero(new), 2][np.cumsum(new) - 1][~new]
    member = table[~new, 2]
    return first.astype(np.int64), member.astype(np.int64)


def minhash_band_pairs(ray: Any, files: list[Path], sizes: list[int], bands: int, rows: int,
                       partitions: int) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs (first, member) over every band bucket: a shuffle on Ray tasks, mappers split each
    signature file's band keys by key hash, one reducer per partition groups its buckets. Only the pairs come
    back to the driver; no process ever holds every band key."""
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int).tolist()
    mapper = ray.remote(num_returns=partitions)(_band_partitions)
    reducer = ray.remote(num_returns=2)(_bucket_edges)
    mapped = [mapper.remote(str(f), s, bands, rows, partitions) for f, s in zip(files, starts)]
    if partitions == 1:  # one return: the ref itself, not a list of refs
        mapped = [[m] for m in mapped]
    reduced = [reducer.remote(*[m[p] for m in mapped]) for p in range(partitions)]
    pairs = [ray.get(list(r)) for r in reduced]
    first = np.concatenate([f for f, _ in pairs]) if pairs else np.zeros(0, np.int64)
    member = np.concatenate([m for _, m in pairs]) if pairs else np.zeros(0, np.int64)
    return first, member


def components_from_pairs(sigs: np.ndarray, first: np.ndarray, member: np.ndarray, threshold: float | None,
                          verify: bool) -> tuple[np.ndarray, np.ndarray]:
    """(survivor, similarity) as `find_duplicates` gives them: verified pairs, components whose smallest index
    survives, each duplicate's similarity to its survivor estimated from the signatures."""
    from sftforge.ops.minhash import _pair_similarity, _union

    n = len(sigs)
    parent = np.arange(n, dtype=np.int64)
    if verify and len(first):
        ok = _pair_similarity(sigs, None, first, member) >= threshold - 1e-9  # type: ignore[operator]
        first, member = first[ok], member[ok]
    if len(first):
        _union(parent, first, member)
    dups = np.flatnonzero(parent != np.arange(n))
    similarity = np.full(n, np.nan, dtype=np.float32)
    if len(dups):
        similarity[dups] = _pair_similarity(sigs, None, parent[dups], dups)
    return parent, similarity


# -- operator statistics from many workers ---------------------------------------------------------------------------


def _is_item_list(x: Any) -> bool:
    """A list of counted items, like decontamination's top items: [{"benchmark": .., "item": .., "records": n}]."""
    return isinstance(x, list) and all(isinstance(i, dict) and "records" in i for i in x)


def _item_key(item: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(sorted((k, v) for k, v in item.items() if k != "records"))


def stats_delta(new: Any, old: Any) -> Any:
    """What one block added to an operator's cumulative figures: numbers are subtracted, dicts recurse, other
    values (names) are kept as they are now. Lists of counted items are diffed item by item (they are top-N lists:
an item that left the top N is not counted again)."""
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


# -- the actors ------------------------------------------------------------------------------------------------------


class FeaturesWorker:
    """Computes the recipe's features for whole blocks; the operators (and their models) load once."""

    def __init__(self, configs: list[Any], base_dir: Path) -> None:
        from sftforge.ops import build

        self.ops = [build(c, base_dir) for c in configs]
        for op in self.ops:
            op.setup()

    def process(self, part: str) -> tuple[Any, dict[str, np.ndarray]]:
        """(the block's records with features, as a table; vector features by name)."""
        import pyarrow.parquet as pq

        from sftforge.engine.local import compute_features
        from sftforge.sample import records_to_table, table_to_records

        records = table_to_records(pq.read_table(part))
        vectors = compute_features(self.ops, records)
        return records_to_table(records), vectors


@dataclass(slots=True)
class CleanBlock:
    """What a clean actor returns for one block."""

    n_in: int
    kept: Any  # pyarrow Table (RECORD_SCHEMA)
    rejected: Any  # pyarrow Table (REJECT_SCHEMA)
    keys: list[np.ndarray]  # per deduplicator, rows of the kept records
    seen: dict[str, int]
    removed: dict[str, int]
    figures: dict[str, Any]  # what this block added to each operator's own figures


class CleanWorker:
    """Mappers and filters for whole blocks, plus each deduplicator's keys of the survivors."""

    def __init__(self, stage: str, op_configs: list[Any], dedup_configs: list[Any], base_dir: Path) -> None:
        from sftforge.engine.local import RecordProcessor
        from sftforge.ops import build

        self.processor = RecordProcessor(stage, [build(c, base_dir) for c in op_configs])
        self.dedups = [build(c, base_dir) for c in dedup_configs]
        for d in self.dedups:
            d.setup()
        self._figures: dict[str, Any] = {}

    def process(self, part: str) -> CleanBlock:
        import pyarrow.parquet as pq

        from sftforge.engine.local import OpStats
        from sftforge.sample import rejected_to_table, records_to_table, table_to_records

        records = table_to_records(pq.read_table(part))
        self.processor.stats = OpStats()
        kept, rejected = self.processor.process(records)
        keys = [d.keys(kept) if kept else np.zeros((0, d.key_width()), d.key_dtype) for d in self.dedups]
        figures = self.processor.figures()
        delta = {k: stats_delta(v, self._figures.get(k)) for k, v in figures.items()}
        self._figures = figures
        return CleanBlock(len(records), records_to_table(kept), rejected_to_table(rejected), keys,
                          self.processor.stats.seen, self.processor.stats.removed, delta)
