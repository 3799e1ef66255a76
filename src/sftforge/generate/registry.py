"""The generators a recipe can name, and the task types they make: every module of `sftforge/generate/generators/`
is imported once and registers its generator (`generate.base.register`). The recipe's `generators` union and
`task.type` values, their JSON Schema and the rules about which generators a recipe may use come from here.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

from sftforge.config import GeneratorConfig
from sftforge.generate.base import GENERATORS, Generator

if TYPE_CHECKING:
    from sftforge.recipe import Recipe


def load() -> dict[str, type[Generator]]:
    """Every registered generator, in the order their modules are named."""
    package = importlib.import_module("sftforge.generate.generators")
    for module in sorted(m.name for m in pkgutil.iter_modules(package.__path__)):
        importlib.import_module(f"sftforge.generate.generators.{module}")
    return GENERATORS


def task_types() -> dict[str, str]:
    """Every task type some generator makes, with its description."""
    out: dict[str, str] = {}
    for cls in load().values():
        for task, description in cls.tasks.items():
            out.setdefault(task, description)
    return out


def makers(task: str) -> list[str]:
    """The generators that make a task type."""
    return [name for name, cls in load().items() if task in cls.tasks or cls.any_task]


def defaults(task: str) -> list[GeneratorConfig]:
    """The generators a task type gets when the recipe lists none (the first registered default for it)."""
    return [cls.Config.model_validate({}) for cls in load().values() if task in cls.default_for][:1]


def problems(recipe: Recipe) -> list[str]:
    """Why the recipe's generators cannot make its task from its sources, if they cannot (one reason each)."""
    from sftforge.sources.kinds.base import SOURCES

    kind = recipe.task.type
    out = []
    names = [g.name for g in recipe.generators]
    if len(set(names)) != len(names):
        out.append("each generator may be listed once; raise its share instead")
    if recipe.task.target_count < len(names):
        out.append(
            f"task.target_count ({recipe.task.target_count}) is below the number of generators ({len(names)}): "
            "each makes at least one record"
        )
    for entry in recipe.generators:
        cls = GENERATORS[entry.name]
        if kind not in cls.tasks and not cls.any_task:
            made = ", ".join(cls.tasks)
            out.append(
                f"generator {entry.name} makes task.type {made}, not {kind}: remove it from `generators`"
                f" (generators of {kind}: {', '.join(makers(kind))})"
            )
            continue
        for need in cls.needs(entry):
            source = SOURCES[need]
            if not source.given(recipe):
                out.append(
                    f"generator {entry.name} (task.type {kind}) needs sources.{need}: add sources.{need} "
                    f"({source.needed_as})"
                )
        if recipe.rounds > 1 and not cls.rounds:
            out.append(
                f"rounds > 1 plans the next round's single passages; generator {entry.name} (task.type {kind}) "
                "does not work on single passages: use rounds: 1"
            )
        problem = cls.check(entry, recipe)
        if problem:
            out.append(problem)
    return out
