"""Read documents from files, folders and globs: .txt .md .rst .html .jsonl .parquet, and through
`sources.formats` .pdf .docx .pptx .epub; text files in any common encoding (detected and recorded).

Unreadable files (binary, encrypted, scanned, corrupt) are skipped, counted and named, never fatal; a path that
matches nothing or a corpus with no text is an error that names the recipe entry.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from sftforge.errors import SourceError
from sftforge.rows import read_rows
from sftforge.sources.formats import READERS, Unreadable, decode_text, extract

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst"}
HTML_SUFFIXES = {".html", ".htm"}
TABLE_SUFFIXES = {".jsonl", ".parquet"}
SUPPORTED = TEXT_SUFFIXES | HTML_SUFFIXES | TABLE_SUFFIXES | set(READERS)


@dataclass(slots=True)
class Document:
    id: str
    path: str
    text: str
    encoding: str | None = None  # a text file that was not UTF-8: the encoding detected
    pages: list[int] | None = None  # a PDF: where each page's text starts in `text`


@dataclass
class ReadReport:
    """What reading found: files read, and files or lines skipped with the reason (shown to the user)."""

    files: int = 0
    documents: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path or path:line, reason)
    decoded: list[tuple[str, str]] = field(default_factory=list)  # (path, encoding) of text files not in UTF-8


class _HTMLText(HTMLParser):
    """Visible text of an HTML page, with block elements on their own paragraphs."""

    BLOCKS = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "pre", "section", "article", "table"}
    HIDDEN = {"script", "style", "head", "noscript", "template"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self.HIDDEN:
            self._hidden += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)

    def text(self) -> str:
        raw = "".join(self.parts)
        paras = [" ".join(p.split()) for p in raw.split("\n\n")]
        return "\n\n".join(p for p in paras if p)


def html_to_text(html: str) -> str:
    parser = _HTMLText()
    parser.feed(html)
    parser.close()
    return parser.text()


def expand(pattern: str, base_dir: Path) -> list[Path]:
    """Files named by a path, folder (recursive) or glob, sorted for a stable document order."""
    p = Path(pattern).expanduser()
    if not p.is_absolute():
        p = base_dir / p
    if any(ch in pattern for ch in "*?["):
        return sorted(Path(m) for m in glob.glob(str(p), recursive=True) if Path(m).is_file())
    if p.is_dir():
        return sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUPPORTED)
    if p.is_file():
        return [p]
    return []


def doc_id_root(files: list[Path]) -> Path:
    """The folder document ids are relative to: the deepest folder holding every file of the corpus, so ids are
    short, unique within the run and independent of where the corpus or the recipe lives."""
    folders = [str(f.resolve().parent) for f in files]
    return Path(os.path.commonpath(folders)) if folders else Path(".")


def _read_table(
    path: Path, doc_id: str, text_field: str, id_field: str | None, report: ReadReport
) -> Iterator[Document]:
    """Documents from the rows of a .jsonl or .parquet file: bad JSON lines and rows without text are skipped and
    named; a row without the text field is an error (the recipe names the wrong field)."""
    fix = "; set text_field in the recipe's sources.documents entry"
    columns = None
    if path.suffix.lower() == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            names = pq.read_schema(path).names
        except (OSError, pa.ArrowException) as exc:
            report.skipped.append((str(path), f"not a readable Parquet file ({exc})"))
            return
        columns = [text_field] + ([id_field] if id_field and id_field in names else [])
    for row in read_rows(path, on_bad="skip", skipped=report.skipped, columns=columns, error=SourceError, fix=fix):
        if text_field not in row.data:
            raise SourceError(f"{row.where}: no field '{text_field}' (fields: {', '.join(sorted(row.data))}){fix}")
        text = row.data[text_field]
        if not isinstance(text, str) or not text.strip():
            report.skipped.append((row.where, f"field '{text_field}' is empty or not text"))
            continue
        rid = str(row.data[id_field]) if id_field and id_field in row.data else str(row.number)
        yield Document(id=f"{doc_id}#{rid}", path=str(path), text=text)


def matched_files(pattern: str, base_dir: Path) -> list[Path]:
    """Files of one recipe `sources.documents` entry, or a SourceError that names it."""
    files = expand(pattern, base_dir)
    if not files:
        raise SourceError(
            f"sources.documents path '{pattern}' matches no file (looked in {base_dir}); "
            f"supported: {', '.join(sorted(SUPPORTED))}"
        )
    return files


def read_documents(
    files: list[Path],
    id_root: Path,
    text_field: str = "text",
    id_field: str | None = None,
    report: ReadReport | None = None,
) -> Iterator[Document]:
    """Documents in `files`, with ids relative to `id_root` (see doc_id_root)."""
    report = report if report is not None else ReadReport()
    for path in files:
        suffix = path.suffix.lower()
        doc_id = str(path.resolve().relative_to(id_root))
        report.files += 1
        try:
            if suffix in TABLE_SUFFIXES:
                docs = list(_read_table(path, doc_id, text_field, id_field, report))
            elif suffix in READERS:
                got = extract(path)
                docs = [Document(id=doc_id, path=str(path), text=got.text, pages=got.pages)]
            else:
                text, encoding = decode_text(path.read_bytes())
                if encoding is not None:
                    report.decoded.append((str(path), encoding))
                    log.info("sources: %s is not UTF-8; read as %s", path, encoding)
                if suffix in HTML_SUFFIXES:
                    text = html_to_text(text)
                if not text.strip():
                    report.skipped.append((str(path), "empty"))
                    continue
                docs = [Document(id=doc_id, path=str(path), text=text, encoding=encoding)]
        except Unreadable as exc:
            report.skipped.append((str(path), str(exc)))
            continue
        except PermissionError:
            report.skipped.append((str(path), "permission denied"))
            continue
        except OSError as exc:
            raise SourceError(f"cannot read {path}: {exc}") from exc
        report.documents += len(docs)
        yield from docs
