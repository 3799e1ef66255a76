"""Stage `features`: the recipe's feature operators over the generated records, computed once.

Expensive features (perplexity, IFD, LLM judge, embeddings) are paid for here, so that changing a filter's bounds
re-runs cleaning without recomputing them. Resumable per input shard. Vector features go to
`features/vectors/<feature>-<input part>.parquet` (record id, vector), read back with `read_vectors`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sftforge.engine.blocks import FeaturesWorker, open_runner
from sftforge.engine.local import op_label
from sftforge.engine.ray_engine import settings_of
from sftforge.ops import build
from sftforge.run import RunDir, ShardLog, atomic_write_table
from sftforge.sample import table_to_records
from sftforge.stages.base import Context, Stage


def vectors_dir(run: RunDir) -> Path:
    return run.stage_dir("features") / "vectors"


def read_vectors(run: RunDir, name: str) -> tuple[list[str], np.ndarray]:
    """(record ids, float32 matrix) of vector feature `name`, or ([], empty) if it was not computed."""
    parts = sorted(vectors_dir(run).glob(f"{name}-part-*.parquet"))
    if not parts:
        return [], np.zeros((0, 0), np.float32)
    table = pa.concat_tables([pq.read_table(p) for p in parts])
    ids = table.column("id").to_pylist()
    flat = table.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return ids, flat.astype(np.float32).reshape(len(ids), -1)


class FeaturesStage(Stage):
    name = "features"
    version = 1
    after = "generate"
    resumable = True

    def config(self, ctx: Context) -> Any:
        return [f.model_dump() for f in ctx.recipe.features]

    def execute(self, ctx: Context, out: ShardLog) -> tuple[dict[str, int], dict[str, Any]]:
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
        return {"records": out.counts["records"]}, {"features": names, "engine": info}

    def _commit(self, ctx: Context, out: ShardLog, part: Path, records: list, vectors: dict[str, np.ndarray],
                bar: Any) -> None:
        """One shard's featured records, and its vector features beside them."""
        for name, matrix in vectors.items():
            table = pa.table(
                {
                    "id": pa.array([r.id for r in records], pa.string()),
                    "vector": pa.FixedSizeListArray.from_arrays(
                        pa.array(np.asarray(matrix, np.float32).reshape(-1)), matrix.shape[1]
                    ),
                }
            )
            atomic_write_table(vectors_dir(ctx.run) / f"{name}-{part.stem}.parquet", table)
        out.commit(records, [], [part.name])
        ctx.reporter.advance(bar, records=out.counts["records"])
