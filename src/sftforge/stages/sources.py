"""Stage `sources`: read documents, chunk them by model tokens, rank the chunks by relevance to the task; load
the knowledge graph; check the seed tasks.

Writes `sources/documents.parquet` (id, path, text) and `sources/chunks.parquet` (offsets, tokens, BM25 score,
rank, whether generation may use it). Generation walks the chunks in rank order, so a large corpus spends its
budget on the most relevant passages first. Files are read, chunked and their BM25 terms counted in blocks of
files by `engine.blocks.SourcesWorker`, in this process or in Ray workers (each block is kept under `_blocks/` until
the stage ends, so a Ray run resumes from the blocks done); this process then adds the blocks' term counts up into
the one ranking an index over every passage would give. A knowledge graph (`sources.kg`) is loaded here once to check it and
to record its size in the manifest; the generate stage loads it again (CSR arrays load in seconds).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sftforge.errors import SourceError
from sftforge.kg import KnowledgeGraph, load_graph
from sftforge.recipe import Recipe
from sftforge.llm.bundled import resolve_model_path
from sftforge.engine.blocks import SourceBlock, SourceSettings, SourcesWorker, open_runner
from sftforge.engine.ray_engine import settings_of
from sftforge.run import atomic_folder, atomic_write_bytes, atomic_write_table
from sftforge.sources.readers import doc_id_root, matched_files
from sftforge.sources.retrieval import TermCounts, bm25_from_counts, query_terms
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


def store_source_block(folder: Path, block: SourceBlock) -> None:
    """Write a finished block atomically: into a temporary folder, renamed into place last."""
    with atomic_folder(folder) as tmp:
        atomic_write_table(tmp / "documents.parquet", block.documents.cast(DOC_SCHEMA))
        atomic_write_table(tmp / "chunks.parquet", block.chunks)
        summary = {"files": block.files, "skipped": block.skipped}
        atomic_write_bytes(tmp / "block.json", json.dumps(summary).encode("utf-8"))


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

    def resumes(self, ctx: Context) -> bool:
        """On Ray, from the blocks of files already read and chunked; locally a partial read is cheap to redo."""
        return ctx.recipe.engine == "ray"

    def _documents(self, ctx: Context) -> tuple[dict[str, int], dict[str, Any]]:
        recipe = ctx.recipe
        cfg = recipe.sources
        entries = [(entry, matched_files(entry.path, recipe.resolve("."))) for entry in cfg.documents]
        query = query_terms(self.query(ctx), recipe.task.language)
        settings = SourceSettings(
            id_root=str(doc_id_root([f for _, files in entries for f in files])),
            fields=[(entry.text_field, entry.id_field) for entry, _ in entries],
            tokenizer_path=str(self.tokenizer_path(ctx)), max_tokens=cfg.chunking.max_tokens,
            overlap_tokens=cfg.chunking.overlap_tokens, query=query, lang=recipe.task.language,
        )
        blocks = file_blocks([files for _, files in entries])
        root = ctx.run.stage_dir(self.name) / "_blocks"
        folders = [root / f"block-{k:05d}" for k in range(len(blocks))]
        pending = [k for k, folder in enumerate(folders) if not folder.is_dir()]
        reused = len(blocks) - len(pending)
        bar = ctx.reporter.task("sources: reading and chunking", total=len(blocks))
        ctx.reporter.advance(bar, n=reused)
        with open_runner(recipe.engine, settings_of(recipe.ray)) as runner:
            tasks = [json.dumps(blocks[k]) for k in pending]
            for k, block in zip(pending, runner.map(SourcesWorker, (settings,), tasks)):
                store_source_block(folders[k], block)
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
                f"{int(relevant.sum())} matching the query {self.query(ctx)!r}; "
                "lower sources.chunking.min_tokens, change sources.retrieval.query, or set retrieval.method: none"
            )
        table = chunks.select(["chunk_id", "doc_id", "index", "start", "end", "text", "n_tokens"]).append_column(
            "score", pa.array(scores, pa.float32())).append_column("rank", pa.array(rank, pa.int32())).append_column(
            "used", pa.array(used, pa.bool_())).cast(CHUNK_SCHEMA).take(pa.array(order))
        atomic_write_table(ctx.run.stage_dir(self.name) / "chunks.parquet", table)
        atomic_write_table(ctx.run.stage_dir(self.name) / "documents.parquet", documents)
        shutil.rmtree(root, ignore_errors=True)
        counts = {"files": n_files, "documents": documents.num_rows, "chunks": n, "used_chunks": int(used.sum())}
        extra = {"skipped": [{"path": p, "reason": r} for p, r in skipped], "query": self.query(ctx), "engine": engine}
        return counts, extra
