"""The pipeline's stages, in order. Which ones run depends on the recipe: `select` when it has a `selection` or
`training` section, `train` and `evaluate` when it has `training`."""

from __future__ import annotations

import pyarrow as pa

from sftforge.errors import StageError
from sftforge.recipe import Recipe
from sftforge.rounds import prepare_round
from sftforge.run import RunDir
from sftforge.stages.base import Context, Stage, upstream_fingerprint
from sftforge.stages.clean import CleanStage
from sftforge.stages.evaluate import EvaluateStage
from sftforge.stages.export import ExportStage
from sftforge.stages.features import FeaturesStage
from sftforge.stages.generate import GenerateStage
from sftforge.stages.select import SelectStage
from sftforge.stages.sources import SourcesStage
from sftforge.stages.train import TrainStage

STAGES: list[Stage] = [
    SourcesStage(),
    GenerateStage(),
    FeaturesStage(),
    CleanStage(),
    SelectStage(),
    TrainStage(),
    EvaluateStage(),
    ExportStage(),
]
BY_NAME = {s.name: s for s in STAGES}


def stages_for(recipe: Recipe) -> list[Stage]:
    """The stages a recipe runs, in order."""
    skip = set()
    if recipe.selection_in_force is None:
        skip.add("select")
    if recipe.training is None:
        skip.update(("train", "evaluate"))
    return [s for s in STAGES if s.name not in skip]


def run_stage(ctx: Context, name: str, force: bool = False) -> bool:
    """Run one stage (its input stage must be complete); return whether it ran."""
    stage = BY_NAME[name]
    if stage not in stages_for(ctx.recipe):
        section = "training" if name in ("train", "evaluate") else "selection or training"
        raise StageError(f"stage '{name}' needs a `{section}` section in {ctx.run.path / 'recipe.yaml'}")
    _, ran = stage.run(ctx, upstream_fingerprint(ctx, stage), force=force)
    # Arrow's allocator keeps freed memory for reuse; hand it back between stages, so one stage's peak (a
    # million rows' columns) does not stay resident under the next one's
    pa.default_memory_pool().release_unused()
    return ran


def run_pipeline(ctx: Context) -> list[tuple[str, bool]]:
    """Run every stage of the recipe in order, skipping those already complete with matching fingerprints."""
    return [(stage.name, run_stage(ctx, stage.name)) for stage in stages_for(ctx.recipe)]


def run_rounds(ctx: Context, recipe_text: str) -> list[tuple[int, RunDir, list[tuple[str, bool]]]]:
    """Round 1 in `ctx.run`, then each later round in its own run directory, planned from the round before
    (sftforge/rounds.py). Resumable like a single run: finished rounds and stages are skipped."""
    out = [(1, ctx.run, run_pipeline(ctx))]
    for r in range(2, ctx.recipe.rounds + 1):
        run = prepare_round(ctx.run.path, recipe_text, ctx.recipe, r)
        out.append((r, run, run_pipeline(Context(run=run, recipe=ctx.recipe, reporter=ctx.reporter))))
    return out


__all__ = ["STAGES", "Context", "run_pipeline", "run_rounds", "run_stage", "stages_for"]
