"""Stage `features`: the recipe's feature operators over the generated records, computed once.

Expensive features (perplexity, IFD, LLM judge, embeddings) are paid for here, so that changing a filter's bounds
re-runs cleaning without recomputing them. Resumable per input shard. Vector features go to
`features/vectors/<feature>-<input part>.parquet` (record id, vector), read back with `storage.read_vectors`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sftforge.engine.base import open_runner, settings_of
from sftforge.engine.blocks import FeaturesWorker
from sftforge.engine.processing import op_label
from sftforge.figures import EngineInfo, FeaturesFigures
from sftforge.ops import build
from sftforge.run import ShardLog
from sftforge.sample import table_to_records
from sftforge.stages.base import Context, Stage
from sftforge.storage import write_vectors


class FeaturesStage(Stage):
    name = "features"
    version = 1
    after = "generate"
    resumable = True

    def config(self, ctx: Context) -> Any:
        return [f.model_dump() for f in ctx.recipe.features]

    def execute(self, ctx: Context, out: ShardLog) -> tuple[dict[str, int], FeaturesFigures]:
        parts = sorted(ctx.run.stage_dir("generate").glob("part-*.parquet"))
        pending = [p for p in parts if p.name not in out.done]
        bar = ctx.reporter.task("features", total=len(parts))
        ctx.reporter.advance(bar, n=len(parts) - len(pending))
        names = sorted({op_label(build(c, ctx.recipe.base_dir)) for c in ctx.recipe.features})
        engine = ctx.recipe.engine if ctx.recipe.features else "local"  # without features nothing to distribute
        with open_runner(engine, settings_of(ctx.recipe.ray)) as runner:
            init = (list(ctx.recipe.features), ctx.recipe.base_dir)
            for part, (table, vectors) in zip(pending, runner.map(FeaturesWorker, init, [str(p) for p in pending])):
                self._commit(ctx, out, part, table_to_records(table), vectors, bar)
            info = runner.info
        ctx.reporter.done(bar)
        return {"records": out.counts["records"]}, FeaturesFigures(
            features=names, engine=EngineInfo.model_validate(info)
        )

    def _commit(
        self, ctx: Context, out: ShardLog, part: Path, records: list, vectors: dict[str, np.ndarray], bar: Any
    ) -> None:
        """One shard's featured records, and its vector features beside them."""
        for name, matrix in vectors.items():
            write_vectors(ctx.run, name, part.stem, [r.id for r in records], matrix)
        out.commit(records, [], [part.name])
        ctx.reporter.advance(bar, records=out.counts["records"])
