"""Stages: each reads the previous stage's output from the run directory and writes its own.

A stage's fingerprint hashes its own recipe section, its code version and the fingerprint of the stage before
it, so changing the cleaning section re-runs cleaning and export but not generation, and a stage whose
fingerprint matches a completed entry in the manifest is skipped.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from sftforge.errors import StageError
from sftforge.figures import Figures
from sftforge.progress import Reporter, SilentReporter
from sftforge.recipe import Recipe
from sftforge.run import RunDir, ShardLog, Timer, fingerprint

log = logging.getLogger(__name__)


@dataclass
class Context:
    run: RunDir
    recipe: Recipe
    reporter: Reporter = field(default_factory=SilentReporter)


class Stage(ABC):
    name: str
    version: int = 1  # bump when a change to the stage's code changes its output
    after: str | None = None  # the stage whose output this one reads
    resumable: bool = False  # True: an interrupted run continues from its committed shards; False: starts over

    @abstractmethod
    def config(self, ctx: Context) -> Any:
        """The recipe parts (and input identities) that determine this stage's output."""

    @abstractmethod
    def execute(self, ctx: Context, out: ShardLog) -> tuple[dict[str, int], Figures]:
        """Do the work, writing into the stage directory (`out` commits shards); return (counts, figures) for the
        manifest."""

    def resumes(self, ctx: Context) -> bool:
        """Whether this recipe's run of the stage continues from committed work (`resumable` unless it depends)."""
        return self.resumable

    def upstream(self, ctx: Context) -> str | None:
        """The stage whose completion (and fingerprint) this one depends on; `after` unless the recipe decides."""
        return self.after

    def fingerprint(self, ctx: Context, upstream: str | None) -> str:
        return fingerprint(self.name, self.version, self.config(ctx), upstream)

    def run(self, ctx: Context, upstream: str | None, force: bool = False) -> tuple[str, bool]:
        """Run unless complete with the same fingerprint; return (fingerprint, ran)."""
        fp = self.fingerprint(ctx, upstream)
        if not force and ctx.run.is_complete(self.name, fp):
            log.info("stage %s: up to date, skipped", self.name)
            return fp, False
        if force or not self.resumes(ctx):
            ctx.run.reset(self.name)
        out = ctx.run.begin(self.name, fp)
        timer = Timer()
        try:
            counts, figures = self.execute(ctx, out)
        except BaseException:
            ctx.run.add_seconds(self.name, timer.seconds)
            raise
        ctx.run.finish(self.name, counts, timer.seconds, figures.to_manifest())
        return fp, True


def upstream_fingerprint(ctx: Context, stage: Stage) -> str | None:
    """Fingerprint of the completed stage `stage` reads from, or a StageError if it has not completed."""
    after = stage.upstream(ctx)
    if after is None:
        return None
    info = ctx.run.stage_info(after)
    if info is None or info.status != "complete":
        raise StageError(
            f"stage '{stage.name}' needs stage '{after}' to have completed in {ctx.run.path}; "
            f"run `sftforge run {ctx.run.path / 'recipe.yaml'} --out {ctx.run.path}` or `sftforge {after} {ctx.run.path}` first"
        )
    return info.fingerprint
