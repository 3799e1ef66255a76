"""MinHash near-duplicate detection, vectorised with numpy: shingles, signatures, LSH bands, global resolution.

Pure functions and classes (no I/O). The pipeline (`near_duplicates` runs it) is

    hasher = MinHasher(num_perm, seed, unit, n)
    sets = hasher.shingle_sets(texts)                   # each text's 32-bit shingle hashes (for exact checks)
    sigs = hasher.signatures(sets)                      # (n_docs, num_perm) uint32; or .signatures(texts)
    bands, rows = lsh_params(threshold, num_perm)
    result = find_duplicates(sigs, bands, rows, threshold, shingle_sets=sets)  # survivor per doc, clusters

Why not a per-document loop (datasketch's `MinHash` + `MinHashLSH`): the cost there is Python work per shingle
and per document. Here a batch of documents becomes one byte array; tokens, their hashes, n-grams, permutations
and minima are array operations over the whole batch, with no Python object per token or shingle. The LSH index
is replaced by sorting each band column, so no dictionary of buckets is held in memory and the signatures may
be a memmap on disk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from sftforge.lib.text import normalize, tokens

Unit = Literal["word", "char"]

EMPTY = np.uint32(0xFFFFFFFF)
"""Every value of an empty document's signature; such rows are never candidates (see `find_duplicates`)."""

_U64 = np.uint64
_MIX = _U64(0x9E3779B97F4A7C15)  # odd: multiplication by it is a bijection mod 2^64
_CHUNK = 4096  # shingles per permutation block: a (num_perm, _CHUNK) uint32 buffer stays cache-sized
_BATCH = 1024  # documents hashed together (their byte and token arrays stay cache-friendly)

# The bytes of ASCII text mapped to the token rule of `sftforge.lib.text.tokens` (letters and digits lowercased,
# everything else a space), so that a batch of ASCII texts is tokenised and hashed as one numpy array.
_ASCII_LUT = np.array(
    [(ord(chr(i).lower()) if chr(i).isalnum() else 32) if i < 128 else i for i in range(256)], dtype=np.uint8
)


_LOW_BYTES = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)


def _low_bytes_mask(lens: np.ndarray) -> np.ndarray:
    """uint64 masks keeping the low min(len, 8) bytes."""
    return _LOW_BYTES[np.minimum(lens, 8)]


# ---------------------------------------------------------------------------------------------------- shingling


def shingles(text: str, unit: Unit = "word", n: int = 3) -> list[str]:
    """The shingles as strings (word n-grams joined by a space, or character n-grams of the normalised text).

    A text shorter than n gives one shingle of the whole thing; an empty one gives none. For inspection, exact
    Jaccard and other libraries: `MinHasher` hashes the same shingles without building these strings.
    """
    _check_shingling(unit, n)
    if unit == "word":
        toks = tokens(text)
        if len(toks) <= n:
            return [" ".join(toks)] if toks else []
        return [" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1)]
    s = normalize(text)
    if len(s) <= n:
        return [s] if s else []
    return [s[i : i + n] for i in range(len(s) - n + 1)]


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of two shingle-hash sets (as from `MinHasher.shingle_hashes`); 0 if one is empty."""
    a, b = _sorted_unique(np.asarray(a)), _sorted_unique(np.asarray(b))
    if not len(a) or not len(b):
        return 0.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


def _sorted_unique(x: np.ndarray) -> np.ndarray:
    """np.unique by sorting (numpy >= 2.3's hash-based unique is several times slower on these arrays)."""
    x = np.sort(x)
    return x[np.concatenate(([True], x[1:] != x[:-1]))] if len(x) else x


def _check_shingling(unit: str, n: int) -> None:
    if unit not in ("word", "char"):
        raise ValueError(f"unit must be 'word' or 'char', not {unit!r}")
    if n < 1:
        raise ValueError(f"shingle size n must be >= 1, not {n}")


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finaliser (a bijection of uint32), returning a new array."""
    h = h ^ (h >> np.uint32(16))
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    return h


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser, in place: a bijection whose every output bit depends on every input bit."""
    h ^= h >> _U64(33)
    h *= _U64(0xFF51AFD7ED558CCD)
    h ^= h >> _U64(33)
    h *= _U64(0xC4CEB9FE1A85EC53)
    h ^= h >> _U64(33)
    return h


# ---------------------------------------------------------------------------------------------------- signatures


class MinHasher:
    """MinHash signatures of many documents at once: `signatures(texts)` -> (n_docs, num_perm) uint32.

    Hashing: each unit (a token's UTF-8 bytes, or a character's code point) is hashed to 64 bits with numpy
    arithmetic only (MurmurHash3's finaliser over the bytes, 8 at a time, keyed by the seed), so the result is
    the same in every process and on every platform, unlike Python's `hash()`; an n-gram's units are folded
    together and mixed again, keeping the top 32 bits as the shingle hash h.

    Permutations: pi_k(h) = (a_k * h + b_k) mod 2^32, a_k odd, computed in uint32 where the wraparound is the
    modulo. Why this and not (a*h + b) mod (2^61 - 1): an odd multiplier makes pi_k a bijection of the 32-bit
    range, so it adds no collisions (the Mersenne version truncated to 32 bits is a random-like function, which
    merges values and biases estimates upward on large sets); the affine family's known weakness is structured
    input (consecutive integers give estimates ~0.08 low), which cannot reach it because every h, caller-supplied
    arrays included, first goes through MurmurHash3's 32-bit finaliser; and uint32 multiply-add vectorises (SIMD)
    where 64-bit modular arithmetic does not, which makes this step several times faster. datasketch >= 2.0 uses
    the same family by default. On random sets the estimates are unbiased with the binomial variance
    J(1 - J) / num_perm; the tests check them against exact Jaccard.

    Speed: documents are hashed a batch at a time; the permutations run on a (num_perm, shingles) block and
    `np.minimum.reduceat` takes each document's minima, so there is no Python loop per document or per shingle.
    """

    def __init__(self, num_perm: int = 128, seed: int = 1, unit: Unit = "word", n: int = 3) -> None:
        _check_shingling(unit, n)
        if num_perm < 1:
            raise ValueError(f"num_perm must be >= 1, not {num_perm}")
        self.num_perm, self.seed, self.unit, self.n = num_perm, seed, unit, n
        rng = np.random.default_rng(seed)  # PCG64: the same stream on every platform
        self._a = (rng.integers(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1))[:, None]
        self._b = rng.integers(0, 1 << 32, num_perm, dtype=np.uint32)[:, None]
        self._unit_key = _U64(int(rng.integers(0, 1 << 63, dtype=np.uint64)))

    def shingle_hashes(self, text: str) -> np.ndarray:
        """The set of a text's 32-bit shingle hashes (sorted, unique): for exact Jaccard and for `signatures`."""
        h, _ = self._hash_batch([text])
        return _sorted_unique(h)

    def shingle_sets(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Each text's shingle hashes (uint32; unsorted, repeats kept), hashed in batches.

        For exact verification (`find_duplicates(..., shingle_sets=...)`) and as `signatures` input, so that the
        texts are hashed once: `sets = h.shingle_sets(texts); sigs = h.signatures(sets)`.
        """
        out: list[np.ndarray] = []
        for start in range(0, len(texts), _BATCH):
            h, counts = self._hash_batch(texts[start : start + _BATCH])
            out.extend(np.split(h, np.cumsum(counts)[:-1]))
        return out

    def signatures(self, docs: Sequence[str] | Sequence[np.ndarray], out: np.ndarray | None = None) -> np.ndarray:
        """Signatures of texts, or of shingle-hash arrays from `shingle_hashes`; rows in input order.

        `out` (e.g. a writable memmap of shape (len(docs), num_perm), dtype uint32) receives the rows batch by
        batch, so a corpus's signatures need not fit in memory. An empty document's row is all `EMPTY`.
        """
        n_docs = len(docs)
        if out is None:
            out = np.empty((n_docs, self.num_perm), dtype=np.uint32)
        elif out.shape != (n_docs, self.num_perm) or out.dtype != np.uint32:
            raise ValueError(f"out must be uint32 of shape {(n_docs, self.num_perm)}, not {out.dtype} {out.shape}")
        for start in range(0, n_docs, _BATCH):
            batch = docs[start : start + _BATCH]
            texts = sum(isinstance(d, str) for d in batch)
            if texts == len(batch):
                h, counts = self._hash_batch(batch)  # type: ignore[arg-type]
            elif texts:
                raise TypeError("docs must be all texts or all shingle-hash arrays")
            else:
                arrays = [
                    d
                    if isinstance(d, np.ndarray) and d.dtype == np.uint32 and d.ndim == 1
                    else np.ravel(d).astype(np.uint32)
                    for d in batch
                ]
                counts = np.fromiter(map(len, arrays), dtype=np.int64, count=len(arrays))
                h = np.concatenate(arrays) if arrays else np.empty(0, np.uint32)
            out[start : start + len(batch)] = self._minima(h, counts).T
        return out

    # -- shingle hashing

    def _hash_batch(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """All shingle hashes of a batch, concatenated (uint32), and each text's shingle count."""
        if self.unit == "word":
            units, lengths = self._token_hashes(texts)
        else:
            canon = [normalize(t) for t in texts]
            lengths = np.fromiter(map(len, canon), dtype=np.int64, count=len(canon))
            cps = np.frombuffer("".join(canon).encode("utf-32-le"), dtype=np.uint32)
            units = _fmix64(cps.astype(np.uint64) ^ _MIX)
        return self._ngrams(units, lengths)

    def _token_hashes(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """64-bit hash of every token of every text, and each text's token count, with no Python object per token.

        The batch becomes one byte array (ASCII texts as they are, others as their tokens joined by spaces);
        a lookup table lowercases ASCII letters and turns every other ASCII byte into a space, which is
        `tokens` for ASCII text. A token's hash folds its bytes 8 at a time (unaligned little-endian loads),
        so a token of up to 8 bytes maps injectively before the final mix.
        """
        parts = [t.encode("ascii") if t.isascii() else " ".join(tokens(t)).encode("utf-8") for t in texts]
        sizes = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
        raw = np.frombuffer(b" ".join(parts) + b" " * 8, dtype=np.uint8)  # the padding makes 8-byte loads safe
        data = _ASCII_LUT[raw]
        is_word = data != 32
        change = np.flatnonzero(is_word[1:] != is_word[:-1]) + 1
        if is_word[0]:
            change = np.concatenate(([0], change))
        starts, ends = change[0::2], change[1::2]
        lens = ends - starts
        words = np.ndarray((len(data) - 7,), dtype="<u8", buffer=data, strides=(1,))  # words[i] = bytes i..i+7
        h = words[starts] & _low_bytes_mask(lens)
        h ^= self._unit_key
        rest = np.flatnonzero(lens > 8)
        offset = 8
        while len(rest):  # longer tokens: the next 8 bytes, for those that have them
            more = _fmix64(h[rest]) ^ (words[starts[rest] + offset] & _low_bytes_mask(lens[rest] - offset))
            h[rest] = more
            offset += 8
            rest = rest[lens[rest] > offset]
        h ^= lens.astype(np.uint64) << _U64(56)
        _fmix64(h)
        doc_ends = np.cumsum(sizes + 1)  # each text is followed by one space
        return h, np.diff(np.searchsorted(starts, doc_ends), prepend=0).astype(np.int64)

    def _ngrams(self, units: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fold each run of n consecutive units of one document into a 32-bit shingle hash."""
        n = self.n
        ends = np.cumsum(lengths)
        starts = ends - lengths
        counts = np.where(lengths >= n, lengths - n + 1, np.minimum(lengths, 1))
        out = np.empty(int(counts.sum()), dtype=np.uint64)
        units = units ^ self._unit_key
        short = np.flatnonzero((lengths > 0) & (lengths < n))
        in_short = np.zeros(len(out), dtype=bool)
        in_short[(np.cumsum(counts) - counts)[short]] = True
        total = len(units)
        if total >= n:  # every window of the batch, then those lying inside one document
            acc = units[: total - n + 1].copy()
            for j in range(1, n):
                acc *= _MIX
                acc += units[j : total - n + 1 + j]
            long_docs = lengths >= n
            diff = np.zeros(total - n + 2, dtype=np.int8)  # +1 at each first window, -1 after each last one
            diff[starts[long_docs]] += 1
            diff[ends[long_docs] - n + 1] -= 1
            out[~in_short] = acc[np.cumsum(diff[:-1], dtype=np.int8) > 0]
        if len(short):  # a document shorter than n: one shingle of all its units
            acc = units[starts[short]].copy()
            for j in range(1, n):
                m = lengths[short] > j
                acc[m] = acc[m] * _MIX + units[starts[short[m]] + j]
            acc ^= lengths[short].astype(np.uint64)  # differs from any full n-gram's fold
            out[in_short] = acc
        return (_fmix64(out) >> _U64(32)).astype(np.uint32), counts

    # -- permutations and minima

    def _minima(self, h: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """(num_perm, n_docs) minima of the permuted hashes of each document's shingles; `EMPTY` if it has none."""
        res = np.full((self.num_perm, len(counts)), EMPTY, dtype=np.uint32)
        docs = np.flatnonzero(counts > 0)
        if not len(docs):
            return res
        ends = np.cumsum(counts)[docs]
        starts = ends - counts[docs]
        h = _fmix32(h.astype(np.uint32, copy=False))  # spreads structured caller-supplied hashes (see tests)
        a, b = self._a, self._b
        buf = np.empty((self.num_perm, _CHUNK), dtype=np.uint32)
        d, n_docs = 0, len(docs)
        while d < n_docs:
            s0 = starts[d]
            e = int(np.searchsorted(ends, s0 + _CHUNK, side="right"))
            if e == d:  # one document longer than a block: running minimum over its blocks
                acc = res[:, docs[d]]
                for p in range(s0, ends[d], _CHUNK):
                    piece = h[p : min(p + _CHUNK, ends[d])]
                    v = buf[:, : len(piece)]
                    np.multiply(a, piece, out=v)
                    np.add(v, b, out=v)
                    np.minimum(acc, v.min(axis=1), out=acc)  # acc is a view of res
                d += 1
                continue
            s1 = ends[e - 1]
            v = buf[:, : s1 - s0]
            np.multiply(a, h[s0:s1], out=v)
            np.add(v, b, out=v)
            res[:, docs[d:e]] = np.minimum.reduceat(v, starts[d:e] - s0, axis=1)
            d = e
        return res


def estimate_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Share of equal signature values: an unbiased estimate of Jaccard similarity (0 if either text is empty)."""
    if (sig_a == EMPTY).all() or (sig_b == EMPTY).all():
        return 0.0
    return float(np.mean(sig_a == sig_b))


# ---------------------------------------------------------------------------------------------------- LSH


@lru_cache(maxsize=64)
def lsh_params(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) with bands * rows <= num_perm minimising fp_weight * FP + fn_weight * FN, where

    FP = integral over s in [0, threshold] of P(candidate | s) and FN = integral over [threshold, 1] of
    P(not candidate | s), with P(candidate | s) = 1 - (1 - s^rows)^bands: the areas on the wrong side of the
    threshold under the S-curve. Integrated with Simpson's rule on a fine grid, for all (bands, rows) at once.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), not {threshold}")
    if num_perm < 1:
        raise ValueError(f"num_perm must be >= 1, not {num_perm}")
    pairs = np.array([(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)], dtype=float)
    bands, rows = pairs[:, :1], pairs[:, 1:]

    def simpson(lo: float, hi: float, f: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        s = np.linspace(lo, hi, 2049)  # odd number of points
        w = np.ones_like(s)
        w[1:-1:2], w[2:-1:2] = 4.0, 2.0
        return f(s[None, :]) @ w * (hi - lo) / (3 * (len(s) - 1))

    fp = simpson(0.0, threshold, lambda s: 1.0 - (1.0 - s**rows) ** bands)
    fn = simpson(threshold, 1.0, lambda s: (1.0 - s**rows) ** bands)
    best = int(np.argmin(fp_weight * fp + fn_weight * fn))  # first minimum: fewest bands on ties
    return int(pairs[best, 0]), int(pairs[best, 1])


def band_hashes(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n_docs, bands) uint64: a 64-bit hash of each band's `rows` signature values (equal band -> equal key)."""
    _check_bands(sigs, bands, rows)
    out = np.empty((len(sigs), bands), dtype=np.uint64)
    for band in range(bands):
        out[:, band] = _band_key(sigs, band, rows)
    return out


def bucket_rows(sigs: np.ndarray, bands: int, rows: int, start: int = 0) -> np.ndarray:
    """(band, band key, start + row) uint64 rows for every band of every non-empty signature: documents sharing a
    (band, key) bucket are the candidate pairs. A distributed engine groups these rows by bucket across blocks."""
    live = np.flatnonzero(~_empty_rows(sigs))
    table = np.empty((len(live) * bands, 3), dtype=np.uint64)
    for band in range(bands):
        rows_of = slice(band * len(live), (band + 1) * len(live))
        table[rows_of, 0] = band
        table[rows_of, 1] = _band_key(sigs, band, rows)[live]
        table[rows_of, 2] = live + start
    return table


def _check_bands(sigs: np.ndarray, bands: int, rows: int) -> None:
    if sigs.ndim != 2:
        raise ValueError(f"signatures must be 2-d (n_docs, num_perm), not shape {sigs.shape}")
    if bands < 1 or rows < 1 or bands * rows > sigs.shape[1]:
        raise ValueError(f"{bands} bands x {rows} rows do not fit {sigs.shape[1]} signature values")


_ROW_BLOCK = 1 << 16  # rows of a (possibly memmapped) signature matrix read at once


def _band_key(sigs: np.ndarray, band: int, rows: int) -> np.ndarray:
    """One band's keys: the band's values packed two per 64-bit word, each word absorbed with `_fmix64`."""
    out = np.empty(len(sigs), dtype=np.uint64)
    lo = band * rows
    for r0 in range(0, len(sigs), _ROW_BLOCK):
        block = np.asarray(sigs[r0 : r0 + _ROW_BLOCK, lo : lo + rows]).astype(np.uint64)
        acc = np.full(len(block), ((band + 1) * int(_MIX)) % (1 << 64), dtype=np.uint64)
        for j in range(0, rows, 2):
            word = block[:, j] << _U64(32)
            if j + 1 < rows:
                word |= block[:, j + 1]
            acc ^= word
            _fmix64(acc)
        out[r0 : r0 + len(block)] = acc
    return out


def _empty_rows(sigs: np.ndarray) -> np.ndarray:
    """Rows whose every value is `EMPTY` (documents without shingles), read a block of rows at a time."""
    empty = np.empty(len(sigs), dtype=bool)
    for r0 in range(0, len(sigs), _ROW_BLOCK):
        empty[r0 : r0 + _ROW_BLOCK] = (np.asarray(sigs[r0 : r0 + _ROW_BLOCK]) == EMPTY).all(axis=1)
    return empty


# ---------------------------------------------------------------------------------------------------- resolution


@dataclass(frozen=True)
class DuplicateResult:
    """For each document: `survivor[i]` (itself if kept, else the first document of its cluster) and
    `similarity[i]` (duplicates: Jaccard with the survivor, estimated from signatures or exact when shingle sets
    were given; kept documents: NaN). In a chain A~B~C, C's similarity to A may be below the threshold."""

    survivor: np.ndarray
    similarity: np.ndarray

    @property
    def is_duplicate(self) -> np.ndarray:
        return self.survivor != np.arange(len(self.survivor))

    @property
    def duplicates(self) -> np.ndarray:
        """Indices of the documents to remove, ascending."""
        return np.flatnonzero(self.is_duplicate)

    def clusters(self) -> dict[int, list[int]]:
        """survivor -> all members of its cluster (survivor first, ascending), for clusters of two or more."""
        dups = self.duplicates
        out: dict[int, list[int]] = {}
        for i, s in zip(dups.tolist(), self.survivor[dups].tolist(), strict=True):
            out.setdefault(s, [s]).append(i)
        return out


def find_duplicates(
    sigs: np.ndarray,
    bands: int,
    rows: int,
    threshold: float | None = None,
    verify: bool = True,
    shingle_sets: Sequence[np.ndarray] | None = None,
) -> DuplicateResult:
    """Near-duplicate clusters over a whole corpus; the first document (smallest index) of each survives.

    Candidates: for each band, sort the band keys and connect every member of a run of equal keys to the
    run's first member (enough for connected components). No bucket dictionary is built, and only one band's
    keys (O(n)) are in memory at a time, so `sigs` may be a memmap.

    Verification (`verify`, needs `threshold`): each candidate edge is checked on the pair itself, not against
    its component's root, and components are formed from the verified edges. Checking against the root would
    make the result depend on the order in which edges arrive and split chains of near-duplicates; checking the
    pair keeps the rule "connected by a chain of pairs each at least `threshold` similar". The check is the
    signature estimate, or exact Jaccard of `shingle_sets[i]` (from `MinHasher.shingle_sets`) when given. An
    edge between two documents already in one component is skipped: it cannot change the components.
    `shingle_sets` may be any sequence (e.g. one that hashes `texts[i]` on access): only candidates are read.

    Empty documents (all-`EMPTY` rows) are never candidates.
    """
    _check_bands(sigs, bands, rows)
    if verify and threshold is None:
        raise ValueError("verify=True needs a threshold")
    if shingle_sets is not None and len(shingle_sets) != len(sigs):
        raise ValueError("shingle_sets must have one entry per signature row")
    n = len(sigs)
    parent = np.arange(n, dtype=np.int64)
    live = np.flatnonzero(~_empty_rows(sigs))
    for band in range(bands):
        if len(live) < 2:
            break
        keys = _band_key(sigs, band, rows)[live]
        order = np.argsort(keys, kind="stable")  # stable: a run's first member is its smallest index
        sorted_keys = keys[order]
        new_run = np.ones(len(order), dtype=bool)
        new_run[1:] = sorted_keys[1:] != sorted_keys[:-1]
        del keys, sorted_keys
        run_first = live[order[np.flatnonzero(new_run)]]
        first = run_first[np.cumsum(new_run) - 1][~new_run]
        member = live[order[~new_run]]
        del order, new_run, run_first
        keep = parent[first] != parent[member]  # parent is fully compressed: parent[x] is x's root
        join_pairs(parent, sigs, first[keep], member[keep], threshold, verify, shingle_sets)
    return components(parent, sigs, shingle_sets)


def join_pairs(
    parent: np.ndarray,
    sigs: np.ndarray,
    first: np.ndarray,
    member: np.ndarray,
    threshold: float | None,
    verify: bool,
    shingle_sets: Sequence[np.ndarray] | None = None,
) -> None:
    """Merge candidate pairs (first[i], member[i]) into the components in `parent` (in place), each pair checked
    on itself first when `verify`: its similarity must reach `threshold`."""
    if verify and len(first):
        ok = _pair_similarity(sigs, shingle_sets, first, member) >= threshold - 1e-9  # type: ignore[operator]
        first, member = first[ok], member[ok]
    if len(first):
        _union(parent, first, member)


def resolve_pairs(
    sigs: np.ndarray, first: np.ndarray, member: np.ndarray, threshold: float | None, verify: bool
) -> DuplicateResult:
    """`find_duplicates`'s decision from candidate pairs found elsewhere (a distributed bucket shuffle): verified
    pairs joined into components whose smallest index survives."""
    parent = np.arange(len(sigs), dtype=np.int64)
    join_pairs(parent, sigs, first, member, threshold, verify)
    return components(parent, sigs)


def components(
    parent: np.ndarray, sigs: np.ndarray, shingle_sets: Sequence[np.ndarray] | None = None
) -> DuplicateResult:
    """The result of a finished union-find: each duplicate's survivor (its component's smallest index) and their
    similarity."""
    dups = np.flatnonzero(parent != np.arange(len(parent)))
    similarity = np.full(len(parent), np.nan, dtype=np.float32)
    if len(dups):
        similarity[dups] = _pair_similarity(sigs, shingle_sets, parent[dups], dups)
    return DuplicateResult(survivor=parent, similarity=similarity)


def _pair_similarity(
    sigs: np.ndarray, sets: Sequence[np.ndarray] | None, u: np.ndarray, v: np.ndarray, block: int = 8192
) -> np.ndarray:
    """Jaccard of each pair (u[i], v[i]): exact from shingle sets if given, else estimated from signatures."""
    if sets is not None:
        return _exact_jaccard(sets, u, v, block // 4)  # its sort keys take ~700 bytes per pair
    out = np.empty(len(u), dtype=np.float64)
    for s in range(0, len(u), block):
        a, b = np.asarray(sigs[u[s : s + block]]), np.asarray(sigs[v[s : s + block]])
        out[s : s + block] = (a == b).mean(axis=1)
    return out


def _exact_jaccard(sets: Sequence[np.ndarray], u: np.ndarray, v: np.ndarray, block: int) -> np.ndarray:
    """Exact Jaccard of each pair of shingle sets, a block of pairs per sort (no Python set per document).

    Each value becomes the key pair << 33 | value << 1 | side; after one sort, repeats within a side are equal
    neighbours and a value present on both sides is two neighbours that differ in the lowest bit only.
    """
    out = np.empty(len(u), dtype=np.float64)
    one = _U64(1)
    for s in range(0, len(u), block):
        pairs = list(zip(u[s : s + block].tolist(), v[s : s + block].tolist(), strict=True))
        parts = [np.asarray(sets[i], dtype=np.uint32) for pair in pairs for i in pair]
        sizes = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
        keys = np.concatenate(parts).astype(np.uint64) if parts else np.empty(0, np.uint64)
        keys <<= one
        tags = np.arange(len(parts), dtype=np.uint64)  # 2 * pair + side
        keys |= np.repeat(((tags >> one) << _U64(33)) | (tags & one), sizes)
        keys = _sorted_unique(keys)
        tag_of = ((keys >> _U64(33)) << one) | (keys & one)
        per_side = np.bincount(tag_of.astype(np.intp), minlength=len(parts))
        size_a, size_b = per_side[0::2], per_side[1::2]
        shared = keys[1:][(keys[1:] ^ keys[:-1]) == one] >> _U64(33)
        inter = np.bincount(shared.astype(np.intp), minlength=len(pairs))
        union = np.maximum(size_a + size_b - inter, 1)
        out[s : s + len(pairs)] = np.where((size_a > 0) & (size_b > 0), inter / union, 0.0)
    return out


def _union(parent: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
    """Merge the components of each edge (u[i], v[i]) in place; every root is its component's smallest index.

    Vectorised union-find: hook the larger root of each cross edge under the smaller one, then pointer-jump
    until every node points at its root; repeat while edges still cross components. parent[x] <= x throughout,
    so there are no cycles and the final root of a component is its minimum.
    """
    while True:
        ru, rv = parent[u], parent[v]
        cross = ru != rv
        if not cross.any():
            return
        lo, hi = np.minimum(ru[cross], rv[cross]), np.maximum(ru[cross], rv[cross])
        np.minimum.at(parent, hi, lo)
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent[:] = grand
        u, v = u[cross], v[cross]


def near_duplicates(
    texts: Sequence[str],
    threshold: float = 0.8,
    num_perm: int = 128,
    unit: Unit = "word",
    n: int = 3,
    seed: int = 1,
    verify: Literal["exact", "estimate", "none"] = "exact",
) -> DuplicateResult:
    """The whole pipeline on a list of texts, with `lsh_params` tuned to the threshold.

    verify="exact" (the default) keeps a candidate pair only if the exact Jaccard of its shingle sets reaches the
    threshold: no pair above it is lost to estimation noise, at the cost of holding the shingle hashes (4 bytes
    per shingle). "estimate" uses the signatures instead (no extra memory; pairs near the threshold may go
    either way); "none" trusts the LSH bands.
    """
    hasher = MinHasher(num_perm=num_perm, seed=seed, unit=unit, n=n)
    sets = hasher.shingle_sets(texts) if verify == "exact" else None
    sigs = hasher.signatures(sets if sets is not None else texts)
    bands, rows = lsh_params(threshold, num_perm)
    return find_duplicates(sigs, bands, rows, threshold=threshold, verify=verify != "none", shingle_sets=sets)
