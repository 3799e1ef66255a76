"""Operators: features, filters, mappers and global operators, registered by name (see base.py)."""

from sftforge.ops import decontam, dedup, embedding, filters, model_features, pii, quality, semantic  # noqa: F401  (registers the operators)
from sftforge.ops.base import OPERATORS, Deduplicator, Feature, Filter, Mapper, Operator, VectorFeature, build

__all__ = ["OPERATORS", "Deduplicator", "Feature", "Filter", "Mapper", "Operator", "VectorFeature", "build"]
