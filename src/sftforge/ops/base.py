"""The operator contract (DESIGN.md, "Operators"), with a registry so that recipes can name operators.

Operators are small and pure: no I/O, batching, logging or parallelism (the engine does those). Heavy models
load lazily in `setup()` so that operators pickle to worker processes. Each operator declares a pydantic config
model whose `name` field is a literal; the recipe's cleaning section is the union of those models, so the JSON
Schema and the error messages list every registered operator and its fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

from sftforge.lib.duplicates import Duplicates
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

    def __init__(self, config: OpConfig, base_dir: Path | None = None) -> None:
        self.config = config
        self.base_dir = base_dir or Path(".")

    def resolve_path(self, path: str | Path) -> Path:
        """A path from the config, relative to the recipe's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def setup(self) -> None:
        """Load heavy resources (models) once per worker; called by the engine before the first record."""

    def stats(self) -> dict[str, Any]:
        """Figures for the manifest beyond seen/removed counts (e.g. PII found by type); JSON-serialisable."""
        return {}


class Feature(Operator):
    """Computes one number per record, stored as `features[feature_name]`.

    Every feature is also a filter: listed under `cleaning.filters` with `min`/`max`, records outside the bounds
    are removed with the score in the reason. Model-backed features override `score_batch` (the engine batches).
    """

    config: BoundsConfig
    batch_size: ClassVar[int] = 256  # records per score_batch call; model-backed features use less
    # Whether a value the features stage stored may stand in for scoring again; False for operators whose reasons
    # or statistics need the scoring itself (decontamination names the benchmark item it matched).
    reuse_stored: ClassVar[bool] = True

    @property
    def feature_name(self) -> str:
        """Key in `record.features`; operators with parameters that change the number include them."""
        return self.name

    def score(self, record: Record) -> float:
        raise NotImplementedError

    def score_batch(self, records: list[Record]) -> list[float]:
        return [self.score(r) for r in records]

    @property
    def bounded(self) -> bool:
        return self.config.min is not None or self.config.max is not None

    def keep(self, score: float) -> bool:
        lo, hi = self.config.min, self.config.max
        return (lo is None or score >= lo) and (hi is None or score <= hi)

    def reason(self, record: Record, score: float) -> str:
        lo, hi = self.config.min, self.config.max
        if lo is not None and score < lo:
            return f"{self.feature_name}={score:g} < min {lo:g}"
        return f"{self.feature_name}={score:g} > max {hi:g}"


# A filter is a feature used with bounds; operator modules whose feature exists to filter say so by name.
Filter = Feature


class VectorFeature(Operator):
    """Computes a fixed-width vector per record (a sentence embedding). The features stage stores the vectors
    beside the records (`features/vectors-<part>.npy`, rows in record order) for semantic dedup, clustering and
    the report's map; they are too big for `features`."""

    batch_size: ClassVar[int] = 64

    def dim(self) -> int:
        raise NotImplementedError

    def embed_batch(self, records: list[Record]) -> np.ndarray:
        """float32 array (len(records), dim()), L2-normalised."""
        raise NotImplementedError


class Mapper(Operator):
    """Rewrites a record (redaction, normalisation); returns a new record, never mutates its input."""

    def map(self, record: Record) -> Record:
        raise NotImplementedError


class Deduplicator(Operator):
    """A global operator in two steps, so that its state can live on disk (or be grouped on a cluster):
    `keys` turns a batch of records into a fixed-width array row per record (hash, MinHash signature,
    embedding), written by the engine as it streams; `resolve` reads all rows (possibly a memmap) and decides
    which record of each cluster survives."""

    key_dtype: ClassVar[str] = "uint64"

    def key_width(self) -> int:
        """Columns per record in the key array."""
        raise NotImplementedError

    def keys(self, records: list[Record]) -> np.ndarray:
        raise NotImplementedError

    def resolve(self, keys: np.ndarray) -> Duplicates:
        raise NotImplementedError

    # Deduplicators whose candidates are found by buckets (MinHash's LSH bands) can be resolved across a cluster:
    # an engine groups every block's `bucket_rows` by bucket (a shuffle) and hands the pairs to `resolve_pairs`.
    buckets: ClassVar[bool] = False

    def bucket_rows(self, keys: np.ndarray, start: int) -> np.ndarray:
        """With `buckets`: uint64 rows (bucket, bucket, stream index) for the key rows `keys` (stream positions
        from `start`), such that only records sharing a bucket can be duplicates."""
        raise NotImplementedError(f"{self.name} does not offer buckets; it resolves with resolve()")

    def resolve_pairs(self, keys: np.ndarray, first: np.ndarray, member: np.ndarray) -> Duplicates:
        """With `buckets`: the decision from the candidate pairs (first[i], member[i]); must equal `resolve`."""
        raise NotImplementedError(f"{self.name} does not offer buckets; it resolves with resolve()")

    def describe(self, similarity: float) -> str:
        """The reason text for a duplicate."""
        return f"{self.name} (similarity {similarity:.2f})"


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


def build(config: OpConfig, base_dir: Path | None = None) -> Operator:
    """The operator a recipe entry names; relative paths in its config resolve against `base_dir`."""
    return OPERATORS[config.name](config, base_dir)


def config_types(kind: type[Operator]) -> tuple[type[OpConfig], ...]:
    """Config models of every registered operator of `kind` (for the recipe's unions)."""
    return tuple(cls.Config for cls in OPERATORS.values() if issubclass(cls, kind))


def describe() -> list[dict[str, Any]]:
    return [
        {"name": n, "kind": next(b.__name__ for b in c.__mro__ if b in (Feature, VectorFeature, Mapper, Deduplicator))}
        for n, c in sorted(OPERATORS.items())
    ]
