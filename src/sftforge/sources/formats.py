"""Text out of the files organisations keep: PDF, Word, PowerPoint, EPUB, and text in any common encoding.

Each reader returns the document's text, or raises `Unreadable` with the reason the file is skipped (the caller
counts and names it; a bad file never stops a run). The libraries are pure Python, offline and well kept:
- PDF: pypdf (the text layer, page by page; page starts are kept as character offsets). A PDF whose pages hold
  no text is scanned ("no text layer: it needs OCR"); an encrypted one that an empty password does not open is
  skipped as such.
- DOCX: python-docx (paragraphs and headings in body order, tables row by row with cells joined by " | ").
- PPTX: python-pptx (each slide's text frames and tables, a blank line between slides).
- EPUB: EbookLib (the spine's XHTML documents, as visible text).
- Text that is not UTF-8: charset-normalizer detects the encoding (GB18030, Big5, Shift-JIS, Latin-1, ...),
  which is recorded.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class Unreadable(Exception):
    """A file that has no text to take, and why."""


@dataclass(slots=True)
class Extracted:
    text: str
    encoding: str | None = None  # the detected encoding of a text file that is not UTF-8
    pages: list[int] | None = None  # PDF: the character offset where each page's text starts


def decode_text(data: bytes) -> tuple[str, str | None]:
    """A text file's content and, when it is not UTF-8, the encoding detected; Unreadable for binary data."""
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise Unreadable("binary file")
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    results = list(from_bytes(data))
    if not results:
        raise Unreadable("binary or in no encoding that could be detected")
    # among the decodings about as clean as the cleanest (a few odd characters apart), the one whose letters fit a
    # language best: cp1257 and cp1252 both decode "déjà vu" without noise, only cp1252 reads as French
    least = min(m.chaos for m in results)
    best = max((m for m in results if m.chaos <= least + 0.1), key=lambda m: (m.coherence, -m.chaos))
    encoding = best.encoding
    if encoding in ("gb2312", "gbk"):  # read as the superset, so rarer characters decode too
        encoding = "gb18030"
    return data.decode(encoding, errors="strict"), encoding


def _pdf(path: Path) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted and not reader.decrypt(""):
            raise Unreadable("encrypted PDF: the empty password does not open it")
        texts = [(page.extract_text() or "").strip() for page in reader.pages]
    except Unreadable:
        raise
    except (PdfReadError, ValueError, KeyError, OSError) as e:
        raise Unreadable(f"not a readable PDF ({type(e).__name__}: {e})") from e
    if not any(texts):
        raise Unreadable(f"no text layer in its {len(texts)} page(s): a scanned PDF needs OCR first")
    pages, parts, pos = [], [], 0
    for t in texts:
        pages.append(pos)
        parts.append(t)
        pos += len(t) + 2
    return Extracted("\n\n".join(parts), pages=pages)


def _docx(path: Path) -> Extracted:
    import docx
    from docx.opc.exceptions import OpcError
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(str(path))
    except (zipfile.BadZipFile, KeyError, ValueError, OpcError) as e:
        raise Unreadable(f"not a Word document ({type(e).__name__}: {e})") from e
    parts: list[str] = []
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            text = block.text.strip()  # computed from the runs on every access: once
            if text:
                parts.append(text)
        elif isinstance(block, Table):
            rows = [" | ".join(c.text.strip() for c in row.cells) for row in block.rows]
            parts.append("\n".join(r for r in rows if r.strip(" |")))
    return Extracted("\n\n".join(p for p in parts if p))


def _pptx(path: Path) -> Extracted:
    from pptx import Presentation
    from pptx.exc import PackageNotFoundError

    try:
        deck = Presentation(str(path))
    except (zipfile.BadZipFile, KeyError, ValueError, PackageNotFoundError) as e:
        raise Unreadable(f"not a PowerPoint file ({type(e).__name__}: {e})") from e
    slides = []
    for slide in deck.slides:
        parts = []
        for shape in slide.shapes:
            if shape.has_text_frame and shape.text_frame.text.strip():
                parts.append(shape.text_frame.text.strip())
            elif getattr(shape, "has_table", False) and shape.has_table:
                rows = [" | ".join(c.text.strip() for c in row.cells) for row in shape.table.rows]
                parts.append("\n".join(rows))
        if parts:
            slides.append("\n".join(parts))
    return Extracted("\n\n".join(slides))


_OPF = "{http://www.idpf.org/2007/opf}"
_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"


def _epub(path: Path) -> Extracted:
    """An EPUB is a ZIP of XHTML chapters; its package file (named by META-INF/container.xml) lists them in
    reading order (the spine). Read with the standard library: the common EPUB library is AGPL-licensed."""
    import posixpath
    import xml.etree.ElementTree as ET

    from sftforge.sources.readers import html_to_text

    try:
        with zipfile.ZipFile(path) as book:
            container = ET.fromstring(book.read("META-INF/container.xml"))
            rootfile = container.find(f".//{_CONTAINER}rootfile")
            if rootfile is None or not rootfile.get("full-path"):
                raise Unreadable("not an EPUB book (META-INF/container.xml names no package file)")
            opf_path = rootfile.get("full-path", "")
            package = ET.fromstring(book.read(opf_path))
            manifest = {
                item.get("id"): item.get("href", "")
                for item in package.iter(f"{_OPF}item")
                if "html" in (item.get("media-type") or "")
            }
            base = posixpath.dirname(opf_path)
            texts = []
            for ref in package.iter(f"{_OPF}itemref"):
                href = manifest.get(ref.get("idref"))
                if href is None:
                    continue
                name = posixpath.normpath(posixpath.join(base, href.split("#")[0]))
                text = html_to_text(book.read(name).decode("utf-8", errors="replace"))
                if text.strip():
                    texts.append(text)
    except (zipfile.BadZipFile, KeyError, ET.ParseError) as e:
        raise Unreadable(f"not an EPUB book ({type(e).__name__}: {e})") from e
    return Extracted("\n\n".join(texts))


READERS: dict[str, Callable[[Path], Extracted]] = {".pdf": _pdf, ".docx": _docx, ".pptx": _pptx, ".epub": _epub}


def extract(path: Path) -> Extracted:
    """The text of a PDF, DOCX, PPTX or EPUB file; Unreadable with the reason otherwise."""
    reader = READERS[path.suffix.lower()]
    text = reader(path)
    if not text.text.strip():
        raise Unreadable("no text in it")
    return text
