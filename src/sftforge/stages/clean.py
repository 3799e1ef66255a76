"""Stage `clean`: mappers, the preset's and the recipe's filters, then dedup, over the featured records.

1. Each features shard is a block: a worker (engine/blocks.CleanWorker) runs the mappers and filters over it and
   computes the deduplicators' keys of the survivors, in this process or in Ray actors (`engine`). Each finished
   block is stored under `clean/_blocks/<shard>/` (survivors, rejects, keys, counts), renamed into place last.
2. The deduplicators resolve over all blocks' keys in stream order (MinHash on Ray through its band shuffle).
3. Each block's survivors are split into kept records and duplicates, and committed with the block's rejects.

On Ray the stage resumes: a rerun after a driver or worker failure processes only the blocks that are missing
and commits only the blocks that were not. Locally a partial clean is cheap to redo and starts over. Both engines
write the same blocks in the same order, so their output is the same record for record. Duplicate clusters are
written to `clean/duplicates-<operator>.jsonl`.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from sftforge.engine.base import open_runner, settings_of
from sftforge.engine.blocks import CleanBlock, CleanWorker, stats_add
from sftforge.engine.processing import DedupOutcome, OpStats, op_label, resolve_dedups
from sftforge.figures import CleanFigures, EngineInfo
from sftforge.generate.base import GENERATORS
from sftforge.ops import build
from sftforge.ops.base import Deduplicator
from sftforge.ops.presets import merged_filters
from sftforge.run import ShardLog, atomic_folder, atomic_write_bytes, atomic_write_table, writing
from sftforge.sample import REJECT_SCHEMA, Record, Rejected, table_to_records
from sftforge.stages.base import Context, Stage
from sftforge.storage import write_clusters


def cluster_rows(outcome: DedupOutcome, ids: list[str]) -> list[dict[str, Any]]:
    """One row per cluster, largest first: the survivor and its duplicates with their similarity."""
    clusters: dict[int, list[tuple[int, float]]] = {}
    for dup, (survivor, sim) in sorted(outcome.duplicates.items()):
        clusters.setdefault(survivor, []).append((dup, sim))
    return [
        {
            "survivor": ids[s],
            "size": len(members) + 1,
            "duplicates": [{"id": ids[d], "similarity": round(sim, 4)} for d, sim in members],
        }
        for s, members in sorted(clusters.items(), key=lambda kv: -len(kv[1]))
    ]


def store_block(folder: Path, block: CleanBlock) -> None:
    """Write a finished block atomically: into a temporary folder, renamed into place last."""
    with atomic_folder(folder) as tmp:
        atomic_write_table(tmp / "kept.parquet", block.kept)
        atomic_write_table(tmp / "rejected.parquet", block.rejected)
        for i, keys in enumerate(block.keys):
            np.save(tmp / f"keys-{i}.npy", keys)
        summary = {
            "n_in": block.n_in,
            "kept": block.kept.num_rows,
            "seen": block.seen,
            "removed": block.removed,
            "figures": block.figures,
        }
        atomic_write_bytes(tmp / "block.json", json.dumps(summary).encode("utf-8"))


def block_rejects(folder: Path) -> list[Rejected]:
    """The records a block's filters removed, in the order they were removed."""
    rows = pq.read_table(folder / "rejected.parquet", schema=REJECT_SCHEMA).to_pylist()
    return [Rejected(Record.from_row(r), r["reject_stage"], r["reject_operator"], r["reject_reason"]) for r in rows]


def concat_keys(folders: list[Path], i: int, d: Deduplicator, scratch: Path) -> np.ndarray:
    """Deduplicator i's keys of every block, in block order, as one memory-mapped array. The width comes from
    the blocks (the workers know it; asking the driver's deduplicator could load its model here)."""
    path = scratch / f"keys-{i}.bin"
    rows, width = 0, 0
    with writing(path), open(path, "wb") as fh:
        for folder in folders:
            keys = np.load(folder / f"keys-{i}.npy")
            fh.write(np.ascontiguousarray(keys, dtype=d.key_dtype).tobytes())
            rows, width = rows + len(keys), keys.shape[1]
    if rows == 0:
        return np.zeros((0, width), d.key_dtype)
    return np.memmap(path, dtype=d.key_dtype, mode="r", shape=(rows, width))


class PhaseClock:
    """Wall time per phase of the stage (operators, dedup, commit), for the manifest and engine sizing."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.phases: dict[str, float] = {}

    def lap(self, name: str) -> dict[str, float]:
        now = time.perf_counter()
        self.phases[name] = round(now - self.start, 3)
        self.start = now
        return self.phases


def duplicate_index(outcomes: list[DedupOutcome]) -> dict[int, tuple[DedupOutcome, int, float]]:
    """Stream index of every duplicate -> (the dedup that removed it, its survivor's index, similarity)."""
    out: dict[int, tuple[DedupOutcome, int, float]] = {}
    for outcome in outcomes:
        for dup, (survivor, sim) in outcome.duplicates.items():
            out[dup] = (outcome, survivor, sim)
    return out


def split_duplicates(
    stage: str,
    records: list[Record],
    start: int,
    duplicate_of: dict[int, tuple[DedupOutcome, int, float]],
    ids: list[str],
    reasons: Counter[str],
) -> tuple[list[Record], list[Rejected]]:
    """One shard of dedup-stream records (stream indices from `start`) split into survivors and duplicates."""
    keep: list[Record] = []
    dups: list[Rejected] = []
    for index, r in enumerate(records, start):
        if index in duplicate_of:
            outcome, survivor, sim = duplicate_of[index]
            reason = f"duplicate of {ids[survivor]}: {outcome.op.describe(sim)}"
            dups.append(Rejected(r, stage, outcome.op.name, reason))
            reasons[outcome.op.name] += 1
        else:
            keep.append(r)
    return keep, dups


class CleanStage(Stage):
    name = "clean"
    version = 2  # the kept records are what version 2 made; only the order of rejects within a shard changed
    after = "features"

    def config(self, ctx: Context) -> Any:
        return ctx.recipe.cleaning.model_dump()

    def operator_configs(self, ctx: Context) -> tuple[list[Any], list[Any]]:
        """(mappers then filters, deduplicators) as configs, in the order they run."""
        cleaning = ctx.recipe.cleaning
        templated = all(GENERATORS[g.name].templated for g in ctx.recipe.generators)
        filters = merged_filters(cleaning.preset, ctx.recipe.task.language, list(cleaning.filters), templated)
        return [*cleaning.mappers, *filters], list(cleaning.dedup)

    def resumes(self, ctx: Context) -> bool:
        """On Ray, from the blocks that completed (a cluster run is long); locally a partial clean is cheap to redo."""
        return ctx.recipe.engine == "ray"

    def execute(self, ctx: Context, out: ShardLog) -> tuple[dict[str, int], CleanFigures]:
        clock = PhaseClock()
        op_configs, dedup_configs = self.operator_configs(ctx)
        dedups: list[Deduplicator] = [build(c, ctx.recipe.base_dir) for c in dedup_configs]  # type: ignore[misc]
        root = ctx.run.stage_dir(self.name)
        blocks_dir, scratch = root / "_blocks", root / "_scratch"
        parts = sorted(ctx.run.stage_dir("features").glob("part-*.parquet"))
        folders = [blocks_dir / part.stem for part in parts]
        reused = sum(f.is_dir() for f in folders)
        pending = [(p, f) for p, f in zip(parts, folders) if not f.is_dir()]
        bar = ctx.reporter.task("clean", total=len(parts) * 2)
        ctx.reporter.advance(bar, n=reused)
        with open_runner(ctx.recipe.engine, settings_of(ctx.recipe.ray)) as runner:
            clock.lap("start")
            init = (self.name, op_configs, dedup_configs, ctx.recipe.base_dir)
            for (part, folder), block in zip(pending, runner.map(CleanWorker, init, [str(p) for p, _ in pending])):
                store_block(folder, block)
                ctx.reporter.advance(bar, block=part.stem)
            clock.lap("operators")
            summaries = [json.loads((f / "block.json").read_text(encoding="utf-8")) for f in folders]
            stats = OpStats()
            figures: dict[str, Any] = {}
            reasons: Counter[str] = Counter()
            for s in summaries:
                for op, n in s["seen"].items():
                    stats.count(op, n, s["removed"].get(op, 0))
                    if s["removed"].get(op):
                        reasons[op] += s["removed"][op]
                figures = stats_add(figures, s["figures"])
            ids = [
                i for f in folders for i in pq.read_table(f / "kept.parquet", columns=["id"]).column("id").to_pylist()
            ]
            shutil.rmtree(scratch, ignore_errors=True)
            scratch.mkdir(parents=True)
            outcomes = resolve_dedups(
                dedups,
                lambda i: concat_keys(folders, i, dedups[i], scratch),
                len(ids),
                stats,
                runner.dedup_resolver(scratch),
            )
            engine = runner.info | (
                {"blocks": len(parts), "blocks_reused": reused} if ctx.recipe.engine == "ray" else {}
            )
        clock.lap("dedup")
        duplicate_of = duplicate_index(outcomes)
        clusters = {o.op.name: write_clusters(ctx.run, o.op.name, cluster_rows(o, ids)) for o in outcomes}
        index = 0
        for part, folder, summary in zip(parts, folders, summaries):
            start, index = index, index + summary["kept"]
            records = table_to_records(pq.read_table(folder / "kept.parquet"))
            keep, dups = split_duplicates(self.name, records, start, duplicate_of, ids, reasons)
            if part.stem not in out.done:  # shards an interrupted attempt committed are not written twice
                out.commit(keep, block_rejects(folder) + dups, [part.stem])
            ctx.reporter.advance(bar, kept=out.counts["records"], removed=out.counts["rejected"])
        ctx.reporter.done(bar)
        shutil.rmtree(blocks_dir, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
        counts = {
            "input": sum(s["n_in"] for s in summaries),
            "records": out.counts["records"],
            "rejected": out.counts["rejected"],
        }
        names = {op_label(build(c, ctx.recipe.base_dir)): c.name for c in op_configs} | {d.name: d.name for d in dedups}
        return counts, CleanFigures(
            removed_by_operator=dict(reasons.most_common()),
            seen_by_operator=stats.seen,
            operators=figures | {d.name: f for d in dedups if (f := d.stats())},
            operator_names=names,
            duplicate_clusters=clusters,
            engine=EngineInfo.model_validate(engine),
            seconds=clock.lap("commit"),
        )
