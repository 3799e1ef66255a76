"""Stage `clean`: mappers, the preset's and the recipe's filters, then dedup, over the featured records.

Two passes: the first streams shards through the per-record operators, writing survivors to a scratch folder and
dedup keys to disk; then the deduplicators resolve over the keys; the second pass splits each scratch shard into
kept records and duplicates. Duplicate clusters are written to `clean/duplicates-<operator>.jsonl`.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from typing import Any

import pyarrow.parquet as pq

from sftforge.engine.local import DedupOutcome, LocalEngine, op_label
from sftforge.ops import build
from sftforge.ops.base import Deduplicator
from sftforge.ops.presets import merged_filters
from sftforge.run import ShardLog, atomic_write_bytes, atomic_write_table
from sftforge.sample import Record, Rejected, records_to_table, table_to_records
from sftforge.stages.base import Context, Stage


def write_clusters(ctx: Context, outcome: DedupOutcome, ids: list[str]) -> str:
    """One JSON line per cluster: the survivor and its duplicates with their similarity; returns the file name."""
    clusters: dict[int, list[tuple[int, float]]] = {}
    for dup, (survivor, sim) in sorted(outcome.duplicates.items()):
        clusters.setdefault(survivor, []).append((dup, sim))
    lines = [
        json.dumps(
            {"survivor": ids[s], "size": len(members) + 1,
             "duplicates": [{"id": ids[d], "similarity": round(sim, 4)} for d, sim in members]},
            ensure_ascii=False,
        )
        for s, members in sorted(clusters.items(), key=lambda kv: -len(kv[1]))
    ]
    name = f"duplicates-{outcome.op.name}.jsonl"
    atomic_write_bytes(ctx.run.stage_dir("clean") / name, "".join(line + "\n" for line in lines).encode("utf-8"))
    return name


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


def split_duplicates(stage: str, records: list[Record], start: int, duplicate_of: dict[int, tuple[DedupOutcome, int, float]],
                     ids: list[str], reasons: Counter[str]) -> tuple[list[Record], list[Rejected]]:
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
    version = 2
    after = "features"  # not resumable: dedup state spans all shards, and a partial clean is cheap to redo

    def config(self, ctx: Context) -> Any:
        return ctx.recipe.cleaning.model_dump()

    def operator_configs(self, ctx: Context) -> tuple[list[Any], list[Any]]:
        """(mappers then filters, deduplicators) as configs, in the order they run."""
        cleaning = ctx.recipe.cleaning
        filters = merged_filters(cleaning.preset, ctx.recipe.task.language, list(cleaning.filters), ctx.recipe.task.type)
        return [*cleaning.mappers, *filters], list(cleaning.dedup)

    def operators(self, ctx: Context) -> tuple[list[Any], list[Deduplicator]]:
        base = ctx.recipe.base_dir
        op_configs, dedup_configs = self.operator_configs(ctx)
        return [build(c, base) for c in op_configs], [build(c, base) for c in dedup_configs]  # type: ignore[misc]

    def resumes(self, ctx: Context) -> bool:
        """On Ray, from the blocks that completed (a cluster run is long); locally a partial clean is cheap to redo."""
        return ctx.recipe.engine == "ray"

    def execute(self, ctx: Context, out: ShardLog) -> tuple[dict[str, int], dict[str, Any]]:
        if ctx.recipe.engine == "ray":
            from sftforge.stages.clean_ray import execute_on_ray

            return execute_on_ray(self, ctx, out)
        ops, dedups = self.operators(ctx)
        clock = PhaseClock()
        scratch = ctx.run.stage_dir(self.name) / "_scratch"
        shutil.rmtree(scratch, ignore_errors=True)
        engine = LocalEngine(self.name, ops, dedups, scratch)
        parts = sorted(ctx.run.stage_dir("features").glob("part-*.parquet"))
        bar = ctx.reporter.task("clean", total=len(parts) * 2)
        reasons: Counter[str] = Counter()
        n_in = 0
        ids: list[str] = []
        kept_parts = []
        for part in parts:
            kept, rejected = engine.process(table_to_records(pq.read_table(part)))
            n_in += len(kept) + len(rejected)
            reasons.update(r.operator for r in rejected)
            ids.extend(r.id for r in kept)
            if kept:
                path = scratch / part.name
                atomic_write_table(path, records_to_table(kept))
                kept_parts.append(path)
            if rejected:
                out.commit([], rejected, [])
            ctx.reporter.advance(bar, kept=len(ids), removed=out.counts["rejected"])

        clock.lap("operators")
        outcomes = engine.resolve()
        clock.lap("dedup")
        duplicate_of = duplicate_index(outcomes)
        clusters = {op_label(o.op): write_clusters(ctx, o, ids) for o in outcomes}

        index = 0
        for path in kept_parts:
            records = table_to_records(pq.read_table(path))
            keep, dups = split_duplicates(self.name, records, index, duplicate_of, ids, reasons)
            index += len(records)
            out.commit(keep, dups, [path.name])
            ctx.reporter.advance(bar, kept=out.counts["records"], removed=out.counts["rejected"])
        ctx.reporter.advance(bar, n=len(parts) - len(kept_parts))
        ctx.reporter.done(bar)
        shutil.rmtree(scratch, ignore_errors=True)
        counts = {"input": n_in, "records": out.counts["records"], "rejected": out.counts["rejected"]}
        extra = {
            "removed_by_operator": dict(reasons.most_common()),
            "seen_by_operator": engine.stats.seen,
            "operators": engine.op_stats(),
            "duplicate_clusters": clusters,
            "engine": {"name": "local"},
            "seconds": clock.lap("commit"),
        }
        return counts, extra
