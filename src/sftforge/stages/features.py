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

from sftforge.engine.local import compute_features, op_label
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
        ops = [build(c, ctx.recipe.base_dir) for c in ctx.recipe.features]
        for op in ops:
            op.setup()
        parts = sorted(ctx.run.stage_dir("generate").glob("part-*.parquet"))
        bar = ctx.reporter.task("features", total=len(parts))
        ctx.reporter.advance(bar, n=sum(p.name in out.done for p in parts))
        for part in parts:
            if part.name in out.done:
                continue
            records = table_to_records(pq.read_table(part))
            vectors = compute_features(ops, records)
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
        ctx.reporter.done(bar)
        names = sorted({op_label(op) for op in ops})
        return {"records": out.counts["records"]}, {"features": names}
