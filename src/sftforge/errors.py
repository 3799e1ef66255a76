"""Typed errors.

`SftforgeError` and its subclasses are user-facing: the CLI prints their message without a traceback, because
they describe something the user can fix (a recipe field, a path, a model file). Anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations


class SftforgeError(Exception):
    """A problem the user can fix; the message says what and how."""


class RecipeError(SftforgeError):
    """The recipe file is missing, malformed or has invalid fields."""


class SourceError(SftforgeError):
    """Source documents are missing, empty or unreadable."""


class ModelError(SftforgeError):
    """A model file or server cannot be found or loaded."""


class RunDirError(SftforgeError):
    """The run directory cannot be read or written (permissions, disk full, not a run directory)."""


class StageError(SftforgeError):
    """A stage cannot run, usually because an earlier stage has not completed."""


class ReviewError(SftforgeError):
    """A review decision that cannot be taken or applied: an unknown record, a held-out record, a bad decision."""
