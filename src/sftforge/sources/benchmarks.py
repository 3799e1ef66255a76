"""Benchmark files for decontamination: which files a recipe's benchmark entry names, and their items' text.

Rows are read by `sftforge.rows` (JSON Lines, JSON, CSV/TSV, Parquet); a bad row raises a BenchmarkError that
names the file and line. The items go to `sftforge.lib.decontam.DecontaminationIndex`, which does no I/O.
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sftforge.lib.decontam import Benchmark, BenchmarkError, BenchmarkItem, DecontaminationIndex
from sftforge.rows import SUFFIXES, missing_field, read_rows

FIX = ". Set the benchmark's `fields` (and `id_field`, `split_field`) to names that exist in the file."


class BenchmarkSpec(BaseModel):
    """One benchmark in a recipe: which file(s), which fields hold its text, what to call it."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="A .jsonl/.json/.csv/.tsv/.parquet file, a folder of them, or a glob pattern.")
    fields: list[str] = Field(min_length=1, description="Fields holding the benchmark text, e.g. [question].")
    name: str | None = Field(default=None, description="Name in reasons and stats; default: the file stem.")
    id_field: str | None = Field(default=None, description="Field with the item id (e.g. task_id); default: row.")
    split_field: str | None = Field(default=None, description="Only rows whose split_field is one of `splits`.")
    splits: list[str] | None = None

    @model_validator(mode="after")
    def _check_split(self) -> BenchmarkSpec:
        if (self.split_field is None) != (self.splits is None):
            raise ValueError("split_field and splits go together: name the field and the values to keep")
        return self

    @property
    def benchmark_name(self) -> str:
        if self.name:
            return self.name
        parts = Path(self.path).parts
        plain = [p for p in parts if not glob.has_magic(p)]
        if len(plain) < len(parts):  # a glob: name it after the folder before the pattern
            plain = list(parts[: next(i for i, p in enumerate(parts) if glob.has_magic(p))])
            return Path(*plain).name if plain else "benchmark"
        return Path(self.path).stem or "benchmark"


def _files(spec: BenchmarkSpec) -> list[Path]:
    raw = spec.path
    if glob.has_magic(raw):
        files = sorted(Path(p) for p in glob.glob(raw, recursive=True) if Path(p).is_file())
        if not files:
            raise BenchmarkError(f"benchmark {spec.benchmark_name!r}: no files match {raw}")
        return files
    path = Path(raw)
    if path.is_dir():
        files = sorted(
            p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith(".")
        )
        if not files:
            raise BenchmarkError(f"benchmark {spec.benchmark_name!r}: folder {path} has no {', '.join(SUFFIXES)} files")
        return files
    if not path.exists():
        where = f" (resolved to {path.resolve()})" if not path.is_absolute() else ""
        raise BenchmarkError(
            f"benchmark {spec.benchmark_name!r}: file {raw} not found{where}; check the benchmark's `path`"
        )
    return [path]


def _text(value: Any, fieldname: str, where: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):  # e.g. MMLU's `choices` column: one line per element
        return "\n".join(_text(v, fieldname, where) for v in value)
    raise BenchmarkError(
        f"field {fieldname!r} in {where} is a {type(value).__name__}, not text or a list of texts; "
        "name a field that holds text (nested fields are not supported)"
    )


def load_benchmark(spec: BenchmarkSpec) -> Benchmark:
    """Read a benchmark's items: the text of `spec.fields` for each row (rows outside `splits` skipped)."""
    files = _files(spec)
    needed = list(spec.fields)
    for extra in (spec.id_field, spec.split_field):
        if extra is not None:
            needed.append(extra)
    keep = set(spec.splits) if spec.splits is not None else None
    items: list[BenchmarkItem] = []
    for path in files:
        for row_no, row in enumerate(read_rows(path, on_bad="raise", columns=needed, error=BenchmarkError, fix=FIX)):
            where = row.where
            for name in needed:
                if name not in row.data:
                    raise BenchmarkError(missing_field(name, where, list(row.data)) + FIX)
            data = row.data
            if (
                keep is not None
                and spec.split_field is not None  # set with `splits` (the validator above)
                and _text(data[spec.split_field], str(spec.split_field), where) not in keep
            ):
                continue
            if spec.id_field is not None:
                item_id = _text(data[spec.id_field], spec.id_field, where)
            else:
                item_id = f"{path.stem}:{row_no}" if len(files) > 1 else str(row_no)
            items.append(BenchmarkItem(item_id, [_text(data[f], f, where) for f in spec.fields]))
    if not items:
        which = f" with {spec.split_field} in {spec.splits}" if spec.splits is not None else ""
        raise BenchmarkError(f"benchmark {spec.benchmark_name!r}: no rows{which} in {', '.join(map(str, files))}")
    return Benchmark(spec.benchmark_name, items, files, list(spec.fields))


def index_benchmarks(specs: Sequence[BenchmarkSpec], index: DecontaminationIndex) -> DecontaminationIndex:
    """`index` (empty, with its matching settings) filled with every benchmark of a recipe entry (names must be
    distinct)."""
    names = [s.benchmark_name for s in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise BenchmarkError(f"benchmark name(s) {', '.join(map(repr, dup))} used twice; give each a distinct `name`")
    for spec in specs:
        index.add(load_benchmark(spec))
    return index
