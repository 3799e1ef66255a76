"""Stage `clean`: the recipe's filters, then dedup, over the generated records (local engine)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow.parquet as pq

from sftforge.engine.local import LocalEngine
from sftforge.ops import build
from sftforge.sample import table_to_records
from sftforge.run import ShardLog
from sftforge.stages.base import Context, Stage


class CleanStage(Stage):
    name = "clean"
    version = 1
    after = "generate"  # not resumable: dedup state spans all shards, and a partial clean is cheap to redo

    def config(self, ctx: Context) -> Any:
        return ctx.recipe.cleaning.model_dump()

    def execute(self, ctx: Context, out: ShardLog) -> tuple[dict[str, int], dict[str, Any]]:
        cleaning = ctx.recipe.cleaning
        ops = [build(c) for c in cleaning.filters] + [build(c) for c in cleaning.dedup]
        engine = LocalEngine(self.name, ops)
        parts = sorted(ctx.run.stage_dir("generate").glob("part-*.parquet"))
        bar = ctx.reporter.task("clean", total=len(parts))

        def batches():  # type: ignore[no-untyped-def]
            for part in parts:
                yield table_to_records(pq.read_table(part))

        reasons: Counter[str] = Counter()
        n_in = 0
        for part, (kept, rejected) in zip(parts, engine.run(batches())):
            n_in += len(kept) + len(rejected)
            reasons.update(r.operator for r in rejected)
            out.commit(kept, rejected, [part.name])
            ctx.reporter.advance(bar, kept=out.counts["records"], removed=out.counts["rejected"])
        ctx.reporter.done(bar)
        counts = {"input": n_in, "records": out.counts["records"], "rejected": out.counts["rejected"]}
        extra = {"removed_by_operator": dict(reasons.most_common()), "seen_by_operator": engine.stats.seen}
        return counts, extra
