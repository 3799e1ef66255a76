"""Stage `sources`: read documents, chunk them by model tokens, rank the chunks by relevance to the task; load
the knowledge graph; check the seed tasks.

Writes `sources/documents.parquet` (id, path, text) and `sources/chunks.parquet` (offsets, tokens, BM25 score,
rank, whether generation may use it). Generation walks the chunks in rank order, so a large corpus spends its
budget on the most relevant passages first. A knowledge graph (`sources.kg`) is loaded here once to check it and
to record its size in the manifest; the generate stage loads it again (CSR arrays load in seconds).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from sftforge.errors import SourceError
from sftforge.kg import KnowledgeGraph, load_graph
from sftforge.recipe import Recipe
from sftforge.llm.bundled import resolve_model_path
from sftforge.llm.llamacpp import LlamaTokenizer
from sftforge.run import atomic_write_table
from sftforge.sources.chunking import chunk_document
from sftforge.sources.readers import ReadReport, doc_id_root, matched_files, read_documents
from sftforge.sources.retrieval import bm25_scores
from sftforge.sources.seeds import load_seeds
from sftforge.run import ShardLog
from sftforge.stages.base import Context, Stage

log = logging.getLogger(__name__)

CHUNK_SCHEMA = pa.schema(
    [
        ("chunk_id", pa.string()),
        ("doc_id", pa.string()),
        ("index", pa.int32()),
        ("start", pa.int64()),
        ("end", pa.int64()),
        ("text", pa.string()),
        ("n_tokens", pa.int32()),
        ("score", pa.float32()),
        ("rank", pa.int32()),
        ("used", pa.bool_()),
    ]
)
DOC_SCHEMA = pa.schema([("doc_id", pa.string()), ("path", pa.string()), ("text", pa.string())])
DOCS_PER_BLOCK = 200  # documents per chunking task on the Ray engine


def load_kg(recipe: Recipe) -> KnowledgeGraph:
    """The recipe's knowledge graph (`sources.kg`), paths resolved against the recipe's folder."""
    kg = recipe.sources.kg
    if kg is None:
        raise SourceError(f"task.type {recipe.task.type} needs a knowledge graph: add sources.kg")
    return load_graph(
        [recipe.resolve(p) for p in kg.paths],
        fmt=None if kg.format == "auto" else kg.format,
        labels=[recipe.resolve(p) for p in kg.labels] or None,
        relation_labels=recipe.resolve(kg.relation_labels) if kg.relation_labels else None,
        header=kg.header,
        label_lang=kg.label_lang,
    )


def _stat(path: Path) -> list[Any]:
    st = path.stat()
    return [str(path), st.st_size, st.st_mtime_ns]


class SourcesStage(Stage):
    name = "sources"
    version = 2

    def config(self, ctx: Context) -> Any:
        recipe = ctx.recipe
        files = []
        for entry in recipe.sources.documents:
            for path in matched_files(entry.path, recipe.resolve(".")):
                files.append(_stat(path))
        kg = recipe.sources.kg
        if kg is not None:
            for p in kg.paths + kg.labels + ([kg.relation_labels] if kg.relation_labels else []):
                path = recipe.resolve(p)
                if not path.is_file():
                    raise SourceError(f"sources.kg: {p} is not a file (looked for {path})")
                files.append(_stat(path))
        if recipe.sources.seeds is not None:
            path = recipe.resolve(recipe.sources.seeds.path)
            if not path.is_file():
                raise SourceError(f"sources.seeds: {recipe.sources.seeds.path} is not a file (looked for {path})")
            files.append(_stat(path))
        return {
            "sources": recipe.sources.model_dump(),
            "files": files,
            "tokenizer": str(self.tokenizer_path(ctx)),
            "query": self.query(ctx),
            "lang": recipe.task.language,
        }

    @staticmethod
    def tokenizer_path(ctx: Context) -> Path:
        """The GGUF whose tokenizer measures chunks: the recipe's choice, else the generating model's, else the
        bundled model's (server backends have no local tokenizer; its counts are close for most models)."""
        recipe = ctx.recipe
        chosen = recipe.sources.chunking.tokenizer
        if chosen is None:
            model = recipe.generation.model
            chosen = model.path if model.backend == "llamacpp" else "bundled"
            if model.backend == "transformers" and model.path.endswith(".gguf"):
                chosen = model.path
        return resolve_model_path(chosen, recipe.resolve("."))

    @staticmethod
    def query(ctx: Context) -> str:
        return ctx.recipe.sources.retrieval.query or ctx.recipe.task.description

    def execute(self, ctx: Context, out: ShardLog) -> tuple[dict[str, int], dict[str, Any]]:
        counts: dict[str, int] = {}
        extra: dict[str, Any] = {}
        if ctx.recipe.sources.kg is not None:
            graph = load_kg(ctx.recipe)
            log.info("sources: %r", graph)
            counts |= {"kg_entities": graph.num_entities, "kg_relations": graph.num_relations, "kg_triples": graph.num_triples}
            extra["kg"] = {"files": graph.source, "memory_bytes": graph.nbytes()}
        if ctx.recipe.sources.seeds is not None:
            seeds = load_seeds(ctx.recipe.resolve(ctx.recipe.sources.seeds.path))
            counts |= {"seed_tasks": len(seeds), "seed_classification": sum(s.is_classification for s in seeds)}
        if ctx.recipe.sources.documents:
            doc_counts, doc_extra = self._documents(ctx)
            counts |= doc_counts
            extra |= doc_extra
        return counts, extra

    def _chunk_on_ray(self, ctx: Context, docs: list[Any]) -> tuple[list[Any], dict[str, Any]]:
        """Chunking in Ray actors, a block of documents per task, chunks back in document order (the same chunks
        as locally). Blocks go through the run directory, which the cluster's nodes share."""
        from sftforge.engine.blocks import ChunkWorker, open_runner
        from sftforge.engine.ray_engine import settings_of

        cfg = ctx.recipe.sources.chunking
        folder = ctx.run.stage_dir(self.name) / "_blocks"
        shutil.rmtree(folder, ignore_errors=True)
        blocks = []
        for k in range(0, len(docs), DOCS_PER_BLOCK):
            part = docs[k:k + DOCS_PER_BLOCK]
            blocks.append(str(folder / f"docs-{k // DOCS_PER_BLOCK:05d}.parquet"))
            table = pa.table({"doc_id": [d.id for d in part], "path": [d.path for d in part], "text": [d.text for d in part]},
                             schema=DOC_SCHEMA)
            atomic_write_table(Path(blocks[-1]), table)
        chunks: list[Any] = []
        bar = ctx.reporter.task("sources: chunking", total=len(blocks))
        with open_runner("ray", settings_of(ctx.recipe.ray)) as runner:
            init = (self.tokenizer_path(ctx), cfg.max_tokens, cfg.overlap_tokens)
            for block_chunks in runner.map(ChunkWorker, init, blocks):
                chunks.extend(block_chunks)
                ctx.reporter.advance(bar, chunks=len(chunks))
            info = runner.info | {"chunking_blocks": len(blocks)}
        ctx.reporter.done(bar)
        shutil.rmtree(folder, ignore_errors=True)
        return chunks, info

    def _documents(self, ctx: Context) -> tuple[dict[str, int], dict[str, Any]]:
        recipe = ctx.recipe
        cfg = recipe.sources
        report = ReadReport()
        entries = [(entry, matched_files(entry.path, recipe.resolve("."))) for entry in cfg.documents]
        root = doc_id_root([f for _, files in entries for f in files])
        docs = []
        for entry, files in entries:
            docs.extend(read_documents(files, root, entry.text_field, entry.id_field, report))
        for where, why in report.skipped:
            log.warning("skipped %s: %s", where, why)
        if not docs:
            raise SourceError(
                f"the corpus is empty: {report.files} file(s) matched sources.documents, none had readable text"
                + (f" ({len(report.skipped)} skipped, e.g. {report.skipped[0][0]}: {report.skipped[0][1]})" if report.skipped else "")
            )
        engine: dict[str, Any] = {"name": "local"}
        if recipe.engine == "ray":
            chunks, engine = self._chunk_on_ray(ctx, docs)
        else:
            tokenizer = LlamaTokenizer(self.tokenizer_path(ctx))
            chunks = []
            bar = ctx.reporter.task("sources: chunking", total=len(docs))
            for doc in docs:
                chunks.extend(chunk_document(doc, cfg.chunking.max_tokens, cfg.chunking.overlap_tokens, tokenizer.count))
                ctx.reporter.advance(bar, chunks=len(chunks))
            ctx.reporter.done(bar)
        texts = [c.text for c in chunks]
        big_enough = np.array([c.n_tokens >= cfg.chunking.min_tokens for c in chunks], dtype=bool)
        if cfg.retrieval.method == "bm25":
            scores = bm25_scores(texts, self.query(ctx), recipe.task.language)
            relevant = scores > cfg.retrieval.min_score
            order = np.lexsort((np.arange(len(chunks)), -scores))  # best first, ties in corpus order
        else:
            scores = np.zeros(len(chunks), dtype=np.float32)
            relevant = np.ones(len(chunks), dtype=bool)
            order = np.arange(len(chunks))
        rank = np.empty(len(chunks), dtype=np.int32)
        rank[order] = np.arange(len(chunks), dtype=np.int32)
        used = big_enough & relevant
        top_k = cfg.retrieval.top_k
        if top_k is not None and used.sum() > top_k:  # keep the top_k best usable passages
            used &= rank <= np.sort(rank[used])[top_k - 1]
        if not used.any():
            raise SourceError(
                f"no passage is usable for generation: {len(chunks)} chunks, "
                f"{int(big_enough.sum())} with at least {cfg.chunking.min_tokens} tokens, "
                f"{int(relevant.sum())} matching the query {self.query(ctx)!r}; "
                "lower sources.chunking.min_tokens, change sources.retrieval.query, or set retrieval.method: none"
            )
        table = pa.table(
            {
                "chunk_id": [c.id for c in chunks],
                "doc_id": [c.doc_id for c in chunks],
                "index": [c.index for c in chunks],
                "start": [c.start for c in chunks],
                "end": [c.end for c in chunks],
                "text": texts,
                "n_tokens": [c.n_tokens for c in chunks],
                "score": scores.astype(np.float32),
                "rank": rank,
                "used": used,
            },
            schema=CHUNK_SCHEMA,
        ).take(pa.array(order))
        atomic_write_table(ctx.run.stage_dir(self.name) / "chunks.parquet", table)
        atomic_write_table(
            ctx.run.stage_dir(self.name) / "documents.parquet",
            pa.table(
                {"doc_id": [d.id for d in docs], "path": [d.path for d in docs], "text": [d.text for d in docs]},
                schema=DOC_SCHEMA,
            ),
        )
        counts = {"files": report.files, "documents": len(docs), "chunks": len(chunks), "used_chunks": int(used.sum())}
        extra = {"skipped": [{"path": p, "reason": r} for p, r in report.skipped], "query": self.query(ctx),
                 "engine": engine}
        return counts, extra
