"""Benchmark decontamination: load benchmark files, index their text, find benchmark text inside records.

Two checks, both over text normalised like the rest of sftforge (`sftforge.text.tokens`: NFKC, lowercase, words
split on anything that is not a letter or digit, every CJK character its own token):

* **n-grams** (GPT-3 style). Every benchmark *segment* (one field of one item: a GSM8K question, a HumanEval
  prompt, one MMLU choice) is cut into token n-grams, n = `ngram` (13). Segments that are mostly CJK (half their
  tokens or more are CJK characters) are cut into character n-grams, n = `cjk_ngram` (20: a CJK character
  carries less than an English word, so 13 characters is too short a phrase to be specific). A segment shorter
  than its n is indexed as one n-gram of its own length when it has at least `min_ngram` (8) tokens, that is
  the whole segment must appear verbatim; shorter segments ("True, False", "4") get no n-grams at all, since
  they would match everywhere, and only the substring check can reach them (it never will for segments
  shorter than `substring_chars`). A record matches an item when it contains one of the item's n-grams; the
  overlap is the share of the item's distinct n-grams found in the record.
* **substring** (the 50-character check). The canonical form of a text is its tokens joined by single spaces
  (so punctuation, case and spacing do not matter; a CJK character counts as two characters, itself and its
  space). A record matches an item when any `substring_chars` (50) consecutive characters of the record's
  canonical form appear in the canonical form of one of the item's segments. The overlap is the share of the
  item's canonical characters covered by such common substrings.

False positives, and what is done about them:

* Template text. Benchmarks repeat their own boilerplate ("Which of the following is the most likely
  diagnosis?", the preamble of 900 MMLU moral-scenarios items). An n-gram, or a `substring_chars` window, that
  occurs in more than `max_item_frequency` (10) items of one benchmark is template, not item content, and never
  counts. Passages that a few items share (an MMLU history source read by three questions) stay: copying them
  is contamination.
* Low-information runs. An n-gram counts only when at least half its tokens are words of two or more
  characters (or CJK characters), and a substring match only when at least half its characters are in such
  words: "0 1 2 3 4 5 6 7 8 9 a b c d e f" or "(x - 2)(x + 2)(x - 1)(x + 1)" appear in many texts by chance.
* Short items, see above: nothing under `min_ngram` tokens or `substring_chars` characters can match.
* Text that the benchmark itself quotes from elsewhere still matches. Measured on 10,000 records made from
  XQuAD paragraphs and Python PEPs, the only hits (0.14% of records) were the Wikipedia definition of a prime
  number, which HumanEval/78's docstring quotes. That is real overlap with the benchmark; `action: flag`, the
  reasons and `min_overlap` are the tools for reviewing or tolerating such cases.

Storage. N-grams are 64-bit polynomial hashes over xxh3 token hashes, kept in one sorted numpy array (every n
together) with the item and n of each entry (13 bytes an entry), behind a 2 MiB bitmap that answers most
lookups without touching the array. For the substring check the index holds, per segment, the hashes of the
K-character windows starting at every s-th character (s = substring_chars // 4, K = substring_chars - 2s + 1,
so 12 and 27 for 50): any 50-character common substring contains at least two such windows. The record side
hashes every K-window (stride 1) and looks them up; each candidate is verified against the stored segment text
by extending it to the longest common substring, which must reach `substring_chars` characters and pass the
rules above. A K-window found in more than `_WINDOW_CAP` (64) items is left out of the substring index, so that
common phrasing cannot make a record verify thousands of candidates; a match is then missed only when every
window it contains is such a phrase. GSM8K + HumanEval + MMLU index to about 25 MiB.
"""

from __future__ import annotations

import csv
import difflib
import glob
import json
import re
import sys
import unicodedata
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xxhash
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sftforge.errors import SftforgeError
from sftforge.text import _CJK_RANGES

DEFAULT_NGRAM = 13
DEFAULT_MIN_NGRAM = 8
DEFAULT_CJK_NGRAM = 20
DEFAULT_SUBSTRING_CHARS = 50
DEFAULT_MAX_ITEM_FREQUENCY = 10
_WINDOW_CAP = 64  # substring index: K-windows found in more items than this are not indexed (see module doc)

SUPPORTED_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet")


class BenchmarkError(SftforgeError):
    """A benchmark file is missing, unreadable, or lacks the fields the recipe names."""


# --------------------------------------------------------------------------------------------------------------
# Tokens: the same output as sftforge.text.tokens (a test checks this), several times faster on long texts.

_CJK_CLASS = "[" + "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in _CJK_RANGES) + "]"
_CJK = re.compile(_CJK_CLASS)
_ASCII_WORD = re.compile(r"[a-z0-9]+")
_WORD = re.compile(r"[^\W_]+")
_MIXED = re.compile(rf"(?=[^\W_]){_CJK_CLASS}|(?:(?!{_CJK_CLASS})[^\W_])+")


def fast_tokens(text: str) -> list[str]:
    """`sftforge.text.tokens`, with fast paths for ASCII text and text without CJK characters."""
    if text.isascii():
        return _ASCII_WORD.findall(text.lower())
    text = unicodedata.normalize("NFKC", text).lower()
    if _CJK.search(text) is None:
        return _WORD.findall(text)
    return _MIXED.findall(text)


def canonical(text: str) -> str:
    """The form the substring check compares: tokens joined by single spaces."""
    return " ".join(fast_tokens(text))


# --------------------------------------------------------------------------------------------------------------
# Hashing: polynomial rolling hashes mod 2**64 over 64-bit element hashes, any window in O(1) after a prefix pass.

_U64 = np.uint64
_BASE = 0x9E3779B97F4A7C15  # odd, so invertible mod 2**64
_BASE_INV = pow(_BASE, -1, 1 << 64)
_TOKEN_CACHE_MAX = 1 << 20
_POWERS_CACHED = 1 << 18  # 2 MiB per table: texts up to 256k characters reuse them
_pow: np.ndarray = np.ones(1, dtype=_U64)
_pow_inv: np.ndarray = np.ones(1, dtype=_U64)


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """BASE**i and BASE**-i for i < n (mod 2**64); record-sized tables are cached, index-building ones are not."""
    global _pow, _pow_inv
    if len(_pow) >= n:
        return _pow, _pow_inv
    m = max(n, 2 * len(_pow), 1024)
    p = np.full(m, _BASE, dtype=_U64)
    p[0] = 1
    q = np.full(m, _BASE_INV, dtype=_U64)
    q[0] = 1
    pw, pinv = np.cumprod(p, dtype=_U64), np.cumprod(q, dtype=_U64)
    if m <= _POWERS_CACHED:
        _pow, _pow_inv = pw, pinv
    return pw, pinv


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads small values (code points) over 64 bits."""
    z = x.astype(_U64) + _U64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    return z ^ (z >> _U64(31))


class _Rolling:
    """Prefix sums that give the hash of any window of a sequence of 64-bit values."""

    def __init__(self, values: np.ndarray) -> None:
        n = len(values)
        pw, pinv = _powers(n + 1)
        self.pw = pw
        self.prefix = np.zeros(n + 1, dtype=_U64)
        if n:
            np.cumsum(values * pinv[:n], out=self.prefix[1:])

    def windows(self, starts: np.ndarray, k: int) -> np.ndarray:
        """Hash of values[i:i+k] for each i in `starts`; equal windows hash equally wherever they are."""
        return (self.prefix[starts + k] - self.prefix[starts]) * self.pw[starts + (k - 1)]

    def all_windows(self, k: int) -> np.ndarray:
        m = len(self.prefix) - k
        if m <= 0:
            return np.empty(0, dtype=_U64)
        return (self.prefix[k:] - self.prefix[:m]) * self.pw[k - 1 : k - 1 + m]


_TOKEN_HASHES: dict[str, int] = {}  # xxh3 of each token seen, bounded by _TOKEN_CACHE_MAX


def _token_hashes(toks: Sequence[str]) -> np.ndarray:
    cache = _TOKEN_HASHES
    try:
        return np.fromiter(map(cache.__getitem__, toks), dtype=_U64, count=len(toks))
    except KeyError:
        if len(cache) > _TOKEN_CACHE_MAX:
            cache.clear()
        h = xxhash.xxh3_64_intdigest
        for t in toks:
            if t not in cache:
                cache[t] = h(t.encode())
        return np.fromiter(map(cache.__getitem__, toks), dtype=_U64, count=len(toks))


def _char_values(text: str) -> np.ndarray:
    return _mix(np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32))


def _window_starts(lengths: np.ndarray, offsets: np.ndarray, k: int, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Starts (into the concatenation) of the windows of length k that lie inside one segment, every `stride`-th
    position of each segment, and the segment of each."""
    counts = np.where(lengths >= k, (lengths - k) // stride + 1, 0)
    total = int(counts.sum())
    seg = np.repeat(np.arange(len(lengths), dtype=np.int64), counts)
    within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return offsets[seg] + stride * within, seg


def _item_frequency(hashes: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (hash, item) pairs, sorted by hash, and for each pair the number of items that have its hash."""
    if not len(hashes):
        return hashes, items, np.zeros(0, dtype=np.int64)
    order = np.lexsort((items, hashes))
    h, it = hashes[order], items[order]
    new = np.ones(len(h), dtype=bool)
    new[1:] = (h[1:] != h[:-1]) | (it[1:] != it[:-1])
    h, it = h[new], it[new]
    _, counts = np.unique(h, return_counts=True)
    return h, it, np.repeat(counts, counts)


_FILTER_BITS = 24  # 2 MiB bitmaps: a few percent of lookups pass through to the sorted tables


def _bitmap(hashes: np.ndarray) -> np.ndarray:
    mask = np.zeros(1 << _FILTER_BITS, dtype=bool)
    mask[hashes >> _U64(64 - _FILTER_BITS)] = True
    return np.packbits(mask, bitorder="little")


def _maybe(bitmap: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Positions of the hashes that may be in the table the bitmap was made from (no false negatives)."""
    top = hashes >> _U64(64 - _FILTER_BITS)
    return np.flatnonzero((bitmap[top >> _U64(3)] >> (top & _U64(7)).astype(np.uint8)) & 1)


def _lookup(table: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each query found in the sorted `table`: the query's position in `queries` and a table index, one pair
    per matching table entry."""
    if not len(table) or not len(queries):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    lo = np.searchsorted(table, queries)
    found = table[np.minimum(lo, len(table) - 1)] == queries
    if not found.any():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    q = np.flatnonzero(found)
    lo = lo[q]
    counts = np.searchsorted(table, queries[q], side="right") - lo
    idx = np.repeat(lo - (np.cumsum(counts) - counts), counts) + np.arange(int(counts.sum()))
    return np.repeat(q, counts), idx


def _content_flags(toks: Sequence[str]) -> bytes:
    return bytes(1 if len(t) >= 2 or _CJK.match(t) else 0 for t in toks)


def _informative(region: str) -> bool:
    """At least half the characters of a canonical region belong to words of two or more characters or are CJK:
    not a run of digits, single letters or symbols ("0 1 2 3 4 5 6 7 8 9 a b c d e f")."""
    toks = region.split(" ")
    return sum(len(t) for t in toks if len(t) >= 2 or _CJK.match(t)) * 2 >= len(region)


def _frequent(packed: np.ndarray, item_bits: int, max_items: int) -> np.ndarray:
    """From (hash-top-bits | item) keys, the sorted top bits found with more than `max_items` distinct items.

    Sorts `packed` in place and otherwise works in chunks, so that the index of a large benchmark builds without
    copies of its biggest array."""
    packed.sort()
    shift = _U64(item_bits)
    # a run of more than max_items keys with one top: candidates (within-item repeats are removed below)
    found = []
    step = 1 << 20
    for i in range(0, max(0, len(packed) - max_items), step):
        a = packed[i : i + step] >> shift
        b = packed[i + max_items : i + max_items + step] >> shift
        a = a[: len(b)]
        found.append(a[a == b])
    cand = np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=_U64)
    if not len(cand):
        return cand
    lo = np.searchsorted(packed, cand << shift)
    hi = np.searchsorted(packed, (cand + _U64(1)) << shift)
    counts = hi - lo
    idx = np.repeat(lo - (np.cumsum(counts) - counts), counts) + np.arange(int(counts.sum()))
    keys = packed[idx]
    distinct = np.ones(len(keys), dtype=bool)
    distinct[1:] = keys[1:] != keys[:-1]
    owner = np.repeat(np.arange(len(cand)), counts)
    items = np.bincount(owner[distinct], minlength=len(cand))
    return cand[items > max_items]


def _chunks(lengths: list[int], size: int) -> Iterator[tuple[int, int]]:
    """[lo, hi) runs of consecutive segments of about `size` characters together."""
    lo, total = 0, 0
    for i, n in enumerate(lengths):
        if total and total + n > size:
            yield lo, i
            lo, total = i, 0
        total += n
    if lo < len(lengths):
        yield lo, len(lengths)


# --------------------------------------------------------------------------------------------------------------
# Benchmark files.


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


@dataclass(slots=True)
class BenchmarkItem:
    id: str
    texts: list[str]  # one per field, in the order of `fields`


@dataclass(slots=True)
class Benchmark:
    name: str
    items: list[BenchmarkItem]
    files: list[Path] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)


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
            p
            for p in path.rglob("*")
            if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES and not p.name.startswith(".")
        )
        if not files:
            raise BenchmarkError(
                f"benchmark {spec.benchmark_name!r}: folder {path} has no {', '.join(SUPPORTED_SUFFIXES)} files"
            )
        return files
    if not path.exists():
        where = f" (resolved to {path.resolve()})" if not path.is_absolute() else ""
        raise BenchmarkError(
            f"benchmark {spec.benchmark_name!r}: file {raw} not found{where}; check the benchmark's `path`"
        )
    return [path]


def _missing(fieldname: str, where: str, available: Sequence[str], role: str = "fields") -> BenchmarkError:
    close = difflib.get_close_matches(fieldname, list(available), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return BenchmarkError(
        f"field {fieldname!r} not in {where}; {role} there: {', '.join(map(str, available)) or '(none)'}{hint}. "
        "Set the benchmark's `fields` (and `id_field`, `split_field`) to names that exist in the file."
    )


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


def _rows_jsonl(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    with path.open(encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                msg = f"{path} line {lineno}: not valid JSON ({e.msg}); each line must be one object"
                raise BenchmarkError(msg) from None
            if not isinstance(row, dict):
                raise BenchmarkError(f"{path} line {lineno}: a JSON {type(row).__name__}, expected an object")
            yield f"{path} line {lineno}", row


def _rows_json(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":  # JSON lines under a .json name
            yield from _rows_jsonl(path)
            return
        raise BenchmarkError(f"{path} line {e.lineno}: not valid JSON ({e.msg})") from None
    if isinstance(data, dict):  # {"data": [...]} or {"test": [...]}: the one list of objects inside
        lists = [k for k, v in data.items() if isinstance(v, list)]
        if len(lists) != 1:
            raise BenchmarkError(
                f"{path}: expected a list of objects (or JSON lines), found an object with keys {list(data)}"
            )
        data = data[lists[0]]
    if not isinstance(data, list):
        raise BenchmarkError(f"{path}: expected a list of objects (or JSON lines), found a {type(data).__name__}")
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            raise BenchmarkError(f"{path} item {i}: a JSON {type(row).__name__}, expected an object")
        yield f"{path} item {i}", row


def _rows_csv(path: Path, needed: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    limit = csv.field_size_limit()
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # benchmark fields (law passages) can be long
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            header = reader.fieldnames
            if not header:
                raise BenchmarkError(f"{path} is empty: expected a header line naming the columns")
            for name in needed:
                if name not in header:
                    raise _missing(name, f"{path} line 1 (the header)", header)
            for row in reader:
                where = f"{path} line {reader.line_num}"
                for name in needed:
                    if row.get(name) is None:
                        raise BenchmarkError(
                            f"{where}: the row has fewer columns than the header (no value for {name!r})"
                        )
                yield where, row
    except csv.Error as e:
        raise BenchmarkError(f"{path}: not readable as CSV ({e})") from None
    except UnicodeDecodeError as e:
        raise BenchmarkError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    finally:
        csv.field_size_limit(limit)


def _rows_parquet(path: Path, needed: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
    except (pa.ArrowException, OSError) as e:
        raise BenchmarkError(f"{path}: not readable as Parquet ({e})") from None
    for name in needed:
        if name not in names:
            raise _missing(name, str(path), names, role="columns")
    table = pq.read_table(path, columns=list(dict.fromkeys(needed)))
    columns = {name: table.column(name).to_pylist() for name in dict.fromkeys(needed)}
    for i in range(table.num_rows):
        yield f"{path} row {i}", {name: col[i] for name, col in columns.items()}


def _rows(path: Path, needed: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        rows = _rows_jsonl(path)
    elif suffix == ".json":
        rows = _rows_json(path)
    elif suffix in (".csv", ".tsv"):
        rows = _rows_csv(path, needed)
    elif suffix == ".parquet":
        rows = _rows_parquet(path, needed)
    else:
        raise BenchmarkError(
            f"{path}: unsupported benchmark format {suffix or '(no suffix)'!r}; use {', '.join(SUPPORTED_SUFFIXES)}"
        )
    try:
        yield from rows
    except UnicodeDecodeError as e:
        raise BenchmarkError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise BenchmarkError(f"{path}: cannot read ({e.strerror or e})") from None


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
        for row_no, (where, row) in enumerate(_rows(path, needed)):
            for name in needed:
                if name not in row:
                    raise _missing(name, where, list(row))
            if keep is not None and _text(row[spec.split_field], str(spec.split_field), where) not in keep:
                continue
            if spec.id_field is not None:
                item_id = _text(row[spec.id_field], spec.id_field, where)
            else:
                item_id = f"{path.stem}:{row_no}" if len(files) > 1 else str(row_no)
            items.append(BenchmarkItem(item_id, [_text(row[f], f, where) for f in spec.fields]))
    if not items:
        which = f" with {spec.split_field} in {spec.splits}" if spec.splits is not None else ""
        raise BenchmarkError(f"benchmark {spec.benchmark_name!r}: no rows{which} in {', '.join(map(str, files))}")
    return Benchmark(spec.benchmark_name, items, files, list(spec.fields))


# --------------------------------------------------------------------------------------------------------------
# The index.


@dataclass(frozen=True, slots=True)
class Hit:
    """One benchmark item found in a text."""

    benchmark: str
    item: int  # position of the item in its benchmark (rows in file order, files in name order)
    item_id: str  # the id_field value, else the row number ("file_stem:row" for several files)
    method: Literal["ngram", "substring"]
    overlap: float  # share of the item's n-grams (ngram) or canonical characters (substring) found in the text
    matched: int  # n-grams found, or characters covered
    total: int  # the item's indexed n-grams, or its canonical characters
    n: int  # n-gram size (the largest that matched), or substring_chars

    def describe(self) -> str:
        what = f"{self.n}-gram" if self.method == "ngram" else f"{self.n}-char substring"
        return f"{self.benchmark} item {self.item_id} ({what} overlap {self.overlap:.2f}, {self.matched}/{self.total})"


@dataclass(slots=True)
class _Bench:
    name: str
    item_ids: list[str]
    gram_total: np.ndarray  # int64 per item: indexed distinct n-grams
    item_chars: np.ndarray  # int64 per item: canonical characters
    boiler: np.ndarray  # sorted: top bits (hash >> item_bits) of the substring_chars-windows in too many items
    item_bits: int
    checkable: int  # items with at least one n-gram or one segment as long as substring_chars


class DecontaminationIndex:
    """N-gram and substring index over any number of benchmarks; `check(text)` lists the items a text contains."""

    def __init__(
        self,
        *,
        ngram: int = DEFAULT_NGRAM,
        min_ngram: int = DEFAULT_MIN_NGRAM,
        cjk_ngram: int = DEFAULT_CJK_NGRAM,
        substring_chars: int = DEFAULT_SUBSTRING_CHARS,
        max_item_frequency: int = DEFAULT_MAX_ITEM_FREQUENCY,
        min_overlap: float = 0.0,
    ) -> None:
        if not 1 <= min_ngram <= min(ngram, cjk_ngram):
            raise ValueError(f"need 1 <= min_ngram ({min_ngram}) <= ngram ({ngram}) and cjk_ngram ({cjk_ngram})")
        if substring_chars and substring_chars < 8:
            raise ValueError(f"substring_chars must be 0 (off) or at least 8, not {substring_chars}")
        if not 0.0 <= min_overlap <= 1.0:
            raise ValueError(f"min_overlap must be within [0, 1], not {min_overlap}")
        self.ngram, self.min_ngram, self.cjk_ngram = ngram, min_ngram, cjk_ngram
        self.substring_chars = substring_chars
        self.max_item_frequency = max_item_frequency
        self.min_overlap = min_overlap
        self.stride = max(1, substring_chars // 4)
        self.window = substring_chars - 2 * self.stride + 1  # K: every W-long match holds two indexed windows
        self.benches: list[_Bench] = []
        self.item_offset: list[int] = []  # global item number of each benchmark's first item
        self.item_bench = np.zeros(0, dtype=np.int32)  # benchmark of each global item
        self.gram_hash = np.zeros(0, dtype=_U64)  # sorted n-gram hashes, every n together
        self.gram_item = np.zeros(0, dtype=np.int32)  # global item of each
        self.gram_n = np.zeros(0, dtype=np.uint8)  # n of each
        self.gram_sizes: list[int] = []  # the n values in the table
        self.sub_hash = np.zeros(0, dtype=_U64)  # sorted K-window hashes
        self.sub_seg = np.zeros(0, dtype=np.int32)  # segment of each
        self.sub_pos = np.zeros(0, dtype=np.int32)  # start in the segment's canonical text
        self.seg_text: list[str] = []  # canonical text of every segment long enough for the substring check
        self.seg_item: list[int] = []  # global item of each
        self.dropped = {"ngrams": 0, "windows": 0, "low_information": 0}
        self._filter = np.zeros(0, dtype=np.uint8)  # bitmap over the top _FILTER_BITS bits of every n-gram hash
        self._sub_filter = np.zeros(0, dtype=np.uint8)  # the same over the substring index

    @classmethod
    def from_specs(cls, specs: Sequence[BenchmarkSpec], **params: Any) -> DecontaminationIndex:
        names = [s.benchmark_name for s in specs]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            names_used = ", ".join(map(repr, dup))
            raise BenchmarkError(f"benchmark name(s) {names_used} used twice; give each a distinct `name`")
        index = cls(**params)
        for spec in specs:
            index.add(load_benchmark(spec))
        return index

    # ---- building ----

    def add(self, bench: Benchmark) -> None:
        if any(b.name == bench.name for b in self.benches):
            raise BenchmarkError(f"benchmark {bench.name!r} added twice; give each benchmark a distinct `name`")
        base = len(self.item_bench)
        n_items = len(bench.items)
        # segments: one field of one item; kept as token hashes (flat) and, when long enough, canonical text
        W, K = self.substring_chars, self.window
        flat = array("Q")
        content = bytearray()  # per token: 1 for a word of two or more characters or a CJK character
        seg_len: list[int] = []
        seg_item: list[int] = []
        seg_n: list[int] = []
        texts: list[str] = []  # canonical text of the segments the substring check covers
        text_item: list[int] = []
        item_chars = np.zeros(n_items, dtype=np.int64)
        for i, item in enumerate(bench.items):
            for text in item.texts:
                toks = fast_tokens(text)
                if not toks:
                    continue
                flat.extend(_token_hashes(toks).tolist())
                content.extend(_content_flags(toks))
                seg_len.append(len(toks))
                seg_item.append(i)
                seg_n.append(self._segment_n(toks, text))
                c = " ".join(toks)
                item_chars[i] += len(c)
                if W and len(c) >= W:
                    texts.append(c)
                    text_item.append(i)
        gram_total = np.zeros(n_items, dtype=np.int64)

        # n-grams, grouped by the n each segment uses
        lengths = np.asarray(seg_len, dtype=np.int64)
        offsets = np.cumsum(lengths) - lengths
        items = np.asarray(seg_item, dtype=np.int64)
        ns = np.asarray(seg_n, dtype=np.int64)
        roll = _Rolling(np.frombuffer(flat, dtype=_U64) if flat else np.zeros(0, dtype=_U64))
        del flat
        content_prefix = np.zeros(len(content) + 1, dtype=np.int64)
        np.cumsum(np.frombuffer(bytes(content), dtype=np.uint8), out=content_prefix[1:])
        del content
        new_grams: list[tuple[int, np.ndarray, np.ndarray]] = []
        for n in np.unique(ns[ns > 0]).tolist():
            members = np.flatnonzero(ns == n)
            starts, seg = _window_starts(lengths[members], offsets[members], n)
            informative = (content_prefix[starts + n] - content_prefix[starts]) * 2 >= n
            self.dropped["low_information"] += int(np.count_nonzero(~informative))
            starts, seg = starts[informative], seg[informative]
            h, it, freq = _item_frequency(roll.windows(starts, n), items[members][seg])
            ok = freq <= self.max_item_frequency
            self.dropped["ngrams"] += int(np.count_nonzero(~ok))
            h, it = h[ok], it[ok]
            gram_total += np.bincount(it, minlength=n_items)
            new_grams.append((n, h, it + base))
        del roll

        # substring windows
        boiler = np.zeros(0, dtype=_U64)
        new_sub: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        item_bits = max(1, (n_items - 1).bit_length())
        if W:
            seg_items = np.asarray(text_item, dtype=np.int64)
            # every W-window, packed with its item (top bits: hash, low bits: item) to count items per window
            packed = np.empty(sum(max(0, len(t) - W + 1) for t in texts), dtype=_U64)
            filled = 0
            k_hash, k_seg, k_pos = [], [], []
            for lo, hi in _chunks([len(t) for t in texts], _POWERS_CACHED):
                lengths = np.array([len(t) for t in texts[lo:hi]], dtype=np.int64)
                offsets = np.cumsum(lengths) - lengths
                roll = _Rolling(_char_values("".join(texts[lo:hi])))
                starts, seg = _window_starts(lengths, offsets, W)
                top = (roll.windows(starts, W) >> _U64(item_bits)) << _U64(item_bits)
                packed[filled : filled + len(top)] = top | seg_items[seg + lo].astype(_U64)
                filled += len(top)
                # the indexed K-windows: every stride-th position
                starts, seg = _window_starts(lengths, offsets, K, self.stride)
                k_hash.append(roll.windows(starts, K))
                k_seg.append(seg + lo)
                k_pos.append(starts - offsets[seg])
            if texts:
                boiler = _frequent(packed, item_bits, self.max_item_frequency)
                del packed
                hashes, seg, pos = np.concatenate(k_hash), np.concatenate(k_seg), np.concatenate(k_pos)
                pair_h, _, pair_freq = _item_frequency(hashes, seg_items[seg])
                uniq, first = np.unique(pair_h, return_index=True)
                ok = pair_freq[first][np.searchsorted(uniq, hashes)] <= _WINDOW_CAP
                self.dropped["windows"] += int(np.count_nonzero(~ok))
                seg_base = len(self.seg_text)
                new_sub = (hashes[ok], (seg[ok] + seg_base).astype(np.int32), pos[ok].astype(np.int32))
                self.seg_text.extend(texts)
                self.seg_item.extend((seg_items + base).tolist())

        # merge into the global tables
        long_items = np.zeros(n_items, dtype=bool)
        long_items[np.asarray(text_item, dtype=np.int64)] = True
        checkable = int(np.count_nonzero((gram_total > 0) | long_items))
        if not checkable:
            fields = f" in fields {', '.join(bench.fields)}" if bench.fields else ""
            raise BenchmarkError(
                f"benchmark {bench.name!r}: none of its {n_items} items has text{fields} long enough to match "
                f"({self.min_ngram} words, or {self.substring_chars} characters); are these the fields with the "
                "questions or prompts?"
            )
        self.benches.append(
            _Bench(bench.name, [it.id for it in bench.items], gram_total, item_chars, boiler, item_bits, checkable)
        )
        self.item_offset.append(base)
        self.item_bench = np.concatenate([self.item_bench, np.full(n_items, len(self.benches) - 1, dtype=np.int32)])
        if new_grams:
            all_h = np.concatenate([self.gram_hash] + [h for _, h, _ in new_grams])
            all_it = np.concatenate([self.gram_item] + [it.astype(np.int32) for _, _, it in new_grams])
            all_n = np.concatenate([self.gram_n] + [np.full(len(h), n, dtype=np.uint8) for n, h, _ in new_grams])
            order = np.argsort(all_h, kind="stable")
            self.gram_hash, self.gram_item, self.gram_n = all_h[order], all_it[order], all_n[order]
            self.gram_sizes = sorted(set(self.gram_sizes) | {n for n, _, _ in new_grams})
            self._filter = _bitmap(self.gram_hash)
        if new_sub is not None:
            all_h = np.concatenate([self.sub_hash, new_sub[0]])
            order = np.argsort(all_h, kind="stable")
            self.sub_hash = all_h[order]
            self.sub_seg = np.concatenate([self.sub_seg, new_sub[1]])[order]
            self.sub_pos = np.concatenate([self.sub_pos, new_sub[2]])[order]
            self._sub_filter = _bitmap(self.sub_hash)

    def _segment_n(self, toks: list[str], text: str) -> int:
        """The n a segment is cut with, 0 for none (see the module doc)."""
        cjk = _CJK.search(text) is not None and sum(1 for t in toks if _CJK.match(t)) * 2 >= len(toks)
        n = self.cjk_ngram if cjk else self.ngram
        if len(toks) >= n:
            return n
        return len(toks) if len(toks) >= self.min_ngram else 0

    # ---- checking ----

    def check(self, text: str) -> list[Hit]:
        """Every benchmark item whose n-grams or substrings `text` contains, best overlap first."""
        toks = fast_tokens(text)
        hits = self._check_ngrams(toks)
        if self.substring_chars and len(self.sub_hash):
            hits += self._check_substrings(" ".join(toks))
        hits.sort(key=lambda h: (-h.overlap, h.benchmark, h.item, h.method))
        return hits

    def _check_ngrams(self, toks: list[str]) -> list[Hit]:
        if len(toks) < self.min_ngram or not len(self.gram_hash):
            return []
        sizes = [n for n in self.gram_sizes if n <= len(toks)]
        if not sizes:
            return []
        roll = _Rolling(_token_hashes(toks))
        grams = np.concatenate([roll.all_windows(n) for n in sizes])
        cand = grams[_maybe(self._filter, grams)]
        if not len(cand):
            return []
        _, idx = _lookup(self.gram_hash, np.unique(cand))
        found: dict[int, list[int]] = {}  # global item -> [distinct n-grams matched, largest n]
        for g, n in zip(self.gram_item[idx].tolist(), self.gram_n[idx].tolist()):
            entry = found.setdefault(g, [0, 0])
            entry[0] += 1
            entry[1] = max(entry[1], n)
        hits = []
        for g, (matched, n) in found.items():
            bi = int(self.item_bench[g])
            bench, local = self.benches[bi], g - self.item_offset[bi]
            total = int(bench.gram_total[local])
            overlap = matched / total if total else 1.0
            if overlap >= self.min_overlap:
                hits.append(Hit(bench.name, local, bench.item_ids[local], "ngram", overlap, matched, total, n))
        return hits

    def _check_substrings(self, rec: str) -> list[Hit]:
        W, K = self.substring_chars, self.window
        if len(rec) < W:
            return []
        hashes = _Rolling(_char_values(rec)).all_windows(K)
        maybe = _maybe(self._sub_filter, hashes)
        if not len(maybe):
            return []
        q, idx = _lookup(self.sub_hash, hashes[maybe])
        if not len(q):
            return []
        r_pos = maybe[q]
        segs, q_pos = self.sub_seg[idx].astype(np.int64), self.sub_pos[idx].astype(np.int64)
        order = np.lexsort((r_pos, r_pos - q_pos, segs))
        covered: dict[int, dict[int, list[tuple[int, int]]]] = {}  # global item -> segment -> intervals
        last: tuple[int, int] | None = None
        reach = -1
        for s, r, p in zip(segs[order].tolist(), r_pos[order].tolist(), q_pos[order].tolist()):
            if (s, r - p) == last and r < reach:
                continue  # inside a match already verified on this diagonal
            seg = self.seg_text[s]
            if rec[r : r + K] != seg[p : p + K]:
                continue  # hash collision
            left = _common_suffix(rec, r, seg, p)
            right = K + _common_prefix(rec, r + K, seg, p + K)
            last, reach = (s, r - p), r + right
            if left + right < W:
                continue
            a, b = p - left, p + right
            item = self.seg_item[s]
            region = seg[a:b]
            if not _informative(region) or self._boilerplate(region, int(self.item_bench[item])):
                continue
            covered.setdefault(item, {}).setdefault(s, []).append((a, b))
        hits = []
        for g, per_seg in covered.items():
            bi = int(self.item_bench[g])
            bench, local = self.benches[bi], g - self.item_offset[bi]
            chars = sum(_union_length(iv) for iv in per_seg.values())
            total = int(bench.item_chars[local])
            overlap = chars / total if total else 1.0
            if overlap >= self.min_overlap:
                hits.append(Hit(bench.name, local, bench.item_ids[local], "substring", overlap, chars, total, W))
        return hits

    def _boilerplate(self, region: str, bench: int) -> bool:
        """True when every W-window of `region` (a common substring) is one of the benchmark's template windows."""
        b = self.benches[bench]
        boiler = b.boiler
        if not len(boiler):
            return False
        hashes = _Rolling(_char_values(region)).all_windows(self.substring_chars) >> _U64(b.item_bits)
        pos = np.searchsorted(boiler, hashes).clip(max=len(boiler) - 1)
        return bool(np.all(boiler[pos] == hashes))

    # ---- reporting ----

    @property
    def nbytes(self) -> int:
        arrays = [self.item_bench, self.sub_hash, self.sub_seg, self.sub_pos, self._filter, self._sub_filter]
        arrays += [self.gram_hash, self.gram_item, self.gram_n]
        arrays += [a for b in self.benches for a in (b.gram_total, b.item_chars, b.boiler)]
        return sum(a.nbytes for a in arrays) + sum(len(t) for t in self.seg_text)

    def describe(self) -> dict[str, Any]:
        return {
            "benchmarks": {b.name: {"items": len(b.item_ids), "checkable": b.checkable} for b in self.benches},
            "ngram_entries": len(self.gram_hash),
            "substring_entries": len(self.sub_hash),
            "boilerplate_dropped": dict(self.dropped),
            "bytes": self.nbytes,
        }


def _common_prefix(a: str, i: int, b: str, j: int) -> int:
    """Length of the common prefix of a[i:] and b[j:]."""
    n = 0
    step = 64
    limit = min(len(a) - i, len(b) - j)
    while n < limit:
        k = min(step, limit - n)
        if a[i + n : i + n + k] == b[j + n : j + n + k]:
            n += k
            continue
        while n < limit and a[i + n] == b[j + n]:
            n += 1
        break
    return n


def _common_suffix(a: str, i: int, b: str, j: int) -> int:
    """Length of the common suffix of a[:i] and b[:j]."""
    n = 0
    limit = min(i, j)
    while n < limit:
        k = min(64, limit - n)
        if a[i - n - k : i - n] == b[j - n - k : j - n]:
            n += k
            continue
        while n < limit and a[i - n - 1] == b[j - n - 1]:
            n += 1
        break
    return n


def _union_length(intervals: list[tuple[int, int]]) -> int:
    total, end = 0, -1
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total
