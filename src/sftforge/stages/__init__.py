"""The pipeline's stages, in order."""

from __future__ import annotations

from sftforge.stages.base import Context, Stage, upstream_fingerprint
from sftforge.stages.clean import CleanStage
from sftforge.stages.export import ExportStage
from sftforge.stages.features import FeaturesStage
from sftforge.stages.generate import GenerateStage
from sftforge.stages.sources import SourcesStage

STAGES: list[Stage] = [SourcesStage(), GenerateStage(), FeaturesStage(), CleanStage(), ExportStage()]
BY_NAME = {s.name: s for s in STAGES}


def run_stage(ctx: Context, name: str, force: bool = False) -> bool:
    """Run one stage (its input stage must be complete); return whether it ran."""
    stage = BY_NAME[name]
    _, ran = stage.run(ctx, upstream_fingerprint(ctx, stage), force=force)
    return ran


def run_pipeline(ctx: Context) -> list[tuple[str, bool]]:
    """Run every stage in order, skipping those already complete with matching fingerprints."""
    return [(stage.name, run_stage(ctx, stage.name)) for stage in STAGES]


__all__ = ["STAGES", "Context", "run_pipeline", "run_stage"]
