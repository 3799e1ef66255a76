"""Stage `export`: the cleaned records in every requested format, plus the dataset card."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from sftforge import __version__
from sftforge.export.card import render_card
from sftforge.export.formats import dataset_name, write_all
from sftforge.figures import ExportFigures, ReviewCounts
from sftforge.review.decisions import apply_decisions, decisions_digest
from sftforge.run import ShardLog, atomic_write_bytes
from sftforge.stages.base import Context, Stage

log = logging.getLogger(__name__)


def top_reasons(ctx: Context, limit: int = 10) -> list[dict[str, Any]]:
    table = ctx.run.read_rejected()
    counter = Counter(
        zip(
            table.column("reject_stage").to_pylist(),
            table.column("reject_operator").to_pylist(),
            table.column("reject_reason").to_pylist(),
        )
    )
    return [{"stage": s, "operator": o, "reason": r, "count": n} for (s, o, r), n in counter.most_common(limit)]


class ExportStage(Stage):
    name = "export"
    version = 3
    after = "clean"

    def upstream(self, ctx: Context) -> str | None:
        """The last stage before export in this recipe's pipeline (evaluate, select or clean)."""
        r = ctx.recipe
        return "evaluate" if r.training else ("select" if r.selection_in_force else "clean")

    def config(self, ctx: Context) -> Any:
        return {"output": ctx.recipe.output.model_dump(), "sftforge": __version__, "review": decisions_digest(ctx.run)}

    def execute(self, ctx: Context, out: ShardLog) -> tuple[dict[str, int], ExportFigures]:
        folder = ctx.run.stage_dir(self.name)
        reviewed = apply_decisions(ctx.run, ctx.run.read_records(ctx.recipe.dataset_stage))
        records = reviewed.records
        if reviewed.removed or reviewed.restored:
            log.info("review: %d record(s) rejected, %d brought back", len(reviewed.removed), len(reviewed.restored))
        bar = ctx.reporter.task("export", total=len(ctx.recipe.output.formats) + 1)
        files = write_all(records, folder, ctx.recipe.output.formats, dataset_name(ctx.recipe.name))
        ctx.reporter.advance(bar, n=len(ctx.recipe.output.formats))
        review = ReviewCounts(rejected=reviewed.removed, restored=reviewed.restored)
        card = render_card(ctx.recipe, records, ctx.run, files, top_reasons(ctx), __version__, review)
        atomic_write_bytes(folder / "README.md", card.encode("utf-8"))
        atomic_write_bytes(folder / "recipe.yaml", ctx.run.recipe_path.read_bytes())
        ctx.reporter.advance(bar)
        ctx.reporter.done(bar)
        return {"records": len(records)}, ExportFigures(files=files, review=review)
