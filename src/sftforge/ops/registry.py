"""The operators a recipe can name: every module of `sftforge/ops/` (but the contract, this module and the language
presets) is imported once and registers its operators with `ops.base.register`. A new operator is a new module."""

from __future__ import annotations

import importlib
import pkgutil

from sftforge.ops.base import OPERATORS, Operator

_NOT_OPERATORS = {"base", "registry", "presets"}


def load() -> dict[str, type[Operator]]:
    """Every registered operator (their modules imported in name order)."""
    package = importlib.import_module("sftforge.ops")
    for module in sorted(m.name for m in pkgutil.iter_modules(package.__path__) if m.name not in _NOT_OPERATORS):
        importlib.import_module(f"sftforge.ops.{module}")
    return OPERATORS
