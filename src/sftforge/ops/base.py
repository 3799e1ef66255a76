"""The operator contract (DESIGN.md, "Operators"), with a registry so that recipes can name operators.

Operators are small and pure: no I/O, batching, logging or parallelism (the engine does those). Heavy models
load lazily in `setup()` so that operators pickle to worker processes. Each operator declares a pydantic config
model whose `name` field is a literal; the recipe's cleaning section is the union of those models, so the JSON
Schema and the error messages list every registered operator and its fields.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

from sftforge.sample import Record


class OpConfig(BaseModel):
    """Base of every operator's recipe entry."""

    model_config = ConfigDict(extra="forbid")
    name: str


class BoundsConfig(OpConfig):
    """A filter's recipe entry: keep records whose score lies within [min, max]."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _check_bounds(self) -> BoundsConfig:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class Operator:
    """Anything a recipe can name."""

    name: ClassVar[str]
    Config: ClassVar[type[OpConfig]]

    def __init__(self, config: OpConfig) -> None:
        self.config = config

    def setup(self) -> None:
        """Load heavy resources (models) once per worker; called by the engine before the first record."""


class Feature(Operator):
    """Computes one number per record; the engine stores it as `features[feature_name]`."""

    @property
    def feature_name(self) -> str:
        """Key in `record.features`; operators with parameters that change the number include them."""
        return self.name

    def score(self, record: Record) -> float:
        raise NotImplementedError


class Filter(Feature):
    """A feature plus bounds: records outside [min, max] are removed, with the score in the reason."""

    config: BoundsConfig

    def keep(self, score: float) -> bool:
        lo, hi = self.config.min, self.config.max
        return (lo is None or score >= lo) and (hi is None or score <= hi)

    def reason(self, record: Record, score: float) -> str:
        lo, hi = self.config.min, self.config.max
        if lo is not None and score < lo:
            return f"{self.name}={score:g} < min {lo:g}"
        return f"{self.name}={score:g} > max {hi:g}"


class Mapper(Operator):
    """Rewrites a record (redaction, normalisation)."""

    def map(self, record: Record) -> Record:
        raise NotImplementedError


class Deduplicator(Operator):
    """A global operator: records with equal signatures are duplicates; the first in stream order survives."""

    def signature(self, record: Record) -> str:
        raise NotImplementedError


OPERATORS: dict[str, type[Operator]] = {}


def register(cls: type[Operator]) -> type[Operator]:
    """Class decorator: make an operator nameable from recipes."""
    name_field = cls.Config.model_fields["name"]
    literal_args = getattr(name_field.annotation, "__args__", ())
    if literal_args != (cls.name,):
        raise TypeError(f"{cls.__name__}.Config.name must be Literal[{cls.name!r}]")
    if cls.name in OPERATORS:
        raise TypeError(f"operator {cls.name!r} registered twice")
    OPERATORS[cls.name] = cls
    return cls


def build(config: OpConfig) -> Operator:
    return OPERATORS[config.name](config)


def config_types(kind: type[Operator]) -> tuple[type[OpConfig], ...]:
    """Config models of every registered operator of `kind` (for the recipe's unions)."""
    return tuple(cls.Config for cls in OPERATORS.values() if issubclass(cls, kind))


def describe() -> list[dict[str, Any]]:
    return [
        {"name": n, "kind": next(b.__name__ for b in c.__mro__ if b in (Filter, Feature, Mapper, Deduplicator))}
        for n, c in sorted(OPERATORS.items())
    ]
