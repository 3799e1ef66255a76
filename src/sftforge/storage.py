"""What each stage leaves in the run directory besides its record shards, read and written in one place.

`run.py` holds the run directory's mechanics (the manifest, shards and their ledger, atomic writes); this module
holds the files every stage writes for the ones after it, and for the rounds, the report, the dataset card and
the CLI, so no reader imports the stage that wrote a file:

    sources/chunks.parquet, documents.parquet     passages (ranked) and the documents they come from
    sources/datasets/imported.parquet, ranking.parquet  imported examples (records) and the data search's order
    features/vectors/<feature>-part-*.parquet     vector features (record id, vector)
    clean/duplicates-<operator>.jsonl             duplicate clusters
    select/assignments.parquet                    every cleaned record's split, arm, selection and token cost
    train/metrics.jsonl, arms.json, adapter|model  the training curve, the learnt arm values, the weights
    evaluate/results.json, answers.jsonl          base vs fine-tuned metrics, every generated answer
    plan.json                                     a later round's plan (the closed loop)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from sftforge.errors import StageError
from sftforge.rows import read_rows
from sftforge.run import RunDir, atomic_write_bytes, atomic_write_table
from sftforge.sources.chunking import Passage

# -- sources ---------------------------------------------------------------------------------------------------------

CHUNK_SCHEMA = pa.schema(
    [
        ("chunk_id", pa.string()),
        ("doc_id", pa.string()),
        ("index", pa.int32()),
        ("start", pa.int64()),
        ("end", pa.int64()),
        ("page", pa.int32()),  # a PDF's page (1-based) where the chunk starts; null for other documents
        ("text", pa.string()),
        ("n_tokens", pa.int32()),
        ("score", pa.float32()),
        ("rank", pa.int32()),
        ("used", pa.bool_()),
    ]
)
DOC_SCHEMA = pa.schema([("doc_id", pa.string()), ("path", pa.string()), ("text", pa.string())])


def write_passages(run: RunDir, chunks: pa.Table, documents: pa.Table) -> None:
    """The sources stage's output: every chunk (CHUNK_SCHEMA, in rank order) and every document (DOC_SCHEMA)."""
    atomic_write_table(run.stage_dir("sources") / "chunks.parquet", chunks.cast(CHUNK_SCHEMA))
    atomic_write_table(run.stage_dir("sources") / "documents.parquet", documents.cast(DOC_SCHEMA))


def has_passages(run: RunDir) -> bool:
    """Whether the sources stage wrote passages (a run with documents whose sources stage has finished)."""
    return (run.stage_dir("sources") / "chunks.parquet").exists()


def read_chunks(run: RunDir, used_only: bool = True) -> list[dict[str, Any]]:
    """The chunks as rows, in rank order; `used_only`: those generation may use."""
    table = pq.read_table(run.stage_dir("sources") / "chunks.parquet")
    return (table.filter(table["used"]) if used_only else table).to_pylist()


def read_passages(run: RunDir) -> list[Passage]:
    """The usable passages, best first."""
    return [
        Passage(r["chunk_id"], r["doc_id"], r["start"], r["end"], r["text"], r.get("page")) for r in read_chunks(run)
    ]


def read_documents(run: RunDir) -> dict[str, str]:
    """Document id -> text (empty when the run has no documents)."""
    path = run.stage_dir("sources") / "documents.parquet"
    if not path.exists():
        return {}
    table = pq.read_table(path, columns=["doc_id", "text"])
    return dict(zip(table.column("doc_id").to_pylist(), table.column("text").to_pylist(), strict=True))


def datasets_dir(run: RunDir) -> Path:
    return run.stage_dir("sources") / "datasets"


def write_ranking(folder: Path, order: np.ndarray, similarity: np.ndarray) -> None:
    """The data search's result: the kept rows of imported.parquet, most relevant first, with their cosine."""
    table = pa.table({"row": pa.array(order, pa.int64()), "similarity": pa.array(similarity[order], pa.float32())})
    atomic_write_table(folder / "ranking.parquet", table)


def read_ranking(run: RunDir) -> np.ndarray:
    """The kept rows of the imported examples, most relevant first."""
    path = datasets_dir(run) / "ranking.parquet"
    if not path.exists():
        raise StageError("generate: the sources stage has not imported sources.datasets; run `sftforge run` first")
    return pq.read_table(path, columns=["row"]).column("row").to_numpy()


def imported_batches(run: RunDir, rows: np.ndarray, size: int) -> Iterator[pa.Table]:
    """The imported examples at `rows` (RECORD_SCHEMA), in that order, `size` at a time. File order streams;
    another order reads the table once (Arrow buffers, not Python objects) and takes from it."""
    path = datasets_dir(run) / "imported.parquet"
    if len(rows) and np.array_equal(rows, np.arange(len(rows))):
        done = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=size):
            batch = batch.slice(0, len(rows) - done)
            done += batch.num_rows
            yield pa.Table.from_batches([batch])
            if done >= len(rows):
                return
        return
    table = pq.read_table(path)
    for start in range(0, len(rows), size):
        yield table.take(pa.array(rows[start : start + size]))


# -- features --------------------------------------------------------------------------------------------------------


def _vectors_dir(run: RunDir) -> Path:
    return run.stage_dir("features") / "vectors"


def write_vectors(run: RunDir, feature: str, part: str, ids: list[str], matrix: np.ndarray) -> None:
    """One shard's vectors of a vector feature, rows in record order."""
    table = pa.table(
        {
            "id": pa.array(ids, pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(
                pa.array(np.asarray(matrix, np.float32).reshape(-1)), matrix.shape[1]
            ),
        }
    )
    atomic_write_table(_vectors_dir(run) / f"{feature}-{part}.parquet", table)


def read_vectors(run: RunDir, feature: str) -> tuple[list[str], np.ndarray]:
    """(record ids, float32 matrix) of vector feature `feature`, or ([], empty) if it was not computed."""
    parts = sorted(_vectors_dir(run).glob(f"{feature}-part-*.parquet"))
    if not parts:
        return [], np.zeros((0, 0), np.float32)
    table = pa.concat_tables([pq.read_table(p) for p in parts])
    ids = table.column("id").to_pylist()
    flat = table.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return ids, flat.astype(np.float32).reshape(len(ids), -1)


# -- clean -----------------------------------------------------------------------------------------------------------


def write_clusters(run: RunDir, operator: str, clusters: list[dict[str, Any]]) -> str:
    """A deduplicator's clusters, one JSON line each ({survivor, size, duplicates: [{id, similarity}]}); returns
    the file name (for the manifest)."""
    name = f"duplicates-{operator}.jsonl"
    lines = "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in clusters)
    atomic_write_bytes(run.stage_dir("clean") / name, lines.encode("utf-8"))
    return name


def read_clusters(run: RunDir, name: str) -> list[dict[str, Any]] | None:
    """The clusters of a file `write_clusters` named, or None if it is gone."""
    path = run.stage_dir("clean") / name
    if not path.exists():
        return None
    return [row.data for row in read_rows(path, on_bad="raise")]


# -- select ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Assignment:
    """One cleaned record's place in the selection: its split (train, eval, probe), its bandit arm (-1: none),
    whether the static strategy chose it, and its cost in model tokens."""

    split: str
    arm: int
    selected: bool
    tokens: int


def write_assignments(run: RunDir, ids: list[str], assignments: list[Assignment]) -> None:
    atomic_write_table(
        run.stage_dir("select") / "assignments.parquet",
        pa.table(
            {
                "id": pa.array(ids, pa.string()),
                "split": pa.array([a.split for a in assignments], pa.string()),
                "arm": pa.array([a.arm for a in assignments], pa.int64()),
                "selected": pa.array([a.selected for a in assignments], pa.bool_()),
                "tokens": pa.array([a.tokens for a in assignments], pa.int64()),
            }
        ),
    )


def has_assignments(run: RunDir) -> bool:
    return (run.stage_dir("select") / "assignments.parquet").exists()


def read_assignments(run: RunDir) -> dict[str, Assignment]:
    """Record id -> its assignment, in record order; a StageError when the run has no selection yet."""
    path = run.stage_dir("select") / "assignments.parquet"
    if not path.exists():
        raise StageError(f"no selection in {run.path}: run `sftforge select {run.path}` first")
    rows = pq.read_table(path).to_pylist()
    return {r["id"]: Assignment(r["split"], int(r["arm"]), bool(r["selected"]), int(r["tokens"])) for r in rows}


# -- train -----------------------------------------------------------------------------------------------------------


class ArmValue(BaseModel):
    """A bandit arm after training: its records, how many the budget chose, its learnt value and final
    probability (None for policies without one)."""

    model_config = ConfigDict(extra="forbid")

    arm: int
    name: str
    records: int
    chosen: int
    value: float
    probability: float | None = None


def weights_dir(run: RunDir, method: str) -> Path:
    """Where the train stage leaves the fine-tuned weights: the adapter (LoRA) or the whole model (full)."""
    return run.stage_dir("train") / ("adapter" if method == "lora" else "model")


def metrics_path(run: RunDir) -> Path:
    return run.stage_dir("train") / "metrics.jsonl"


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The rows of a training metrics file (a line torn by a crash is passed over)."""
    return [row.data for row in read_rows(path, on_bad="skip")] if path.exists() else []


def write_arms(run: RunDir, arms: Iterable[ArmValue]) -> None:
    data = json.dumps([a.model_dump() for a in arms], indent=1)
    atomic_write_bytes(run.stage_dir("train") / "arms.json", data.encode("utf-8"))


def read_arms(run: RunDir) -> list[ArmValue] | None:
    """The learnt arm values, or None when the run trained no bandit."""
    path = run.stage_dir("train") / "arms.json"
    if not path.exists():
        return None
    return [ArmValue.model_validate(a) for a in json.loads(path.read_text(encoding="utf-8"))]


# -- evaluate --------------------------------------------------------------------------------------------------------


def write_evaluation(run: RunDir, results: dict[str, Any], answers: list[dict[str, Any]]) -> None:
    """Per evaluation set: base, tuned and delta metrics (results.json); every generated answer (answers.jsonl)."""
    out = run.stage_dir("evaluate")
    atomic_write_bytes(out / "results.json", json.dumps(results, indent=1).encode("utf-8"))
    atomic_write_bytes(
        out / "answers.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in answers).encode("utf-8")
    )


def read_evaluation(run: RunDir) -> dict[str, Any] | None:
    path = run.stage_dir("evaluate") / "results.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


# -- rounds ----------------------------------------------------------------------------------------------------------


class ArmShare(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    value: float
    share: float
    fresh_passages: int


class RoundPlan(BaseModel):
    """A later round of the closed loop: a weight per fresh passage (chunk id), the run whose cleaned records join
    this round's pool (relative to this run), and the shares behind the weights."""

    model_config = ConfigDict(extra="forbid")

    round: int
    carry: str
    weights: dict[str, float]
    arms: list[ArmShare]
    uncovered_passages: int
    used_passages: int


def write_plan(run: RunDir, plan: RoundPlan) -> None:
    atomic_write_bytes(run.path / "plan.json", json.dumps(plan.model_dump(), indent=1).encode("utf-8"))


def read_plan(run: RunDir) -> RoundPlan | None:
    """The round's plan, if this run directory is a later round of a closed loop."""
    path = run.path / "plan.json"
    return RoundPlan.model_validate_json(path.read_text(encoding="utf-8")) if path.exists() else None
