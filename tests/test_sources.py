"""Reading, chunking and ranking documents."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sftforge.errors import SourceError
from sftforge.lib.bm25 import bm25_scores
from sftforge.sources.chunking import chunk_document
from sftforge.sources.readers import Document, ReadReport, doc_id_root, html_to_text, matched_files, read_documents

from conftest import EXAMPLES, SHARED


def words(text: str) -> int:
    return len(text.split())


def read_all(pattern: str, base: Path, **kw) -> tuple[list[Document], ReadReport]:
    files = matched_files(pattern, base)
    report = ReadReport()
    docs = list(read_documents(files, doc_id_root(files), report=report, **kw))
    return docs, report


# -- chunking ------------------------------------------------------------------------------------------------------


def check_chunks(doc: Document, chunks, max_tokens: int, count) -> None:
    assert chunks, "no chunks"
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text
        assert c.text == c.text.strip()
        assert c.n_tokens == count(c.text)
        assert c.n_tokens <= max_tokens, (c.n_tokens, c.text[:80])
    # every non-space character of the document is in some chunk
    covered = bytearray(len(doc.text))
    for c in chunks:
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    missing = [i for i, ch in enumerate(doc.text) if not covered[i] and not ch.isspace()]
    assert not missing, f"characters not covered: {doc.text[missing[0] : missing[0] + 40]!r}"


def test_chunks_keep_paragraphs_whole_and_overlap():
    paras = [f"Paragraph {i} " + "word " * 20 for i in range(10)]
    doc = Document("d", "d.txt", "\n\n".join(p.strip() for p in paras))
    chunks = list(chunk_document(doc, max_tokens=50, overlap_tokens=25, count=words))
    check_chunks(doc, chunks, 50, words)
    for c in chunks:  # 22-word paragraphs, 50-word chunks: two whole paragraphs each
        assert c.text.startswith("Paragraph") and c.text.endswith("word")
    starts = [c.start for c in chunks]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert any(a.end > b.start for a, b in zip(chunks, chunks[1:])), "no overlap between consecutive chunks"


def test_long_paragraphs_split_at_sentences_then_words():
    sentence = "This sentence has exactly eight words in it. "
    long_para = sentence * 30
    giant_sentence = " ".join(f"w{i}" for i in range(300))
    doc = Document("d", "d.txt", f"Short intro.\n\n{long_para.strip()}\n\n{giant_sentence}")
    chunks = list(chunk_document(doc, max_tokens=40, overlap_tokens=0, count=words))
    check_chunks(doc, chunks, 40, words)
    sentence_chunks = [c for c in chunks if "eight words" in c.text]
    assert all(c.text.endswith("in it.") for c in sentence_chunks)


def test_real_pep_with_model_tokenizer(tokenizer):
    text = (EXAMPLES / "data" / "peps" / "pep-0008.rst").read_text()
    doc = Document("pep-0008.rst", "pep-0008.rst", text)
    chunks = list(chunk_document(doc, max_tokens=128, overlap_tokens=16, count=tokenizer.count))
    check_chunks(doc, chunks, 128, tokenizer.count)
    assert len(chunks) > 50
    assert sum(c.n_tokens for c in chunks) >= tokenizer.count(text) * 0.9


def test_chinese_text_without_spaces(tokenizer):
    text = (EXAMPLES / "data" / "xquad_zh" / "oxygen.txt").read_text()
    doc = Document("oxygen.txt", "oxygen.txt", text)
    chunks = list(chunk_document(doc, max_tokens=64, overlap_tokens=8, count=tokenizer.count))
    check_chunks(doc, chunks, 64, tokenizer.count)
    assert len(chunks) >= 4


# -- readers -------------------------------------------------------------------------------------------------------


def test_reads_every_format(tmp_path: Path):
    (tmp_path / "a.txt").write_text("plain text document")
    (tmp_path / "b.md").write_text("# Title\n\nmarkdown body")
    (tmp_path / "c.rst").write_text("Title\n=====\n\nrst body")
    (tmp_path / "d.html").write_text(
        "<html><head><title>t</title><style>p{}</style></head><body><p>First &amp; para</p>"
        "<script>var x=1;</script><div>Second para</div></body></html>"
    )
    (tmp_path / "e.jsonl").write_text(
        json.dumps({"body": "json one", "key": "x1"}) + "\n\n" + json.dumps({"body": "json two", "key": "x2"}) + "\n"
    )
    pq.write_table(pa.table({"body": ["pq one", "pq two"], "key": ["p1", "p2"]}), tmp_path / "f.parquet")
    docs, report = read_all(str(tmp_path), tmp_path, text_field="body", id_field="key")
    by_id = {d.id: d.text for d in docs}
    assert by_id["a.txt"] == "plain text document"
    assert by_id["d.html"] == "First & para\n\nSecond para"
    assert by_id["e.jsonl#x1"] == "json one" and by_id["e.jsonl#x2"] == "json two"
    assert by_id["f.parquet#p2"] == "pq two"
    assert {"b.md", "c.rst"} <= set(by_id)
    assert report.files == 6 and report.documents == 8 and not report.skipped


def test_binary_and_non_utf8_files_are_skipped_and_named(tmp_path: Path):
    (tmp_path / "good.txt").write_text("fine")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02 binary")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    docs, report = read_all(str(tmp_path), tmp_path)
    # a text file that is not UTF-8 is decoded by detection (tests/test_formats.py has longer texts); binary is not
    assert sorted(d.id for d in docs) == ["good.txt", "latin1.txt"]
    assert [Path(p).name for p, _ in report.decoded] == ["latin1.txt"]
    skipped = {Path(p).name: why for p, why in report.skipped}
    assert skipped["binary.txt"] == "binary file"
    assert "latin1.txt" not in skipped
    assert "not a readable Parquet file" in skipped["broken.parquet"]


def test_jsonl_bad_line_skipped_missing_field_is_an_error(tmp_path: Path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "ok"}\n{not json\n{"text": "ok2"}\n')
    docs, report = read_all(str(path), tmp_path)
    assert [d.text for d in docs] == ["ok", "ok2"]
    assert report.skipped[0][0].endswith("d.jsonl, line 2")
    path.write_text('{"text": "ok"}\n{"body": "no text field"}\n')
    with pytest.raises(SourceError, match=r"d.jsonl, line 2: no field 'text' \(fields: body\)"):
        read_all(str(path), tmp_path)


def test_missing_path_is_an_error(tmp_path: Path):
    with pytest.raises(SourceError, match="matches no file"):
        matched_files("nowhere/*.txt", tmp_path)


def test_html_to_text_keeps_blocks_apart():
    assert html_to_text("<ul><li>one</li><li>two</li></ul>") == "one\n\ntwo"


# -- retrieval -----------------------------------------------------------------------------------------------------


def test_bm25_ranks_relevant_passages_first():
    passages = [
        "The weather in Paris is mild in spring.",
        "Docstrings are string literals that occur as the first statement in a module, function or class.",
        "Use four spaces per indentation level.",
        "Bananas are rich in potassium.",
    ]
    scores = bm25_scores(passages, "How should docstrings be written for a function?", "en")
    assert scores.argmax() == 1
    assert scores[3] == 0.0


def test_bm25_chinese_uses_characters():
    passages = [p for p in (EXAMPLES / "data" / "xquad_zh" / "oxygen.txt").read_text().split("\n\n")]
    passages += (EXAMPLES / "data" / "xquad_zh" / "prime_number.txt").read_text().split("\n\n")
    scores = bm25_scores(passages, "素数和自然数的定义", "zh")
    best = passages[int(scores.argmax())]
    assert "素数" in best
    scores = bm25_scores(passages, "氧气是谁发现的", "zh")
    assert "氧" in passages[int(scores.argmax())]


@pytest.mark.parametrize(
    "lang, query", [("en", "context managers: the with statement and __exit__ exit exit"), ("zh", "氧气是谁发现的")]
)
def test_bm25_term_counts_added_up_over_blocks_equal_one_index_over_every_passage(lang, query):
    from sftforge.lib.bm25 import TermCounts, bm25_from_counts, query_terms
    from sftforge.sources.retrieval import BM25Index

    folder = EXAMPLES / "data" / ("peps" if lang == "en" else "xquad_zh")
    passages = [p for f in sorted(folder.iterdir()) for p in f.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    passages += ["the of and", "。"]  # no term at all (stop words, punctuation)
    terms = query_terms(query, lang)
    blocks = [passages[:7], passages[7:7], passages[7:25], passages[25:]]
    scores = bm25_from_counts(
        TermCounts.concat([TermCounts.of(b, terms, lang) for b in blocks], len(set(terms))), terms
    )
    index = BM25Index(passages, lang)
    docs, want = index.search([query], k=len(passages))
    expected = np.zeros(len(passages), dtype=np.float32)
    expected[docs[0]] = want[0]
    assert len(passages) > 30 and (expected > 0).sum() > 5
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.argsort(-scores, kind="stable")[:20], np.argsort(-expected, kind="stable")[:20])


@pytest.mark.skipif(not (SHARED / "corpus" / "python_peps").exists(), reason="shared corpus not present")
def test_bm25_over_the_full_pep_corpus_finds_the_walrus_pep(tokenizer):
    files = matched_files(str(SHARED / "corpus" / "python_peps" / "*.rst"), Path("."))
    docs = list(read_documents(files, doc_id_root(files)))
    texts = [d.text[:4000] for d in docs]
    scores = bm25_scores(texts, "assignment expressions walrus operator :=", "en")
    top = [docs[i].id for i in scores.argsort()[::-1][:3]]
    assert "pep-0572.rst" in top
