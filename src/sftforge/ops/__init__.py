"""Operators: features, filters, mappers and global operators, registered by name (see base.py); the thin wrappers
over the libraries in `sftforge.lib` that recipes name. Importing the package registers every operator module."""

from sftforge.ops.base import OPERATORS, Deduplicator, Feature, Filter, Mapper, Operator, VectorFeature, build
from sftforge.ops.registry import load

load()

__all__ = ["OPERATORS", "Deduplicator", "Feature", "Filter", "Mapper", "Operator", "VectorFeature", "build"]
