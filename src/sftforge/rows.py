"""Rows of data files: one reader for JSON Lines, JSON, CSV/TSV and Parquet, used by every part that reads rows
(document tables, seed tasks, benchmarks, evaluation sets, review decisions, training metrics).

Each row comes with where it stands (`path, line 12`; `path, item 3` in a JSON list; `path, row 4` in Parquet), so
an error can name it. What a bad row does is the caller's explicit policy, `on_bad`:

- `raise`: the first bad row raises the caller's error class, naming the file and the line;
- `skip`: the row is passed over and named, with the reason, in the caller's `skipped` list; reading goes on.

A bad row is a JSON Lines line that is not valid JSON, not UTF-8 or not an object, or a CSV row with fewer
columns than the header. A file that cannot be read at all (not Parquet, not JSON, a missing column) always
raises: no policy makes a wrong file right.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sftforge.errors import SftforgeError

OnBad = Literal["raise", "skip"]
SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet")


class RowError(SftforgeError):
    """A data file or one of its rows cannot be read (the default error class of `read_rows`)."""


@dataclass(frozen=True, slots=True)
class Row:
    """One row: where it is (for messages), its 1-based line (JSON Lines, CSV) or position, and its fields."""

    where: str
    number: int
    data: dict[str, Any]


@dataclass(slots=True)
class _Reading:
    path: Path
    on_bad: OnBad
    skipped: list[tuple[str, str]] | None
    error: type[SftforgeError]
    fix: str

    def bad(self, where: str, reason: str) -> None:
        """Apply the bad-row policy: raise, or note the row as skipped."""
        if self.on_bad == "raise":
            raise self.error(f"{where}: {reason}")
        if self.skipped is not None:
            self.skipped.append((where, reason))


def read_rows(
    path: Path,
    *,
    on_bad: OnBad,
    skipped: list[tuple[str, str]] | None = None,
    columns: Sequence[str] | None = None,
    error: type[SftforgeError] = RowError,
    fix: str = "",
) -> Iterator[Row]:
    """The rows of a .jsonl/.ndjson, .json, .csv/.tsv or .parquet file, in file order, as dicts.

    `columns`: fields a tabular file (CSV, Parquet) must have; Parquet reads only these. `error`: the class raised
    (the caller's own, e.g. SourceError), with a message that names the file and line; `fix` is appended to the
    message about a missing column (what the user should change)."""
    reading = _Reading(Path(path), on_bad, skipped, error, fix)
    suffix = reading.path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        rows = _json_lines(reading)
    elif suffix == ".json":
        rows = _json(reading)
    elif suffix in (".csv", ".tsv"):
        rows = _csv(reading, columns or ())
    elif suffix == ".parquet":
        rows = _parquet(reading, columns)
    else:
        raise error(f"{path}: unsupported data format {suffix or '(no suffix)'!r}; use {', '.join(SUFFIXES)}")
    try:
        yield from rows
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or exc})") from None


def _json_lines(r: _Reading) -> Iterator[Row]:
    with open(r.path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            where = f"{r.path}, line {number}"
            try:
                row = json.loads(raw.decode("utf-8-sig" if number == 1 else "utf-8"))
            except UnicodeDecodeError as exc:
                r.bad(where, f"not UTF-8 text ({exc.reason} at byte {exc.start})")
                continue
            except json.JSONDecodeError as exc:
                r.bad(where, f"not valid JSON ({exc.msg}); each line must be one JSON object")
                continue
            if not isinstance(row, dict):
                r.bad(where, f"a JSON {type(row).__name__}, expected an object")
                continue
            yield Row(where, number, row)


def _json(r: _Reading) -> Iterator[Row]:
    try:
        data = json.loads(r.path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise r.error(f"{r.path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # JSON Lines under a .json name
            yield from _json_lines(r)
            return
        raise r.error(f"{r.path}, line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if isinstance(data, dict):  # {"data": [...]} or {"test": [...]}: the one list of objects inside
        lists = [k for k, v in data.items() if isinstance(v, list)]
        if len(lists) != 1:
            raise r.error(
                f"{r.path}: expected a list of objects (or JSON lines), found an object with keys {list(data)}"
            )
        data = data[lists[0]]
    if not isinstance(data, list):
        raise r.error(f"{r.path}: expected a list of objects (or JSON lines), found a {type(data).__name__}")
    for i, row in enumerate(data):
        where = f"{r.path}, item {i}"
        if not isinstance(row, dict):
            r.bad(where, f"a JSON {type(row).__name__}, expected an object")
            continue
        yield Row(where, i, row)


def _csv(r: _Reading, columns: Sequence[str]) -> Iterator[Row]:
    limit = csv.field_size_limit()
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # fields (law passages, documents) can be long
    try:
        with r.path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh, delimiter="\t" if r.path.suffix.lower() == ".tsv" else ",")
            header = reader.fieldnames
            if not header:
                raise r.error(f"{r.path} is empty: expected a header line naming the columns")
            for name in columns:
                if name not in header:
                    raise r.error(missing_field(name, f"{r.path}, line 1 (the header)", header) + r.fix)
            for row in reader:
                where = f"{r.path}, line {reader.line_num}"
                short = next((name for name in (columns or header) if row.get(name) is None), None)
                if short is not None:
                    r.bad(where, f"the row has fewer columns than the header (no value for {short!r})")
                    continue
                yield Row(where, reader.line_num, dict(row))
    except csv.Error as exc:
        raise r.error(f"{r.path}: not readable as CSV ({exc})") from None
    except UnicodeDecodeError as exc:
        raise r.error(f"{r.path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    finally:
        csv.field_size_limit(limit)


def _parquet(r: _Reading, columns: Sequence[str] | None) -> Iterator[Row]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(r.path)
    except (pa.ArrowException, OSError) as exc:
        raise r.error(f"{r.path}: not readable as Parquet ({exc})") from None
    names = pf.schema_arrow.names
    for name in columns or ():
        if name not in names:
            raise r.error(missing_field(name, str(r.path), names, role="columns") + r.fix)
    number = 0
    for batch in pf.iter_batches(columns=list(dict.fromkeys(columns)) if columns else None):
        for row in batch.to_pylist():
            number += 1
            yield Row(f"{r.path}, row {number}", number, row)


def missing_field(name: str, where: str, available: Sequence[str], role: str = "fields") -> str:
    """The message for a field a row or file lacks: what is there, and the closest name."""
    import difflib

    close = difflib.get_close_matches(name, [str(a) for a in available], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"field {name!r} not in {where}; {role} there: {', '.join(map(str, available)) or '(none)'}{hint}"
