"""`sources.datasets`: instruction datasets a user already has (Alpaca, ShareGPT, OpenAI messages, any columns
mapped), imported as records with their lineage (file, row, original id) and ranked by relevance to the task (data
search). The `import` generator passes them on, most relevant first, for its share of the target; a recipe whose
only generator is `import` is a curation recipe.

Rows stream from the files into `sources/datasets/imported.parquet` in batches, so a million-row file is never
held as Python objects; rows that do not fit are counted by reason, the first ones named, in the manifest.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field, field_validator

from sftforge.config import DataSearch, Strict
from sftforge.errors import SourceError
from sftforge.figures import DatasetFigures, DatasetFile, SkippedRow
from sftforge.run import atomic_folder
from sftforge.sample import RECORD_SCHEMA, Lineage, Record, SourceRef, record_id
from sftforge.sources.datasets import (
    FIELDS,
    Layout,
    RowProblem,
    check_columns,
    dataset_files,
    detect,
    file_rows,
    to_example,
)
from sftforge.sources.kinds.base import ReadContext, SourceKind, register
from sftforge.sources.retrieval import Ranking, rank_texts
from sftforge.storage import datasets_dir, write_ranking

if TYPE_CHECKING:
    from sftforge.recipe import Recipe

log = logging.getLogger(__name__)

GENERATOR = "import"  # the lineage's generator of imported records
NAMED_ROWS = 50  # skipped rows named one by one in the manifest; the rest are counted by reason
BATCH = 5000  # rows converted and written at a time
# Tokens of an example's first user turn the MiniLM search reads: its opening says what task it is, and the
# embedder's cost grows with length (about 200 examples/s on 2 cores at 32 tokens, 100/s at 64).
SEARCH_TOKENS = 32


class DatasetSource(Strict):
    """A file, folder or glob of instruction data, or a `datasets` save_to_disk folder."""

    path: str = Field(
        description="A .jsonl/.json/.csv/.tsv/.parquet file, a folder of them, a glob, or a `datasets` "
        "save_to_disk folder; relative to the recipe file."
    )
    format: Literal["auto", "alpaca", "sharegpt", "messages"] = Field(
        "auto", description="The rows' shape; auto: decided by the first row (and held for the whole file)."
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description=f"The file's column for each field the shape reads ({', '.join(FIELDS)}), where it differs.",
    )
    split: str | None = Field(None, description="A `datasets` DatasetDict's split (default: train).")
    limit: int | None = Field(None, ge=1, description="Read at most this many rows of each file.")

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}; map any of {', '.join(FIELDS)} to a column of the file")
        return value


def query_of(recipe: Recipe) -> str:
    return recipe.sources.search.query or recipe.task.description


def _where(base: Path, path: Path) -> str:
    """A file's name in lineage: relative to the recipe's folder where it is under it."""
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


class _Import:
    """One import: converts rows to records, writes them in batches, counts what did not fit."""

    def __init__(self, recipe: Recipe, writer: pq.ParquetWriter, keep_texts: bool) -> None:
        self.recipe = recipe
        self.writer = writer
        self.texts: list[str] | None = [] if keep_texts else None
        self.pending: list[Record] = []
        self.reasons: Counter[str] = Counter()
        self.named: list[SkippedRow] = []
        self.files: list[DatasetFile] = []
        self.imported = 0

    def skip(self, where: str, reason: str) -> None:
        self.reasons[reason.split(" (")[0].split(": ")[0]] += 1
        if len(self.named) < NAMED_ROWS:
            self.named.append(SkippedRow(where=where, reason=reason))

    def flush(self) -> None:
        if self.pending:
            self.writer.write_table(pa.Table.from_pylist([r.to_row() for r in self.pending], schema=RECORD_SCHEMA))
            self.pending = []

    def file(self, entry: DatasetSource, index: int, path: Path, tick: Any) -> None:
        layout = Layout(None if entry.format == "auto" else entry.format, dict(entry.columns))
        name = _where(self.recipe.resolve("."), path)
        bad: list[tuple[str, str]] = []
        rows = imported = skipped = 0
        decided_at = ""
        lang, task = self.recipe.task.language, self.recipe.task.type
        for row in file_rows(path, entry.split, bad):
            if entry.limit is not None and rows >= entry.limit:
                break
            if rows == 0:
                check_columns(row, layout, f"sources.datasets[{index}]")
            rows += 1
            if layout.shape is None:
                layout.shape = detect(row.data, layout)
                decided_at = row.where
            try:
                example = to_example(row.data, layout, decided_at or "the recipe's format")
            except RowProblem as problem:
                skipped += 1
                self.skip(row.where.replace(str(path), name), str(problem).replace(str(path), name))
                continue
            source = [SourceRef("row", example.original_id or f"row {row.number}", doc_id=name, row=row.number)]
            lineage = Lineage(generator=GENERATOR, model="none")
            rid = record_id(example.messages, source, GENERATOR)
            self.pending.append(Record(rid, example.messages, task, lang, source, lineage))
            if self.texts is not None:
                self.texts.append(next(m["content"] for m in example.messages if m["role"] == "user"))
            imported += 1
            if len(self.pending) >= BATCH:
                self.flush()
                tick(BATCH)
        self.flush()
        for where, reason in bad:
            skipped += 1
            self.skip(where.replace(str(path), name), reason)
        self.imported += imported
        self.files.append(DatasetFile(path=name, shape=layout.shape, rows=rows, imported=imported, skipped=skipped))
        log.info("sources: %s: %d rows, %d imported as %s, %d skipped", name, rows, imported, layout.shape, skipped)


@register
class Datasets(SourceKind):
    name = "datasets"
    Config = DatasetSource
    many = True
    description = "Instruction datasets you have (Alpaca, ShareGPT, OpenAI messages, mapped columns), for `import`."
    needed_as = "instruction data files or `datasets` folders"
    settings = {"search": (DataSearch, Field(default_factory=DataSearch))}

    @classmethod
    def paths(cls, recipe: Recipe) -> list[tuple[int, DatasetSource, Path]]:
        base = recipe.resolve(".")
        return [(i, e, p) for i, e in enumerate(recipe.sources.datasets) for p in dataset_files(e.path, base)]

    @classmethod
    def files(cls, recipe: Recipe) -> list[Path]:
        out = []
        for _, _, path in cls.paths(recipe):
            out += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        return out

    @classmethod
    def fingerprint(cls, recipe: Recipe) -> dict[str, Any]:
        return {"datasets": {"query": query_of(recipe), "lang": recipe.task.language, "task": recipe.task.type}}

    @classmethod
    def read(cls, ctx: ReadContext) -> tuple[dict[str, int], dict[str, Any]]:
        recipe = ctx.recipe
        search = recipe.sources.search
        paths = cls.paths(recipe)
        bar = ctx.reporter.task("sources: importing datasets", total=None)
        with atomic_folder(datasets_dir(ctx.run)) as folder:
            with pq.ParquetWriter(folder / "imported.parquet", RECORD_SCHEMA, compression="zstd") as writer:
                job = _Import(recipe, writer, keep_texts=search.method != "none")
                for index, entry, path in paths:
                    job.file(entry, index, path, lambda n: ctx.reporter.advance(bar, n=n))
            ctx.reporter.done(bar)
            if not job.imported:
                first = job.named[0] if job.named else None
                raise SourceError(
                    f"sources.datasets: no row could be imported from {len(paths)} file(s)"
                    + (f"; e.g. {first.where}: {first.reason}" if first else "")
                )
            ranking = cls._rank(ctx, job.texts or [], job.imported)
            write_ranking(folder, ranking.order, ranking.similarity)
        figures = DatasetFigures(
            files=job.files,
            skipped_by_reason=dict(job.reasons.most_common()),
            skipped_rows=job.named,
            search=search.method,
            query=query_of(recipe) if search.method != "none" else None,
            kept=len(ranking.order),
        )
        counts = {
            "dataset_rows": sum(f.rows for f in job.files),
            "imported": job.imported,
            "rows_skipped": sum(job.reasons.values()),
            "search_kept": len(ranking.order),
        }
        return counts, {"datasets": figures}

    @classmethod
    def _rank(cls, ctx: ReadContext, texts: list[str], n: int) -> Ranking:

        search = ctx.recipe.sources.search
        if search.method == "none":
            import numpy as np

            order = np.arange(n)[: search.top_k]
            return Ranking(order, np.full(n, np.nan, dtype=np.float32))
        embedder = None
        if search.method != "bm25":
            from sftforge.lib.embed import Embedder

            embedder = Embedder(
                ctx.recipe.resolve(search.embedder) if search.embedder else None, max_length=SEARCH_TOKENS
            )
        bar = ctx.reporter.task("sources: searching datasets", total=1)
        ranking = rank_texts(
            texts, query_of(ctx.recipe), ctx.recipe.task.language, search.method, embedder,
            search.min_similarity, search.top_k,
        )  # fmt: skip
        ctx.reporter.advance(bar)
        ctx.reporter.done(bar)
        if not len(ranking.order):
            raise SourceError(
                f"sources.search kept none of {n} imported examples (min_similarity {search.min_similarity}); "
                "lower sources.search.min_similarity or change sources.search.query"
            )
        return ranking
