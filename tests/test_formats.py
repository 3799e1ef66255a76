"""PDF, DOCX, PPTX and EPUB files and text in legacy encodings, read as documents: files made here with the
real libraries (and a PDF written byte by byte), bad files skipped with their reason."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from sftforge.sources.readers import ReadReport, read_documents


def make_pdf(pages: list[str]) -> bytes:
    """A PDF with one line of text per page, by the PDF writer of the example documents' build script (which
    computes the xref table itself; no PDF library writes it)."""
    import importlib.util

    from conftest import EXAMPLES

    spec = importlib.util.spec_from_file_location("home_manuals_build", EXAMPLES / "data/home_manuals/build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    return build.pdf_bytes([[text] for text in pages])


def write_epub(path: Path, chapters: list[tuple[str, str]], spine: list[str]) -> None:
    """A minimal EPUB 3 (the ZIP layout of the specification): mimetype, container, package with a spine, the
    chapters under OEBPS/."""
    import zipfile

    items = "".join(f'<item id="{n}" href="{n}" media-type="application/xhtml+xml"/>' for n, _ in chapters)
    refs = "".join(f'<itemref idref="{n}"/>' for n in spine)
    opf = (
        '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:identifier id="id">x</dc:identifier>'
        f"<dc:title>Notes</dc:title></metadata><manifest>{items}</manifest><spine>{refs}</spine></package>"
    )
    container = (
        '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
        '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
        "</rootfiles></container>"
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/epub+zip")
        z.writestr("META-INF/container.xml", container)
        z.writestr("OEBPS/content.opf", opf)
        for name, html in chapters:
            z.writestr(f"OEBPS/{name}", html)


def read(folder: Path) -> tuple[list, ReadReport]:
    report = ReadReport()
    files = sorted(p for p in folder.iterdir() if p.is_file())
    return list(read_documents(files, folder, report=report)), report


def test_pdf_text_by_page(tmp_path: Path):
    (tmp_path / "manual.pdf").write_bytes(make_pdf(["Install the pump before winter.", "Drain it every spring."]))
    docs, report = read(tmp_path)
    assert len(docs) == 1 and report.skipped == []
    doc = docs[0]
    assert "Install the pump before winter." in doc.text and "Drain it every spring." in doc.text
    assert doc.pages is not None and len(doc.pages) == 2 and doc.pages[0] == 0
    assert doc.text[doc.pages[1] :].startswith("Drain it every spring.")


def test_encrypted_scanned_and_corrupt_pdfs_are_skipped_with_their_reason(tmp_path: Path):
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(make_pdf(["Secret plans."]))))
    writer.encrypt("s3cret")
    with open(tmp_path / "locked.pdf", "wb") as f:
        writer.write(f)
    blank = PdfWriter()
    blank.add_blank_page(612, 792)
    with open(tmp_path / "scan.pdf", "wb") as f:
        blank.write(f)
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not a PDF body")
    (tmp_path / "notes.txt").write_text("A note that is fine.", encoding="utf-8")
    docs, report = read(tmp_path)
    assert [d.id for d in docs] == ["notes.txt"]
    reasons = dict((Path(p).name, r) for p, r in report.skipped)
    assert "encrypted PDF" in reasons["locked.pdf"]
    assert "no text layer" in reasons["scan.pdf"] and "OCR" in reasons["scan.pdf"]
    assert "not a readable PDF" in reasons["broken.pdf"]


def test_docx_paragraphs_headings_and_tables_in_order(tmp_path: Path):
    import docx

    d = docx.Document()
    d.add_heading("Maintenance", level=1)
    d.add_paragraph("Check the filter monthly.")
    table = d.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Part", "Interval"
    table.cell(1, 0).text, table.cell(1, 1).text = "Filter", "1 month"
    d.add_paragraph("Call support if it leaks.")
    d.save(str(tmp_path / "guide.docx"))
    (tmp_path / "fake.docx").write_bytes(b"PK\x03\x04 not really a word file")
    docs, report = read(tmp_path)
    assert [x.id for x in docs] == ["guide.docx"]
    text = docs[0].text
    assert text.index("Maintenance") < text.index("Check the filter") < text.index("Filter | 1 month")
    assert text.index("Filter | 1 month") < text.index("Call support")
    assert "not a Word document" in dict((Path(p).name, r) for p, r in report.skipped)["fake.docx"]


def test_pptx_and_epub(tmp_path: Path):
    from pptx import Presentation

    deck = Presentation()
    for title, body in (("Quarterly review", "Sales grew in the north."), ("Next steps", "Hire two engineers.")):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    deck.save(str(tmp_path / "deck.pptx"))
    write_epub(
        tmp_path / "notes.epub",
        [
            ("two.xhtml", "<html><body><h1>Chapter two</h1><p>It dries in August.</p></body></html>"),
            ("one.xhtml", "<html><body><h1>Chapter one</h1><p>The river floods in May.</p></body></html>"),
        ],
        spine=["one.xhtml", "two.xhtml"],
    )
    docs, report = read(tmp_path)
    by_id = {d.id: d.text for d in docs}
    assert report.skipped == []
    assert "Quarterly review" in by_id["deck.pptx"] and "Hire two engineers." in by_id["deck.pptx"]
    book = by_id["notes.epub"]
    assert "The river floods in May." in book and book.index("Chapter one") < book.index("Chapter two")  # spine order


@pytest.mark.parametrize(
    ("text", "encoding", "detected"),
    [
        (
            "这是一份用国标编码保存的说明书，请在使用前仔细阅读全部内容，并妥善保管。设备应放置在通风干燥的地方。",
            "gb18030",
            "gb18030",
        ),
        ("Café crème, déjà vu: the naïve façade of an old résumé, written in Latin-1 long ago.", "latin-1", None),
    ],
)
def test_text_in_legacy_encodings_is_decoded_and_the_encoding_recorded(
    tmp_path: Path, text: str, encoding: str, detected: str | None
):
    (tmp_path / "old.txt").write_bytes(text.encode(encoding))
    docs, report = read(tmp_path)
    assert [d.text for d in docs] == [text]
    assert docs[0].encoding is not None and report.decoded == [(str(tmp_path / "old.txt"), docs[0].encoding)]
    if detected:
        assert docs[0].encoding == detected


def test_pdf_pages_reach_the_chunks_and_a_record_cites_them(tmp_path: Path):
    """The sources stage over a PDF: every chunk knows its page, and a record's source keeps it through Parquet."""
    import pyarrow.parquet as pq

    from sftforge.recipe import load_recipe_text
    from sftforge.run import RunDir
    from sftforge.sample import Lineage, Record, SourceRef, records_to_table, table_to_records
    from sftforge.stages import Context, run_stage

    docs = tmp_path / "docs"
    docs.mkdir()
    lines = [f"Step {i}: tighten bolt {i} of the pump housing to the torque in the table." for i in range(1, 7)]
    (docs / "pump.pdf").write_bytes(make_pdf(lines))
    text = (
        "name: pdfs\ntask: {type: qa, description: pump maintenance, target_count: 2}\n"
        "sources:\n  documents: [{path: docs}]\n  chunking: {max_tokens: 24, overlap_tokens: 0, min_tokens: 1}\n"
        "  retrieval: {method: none}\n"
    )
    recipe = load_recipe_text(text, base_dir=tmp_path)
    run = RunDir.create(tmp_path / "run", text, "pdfs", tmp_path)
    run_stage(Context(run=run, recipe=recipe), "sources")
    chunks = pq.read_table(run.stage_dir("sources") / "chunks.parquet").to_pylist()
    assert len(chunks) >= 2 and {c["page"] for c in chunks} >= {1, 6}
    for c in chunks:  # the page a chunk starts on holds its first line
        assert f"Step {c['page']}:" in c["text"].split("\n")[0]
    ref = SourceRef(
        "chunk",
        chunks[-1]["chunk_id"],
        chunks[-1]["doc_id"],
        chunks[-1]["start"],
        chunks[-1]["end"],
        chunks[-1]["page"],
    )
    rec = Record(
        id="r",
        task="qa",
        lang="en",
        messages=[{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}],
        source=[ref],
        lineage=Lineage(generator="grounded", model="none"),
    )
    assert table_to_records(records_to_table([rec]))[0].source[0].page == chunks[-1]["page"]
