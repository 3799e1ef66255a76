"""Stage `sources`: read every kind of source the recipe names (documents, a knowledge graph, seed tasks: the
registered kinds of `sftforge.sources.kinds`), check it, and store what generation reads.

The stage's fingerprint is the `sources` section, the input files' sizes and times, and what each kind adds (the
tokenizer and query for documents). Kinds run in registry order; their counts and figures are merged into the
manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sftforge.figures import SourcesFigures
from sftforge.run import ShardLog
from sftforge.sources.kinds.base import SOURCES
from sftforge.stages.base import Context, Stage


def _stat(path: Path) -> list[Any]:
    st = path.stat()
    return [str(path), st.st_size, st.st_mtime_ns]


class SourcesStage(Stage):
    name = "sources"
    version = 2

    def config(self, ctx: Context) -> Any:
        recipe = ctx.recipe
        kinds = [k for k in SOURCES.values() if k.given(recipe)]
        files = [_stat(path) for kind in kinds for path in kind.files(recipe)]
        extra: dict[str, Any] = {}
        for kind in kinds:
            extra |= kind.fingerprint(recipe)
        return {"sources": recipe.sources.model_dump(), "files": files, **extra}

    def resumes(self, ctx: Context) -> bool:
        return any(k.resumes(ctx.recipe) for k in SOURCES.values() if k.given(ctx.recipe))

    def execute(self, ctx: Context, out: ShardLog) -> tuple[dict[str, int], SourcesFigures]:
        counts: dict[str, int] = {}
        extra: dict[str, Any] = {}
        for kind in SOURCES.values():
            if kind.given(ctx.recipe):
                kind_counts, kind_extra = kind.read(ctx)
                counts |= kind_counts
                extra |= kind_extra
        return counts, SourcesFigures.model_validate(extra)
