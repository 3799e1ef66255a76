"""Stage `clean` on the Ray engine: the same operators and decisions as the local engine, block by block.

1. Actors (engine/ray_engine.CleanWorker) run the mappers and filters over each features shard (a block) and
   compute the deduplicators' keys of the survivors. The driver stores each finished block under
   `clean/_blocks/<shard>/` (survivors, rejects, keys, counts); a block is complete once its folder is renamed
   into place, so a rerun after a driver or worker failure only processes the blocks that are missing.
2. The deduplicators resolve over all blocks' keys in stream order: MinHash through band buckets grouped by key
   on Ray (engine/ray_engine.minhash_band_pairs), the others on the driver from a memory map, as locally.
3. Each block's survivors are split into kept records and duplicates and committed, in block order.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow.parquet as pq

from sftforge.engine.local import OpStats, resolve_dedups
from sftforge.engine.ray_engine import (
    CleanBlock,
    CleanWorker,
    RaySettings,
    components_from_pairs,
    map_blocks,
    minhash_band_pairs,
    ray_session,
    stats_add,
    worker_count,
)
from sftforge.ops import build
from sftforge.ops.base import Deduplicator, Duplicates
from sftforge.ops.dedup import MinHashDedup
from sftforge.run import ShardLog, atomic_write_bytes, atomic_write_table, writing
from sftforge.sample import REJECT_SCHEMA, Record, Rejected, table_to_records

if TYPE_CHECKING:
    from sftforge.stages.base import Context
    from sftforge.stages.clean import CleanStage

SIG_ROWS_PER_FILE = 65536  # MinHash signatures per file of the band-grouping input


def ray_settings(ctx: Context) -> RaySettings:
    cfg = ctx.recipe.ray
    return RaySettings(cfg.address, cfg.num_cpus, cfg.workers) if cfg else RaySettings()


def _store_block(folder: Path, block: CleanBlock) -> None:
    """Write a finished block atomically: into a temporary folder, renamed into place last."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    with writing(tmp):
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        atomic_write_table(tmp / "kept.parquet", block.kept)
        atomic_write_table(tmp / "rejected.parquet", block.rejected)
        for i, keys in enumerate(block.keys):
            np.save(tmp / f"keys-{i}.npy", keys)
        summary = {"n_in": block.n_in, "kept": block.kept.num_rows, "seen": block.seen, "removed": block.removed,
                   "figures": block.figures}
        atomic_write_bytes(tmp / "block.json", json.dumps(summary).encode("utf-8"))
        tmp.rename(folder)


def _rejected_records(folder: Path) -> list[Rejected]:
    rows = pq.read_table(folder / "rejected.parquet", schema=REJECT_SCHEMA).to_pylist()
    return [Rejected(Record.from_row(r), r["reject_stage"], r["reject_operator"], r["reject_reason"]) for r in rows]


def _concat_keys(folders: list[Path], i: int, d: Deduplicator, scratch: Path) -> np.ndarray:
    """Deduplicator i's keys of every block, in block order, as one memory-mapped array."""
    path = scratch / f"keys-{i}.bin"
    rows = 0
    with writing(path), open(path, "wb") as fh:
        for folder in folders:
            keys = np.load(folder / f"keys-{i}.npy")
            fh.write(np.ascontiguousarray(keys, dtype=d.key_dtype).tobytes())
            rows += len(keys)
    if rows == 0:
        return np.zeros((0, d.key_width()), d.key_dtype)
    return np.memmap(path, dtype=d.key_dtype, mode="r", shape=(rows, d.key_width()))


def _ray_resolver(ray: Any, scratch: Path, partitions: int):  # type: ignore[no-untyped-def]
    """MinHash through Ray Data band buckets; every other deduplicator resolves as it does locally."""

    def resolve(d: Deduplicator, keys: np.ndarray) -> Duplicates:
        if not isinstance(d, MinHashDedup):
            return d.resolve(keys)
        sig_dir = scratch / "minhash-signatures"
        shutil.rmtree(sig_dir, ignore_errors=True)
        sig_dir.mkdir(parents=True)
        files, sizes = [], []
        for k, start in enumerate(range(0, len(keys), SIG_ROWS_PER_FILE)):
            chunk = np.asarray(keys[start:start + SIG_ROWS_PER_FILE])
            files.append(sig_dir / f"s{k:05d}.npy")
            np.save(files[-1], chunk)
            sizes.append(len(chunk))
        first, member = minhash_band_pairs(ray, files, sizes, d.bands, d.rows, partitions)
        survivor, similarity = components_from_pairs(keys, first, member, d.config.threshold, d.config.verify)
        shutil.rmtree(sig_dir, ignore_errors=True)
        return Duplicates(survivor, np.nan_to_num(similarity, nan=1.0))

    return resolve


def execute_on_ray(stage: CleanStage, ctx: Context, out: ShardLog) -> tuple[dict[str, int], dict[str, Any]]:
    from sftforge.stages.clean import PhaseClock, duplicate_index, split_duplicates, write_clusters

    clock = PhaseClock()
    settings = ray_settings(ctx)
    op_configs, dedup_configs = stage.operator_configs(ctx)
    dedups: list[Deduplicator] = [build(c, ctx.recipe.base_dir) for c in dedup_configs]  # type: ignore[misc]
    root = ctx.run.stage_dir(stage.name)
    blocks_dir, scratch = root / "_blocks", root / "_scratch"
    parts = sorted(ctx.run.stage_dir("features").glob("part-*.parquet"))
    folders = [blocks_dir / part.stem for part in parts]
    reused = sum(f.is_dir() for f in folders)
    bar = ctx.reporter.task("clean", total=len(parts) * 2)
    ctx.reporter.advance(bar, n=reused)
    with ray_session(settings) as ray:
        clock.lap("ray_start")
        workers = worker_count(ray, settings)
        pending = [(p, f) for p, f in zip(parts, folders) if not f.is_dir()]
        if pending:
            init = (stage.name, op_configs, dedup_configs, ctx.recipe.base_dir)
            results = map_blocks(ray, CleanWorker, init, "process", [str(p) for p, _ in pending], workers)
            for (part, folder), block in zip(pending, results):
                _store_block(folder, block)
                ctx.reporter.advance(bar, blocks_done=part.stem)

        clock.lap("operators")
        summaries = [json.loads((f / "block.json").read_text(encoding="utf-8")) for f in folders]
        stats, figures, reasons = OpStats(), {}, Counter()
        for s in summaries:
            for op, n in s["seen"].items():
                stats.count(op, n, s["removed"].get(op, 0))
                if s["removed"].get(op):
                    reasons[op] += s["removed"][op]
            figures = stats_add(figures, s["figures"])
        ids = [i for f in folders for i in pq.read_table(f / "kept.parquet", columns=["id"]).column("id").to_pylist()]
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        outcomes = resolve_dedups(dedups, lambda i: _concat_keys(folders, i, dedups[i], scratch), len(ids), stats,
                                  _ray_resolver(ray, scratch, workers))
    clock.lap("dedup")
    duplicate_of = duplicate_index(outcomes)
    clusters = {o.op.name: write_clusters(ctx, o, ids) for o in outcomes}
    index = 0
    for part, folder, summary in zip(parts, folders, summaries):
        start, index = index, index + summary["kept"]
        if part.stem in out.done:
            ctx.reporter.advance(bar)
            for dup in range(start, index):
                if dup in duplicate_of:
                    reasons[duplicate_of[dup][0].op.name] += 1
            continue
        records = table_to_records(pq.read_table(folder / "kept.parquet"))
        keep, dups = split_duplicates(stage.name, records, start, duplicate_of, ids, reasons)
        out.commit(keep, dups + _rejected_records(folder), [part.stem])
        ctx.reporter.advance(bar, kept=out.counts["records"], removed=out.counts["rejected"])
    ctx.reporter.done(bar)
    shutil.rmtree(blocks_dir, ignore_errors=True)
    shutil.rmtree(scratch, ignore_errors=True)
    counts = {"input": sum(s["n_in"] for s in summaries), "records": out.counts["records"],
              "rejected": out.counts["rejected"]}
    extra = {
        "removed_by_operator": dict(reasons.most_common()),
        "seen_by_operator": stats.seen,
        "operators": figures | {d.name: f for d in dedups if (f := d.stats())},
        "duplicate_clusters": clusters,
        "engine": {"name": "ray", "workers": workers, "blocks": len(parts), "blocks_reused": reused},
        "seconds": clock.lap("commit"),
    }
    return counts, extra
