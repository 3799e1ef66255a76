"""Near-verbatim matching of short benchmark segments: one token substituted, inserted or deleted. Pure: no I/O.

A segment shorter than two n-grams (under 26 words, 40 CJK characters) has at most a few n-grams, and one edited
word in its middle breaks all of them; below one n-gram the whole segment is the only n-gram. Such segments are
matched here by seed and verify: each is cut into two halves; one edit touches at most one half, so the other
half appears in the record exactly. The halves are indexed (a half found in more than `max_item_frequency` items of
a benchmark is template text, and a half of mostly one-character tokens carries no information: neither is
indexed); every record window of a half's length is looked up, and each hit is verified by comparing the record's
tokens around it with the whole segment, allowing one edit. Halves shorter than `min_half` tokens are not specific
enough to seed: segments under 2 * min_half tokens are left to the exact checks. The caller may ask more of some
segments: an answer choice of eight words is often a name that prose mentions with one word different ("Brown v.
Board of Education of Topeka (1954)"), so `DecontaminationIndex` asks 10 tokens of fields after the first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sftforge.lib.decontam.hashing import U64, Rolling
from sftforge.lib.decontam.tables import bitmap, item_frequency, lookup, may_hold

DEFAULT_MIN_HALF = 4


def within_one_edit(a: np.ndarray, b: np.ndarray) -> int | None:
    """The edit distance between two token-hash sequences if it is 0 or 1, else None."""
    if len(a) == len(b):
        diff = int(np.count_nonzero(a != b))
        return diff if diff <= 1 else None
    if abs(len(a) - len(b)) != 1:
        return None
    short, long = (a, b) if len(a) < len(b) else (b, a)
    mism = np.flatnonzero(short != long[: len(short)])
    i = int(mism[0]) if len(mism) else len(short)
    return 1 if np.array_equal(short[i:], long[i + 1 :]) else None


@dataclass(slots=True)
class NearIndex:
    """Halves of short segments, and the segments themselves to verify against."""

    max_item_frequency: int
    min_half: int = DEFAULT_MIN_HALF
    seed_hash: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=U64))  # sorted
    seed_seg: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    seed_left: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # left half (else right)
    seed_len: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    sizes: list[int] = field(default_factory=list)  # the half lengths in the table
    seg_tokens: list[np.ndarray] = field(default_factory=list)  # token hashes of each segment
    seg_item: list[int] = field(default_factory=list)  # global item of each segment
    _filter: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint8))

    def add(
        self, segments: list[np.ndarray], content: list[bytes], items: np.ndarray, base: int, min_len: list[int]
    ) -> list[int]:
        """Index the halves of `segments` (token hashes; `content`: 1 per informative token) of one benchmark;
        `items`: each segment's item in that benchmark, `base`: its first global item. Returns the items (in the
        benchmark) that got a segment indexed."""
        hashes, segs, lefts, lens = [], [], [], []
        first = len(self.seg_tokens)
        kept = 0
        kept_items: list[int] = []
        for toks, flags, item, least in zip(segments, content, items.tolist(), min_len):
            n = len(toks)
            half = n // 2
            if half < self.min_half or n < least or sum(flags) * 2 < n:
                continue
            s = first + kept
            kept += 1
            kept_items.append(item)
            self.seg_tokens.append(toks)
            self.seg_item.append(base + item)
            roll = Rolling(toks)
            for start, length, left in ((0, half, True), (half, n - half, False)):
                if sum(flags[start : start + length]) * 2 < length:
                    continue  # a half of digits and single letters seeds everywhere
                hashes.append(roll.windows(np.array([start]), length)[0])
                segs.append(s)
                lefts.append(left)
                lens.append(length)
        if not hashes:
            return kept_items
        h = np.array(hashes, dtype=U64)
        seg = np.array(segs, dtype=np.int64)
        seg_items = np.array(self.seg_item, dtype=np.int64)[seg]
        # template halves: found in more items of this benchmark than max_item_frequency
        pair_h, _, pair_freq = item_frequency(h, seg_items)
        uniq, idx = np.unique(pair_h, return_index=True)
        ok = pair_freq[idx][np.searchsorted(uniq, h)] <= self.max_item_frequency
        all_h = np.concatenate([self.seed_hash, h[ok]])
        order = np.argsort(all_h, kind="stable")
        self.seed_hash = all_h[order]
        self.seed_seg = np.concatenate([self.seed_seg, seg[ok].astype(np.int32)])[order]
        self.seed_left = np.concatenate([self.seed_left, np.array(lefts, dtype=bool)[ok]])[order]
        self.seed_len = np.concatenate([self.seed_len, np.array(lens, dtype=np.int32)[ok]])[order]
        self.sizes = sorted(set(self.seed_len.tolist()))
        self._filter = bitmap(self.seed_hash)
        return kept_items

    def check(self, toks: np.ndarray, roll: Rolling | None = None) -> dict[int, tuple[int, int]]:
        """Global item -> (edits, segment length) of every indexed segment found in the record's token hashes
        with at most one edit (the fewest edits per item)."""
        if not len(self.seed_hash) or len(toks) < 2 * self.min_half - 1:
            return {}
        roll = roll or Rolling(toks)
        grams, pos, lens = [], [], []
        for k in self.sizes:
            w = roll.all_windows(k)
            if len(w):
                grams.append(w)
                pos.append(np.arange(len(w), dtype=np.int64))
                lens.append(np.full(len(w), k, dtype=np.int32))
        if not grams:
            return {}
        g, p, ln = np.concatenate(grams), np.concatenate(pos), np.concatenate(lens)
        cand = may_hold(self._filter, g)
        if not len(cand):
            return {}
        q, idx = lookup(self.seed_hash, g[cand])
        found: dict[int, tuple[int, int]] = {}
        tried: set[tuple[int, int, int]] = set()
        for r, k, s, left, k_seed in zip(
            p[cand][q].tolist(),
            ln[cand][q].tolist(),
            self.seed_seg[idx].tolist(),
            self.seed_left[idx].tolist(),
            self.seed_len[idx].tolist(),
        ):
            if k != k_seed:
                continue
            seg = self.seg_tokens[s]
            n = len(seg)
            spans = [(r, r + m) for m in (n, n - 1, n + 1)] if left else [(r + k - m, r + k) for m in (n, n - 1, n + 1)]
            for a, b in spans:
                if a < 0 or b > len(toks) or (s, a, b) in tried:
                    continue
                tried.add((s, a, b))
                edits = within_one_edit(toks[a:b], seg)
                if edits is not None:
                    item = self.seg_item[s]
                    if item not in found or edits < found[item][0]:
                        found[item] = (edits, n)
                    break
        return found

    @property
    def nbytes(self) -> int:
        return (
            self.seed_hash.nbytes
            + self.seed_seg.nbytes
            + self.seed_left.nbytes
            + self.seed_len.nbytes
            + self._filter.nbytes
            + sum(t.nbytes for t in self.seg_tokens)
        )
