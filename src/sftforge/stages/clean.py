"""Stage `clean`: mappers, the preset's and the recipe's filters, then dedup, over the featured records.

Two passes: the first streams shards through the per-record operators, writing survivors to a scratch folder and
dedup keys to disk; then the deduplicators resolve over the keys; the second pass splits each scratch shard into
kept records and duplicates. Duplicate clusters are written to `clean/duplicates-<operator>.jsonl`.
"""

from __future__ import annotations

import json
import shutil
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


class CleanStage(Stage):
    name = "clean"
    version = 2
    after = "features"  # not resumable: dedup state spans all shards, and a partial clean is cheap to redo

    def config(self, ctx: Context) -> Any:
        return ctx.recipe.cleaning.model_dump()

    def operators(self, ctx: Context) -> tuple[list[Any], list[Deduplicator]]:
        cleaning = ctx.recipe.cleaning
        filters = merged_filters(cleaning.preset, ctx.recipe.task.language, list(cleaning.filters), ctx.recipe.task.type)
        base = ctx.recipe.base_dir
        ops = [build(c, base) for c in cleaning.mappers] + [build(c, base) for c in filters]
        return ops, [build(c, base) for c in cleaning.dedup]  # type: ignore[misc]

    def execute(self, ctx: Context, out: ShardLog) -> tuple[dict[str, int], dict[str, Any]]:
        ops, dedups = self.operators(ctx)
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

        outcomes = engine.resolve()
        duplicate_of: dict[int, tuple[DedupOutcome, int, float]] = {}
        for outcome in outcomes:
            for dup, (survivor, sim) in outcome.duplicates.items():
                duplicate_of[dup] = (outcome, survivor, sim)
        clusters = {op_label(o.op): write_clusters(ctx, o, ids) for o in outcomes}

        index = 0
        for path in kept_parts:
            records = table_to_records(pq.read_table(path))
            keep: list[Record] = []
            dups: list[Rejected] = []
            for r in records:
                if index in duplicate_of:
                    outcome, survivor, sim = duplicate_of[index]
                    reason = f"duplicate of {ids[survivor]}: {outcome.op.describe(sim)}"
                    dups.append(Rejected(r, self.name, outcome.op.name, reason))
                    reasons[outcome.op.name] += 1
                else:
                    keep.append(r)
                index += 1
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
        }
        return counts, extra
