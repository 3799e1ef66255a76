"""Benchmark decontamination as a pure library: rolling hashes (`hashing`), sorted hash tables (`tables`) and
the n-gram and substring index (`index`). Benchmark files are read by `sftforge.sources.benchmarks`."""

from sftforge.lib.decontam.index import (
    DEFAULT_CJK_NGRAM,
    DEFAULT_MAX_ITEM_FREQUENCY,
    DEFAULT_MIN_NGRAM,
    DEFAULT_NGRAM,
    DEFAULT_SUBSTRING_CHARS,
    Benchmark,
    BenchmarkError,
    BenchmarkItem,
    DecontaminationIndex,
    Hit,
    canonical,
)

__all__ = [
    "DEFAULT_CJK_NGRAM",
    "DEFAULT_MAX_ITEM_FREQUENCY",
    "DEFAULT_MIN_NGRAM",
    "DEFAULT_NGRAM",
    "DEFAULT_SUBSTRING_CHARS",
    "Benchmark",
    "BenchmarkError",
    "BenchmarkItem",
    "DecontaminationIndex",
    "Hit",
    "canonical",
]
