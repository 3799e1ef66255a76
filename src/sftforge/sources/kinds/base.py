"""The source kind contract: a key under the recipe's `sources`, its config, the input files behind it (for the
sources stage's fingerprint) and what the sources stage reads from it (`read`: counts and figures for the manifest,
outputs through `sftforge.storage`). Generators name what they need by kind (`Generator.requires`).

To add a kind: a module in this folder with a `SourceKind` subclass under `@register`; the recipe's `sources`
field, its JSON Schema and the "add sources.<kind>" errors follow from it.
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel

if TYPE_CHECKING:
    from sftforge.progress import Reporter
    from sftforge.recipe import Recipe
    from sftforge.run import RunDir


class ReadContext(Protocol):
    """What `SourceKind.read` gets: the run directory, the recipe and the progress reporter (a stage's Context)."""

    run: RunDir
    recipe: Recipe
    reporter: Reporter


class SourceKind(ABC):
    """One kind of source (documents, kg, seeds): the recipe field `sources.<name>` and how the sources stage
    reads it."""

    name: ClassVar[str]
    Config: ClassVar[type[BaseModel]]
    many: ClassVar[bool] = False  # the field is a list of entries (documents) rather than one entry or none
    description: ClassVar[str]  # the field's description in the recipe's schema
    needed_as: ClassVar[str]  # for "add sources.<name> (...)" errors: what to give
    # Further fields of `sources` that belong to this kind (documents: chunking, retrieval): name -> (type, default)
    settings: ClassVar[dict[str, tuple[Any, Any]]] = {}

    @classmethod
    def given(cls, recipe: Recipe) -> bool:
        """Whether the recipe has this kind of source."""
        value = getattr(recipe.sources, cls.name)
        return bool(value) if cls.many else value is not None

    @classmethod
    @abstractmethod
    def files(cls, recipe: Recipe) -> list[Path]:
        """The input files (their sizes and times are the sources stage's fingerprint); a SourceError names a
        missing one."""

    @classmethod
    def fingerprint(cls, recipe: Recipe) -> dict[str, Any]:
        """What else the sources stage's output depends on for this kind (e.g. the tokenizer and the query)."""
        return {}

    @classmethod
    @abstractmethod
    def read(cls, ctx: ReadContext) -> tuple[dict[str, int], dict[str, Any]]:
        """Read, check and store the source for the generators: (counts, figures) for the manifest."""

    @classmethod
    def resumes(cls, recipe: Recipe) -> bool:
        """Whether an interrupted read continues from what it stored (documents on Ray)."""
        return False


SOURCES: dict[str, type[SourceKind]] = {}


def register(cls: type[SourceKind]) -> type[SourceKind]:
    """Class decorator: make a source kind a field of the recipe's `sources` section."""
    if cls.name in SOURCES:
        raise TypeError(f"source kind {cls.name!r} registered twice")
    SOURCES[cls.name] = cls
    return cls


def load() -> dict[str, type[SourceKind]]:
    """Every source kind, in the order the modules of this package are named (imported once)."""
    package = importlib.import_module("sftforge.sources.kinds")
    for module in sorted(m.name for m in pkgutil.iter_modules(package.__path__) if m.name != "base"):
        importlib.import_module(f"sftforge.sources.kinds.{module}")
    return SOURCES
