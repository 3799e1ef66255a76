"""Exact deduplication on normalised text, and near-duplicate deduplication by MinHash LSH (`lib/minhash.py`)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from sftforge.lib.minhash import DuplicateResult, MinHasher, bucket_rows, find_duplicates, lsh_params, resolve_pairs
from sftforge.lib.text import normalize
from sftforge.ops.base import Deduplicator, Duplicates, OpConfig, register
from sftforge.sample import Record


class ExactDedupConfig(OpConfig):
    name: Literal["exact_dedup"] = "exact_dedup"
    scope: Literal["all", "user", "assistant"] = "user"


def first_of_equal_rows(keys: np.ndarray) -> np.ndarray:
    """For each row, the index of the first row equal to it (stream order)."""
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64)
    _, first, inverse = np.unique(np.asarray(keys), axis=0, return_index=True, return_inverse=True)
    return first[inverse.reshape(-1)].astype(np.int64)


@register
class ExactDedup(Deduplicator):
    """Records whose normalised text (NFKC, case, spacing, punctuation) is equal are duplicates.

    The default scope is the user turns: two records asking the same question are duplicates even if the
    answers differ, since training on both teaches conflicting answers. Keys are 128-bit BLAKE2b digests.
    """

    name: ClassVar[str] = "exact_dedup"
    Config = ExactDedupConfig
    config: ExactDedupConfig

    def key_width(self) -> int:
        return 2

    def keys(self, records: list[Record]) -> np.ndarray:
        digests = b"".join(
            hashlib.blake2b(normalize(r.text_of(self.config.scope)).encode("utf-8"), digest_size=16).digest()
            for r in records
        )
        return np.frombuffer(digests, dtype=np.uint64).reshape(len(records), 2).copy()

    def resolve(self, keys: np.ndarray) -> Duplicates:
        survivor = first_of_equal_rows(keys)
        return Duplicates(survivor, np.ones(len(survivor), dtype=np.float32))

    def describe(self, similarity: float) -> str:
        return f"same normalised {self.config.scope} text"


def _decision(result: DuplicateResult) -> Duplicates:
    """MinHash's result as the deduplicator contract's decision (a kept record's similarity is 1.0, not NaN)."""
    similarity = np.nan_to_num(np.asarray(result.similarity, dtype=np.float32), nan=1.0)
    return Duplicates(np.asarray(result.survivor, dtype=np.int64), similarity)


class MinHashDedupConfig(OpConfig):
    name: Literal["minhash_dedup"] = "minhash_dedup"
    scope: Literal["all", "user", "assistant"] = "user"
    threshold: float = Field(0.8, gt=0.0, lt=1.0, description="Jaccard similarity at which records are duplicates.")
    shingle: Literal["word", "char"] = Field("word", description="word n-grams (CJK: characters) or character n-grams.")
    ngram: int = Field(3, ge=1, le=32, description="Shingle size (3 words, or e.g. 5 characters).")
    num_perm: int = Field(128, ge=16, le=1024, description="MinHash permutations (signature length).")
    bands: int | None = Field(
        None,
        ge=1,
        description="LSH bands; default derived from threshold and num_perm (recall-leaning when verifying).",
    )
    rows: int | None = Field(None, ge=1, description="Rows per band; set together with bands.")
    verify: bool = Field(True, description="Keep only candidate pairs whose estimated Jaccard reaches threshold.")
    seed: int = 1

    @model_validator(mode="after")
    def _check_lsh(self) -> MinHashDedupConfig:
        if (self.bands is None) != (self.rows is None):
            raise ValueError("set both bands and rows, or neither (they are derived from threshold and num_perm)")
        if self.bands is not None and self.rows is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands * rows ({self.bands * self.rows}) exceeds num_perm ({self.num_perm})")
        return self


@register
class MinHashDedup(Deduplicator):
    """Near-duplicates by MinHash LSH (Broder 1997): records connected by a chain of pairs whose Jaccard similarity
    reaches `threshold` form a cluster; its first record survives. Bands and rows minimise the weighted false
    positive and false negative areas under the LSH S-curve. With `verify`, candidate pairs are checked on their
    signatures, which removes most false positives, so the bands lean towards recall (false negatives weigh 0.8):
    on benchmarks/dedup.py that gives recall 0.91 / precision 0.97 against 0.82 / 0.95 for balanced bands without
    verification (datasketch's way)."""

    name: ClassVar[str] = "minhash_dedup"
    key_dtype: ClassVar[str] = "uint32"
    Config = MinHashDedupConfig
    config: MinHashDedupConfig

    def __init__(self, config: MinHashDedupConfig, base_dir: Path | None = None) -> None:
        super().__init__(config, base_dir)
        c = config
        self.hasher = MinHasher(num_perm=c.num_perm, seed=c.seed, unit=c.shingle, n=c.ngram)
        if c.bands and c.rows:
            self.bands, self.rows = c.bands, c.rows
        elif c.verify:
            self.bands, self.rows = lsh_params(c.threshold, c.num_perm, fp_weight=0.2, fn_weight=0.8)
        else:
            self.bands, self.rows = lsh_params(c.threshold, c.num_perm)

    def key_width(self) -> int:
        return self.config.num_perm

    def keys(self, records: list[Record]) -> np.ndarray:
        scope = self.config.scope
        return self.hasher.signatures([r.text_of(scope) for r in records])

    def resolve(self, keys: np.ndarray) -> Duplicates:
        c = self.config
        return _decision(find_duplicates(keys, self.bands, self.rows, threshold=c.threshold, verify=c.verify))

    buckets: ClassVar[bool] = True

    def bucket_rows(self, keys: np.ndarray, start: int) -> np.ndarray:
        """Every signature's LSH band keys: records sharing a band key are the candidate pairs."""
        return bucket_rows(keys, self.bands, self.rows, start)

    def resolve_pairs(self, keys: np.ndarray, first: np.ndarray, member: np.ndarray) -> Duplicates:
        return _decision(resolve_pairs(keys, first, member, self.config.threshold, self.config.verify))

    def describe(self, similarity: float) -> str:
        return f"minhash Jaccard ~{similarity:.2f} >= {self.config.threshold} on {self.config.scope} text"

    def stats(self) -> dict[str, Any]:
        return {"bands": self.bands, "rows": self.rows}
