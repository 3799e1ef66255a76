"""`sources.seeds`: seed tasks for the instruction generators (Self-Instruct, Evol-Instruct, the sentence VAE), read
by `sftforge.sources.seeds` (the sources stage checks every line and counts them)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from sftforge.config import Strict
from sftforge.errors import SourceError
from sftforge.sources.kinds.base import ReadContext, SourceKind, register
from sftforge.sources.seeds import load_seeds

if TYPE_CHECKING:
    from sftforge.recipe import Recipe


class SeedSource(Strict):
    """Seed tasks: JSON Lines in the Self-Instruct format ({instruction, instances: [{input, output}],
    is_classification}) or flat rows ({instruction, input?, output?})."""

    path: str = Field(description="A .jsonl file of seed tasks, relative to the recipe file.")


def seeds_path(recipe: Recipe) -> Path:
    seeds = recipe.sources.seeds
    if seeds is None:
        raise SourceError("this recipe has no sources.seeds")
    return recipe.resolve(seeds.path)


@register
class Seeds(SourceKind):
    name = "seeds"
    Config = SeedSource
    description = "Seed tasks for the instruction generators that start from them (self_instruct, evol_instruct, vae)."
    needed_as = "a .jsonl of seed tasks"

    @classmethod
    def files(cls, recipe: Recipe) -> list[Path]:
        path = seeds_path(recipe)
        if not path.is_file():
            raise SourceError(f"sources.seeds: {recipe.sources.seeds.path} is not a file (looked for {path})")  # type: ignore[union-attr]
        return [path]

    @classmethod
    def read(cls, ctx: ReadContext) -> tuple[dict[str, int], dict[str, Any]]:
        seeds = load_seeds(seeds_path(ctx.recipe))
        return {"seed_tasks": len(seeds), "seed_classification": sum(s.is_classification for s in seeds)}, {}
