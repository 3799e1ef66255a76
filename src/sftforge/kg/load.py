"""Read knowledge-graph triples from files into a `KnowledgeGraph`.

Formats: tab-separated (`.tsv`, `.txt`: `head<TAB>relation<TAB>tail`), comma-separated (`.csv`), pipe-separated
(`.psv`, `.pipe`, or a `.txt` whose lines use `|`), N-Triples (`.nt`) and Turtle (`.ttl`); a `.gz` suffix is
decompressed. Label files (`id<TAB>name`, like countries' `entities.dict`) give display names.

Delimited files are streamed in blocks by pyarrow's CSV reader and each block's strings are interned to integer
ids through its dictionary encoding, so no Python object is made per edge: a file of millions of triples
becomes three int arrays, then CSR. A malformed row is reported with the file and its line number. RDF goes
through rdflib: N-Triples streamed to a sink, Turtle parsed whole (the format needs the document's prefixes).
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from sftforge.errors import SourceError
from sftforge.kg.graph import KnowledgeGraph

FORMATS = ("tsv", "csv", "pipe", "nt", "ttl")
_DELIMITERS = {"tsv": "\t", "csv": ",", "pipe": "|"}
_DELIMITER_WORDS = {"tsv": "tab-separated", "csv": "comma-separated", "pipe": "'|'-separated"}
_SUFFIXES = {".tsv": "tsv", ".tab": "tsv", ".csv": "csv", ".psv": "pipe", ".pipe": "pipe", ".nt": "nt", ".ttl": "ttl"}
_HEADERS = {
    ("head", "relation", "tail"),
    ("head", "rel", "tail"),
    ("h", "r", "t"),
    ("subject", "predicate", "object"),
    ("source", "relation", "target"),
}
_FIELDS = ("head", "relation", "tail")
# RDF predicates whose literal objects are display names, not edges.
_LABEL_PREDICATES = (
    "http://www.w3.org/2000/01/rdf-schema#label",
    "http://www.w3.org/2004/02/skos/core#prefLabel",
    "http://schema.org/name",
    "https://schema.org/name",
    "http://xmlns.com/foaf/0.1/name",
)
_BLOCK_SIZE = 16 << 20  # bytes per streamed block


def detect_format(path: str | Path) -> str:
    """The triple format of a file, from its suffix, or from its first line for `.txt` and unknown suffixes."""
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    suffix = suffixes[-1] if suffixes else ""
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    line = _first_line(path)
    if line.startswith(("<", "_:")) and line.rstrip().endswith("."):
        return "nt"
    if line.startswith("@prefix") or line.lower().startswith("prefix"):
        return "ttl"
    for fmt, sep in (("tsv", "\t"), ("pipe", "|"), ("csv", ",")):
        if sep in line:
            return fmt
    raise SourceError(
        f"{path}: cannot tell the triple format: use .tsv/.csv/.psv/.nt/.ttl, or lines like head<TAB>relation<TAB>tail"
    )


def _open_text(path: Path) -> io.TextIOBase:
    raw = gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="")


def _first_line(path: Path) -> str:
    _check_file(path)
    try:
        with _open_text(path) as f:
            for line in f:
                if line.strip() and not line.startswith("#"):
                    return line
    except UnicodeDecodeError as e:
        raise SourceError(f"{path}: not valid UTF-8 text ({e.reason})") from e
    raise SourceError(f"{path}: the file has no triples")


def _check_file(path: Path) -> None:
    if not path.exists():
        raise SourceError(f"knowledge graph file not found: {path}")
    if not path.is_file():
        raise SourceError(f"{path}: not a file")


# ---------------------------------------------------------------------------------------------------- errors


def _bad_line(path: Path, fmt: str) -> SourceError | None:
    """Rescan a delimited file in Python to name the first malformed line (only after the fast reader failed,
    since pyarrow's row numbers skip blank lines)."""
    sep = _DELIMITERS[fmt]
    word = _DELIMITER_WORDS[fmt]
    try:
        with _open_text(path) as f:
            if fmt == "csv":
                reader = csv.reader(f)
                rows: Iterator[tuple[int, list[str]]] = ((reader.line_num, row) for row in reader)
            else:
                rows = ((i, line.rstrip("\r\n").split(sep)) for i, line in enumerate(f, 1))
            for number, fields in rows:
                if not any(x.strip() for x in fields):
                    continue
                if len(fields) != 3:
                    return SourceError(
                        f"{path} line {number}: expected 3 {word} fields (head, relation, tail), found {len(fields)}"
                    )
                for field, value in zip(_FIELDS, fields):
                    if not value.strip():
                        return SourceError(f"{path} line {number}: the {field} field is empty")
    except UnicodeDecodeError as e:
        with gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb") as fb:
            for number, raw in enumerate(fb, 1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    return SourceError(f"{path} line {number}: not valid UTF-8 ({e.reason})")
        return SourceError(f"{path}: not valid UTF-8 ({e.reason})")
    return None


# ---------------------------------------------------------------------------------------------------- readers


def read_delimited(path: str | Path, fmt: str, header: bool | None = None) -> Iterator[tuple[pa.Array, ...]]:
    """Blocks of (heads, relations, tails) string arrays from a tab, comma or pipe separated file.
    `header=None` drops a first row like `head,relation,tail` / `subject,predicate,object`."""
    path = Path(path)
    _check_file(path)
    sep = _DELIMITERS[fmt]
    names = ["f0", "f1", "f2"]
    read = pacsv.ReadOptions(autogenerate_column_names=True, block_size=_BLOCK_SIZE)
    parse = pacsv.ParseOptions(delimiter=sep, quote_char='"' if fmt == "csv" else False, newlines_in_values=False)
    convert = pacsv.ConvertOptions(
        column_types={n: pa.string() for n in names}, strings_can_be_null=False, quoted_strings_can_be_null=False
    )
    first = True
    try:
        reader = pacsv.open_csv(str(path), read_options=read, parse_options=parse, convert_options=convert)
        for batch in reader:
            if batch.num_columns != 3:
                raise pa.ArrowInvalid("wrong number of columns")
            cols = [pc.utf8_trim_whitespace(batch.column(i)) for i in range(3)]
            if first and len(cols[0]) and header is not False:
                row = tuple(str(c[0].as_py()).lower() for c in cols)
                if header or row in _HEADERS:
                    cols = [c.slice(1) for c in cols]
                first = False
            if any(len(c) and pc.min(pc.utf8_length(c)).as_py() == 0 for c in cols):
                raise pa.ArrowInvalid("empty field")
            yield tuple(cols)
    except (pa.ArrowInvalid, UnicodeDecodeError) as e:
        err = _bad_line(path, fmt)
        if err is not None:
            raise err from None
        raise SourceError(f"{path}: cannot read as {_DELIMITER_WORDS[fmt]} triples: {e}") from e


def _rdf_key(term: object) -> str:
    from rdflib import Literal, URIRef

    if isinstance(term, URIRef):
        return str(term)
    if isinstance(term, Literal):
        return str(term) if term.datatype is None and term.language is None else term.n3()
    return term.n3()  # type: ignore[attr-defined]


class _Batcher:
    """Collects RDF triples as keys into Arrow blocks and literal labels into a dict."""

    def __init__(self, labels: dict[str, str], label_lang: str | None, size: int = 200_000) -> None:
        from rdflib import Literal

        self.literal = Literal
        self.labels = labels
        self.label_lang = label_lang
        self.size = size
        self.rows: tuple[list[str], list[str], list[str]] = ([], [], [])
        self.blocks: list[tuple[pa.Array, ...]] = []

    def add(self, s: object, p: object, o: object) -> None:
        pred = str(p)
        if pred in _LABEL_PREDICATES and isinstance(o, self.literal):
            # a label in `label_lang` wins; one without a language is kept if none better came first
            lang = (o.language or "").split("-")[0]
            key = _rdf_key(s)
            if (lang and lang == self.label_lang) or ((not lang or self.label_lang is None) and key not in self.labels):
                self.labels[key] = str(o)
            return
        h, r, t = self.rows
        h.append(_rdf_key(s))
        r.append(pred)
        t.append(_rdf_key(o))
        if len(h) >= self.size:
            self.flush()

    def triple(self, s: object, p: object, o: object) -> None:  # rdflib's N-Triples sink interface
        self.add(s, p, o)

    def flush(self) -> None:
        if self.rows[0]:
            self.blocks.append(tuple(pa.array(col, type=pa.string()) for col in self.rows))
            self.rows = ([], [], [])


def read_rdf(
    path: str | Path, fmt: str, labels: dict[str, str], label_lang: str | None = "en"
) -> Iterator[tuple[pa.Array, ...]]:
    """Blocks of (subject, predicate, object) keys from N-Triples or Turtle; rdfs:label / skos:prefLabel /
    schema:name literals go to `labels` instead of becoming edges. URIs are kept whole; literals with a
    datatype or language keep their N3 form so "1"^^xsd:int and "1" stay distinct."""
    try:
        import rdflib
        from rdflib.plugins.parsers.ntriples import W3CNTriplesParser
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise SourceError(f"{path}: reading RDF needs rdflib: pip install rdflib") from e
    path = Path(path)
    _check_file(path)
    batcher = _Batcher(labels, label_lang)
    try:
        if fmt == "nt":
            parser = W3CNTriplesParser(sink=batcher)  # type: ignore[arg-type]  # rdflib annotates its own sinks; any object with triple() works
            with gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb") as f:
                parser.parse(f)  # type: ignore[arg-type]  # rdflib wants typing.IO; a GzipFile or BufferedReader reads the same
        else:
            graph = rdflib.Graph()
            with gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb") as f:
                graph.parse(f, format="turtle")  # type: ignore[arg-type]  # as above
            for s, p, o in graph:
                batcher.add(s, p, o)
    except SourceError:
        raise
    except Exception as e:  # rdflib raises its own parse errors with the line inside the message
        raise SourceError(f"{path}: cannot parse as {'N-Triples' if fmt == 'nt' else 'Turtle'}: {e}") from e
    batcher.flush()
    yield from batcher.blocks


# ---------------------------------------------------------------------------------------------------- interning


class _Interner:
    """Strings to dense integer ids without a Python object per string: each block is dictionary-encoded by
    Arrow, and at the end the blocks' dictionaries are unified (first occurrence first) and every block's
    local indices mapped to global ids."""

    def __init__(self) -> None:
        self.dictionaries: list[pa.Array] = []
        self.local: list[np.ndarray] = []

    def add(self, column: pa.Array | pa.ChunkedArray) -> int:
        """Queue a column; returns its handle for `ids`."""
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        encoded = column.dictionary_encode()
        self.dictionaries.append(encoded.dictionary)
        self.local.append(encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False))
        return len(self.local) - 1

    def finish(self) -> tuple[pa.Array, list[np.ndarray]]:
        """(the distinct strings, each queued column as int32 ids into them)."""
        if not self.dictionaries:
            return pa.array([], type=pa.string()), []
        if sum(d.nbytes for d in self.dictionaries) > 1 << 30:  # 32-bit string offsets run out at 2 GiB
            self.dictionaries = [d.cast(pa.large_string()) for d in self.dictionaries]
        names = pc.unique(pa.concat_arrays(self.dictionaries))
        ids = []
        for dictionary, local in zip(self.dictionaries, self.local):
            lut = pc.index_in(dictionary, value_set=names).to_numpy(zero_copy_only=False).astype(np.int32)
            ids.append(lut[local])
        self.dictionaries, self.local = [], []
        return names, ids


def read_labels(path: str | Path) -> dict[str, str]:
    """An `id<TAB>name` label file (one pair a line; blank lines and `#` comments skipped) as a dict."""
    path = Path(path)
    _check_file(path)
    labels: dict[str, str] = {}
    try:
        with _open_text(path) as f:
            for number, line in enumerate(f, 1):
                line = line.rstrip("\r\n")
                if not line.strip() or line.startswith("#"):
                    continue
                parts = line.split("\t")
                if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
                    raise SourceError(
                        f"{path} line {number}: expected 2 tab-separated fields (id, name), found {len(parts)}"
                        if len(parts) != 2
                        else f"{path} line {number}: empty id or name"
                    )
                labels[parts[0].strip()] = parts[1].strip()
    except UnicodeDecodeError as e:
        raise SourceError(f"{path}: not valid UTF-8 ({e.reason})") from e
    return labels


def load_graph(
    paths: str | Path | Sequence[str | Path],
    *,
    fmt: str | None = None,
    labels: str | Path | Sequence[str | Path] | None = None,
    relation_labels: str | Path | None = None,
    header: bool | None = None,
    label_lang: str | None = "en",
) -> KnowledgeGraph:
    """Load one or more triple files (e.g. train/valid/test splits) into one graph, duplicates dropped.

    `fmt` forces a format (tsv, csv, pipe, nt, ttl) for every file; by default each file's is detected.
    `labels`: label files mapping entity ids to display names; `relation_labels`: the same for relations.
    """
    files = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if not files:
        raise SourceError("no knowledge graph files given")
    if fmt is not None and fmt not in FORMATS:
        raise SourceError(f"unknown knowledge graph format {fmt!r}; use one of {', '.join(FORMATS)}")
    rdf_labels: dict[str, str] = {}
    entities, relations = _Interner(), _Interner()
    blocks = 0
    for path in files:
        kind = fmt or detect_format(path)
        if kind in _DELIMITERS:
            reader = read_delimited(path, kind, header=header)
        else:
            reader = read_rdf(path, kind, rdf_labels, label_lang)
        for h, r, t in reader:
            entities.add(h)
            relations.add(r)
            entities.add(t)
            blocks += 1
    names, ent_ids = entities.finish()
    relation_names, rel_ids = relations.finish()
    if not blocks or not len(names):
        raise SourceError(f"{', '.join(map(str, files))}: no triples found")
    graph = KnowledgeGraph.from_ids(
        np.concatenate(ent_ids[0::2]),
        np.concatenate(rel_ids),
        np.concatenate(ent_ids[1::2]),
        names,
        relation_names.to_pylist(),
        source=", ".join(str(p) for p in files),
    )
    del ent_ids, rel_ids
    if rdf_labels:
        graph.set_labels(rdf_labels)
    if labels is not None:
        for label_path in [labels] if isinstance(labels, (str, Path)) else labels:
            graph.set_labels(read_labels(label_path))
    if relation_labels is not None:
        graph.set_labels(read_labels(relation_labels), relations=True)
    return graph
