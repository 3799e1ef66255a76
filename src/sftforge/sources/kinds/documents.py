"""`sources.documents`: files, folders and globs of documents, read, chunked by model tokens and ranked by BM25
against the task (the brief's data search), so generation spends its budget on the most relevant passages first.

Files are read, chunked and their BM25 terms counted in blocks of files by `DocumentsWorker`, in this process or in
Ray workers (each block is kept under `sources/_blocks/` until the read ends, so a Ray run resumes from the blocks
done); this process then adds the blocks' term counts up into the one ranking an index over every passage would
give, and writes the passages and documents (`storage.write_passages`).
"""

from __future__ import annotations

import bisect
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from sftforge.config import Chunking, Retrieval, Strict
from sftforge.engine.base import open_runner, settings_of
from sftforge.errors import SourceError
from sftforge.lib.bm25 import TermCounts, bm25_from_counts, query_terms
from sftforge.llm.bundled import resolve_model_path
from sftforge.run import atomic_folder, atomic_write_bytes, atomic_write_table
from sftforge.sources.chunking import chunk_document
from sftforge.sources.kinds.base import ReadContext, SourceKind, register
from sftforge.sources.readers import ReadReport, doc_id_root, matched_files, read_documents
from sftforge.storage import CHUNK_SCHEMA, DOC_SCHEMA, write_passages

if TYPE_CHECKING:
    from sftforge.recipe import Recipe

log = logging.getLogger(__name__)


class DocumentSource(Strict):
    """A file, folder or glob of documents."""

    path: str = Field(description="File, folder (searched recursively) or glob, relative to the recipe file.")
    text_field: str = Field("text", description=".jsonl/.parquet: the field that holds the text.")
    id_field: str | None = Field(None, description=".jsonl/.parquet: a field to use as the document id.")


def tokenizer_path(recipe: Recipe) -> Path:
    """The GGUF whose tokenizer measures chunks: the recipe's choice, else the generating model's, else the
    bundled model's (server backends have no local tokenizer; its counts are close for most models)."""
    chosen = recipe.sources.chunking.tokenizer
    if chosen is None:
        model = recipe.generation.model
        chosen = model.path if model.backend == "llamacpp" else "bundled"
        if model.backend == "transformers" and model.path.endswith(".gguf"):
            chosen = model.path
    return resolve_model_path(chosen, recipe.resolve("."))


def query_text(recipe: Recipe) -> str:
    """What passages are ranked against: `sources.retrieval.query`, else the task description."""
    return recipe.sources.retrieval.query or recipe.task.description


def page_of(pages: list[int] | None, start: int) -> int | None:
    """The 1-based page of a PDF holding character `start`, from the page start offsets; None for other files."""
    return bisect.bisect_right(pages, start) if pages else None


@dataclass(slots=True)
class DocumentsBlock:
    """What a documents worker returns for one block of files: their documents, their chunks with each chunk's
    BM25 term counts for the query (`lib.bm25.TermCounts`), and what was read or skipped."""

    documents: Any  # pyarrow Table: doc_id, path, text
    chunks: Any  # pyarrow Table: the chunk fields, `length` (terms) and `tf` (count of each query term)
    files: int
    skipped: list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class DocumentsSettings:
    """Everything a documents worker needs besides its block: how to read, chunk and count terms."""

    id_root: str
    fields: list[tuple[str, str | None]]  # (text_field, id_field) of each recipe `sources.documents` entry
    tokenizer_path: str
    max_tokens: int
    overlap_tokens: int
    query: list[str]  # the query's BM25 terms
    lang: str


class DocumentsWorker:
    """Reads a block of source files, chunks its documents by model tokens and counts each chunk's BM25 terms; the
    tokenizer loads once per worker. A block is a JSON list `[entry, [paths]]`: files of one recipe entry."""

    def __init__(self, settings: DocumentsSettings) -> None:
        from sftforge.llm.llamacpp import LlamaTokenizer

        self.settings = settings
        self.count = LlamaTokenizer(Path(settings.tokenizer_path)).count

    def process(self, block: str) -> DocumentsBlock:
        s = self.settings
        entry, paths = json.loads(block)
        text_field, id_field = s.fields[entry]
        report = ReadReport()
        docs = list(read_documents([Path(p) for p in paths], Path(s.id_root), text_field, id_field, report))
        chunks = [c for d in docs for c in chunk_document(d, s.max_tokens, s.overlap_tokens, self.count)]
        pages = {d.id: d.pages for d in docs if d.pages}
        counts = TermCounts.of([c.text for c in chunks], s.query, s.lang)
        documents = pa.table(
            {
                "doc_id": pa.array([d.id for d in docs], pa.string()),
                "path": pa.array([d.path for d in docs], pa.string()),
                "text": pa.array([d.text for d in docs], pa.string()),
            }
        )
        table = pa.table(
            {
                "chunk_id": pa.array([c.id for c in chunks], pa.string()),
                "doc_id": pa.array([c.doc_id for c in chunks], pa.string()),
                "index": pa.array([c.index for c in chunks], pa.int32()),
                "start": pa.array([c.start for c in chunks], pa.int64()),
                "end": pa.array([c.end for c in chunks], pa.int64()),
                "page": pa.array([page_of(pages.get(c.doc_id), c.start) for c in chunks], pa.int32()),
                "text": pa.array([c.text for c in chunks], pa.string()),
                "n_tokens": pa.array([c.n_tokens for c in chunks], pa.int32()),
                "length": pa.array(counts.lengths, pa.int64()),
                "tf": pa.ListArray.from_arrays(
                    pa.array(np.arange(len(chunks) + 1) * counts.tf.shape[1], pa.int32()),
                    pa.array(counts.tf.reshape(-1), pa.int32()),
                ),
            }
        )
        return DocumentsBlock(documents, table, report.files, list(report.skipped))


FILES_PER_BLOCK = 64  # a block (one worker task) holds up to this many files of one recipe entry...
BYTES_PER_BLOCK = 64 << 20  # ...and up to this many bytes, unless a single file is bigger


def file_blocks(entries: list[list[Path]]) -> list[tuple[int, list[str]]]:
    """The source files split into blocks, in corpus order: runs of consecutive files of one recipe entry, each
    up to FILES_PER_BLOCK files and BYTES_PER_BLOCK bytes. A block is (entry index, paths)."""
    blocks: list[tuple[int, list[str]]] = []
    for entry, files in enumerate(entries):
        current: list[str] = []
        size = 0
        for path in files:
            n = path.stat().st_size
            if current and (len(current) >= FILES_PER_BLOCK or size + n > BYTES_PER_BLOCK):
                blocks.append((entry, current))
                current, size = [], 0
            current.append(str(path))
            size += n
        if current:
            blocks.append((entry, current))
    return blocks


def _store_block(folder: Path, block: DocumentsBlock) -> None:
    """Write a finished block atomically: into a temporary folder, renamed into place last."""
    with atomic_folder(folder) as tmp:
        atomic_write_table(tmp / "documents.parquet", block.documents.cast(DOC_SCHEMA))
        atomic_write_table(tmp / "chunks.parquet", block.chunks)
        summary = {"files": block.files, "skipped": block.skipped}
        atomic_write_bytes(tmp / "block.json", json.dumps(summary).encode("utf-8"))


@register
class Documents(SourceKind):
    name = "documents"
    Config = DocumentSource
    many = True
    description = "Document files; needed by every generator that writes from passages (all but kg_walk and the instruction generators)."
    needed_as = "document files, folders or globs"
    settings = {
        "chunking": (Chunking, Field(default_factory=Chunking)),
        "retrieval": (Retrieval, Field(default_factory=Retrieval)),
    }

    @classmethod
    def files(cls, recipe: Recipe) -> list[Path]:
        return [path for entry in recipe.sources.documents for path in matched_files(entry.path, recipe.resolve("."))]

    @classmethod
    def fingerprint(cls, recipe: Recipe) -> dict[str, Any]:
        return {"tokenizer": str(tokenizer_path(recipe)), "query": query_text(recipe), "lang": recipe.task.language}

    @classmethod
    def resumes(cls, recipe: Recipe) -> bool:
        """On Ray, from the blocks of files already read and chunked; locally a partial read is cheap to redo."""
        return recipe.engine == "ray"

    @classmethod
    def read(cls, ctx: ReadContext) -> tuple[dict[str, int], dict[str, Any]]:
        recipe = ctx.recipe
        cfg = recipe.sources
        entries = [(entry, matched_files(entry.path, recipe.resolve("."))) for entry in cfg.documents]
        query = query_terms(query_text(recipe), recipe.task.language)
        settings = DocumentsSettings(
            id_root=str(doc_id_root([f for _, files in entries for f in files])),
            fields=[(entry.text_field, entry.id_field) for entry, _ in entries],
            tokenizer_path=str(tokenizer_path(recipe)),
            max_tokens=cfg.chunking.max_tokens,
            overlap_tokens=cfg.chunking.overlap_tokens,
            query=query,
            lang=recipe.task.language,
        )
        blocks = file_blocks([files for _, files in entries])
        root = ctx.run.stage_dir("sources") / "_blocks"
        folders = [root / f"block-{k:05d}" for k in range(len(blocks))]
        pending = [k for k, folder in enumerate(folders) if not folder.is_dir()]
        reused = len(blocks) - len(pending)
        bar = ctx.reporter.task("sources: reading and chunking", total=len(blocks))
        ctx.reporter.advance(bar, n=reused)
        with open_runner(recipe.engine, settings_of(recipe.ray)) as runner:
            tasks = [json.dumps(blocks[k]) for k in pending]
            for k, block in zip(pending, runner.map(DocumentsWorker, (settings,), tasks)):
                _store_block(folders[k], block)
                ctx.reporter.advance(bar, files=sum(len(blocks[j][1]) for j in range(k + 1)))
            engine = runner.info | ({"blocks": len(blocks), "blocks_reused": reused} if recipe.engine == "ray" else {})
        ctx.reporter.done(bar)
        summaries = [json.loads((f / "block.json").read_text(encoding="utf-8")) for f in folders]
        skipped = [tuple(x) for s in summaries for x in s["skipped"]]
        for where, why in skipped:
            log.warning("skipped %s: %s", where, why)
        n_files = sum(s["files"] for s in summaries)
        documents = pa.concat_tables([pq.read_table(f / "documents.parquet", schema=DOC_SCHEMA) for f in folders])
        if not documents.num_rows:
            raise SourceError(
                f"the corpus is empty: {n_files} file(s) matched sources.documents, none had readable text"
                + (f" ({len(skipped)} skipped, e.g. {skipped[0][0]}: {skipped[0][1]})" if skipped else "")
            )
        chunks = pa.concat_tables([pq.read_table(f / "chunks.parquet") for f in folders])
        n = chunks.num_rows
        big_enough = chunks.column("n_tokens").to_numpy() >= cfg.chunking.min_tokens
        if cfg.retrieval.method == "bm25":
            tf = np.asarray(chunks.column("tf").combine_chunks().flatten(), dtype=np.int32).reshape(n, -1)
            scores = bm25_from_counts(TermCounts(chunks.column("length").to_numpy(), tf), query)
            relevant = scores > cfg.retrieval.min_score
            order = np.lexsort((np.arange(n), -scores))  # best first, ties in corpus order
        else:
            scores = np.zeros(n, dtype=np.float32)
            relevant = np.ones(n, dtype=bool)
            order = np.arange(n)
        rank = np.empty(n, dtype=np.int32)
        rank[order] = np.arange(n, dtype=np.int32)
        used = big_enough & relevant
        top_k = cfg.retrieval.top_k
        if top_k is not None and used.sum() > top_k:  # keep the top_k best usable passages
            used &= rank <= np.sort(rank[used])[top_k - 1]
        if not used.any():
            raise SourceError(
                f"no passage is usable for generation: {n} chunks, "
                f"{int(big_enough.sum())} with at least {cfg.chunking.min_tokens} tokens, "
                f"{int(relevant.sum())} matching the query {query_text(recipe)!r}; "
                "lower sources.chunking.min_tokens, change sources.retrieval.query, or set retrieval.method: none"
            )
        table = (
            chunks.select(["chunk_id", "doc_id", "index", "start", "end", "page", "text", "n_tokens"])
            .append_column("score", pa.array(scores, pa.float32()))
            .append_column("rank", pa.array(rank, pa.int32()))
            .append_column("used", pa.array(used, pa.bool_()))
            .cast(CHUNK_SCHEMA)
            .take(pa.array(order))
        )
        write_passages(ctx.run, table, documents)
        shutil.rmtree(root, ignore_errors=True)
        counts = {"files": n_files, "documents": documents.num_rows, "chunks": n, "used_chunks": int(used.sum())}
        extra = {
            "skipped": [{"path": p, "reason": r} for p, r in skipped],
            "query": query_text(recipe),
            "engine": engine,
        }
        return counts, extra
