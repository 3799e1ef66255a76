"""Stage `export`: the cleaned records in every requested format, plus the dataset card."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from sftforge import __version__
from sftforge.export.card import CardStats, render_card
from sftforge.export.formats import DatasetWriter, dataset_name
from sftforge.figures import Coverage, ExportFigures, ReviewCounts
from sftforge.lib.coverage import CoverageCounter
from sftforge.review.decisions import Review, decisions_digest
from sftforge.run import ShardLog, atomic_write_bytes
from sftforge.sample import reason_kind, table_to_records
from sftforge.stages.base import Context, Stage
from sftforge.storage import has_passages, read_documents, read_passages

log = logging.getLogger(__name__)


def top_reasons(ctx: Context, limit: int = 10) -> list[dict[str, Any]]:
    table = ctx.run.read_rejected(columns=["reject_stage", "reject_operator", "reject_reason"])
    counter = Counter(
        zip(
            table.column("reject_stage").to_pylist(),
            table.column("reject_operator").to_pylist(),
            map(reason_kind, table.column("reject_reason").to_pylist()),
        )
    )
    return [{"stage": s, "operator": o, "reason": r, "count": n} for (s, o, r), n in counter.most_common(limit)]


class ExportStage(Stage):
    name = "export"
    version = 4
    after = "clean"

    def upstream(self, ctx: Context) -> str | None:
        """The last stage before export in this recipe's pipeline (evaluate, select or clean)."""
        r = ctx.recipe
        return "evaluate" if r.training else ("select" if r.selection_in_force else "clean")

    def config(self, ctx: Context) -> Any:
        return {"output": ctx.recipe.output.model_dump(), "sftforge": __version__, "review": decisions_digest(ctx.run)}

    def execute(self, ctx: Context, out: ShardLog) -> tuple[dict[str, int], ExportFigures]:
        """Shard by shard: the review applied, every format written and the card's figures gathered as the
        records stream through, so memory does not grow with the dataset."""
        folder = ctx.run.stage_dir(self.name)
        stage = ctx.recipe.dataset_stage
        review = Review(ctx.run)
        stats = CardStats()
        covered = CoverageCounter()
        shards = ctx.run.shards(stage)
        bar = ctx.reporter.task("export", total=len(shards) + 1)
        out_cfg = ctx.recipe.output
        with DatasetWriter(folder, out_cfg.formats, dataset_name(ctx.recipe.name), out_cfg.audience_columns) as writer:
            for table in ctx.run.iter_tables(stage):
                batch = review.keep(table_to_records(table))
                writer.add(batch)
                stats.add(batch)
                covered.add(r.source for r in batch)
                ctx.reporter.advance(bar, records=stats.n)
            restored = review.restored()
            writer.add(restored)
            stats.add(restored)
            covered.add(r.source for r in restored)
        if review.removed or restored:
            log.info("review: %d record(s) rejected, %d brought back", len(review.removed), len(restored))
        files = writer.written
        summary = ReviewCounts(rejected=review.removed, restored=[r.id for r in restored])
        coverage = (
            Coverage.model_validate(covered.table(read_passages(ctx.run), read_documents(ctx.run)))
            if ctx.recipe.sources.documents and has_passages(ctx.run)
            else None
        )
        card = render_card(ctx.recipe, stats, ctx.run, files, top_reasons(ctx), __version__, summary, coverage)
        atomic_write_bytes(folder / "README.md", card.encode("utf-8"))
        atomic_write_bytes(folder / "recipe.yaml", ctx.run.recipe_path.read_bytes())
        ctx.reporter.advance(bar)
        ctx.reporter.done(bar)
        return {"records": stats.n}, ExportFigures(files=files, review=summary, coverage=coverage)
