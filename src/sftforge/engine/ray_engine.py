"""The Ray engine: the same operators as the local engine, run on a Ray cluster one block (an input shard) at a
time, with the same decisions.

Blocks go through Ray Data (`map_blocks`): a `map_batches` over the block list with a callable class, so a pool
of actors each builds the stage's operators and calls `setup()` once (models load once per worker), reads whole
blocks (the run directory must be on storage every node sees) and returns their results, in block order, to the
driver, which writes them. Both engines see records in the same order, so they keep the same ones.

Dedup across the cluster (`candidate_pairs`), for deduplicators that offer buckets (`Deduplicator.bucket_rows`:
MinHash's LSH bands): a shuffle on Ray tasks groups every block's bucket rows by bucket; each bucket yields star
edges from its first record to the others. Only those candidate pairs reach the driver, where the deduplicator
decides (`resolve_pairs`: MinHash verifies them on the signatures, a memory map, and forms connected components,
the same rule as its `resolve`), and no process holds a global bucket index.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sftforge.engine.base import RaySettings, Resolver
from sftforge.errors import SftforgeError, StageError
from sftforge.lib.duplicates import Duplicates

log = logging.getLogger(__name__)
KEY_ROWS_PER_FILE = 65536  # key rows per file of the bucket shuffle's input


def import_ray():
    """The `ray` module, or a StageError that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise StageError("engine: ray needs Ray: pip install 'sftforge[ray]' (or 'ray[data]') on every node") from exc
    return ray


@contextlib.contextmanager
def ray_session(settings: RaySettings) -> Iterator[Any]:
    """Connect to the cluster (or start a local Ray) unless already connected; disconnect only what we started."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # Ray would otherwise report usage over the network
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
            raise StageError(
                f"cannot start or reach Ray ({where}): {exc}. Check `ray status` on the head node, "
                "or unset RAY_ADDRESS to use a local Ray"
            ) from exc
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


def _sftforge_cause(exc: BaseException) -> SftforgeError | None:
    """The SftforgeError a Ray task error wraps, if any (Ray keeps the worker's exception as `cause`)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, SftforgeError):
            return current
        seen.add(id(current))
        current = getattr(current, "cause", None) or current.__cause__
    return None


def map_blocks(
    ray: Any, actor_cls: Any, init_args: tuple[Any, ...], method: str, blocks: Sequence[str], workers: int
) -> Iterator[Any]:
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
        ds = ds.map_batches(
            _BlockUDF,
            fn_constructor_args=(actor_cls, init_args, method),
            batch_size=1,
            concurrency=max(1, min(workers, len(blocks))),
            num_cpus=1,
            batch_format="numpy",
        )
        for batch in ds.iter_batches(batch_size=1, batch_format="numpy", prefetch_batches=0):
            yield pickle.loads(batch["payload"][0])
    except Exception as exc:  # an operator's own error (a missing benchmark file...) reaches the user as itself
        inner = _sftforge_cause(exc)
        if inner is None:
            raise
        raise inner from exc
    finally:
        ctx.execution_options.preserve_order = before


# -- deduplicators resolved across the cluster -------------------------------------------------------------------------


def _bucket_partitions(dedup: Any, path: str, start: int, partitions: int) -> np.ndarray | tuple[np.ndarray, ...]:
    """Map side: one key file's bucket rows (`Deduplicator.bucket_rows`), split by bucket hash into `partitions`
    arrays (one task return each; a single array for one partition)."""
    table = dedup.bucket_rows(np.load(path, mmap_mode="r"), start)
    if partitions == 1:
        return table
    which = (table[:, 1] ^ table[:, 0]) % np.uint64(partitions)
    return tuple(table[which == p] for p in range(partitions))


def _bucket_edges(*parts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reduce side: rows of one partition grouped into buckets (equal first two columns); each bucket gives star
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


def candidate_pairs(
    ray: Any, dedup: Any, files: list[Path], sizes: list[int], partitions: int
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs (first, member) over every bucket: a shuffle on Ray tasks, mappers split each key file's
    bucket rows by bucket hash, one reducer per partition groups its buckets. Only the pairs come back to the
    driver; no process ever holds every bucket."""
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int).tolist()
    mapper = ray.remote(num_returns=partitions)(_bucket_partitions)
    reducer = ray.remote(num_returns=2)(_bucket_edges)
    shared = ray.put(dedup)
    mapped = [mapper.remote(shared, str(f), s, partitions) for f, s in zip(files, starts)]
    if partitions == 1:  # one return: the ref itself, not a list of refs
        mapped = [[m] for m in mapped]
    reduced = [reducer.remote(*[m[p] for m in mapped]) for p in range(partitions)]
    pairs = [ray.get(list(r)) for r in reduced]
    first = np.concatenate([f for f, _ in pairs]) if pairs else np.zeros(0, np.int64)
    member = np.concatenate([m for _, m in pairs]) if pairs else np.zeros(0, np.int64)
    return first, member


class RayRunner:
    """Blocks through Ray Data actors; MinHash dedup through the band-key shuffle."""

    def __init__(self, ray: Any, settings: RaySettings | None) -> None:
        self.ray = ray
        self.workers = worker_count(ray, settings or RaySettings())
        self.info = {"name": "ray", "workers": self.workers}

    def map(self, worker_cls: Any, init_args: tuple[Any, ...], blocks: Sequence[str]) -> Iterator[Any]:
        return map_blocks(self.ray, worker_cls, init_args, "process", blocks, self.workers)

    def dedup_resolver(self, scratch: Path) -> Resolver:
        """Deduplicators that offer buckets (`Deduplicator.bucket_rows`, e.g. MinHash's LSH bands) resolve through
        a bucket shuffle on Ray; the others as they do locally."""

        def resolve(d: Any, keys: np.ndarray) -> Duplicates:
            if not d.buckets:
                return d.resolve(keys)
            key_dir = scratch / f"{d.name}-keys"
            shutil.rmtree(key_dir, ignore_errors=True)
            key_dir.mkdir(parents=True)
            files, sizes = [], []
            for k, start in enumerate(range(0, len(keys), KEY_ROWS_PER_FILE)):
                chunk = np.asarray(keys[start : start + KEY_ROWS_PER_FILE])
                files.append(key_dir / f"k{k:05d}.npy")
                np.save(files[-1], chunk)
                sizes.append(len(chunk))
            first, member = candidate_pairs(self.ray, d, files, sizes, self.workers)
            shutil.rmtree(key_dir, ignore_errors=True)
            return d.resolve_pairs(keys, first, member)

        return resolve
