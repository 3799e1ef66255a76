"""Sorted hash tables for decontamination: per-item frequencies, a bitmap prefilter, batched lookups, the windows
too frequent to count (template text), and the exact extension of a hash match into a common substring. Pure."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from sftforge.lib.decontam.hashing import U64


def item_frequency(hashes: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (hash, item) pairs, sorted by hash, and for each pair the number of items that have its hash."""
    if not len(hashes):
        return hashes, items, np.zeros(0, dtype=np.int64)
    order = np.lexsort((items, hashes))
    h, it = hashes[order], items[order]
    new = np.ones(len(h), dtype=bool)
    new[1:] = (h[1:] != h[:-1]) | (it[1:] != it[:-1])
    h, it = h[new], it[new]
    _, counts = np.unique(h, return_counts=True)
    return h, it, np.repeat(counts, counts)


FILTER_BITS = 24  # 2 MiB bitmaps: a few percent of lookups pass through to the sorted tables


def bitmap(hashes: np.ndarray) -> np.ndarray:
    mask = np.zeros(1 << FILTER_BITS, dtype=bool)
    mask[hashes >> U64(64 - FILTER_BITS)] = True
    return np.packbits(mask, bitorder="little")


def may_hold(bitmap: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Positions of the hashes that may be in the table the bitmap was made from (no false negatives)."""
    top = hashes >> U64(64 - FILTER_BITS)
    return np.flatnonzero((bitmap[top >> U64(3)] >> (top & U64(7)).astype(np.uint8)) & 1)


def lookup(table: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each query found in the sorted `table`: the query's position in `queries` and a table index, one pair
    per matching table entry."""
    if not len(table) or not len(queries):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    lo = np.searchsorted(table, queries)
    found = table[np.minimum(lo, len(table) - 1)] == queries
    if not found.any():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    q = np.flatnonzero(found)
    lo = lo[q]
    counts = np.searchsorted(table, queries[q], side="right") - lo
    idx = np.repeat(lo - (np.cumsum(counts) - counts), counts) + np.arange(int(counts.sum()))
    return np.repeat(q, counts), idx


def frequent(packed: np.ndarray, item_bits: int, max_items: int) -> np.ndarray:
    """From (hash-top-bits | item) keys, the sorted top bits found with more than `max_items` distinct items.

    Sorts `packed` in place and otherwise works in chunks, so that the index of a large benchmark builds without
    copies of its biggest array."""
    packed.sort()
    shift = U64(item_bits)
    # a run of more than max_items keys with one top: candidates (within-item repeats are removed below)
    found = []
    step = 1 << 20
    for i in range(0, max(0, len(packed) - max_items), step):
        a = packed[i : i + step] >> shift
        b = packed[i + max_items : i + max_items + step] >> shift
        a = a[: len(b)]
        found.append(a[a == b])
    cand = np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=U64)
    if not len(cand):
        return cand
    lo = np.searchsorted(packed, cand << shift)
    hi = np.searchsorted(packed, (cand + U64(1)) << shift)
    counts = hi - lo
    idx = np.repeat(lo - (np.cumsum(counts) - counts), counts) + np.arange(int(counts.sum()))
    keys = packed[idx]
    distinct = np.ones(len(keys), dtype=bool)
    distinct[1:] = keys[1:] != keys[:-1]
    owner = np.repeat(np.arange(len(cand)), counts)
    items = np.bincount(owner[distinct], minlength=len(cand))
    return cand[items > max_items]


def chunks(lengths: list[int], size: int) -> Iterator[tuple[int, int]]:
    """[lo, hi) runs of consecutive segments of about `size` characters together."""
    lo, total = 0, 0
    for i, n in enumerate(lengths):
        if total and total + n > size:
            yield lo, i
            lo, total = i, 0
        total += n
    if lo < len(lengths):
        yield lo, len(lengths)


def common_prefix(a: str, i: int, b: str, j: int) -> int:
    """Length of the common prefix of a[i:] and b[j:]."""
    n = 0
    step = 64
    limit = min(len(a) - i, len(b) - j)
    while n < limit:
        k = min(step, limit - n)
        if a[i + n : i + n + k] == b[j + n : j + n + k]:
            n += k
            continue
        while n < limit and a[i + n] == b[j + n]:
            n += 1
        break
    return n


def common_suffix(a: str, i: int, b: str, j: int) -> int:
    """Length of the common suffix of a[:i] and b[:j]."""
    n = 0
    limit = min(i, j)
    while n < limit:
        k = min(64, limit - n)
        if a[i - n - k : i - n] == b[j - n - k : j - n]:
            n += k
            continue
        while n < limit and a[i - n - 1] == b[j - n - 1]:
            n += 1
        break
    return n


def union_length(intervals: list[tuple[int, int]]) -> int:
    total, end = 0, -1
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total
