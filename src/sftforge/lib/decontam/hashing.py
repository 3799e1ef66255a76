"""Rolling hashes for decontamination: polynomial hashes mod 2**64 over 64-bit element hashes (xxh3 of tokens, or
mixed code points), so that the hash of any window of a sequence costs O(1) after one prefix pass, and equal
windows hash equally wherever they are. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xxhash

U64 = np.uint64
_BASE = 0x9E3779B97F4A7C15  # odd, so invertible mod 2**64
_BASE_INV = pow(_BASE, -1, 1 << 64)
_TOKEN_CACHE_MAX = 1 << 20
POWERS_CACHED = 1 << 18  # 2 MiB per table: texts up to 256k characters reuse them
_pow: np.ndarray = np.ones(1, dtype=U64)
_pow_inv: np.ndarray = np.ones(1, dtype=U64)


def powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """BASE**i and BASE**-i for i < n (mod 2**64); record-sized tables are cached, index-building ones are not."""
    global _pow, _pow_inv
    if len(_pow) >= n:
        return _pow, _pow_inv
    m = max(n, 2 * len(_pow), 1024)
    p = np.full(m, _BASE, dtype=U64)
    p[0] = 1
    q = np.full(m, _BASE_INV, dtype=U64)
    q[0] = 1
    pw, pinv = np.cumprod(p, dtype=U64), np.cumprod(q, dtype=U64)
    if m <= POWERS_CACHED:
        _pow, _pow_inv = pw, pinv
    return pw, pinv


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads small values (code points) over 64 bits."""
    z = x.astype(U64) + U64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> U64(30))) * U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> U64(27))) * U64(0x94D049BB133111EB)
    return z ^ (z >> U64(31))


class Rolling:
    """Prefix sums that give the hash of any window of a sequence of 64-bit values."""

    def __init__(self, values: np.ndarray) -> None:
        n = len(values)
        pw, pinv = powers(n + 1)
        self.pw = pw
        self.prefix = np.zeros(n + 1, dtype=U64)
        if n:
            np.cumsum(values * pinv[:n], out=self.prefix[1:])

    def windows(self, starts: np.ndarray, k: int) -> np.ndarray:
        """Hash of values[i:i+k] for each i in `starts`; equal windows hash equally wherever they are."""
        return (self.prefix[starts + k] - self.prefix[starts]) * self.pw[starts + (k - 1)]

    def all_windows(self, k: int) -> np.ndarray:
        m = len(self.prefix) - k
        if m <= 0:
            return np.empty(0, dtype=U64)
        return (self.prefix[k:] - self.prefix[:m]) * self.pw[k - 1 : k - 1 + m]


_TOKEN_HASHES: dict[str, int] = {}  # xxh3 of each token seen, bounded by _TOKEN_CACHE_MAX


def token_hashes(toks: Sequence[str]) -> np.ndarray:
    cache = _TOKEN_HASHES
    try:
        return np.fromiter(map(cache.__getitem__, toks), dtype=U64, count=len(toks))
    except KeyError:
        if len(cache) > _TOKEN_CACHE_MAX:
            cache.clear()
        h = xxhash.xxh3_64_intdigest
        for t in toks:
            if t not in cache:
                cache[t] = h(t.encode())
        return np.fromiter(map(cache.__getitem__, toks), dtype=U64, count=len(toks))


def char_values(text: str) -> np.ndarray:
    return _mix(np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32))


def window_starts(lengths: np.ndarray, offsets: np.ndarray, k: int, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Starts (into the concatenation) of the windows of length k that lie inside one segment, every `stride`-th
    position of each segment, and the segment of each."""
    counts = np.where(lengths >= k, (lengths - k) // stride + 1, 0)
    total = int(counts.sum())
    seg = np.repeat(np.arange(len(lengths), dtype=np.int64), counts)
    within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return offsets[seg] + stride * within, seg
