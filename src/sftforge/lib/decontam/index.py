"""Benchmark decontamination: index benchmark items' text, find benchmark text inside records (pure; the files are
read by `sftforge.sources.benchmarks`).

Two checks, both over text normalised like the rest of sftforge (`sftforge.lib.text.tokens`: NFKC, lowercase, words
split on anything that is not a letter or digit, every CJK character its own token):

* **n-grams** (GPT-3 style). Every benchmark *segment* (one field of one item: a GSM8K question, a HumanEval
  prompt, one MMLU choice) is cut into token n-grams, n = `ngram` (13). Segments that are mostly CJK (half their
  tokens or more are CJK characters) are cut into character n-grams, n = `cjk_ngram` (20: a CJK character
  carries less than an English word, so 13 characters is too short a phrase to be specific). A segment shorter
  than its n is indexed as one n-gram of its own length when it has at least `min_ngram` (8) tokens, that is
  the whole segment must appear verbatim; shorter segments ("True, False", "4") get no n-grams at all, since
  they would match everywhere, and only the substring check can reach them (it never will for segments
  shorter than `substring_chars`). A record matches an item when it contains one of the item's n-grams; the
  overlap is the share of the item's distinct n-grams found in the record.
* **near** (one word changed). A segment shorter than two n-grams loses every n-gram to one edited word in its
  middle, and a whole-segment n-gram to any edit. Such segments (at least `min_ngram` tokens; 2 more for fields
  after the first, which are often names that prose mentions too) are also matched with one token substituted,
  inserted or deleted, by seed and verify over their halves (`near.py`). A short question is also indexed joined
  with each other field of its item, so a record that holds the question and its answer matches as one text.
* **substring** (the 50-character check). The canonical form of a text is its tokens joined by single spaces
  (so punctuation, case and spacing do not matter; a CJK character counts as two characters, itself and its
  space). A record matches an item when any `substring_chars` (50) consecutive characters of the record's
  canonical form appear in the canonical form of one of the item's segments. The overlap is the share of the
  item's canonical characters covered by such common substrings.

False positives, and what is done about them:

* Template text. Benchmarks repeat their own boilerplate ("Which of the following is the most likely
  diagnosis?", the preamble of 900 MMLU moral-scenarios items). An n-gram, or a `substring_chars` window, that
  occurs in more than `max_item_frequency` (10) items of one benchmark is template, not item content, and never
  counts. Passages that a few items share (an MMLU history source read by three questions) stay: copying them
  is contamination.
* Low-information runs. An n-gram counts only when at least half its tokens are words of two or more
  characters (or CJK characters), and a substring match only when at least half its characters are in such
  words: "0 1 2 3 4 5 6 7 8 9 a b c d e f" or "(x - 2)(x + 2)(x - 1)(x + 1)" appear in many texts by chance.
* Short items, see above: nothing under `min_ngram` tokens or `substring_chars` characters can match; such items
  are listed by `too_short()` and in the operator's stats ("too short to check"), never silently uncheckable.
* Text that the benchmark itself quotes from elsewhere still matches. Measured on 10,000 records made from
  XQuAD paragraphs and Python PEPs, the only hits (0.14% of records) were the Wikipedia definition of a prime
  number, which HumanEval/78's docstring quotes. That is real overlap with the benchmark; `action: flag`, the
  reasons and `min_overlap` are the tools for reviewing or tolerating such cases.

Storage. N-grams are 64-bit polynomial hashes over xxh3 token hashes, kept in one sorted numpy array (every n
together) with the item and n of each entry (13 bytes an entry), behind a 2 MiB bitmap that answers most
lookups without touching the array. For the substring check the index holds, per segment, the hashes of the
K-character windows starting at every s-th character (s = substring_chars // 4, K = substring_chars - 2s + 1,
so 12 and 27 for 50): any 50-character common substring contains at least two such windows. The record side
hashes every K-window (stride 1) and looks them up; each candidate is verified against the stored segment text
by extending it to the longest common substring, which must reach `substring_chars` characters and pass the
rules above. A K-window found in more than `_WINDOW_CAP` (64) items is left out of the substring index, so that
common phrasing cannot make a record verify thousands of candidates; a match is then missed only when every
window it contains is such a phrase. GSM8K + HumanEval + MMLU index to about 25 MiB.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sftforge.errors import SftforgeError
from sftforge.lib.decontam.hashing import POWERS_CACHED, U64, Rolling, char_values, token_hashes, window_starts
from sftforge.lib.decontam.near import NearIndex
from sftforge.lib.decontam.tables import (
    bitmap,
    chunks,
    common_prefix,
    common_suffix,
    frequent,
    item_frequency,
    lookup,
    may_hold,
    union_length,
)
from sftforge.lib.text import CJK, tokens

DEFAULT_NGRAM = 13
DEFAULT_MIN_NGRAM = 8
DEFAULT_CJK_NGRAM = 20
DEFAULT_SUBSTRING_CHARS = 50
DEFAULT_MAX_ITEM_FREQUENCY = 10
NEAR_OTHER_EXTRA = 2  # near matching asks min_ngram tokens of a question, 2 more of other fields (see near.py)
_WINDOW_CAP = 64  # substring index: K-windows found in more items than this are not indexed (see module doc)


class BenchmarkError(SftforgeError):
    """A benchmark cannot be read or indexed; the message names the benchmark, file or field and what to fix."""


@dataclass(slots=True)
class BenchmarkItem:
    id: str
    texts: list[str]  # one per field, in the order of `fields`


@dataclass(slots=True)
class Benchmark:
    name: str
    items: list[BenchmarkItem]
    files: list[Path] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)


def canonical(text: str) -> str:
    """The form the substring check compares: tokens joined by single spaces."""
    return " ".join(tokens(text))


def content_flags(toks: Sequence[str]) -> bytes:
    return bytes(1 if len(t) >= 2 or CJK.match(t) else 0 for t in toks)


def informative(region: str) -> bool:
    """At least half the characters of a canonical region belong to words of two or more characters or are CJK:
    not a run of digits, single letters or symbols ("0 1 2 3 4 5 6 7 8 9 a b c d e f")."""
    toks = region.split(" ")
    return sum(len(t) for t in toks if len(t) >= 2 or CJK.match(t)) * 2 >= len(region)


@dataclass(frozen=True, slots=True)
class Hit:
    """One benchmark item found in a text."""

    benchmark: str
    item: int  # position of the item in its benchmark (rows in file order, files in name order)
    item_id: str  # the id_field value, else the row number ("file_stem:row" for several files)
    method: Literal["ngram", "substring", "near"]
    overlap: float  # share of the item's n-grams (ngram), canonical characters (substring) or tokens (near) found
    matched: int  # n-grams found, or characters covered
    total: int  # the item's indexed n-grams, or its canonical characters
    n: int  # n-gram size (the largest that matched), or substring_chars

    def describe(self) -> str:
        if self.method == "near":
            edits = self.total - self.matched
            return f"{self.benchmark} item {self.item_id} (a {self.total}-token field with {edits} word(s) changed)"
        what = f"{self.n}-gram" if self.method == "ngram" else f"{self.n}-char substring"
        return f"{self.benchmark} item {self.item_id} ({what} overlap {self.overlap:.2f}, {self.matched}/{self.total})"


@dataclass(slots=True)
class _Segments:
    """A benchmark's segments (one field of one item) while it is indexed."""

    item_chars: np.ndarray  # int64 per item: canonical characters
    flat: array = field(default_factory=lambda: array("Q"))  # token hashes of every segment, concatenated
    content: bytearray = field(default_factory=bytearray)  # per token: 1 for a word of 2+ characters or CJK
    seg_len: list[int] = field(default_factory=list)
    seg_item: list[int] = field(default_factory=list)
    seg_n: list[int] = field(default_factory=list)  # the n each segment is cut with (0: none)
    seg_full_n: list[int] = field(default_factory=list)  # the n-gram size of its script (ngram or cjk_ngram)
    seg_first: list[bool] = field(default_factory=list)  # the item's first field (a question), alone or with another
    texts: list[str] = field(default_factory=list)  # canonical text of the segments the substring check covers
    text_item: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Bench:
    name: str
    item_ids: list[str]
    gram_total: np.ndarray  # int64 per item: indexed distinct n-grams
    item_chars: np.ndarray  # int64 per item: canonical characters
    boiler: np.ndarray  # sorted: top bits (hash >> item_bits) of the substring_chars-windows in too many items
    item_bits: int
    checkable: int  # items with at least one n-gram or one segment as long as substring_chars
    unchecked: list[str] = field(default_factory=list)  # ids of the items too short to check


class DecontaminationIndex:
    """N-gram and substring index over any number of benchmarks; `check(text)` lists the items a text contains."""

    def __init__(
        self,
        *,
        ngram: int = DEFAULT_NGRAM,
        min_ngram: int = DEFAULT_MIN_NGRAM,
        cjk_ngram: int = DEFAULT_CJK_NGRAM,
        substring_chars: int = DEFAULT_SUBSTRING_CHARS,
        max_item_frequency: int = DEFAULT_MAX_ITEM_FREQUENCY,
        min_overlap: float = 0.0,
        near: bool = True,
    ) -> None:
        if not 1 <= min_ngram <= min(ngram, cjk_ngram):
            raise ValueError(f"need 1 <= min_ngram ({min_ngram}) <= ngram ({ngram}) and cjk_ngram ({cjk_ngram})")
        if substring_chars and substring_chars < 8:
            raise ValueError(f"substring_chars must be 0 (off) or at least 8, not {substring_chars}")
        if not 0.0 <= min_overlap <= 1.0:
            raise ValueError(f"min_overlap must be within [0, 1], not {min_overlap}")
        self.ngram, self.min_ngram, self.cjk_ngram = ngram, min_ngram, cjk_ngram
        self.substring_chars = substring_chars
        self.max_item_frequency = max_item_frequency
        self.min_overlap = min_overlap
        self.stride = max(1, substring_chars // 4)
        self.window = substring_chars - 2 * self.stride + 1  # K: every W-long match holds two indexed windows
        self.benches: list[_Bench] = []
        self.item_offset: list[int] = []  # global item number of each benchmark's first item
        self.item_bench = np.zeros(0, dtype=np.int32)  # benchmark of each global item
        self.gram_hash = np.zeros(0, dtype=U64)  # sorted n-gram hashes, every n together
        self.gram_item = np.zeros(0, dtype=np.int32)  # global item of each
        self.gram_n = np.zeros(0, dtype=np.uint8)  # n of each
        self.gram_sizes: list[int] = []  # the n values in the table
        self.sub_hash = np.zeros(0, dtype=U64)  # sorted K-window hashes
        self.sub_seg = np.zeros(0, dtype=np.int32)  # segment of each
        self.sub_pos = np.zeros(0, dtype=np.int32)  # start in the segment's canonical text
        self.seg_text: list[str] = []  # canonical text of every segment long enough for the substring check
        self.seg_item: list[int] = []  # global item of each
        self.dropped = {"ngrams": 0, "windows": 0, "low_information": 0}
        self.near_matching = near
        self.near = NearIndex(max_item_frequency)  # short segments with one word changed
        self._filter = np.zeros(0, dtype=np.uint8)  # bitmap over the top FILTER_BITS bits of every n-gram hash
        self._sub_filter = np.zeros(0, dtype=np.uint8)  # the same over the substring index

    # ---- building ----

    def add(self, bench: Benchmark) -> None:
        """Index a benchmark's items: their n-grams and substring windows join the global tables."""
        if any(b.name == bench.name for b in self.benches):
            raise BenchmarkError(f"benchmark {bench.name!r} added twice; give each benchmark a distinct `name`")
        base = len(self.item_bench)
        n_items = len(bench.items)
        segs = self._segments(bench)
        gram_total, new_grams = self._ngrams(segs, n_items, base)
        item_bits = max(1, (n_items - 1).bit_length())
        boiler, new_sub = self._windows(segs, item_bits, base)
        near_items = self._near(segs, base)
        long_items = np.zeros(n_items, dtype=bool)
        long_items[np.asarray(segs.text_item, dtype=np.int64)] = True
        long_items[near_items] = True
        reachable = (gram_total > 0) | long_items
        checkable = int(np.count_nonzero(reachable))
        if not checkable:
            fields = f" in fields {', '.join(bench.fields)}" if bench.fields else ""
            raise BenchmarkError(
                f"benchmark {bench.name!r}: none of its {n_items} items has text{fields} long enough to match "
                f"({self.min_ngram} words, or {self.substring_chars} characters); are these the fields with the "
                "questions or prompts?"
            )
        self.benches.append(
            _Bench(
                bench.name,
                [it.id for it in bench.items],
                gram_total,
                segs.item_chars,
                boiler,
                item_bits,
                checkable,
                [bench.items[i].id for i in np.flatnonzero(~reachable).tolist()],
            )
        )
        self.item_offset.append(base)
        self.item_bench = np.concatenate([self.item_bench, np.full(n_items, len(self.benches) - 1, dtype=np.int32)])
        self._merge(new_grams, new_sub)

    def _segments(self, bench: Benchmark) -> _Segments:
        """Every segment (one field of one item) as token hashes and, when long enough, canonical text."""
        segs = _Segments(item_chars=np.zeros(len(bench.items), dtype=np.int64))
        for i, item in enumerate(bench.items):
            texts = list(item.texts)
            first = tokens(texts[0]) if texts else []
            if len(texts) >= 2 and first and self._segment_n(first, texts[0]) != self._full_n(first, texts[0]):
                # a short question is also indexed with each other field after it, as a record holds a question
                # and its answer ("What is 2 + 2?" / "4")
                texts += [f"{texts[0]}\n{other}" for other in texts[1:] if other.strip()]
            for f, text in enumerate(texts):
                toks = tokens(text)
                if not toks:
                    continue
                segs.seg_first.append(f == 0 or f >= len(item.texts))
                segs.flat.extend(token_hashes(toks).tolist())
                segs.content.extend(content_flags(toks))
                segs.seg_len.append(len(toks))
                segs.seg_item.append(i)
                segs.seg_n.append(self._segment_n(toks, text))
                segs.seg_full_n.append(self._full_n(toks, text))
                c = " ".join(toks)
                segs.item_chars[i] += len(c)
                if self.substring_chars and len(c) >= self.substring_chars:
                    segs.texts.append(c)
                    segs.text_item.append(i)
        return segs

    def _ngrams(
        self, segs: _Segments, n_items: int, base: int
    ) -> tuple[np.ndarray, list[tuple[int, np.ndarray, np.ndarray]]]:
        """Each item's count of indexed n-grams, and the new (n, hashes, global items) tables, grouped by the n each
        segment uses; template and low-information n-grams are dropped (counted in `dropped`)."""
        gram_total = np.zeros(n_items, dtype=np.int64)
        lengths = np.asarray(segs.seg_len, dtype=np.int64)
        offsets = np.cumsum(lengths) - lengths
        items = np.asarray(segs.seg_item, dtype=np.int64)
        ns = np.asarray(segs.seg_n, dtype=np.int64)
        roll = Rolling(np.frombuffer(segs.flat, dtype=U64) if segs.flat else np.zeros(0, dtype=U64))
        content_prefix = np.zeros(len(segs.content) + 1, dtype=np.int64)
        np.cumsum(np.frombuffer(bytes(segs.content), dtype=np.uint8), out=content_prefix[1:])
        new_grams: list[tuple[int, np.ndarray, np.ndarray]] = []
        for n in np.unique(ns[ns > 0]).tolist():
            members = np.flatnonzero(ns == n)
            starts, seg = window_starts(lengths[members], offsets[members], n)
            dense = (content_prefix[starts + n] - content_prefix[starts]) * 2 >= n
            self.dropped["low_information"] += int(np.count_nonzero(~dense))
            starts, seg = starts[dense], seg[dense]
            h, it, freq = item_frequency(roll.windows(starts, n), items[members][seg])
            ok = freq <= self.max_item_frequency
            self.dropped["ngrams"] += int(np.count_nonzero(~ok))
            h, it = h[ok], it[ok]
            gram_total += np.bincount(it, minlength=n_items)
            new_grams.append((n, h, it + base))
        return gram_total, new_grams

    def _windows(
        self, segs: _Segments, item_bits: int, base: int
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
        """The benchmark's template windows (W-windows in too many items), and its new substring table: the
        K-window hashes of every stride-th position of each long segment, with segment and position."""
        W, K, texts = self.substring_chars, self.window, segs.texts
        if not W or not texts:
            return np.zeros(0, dtype=U64), None
        seg_items = np.asarray(segs.text_item, dtype=np.int64)
        # every W-window, packed with its item (top bits: hash, low bits: item) to count items per window
        packed = np.empty(sum(max(0, len(t) - W + 1) for t in texts), dtype=U64)
        filled = 0
        k_hash, k_seg, k_pos = [], [], []
        for lo, hi in chunks([len(t) for t in texts], POWERS_CACHED):
            lengths = np.array([len(t) for t in texts[lo:hi]], dtype=np.int64)
            offsets = np.cumsum(lengths) - lengths
            roll = Rolling(char_values("".join(texts[lo:hi])))
            starts, seg = window_starts(lengths, offsets, W)
            top = (roll.windows(starts, W) >> U64(item_bits)) << U64(item_bits)
            packed[filled : filled + len(top)] = top | seg_items[seg + lo].astype(U64)
            filled += len(top)
            # the indexed K-windows: every stride-th position
            starts, seg = window_starts(lengths, offsets, K, self.stride)
            k_hash.append(roll.windows(starts, K))
            k_seg.append(seg + lo)
            k_pos.append(starts - offsets[seg])
        boiler = frequent(packed, item_bits, self.max_item_frequency)
        del packed
        hashes, seg, pos = np.concatenate(k_hash), np.concatenate(k_seg), np.concatenate(k_pos)
        pair_h, _, pair_freq = item_frequency(hashes, seg_items[seg])
        uniq, first = np.unique(pair_h, return_index=True)
        ok = pair_freq[first][np.searchsorted(uniq, hashes)] <= _WINDOW_CAP
        self.dropped["windows"] += int(np.count_nonzero(~ok))
        seg_base = len(self.seg_text)
        self.seg_text.extend(texts)
        self.seg_item.extend((seg_items + base).tolist())
        return boiler, (hashes[ok], (seg[ok] + seg_base).astype(np.int32), pos[ok].astype(np.int32))

    def _near(self, segs: _Segments, base: int) -> np.ndarray:
        """Index the segments shorter than two n-grams for near-verbatim matching (`near.NearIndex`); returns the
        items (of this benchmark) that got one."""
        if not self.near_matching:
            return np.zeros(0, dtype=np.int64)
        lengths = np.asarray(segs.seg_len, dtype=np.int64)
        offsets = np.cumsum(lengths) - lengths
        flat = np.frombuffer(segs.flat, dtype=U64) if segs.flat else np.zeros(0, dtype=U64)
        content = bytes(segs.content)
        short = [i for i, (ln, n) in enumerate(zip(segs.seg_len, segs.seg_full_n)) if ln < 2 * n]
        chosen = self.near.add(
            [flat[offsets[i] : offsets[i] + lengths[i]] for i in short],
            [content[offsets[i] : offsets[i] + lengths[i]] for i in short],
            np.asarray(segs.seg_item, dtype=np.int64)[short],
            base,
            [self.min_ngram if segs.seg_first[i] else self.min_ngram + NEAR_OTHER_EXTRA for i in short],
        )
        return np.asarray(chosen, dtype=np.int64)

    def _merge(
        self,
        new_grams: list[tuple[int, np.ndarray, np.ndarray]],
        new_sub: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    ) -> None:
        """New n-gram and substring entries into the global sorted tables and their bitmaps."""
        if new_grams:
            all_h = np.concatenate([self.gram_hash] + [h for _, h, _ in new_grams])
            all_it = np.concatenate([self.gram_item] + [it.astype(np.int32) for _, _, it in new_grams])
            all_n = np.concatenate([self.gram_n] + [np.full(len(h), n, dtype=np.uint8) for n, h, _ in new_grams])
            order = np.argsort(all_h, kind="stable")
            self.gram_hash, self.gram_item, self.gram_n = all_h[order], all_it[order], all_n[order]
            self.gram_sizes = sorted(set(self.gram_sizes) | {n for n, _, _ in new_grams})
            self._filter = bitmap(self.gram_hash)
        if new_sub is not None:
            all_h = np.concatenate([self.sub_hash, new_sub[0]])
            order = np.argsort(all_h, kind="stable")
            self.sub_hash = all_h[order]
            self.sub_seg = np.concatenate([self.sub_seg, new_sub[1]])[order]
            self.sub_pos = np.concatenate([self.sub_pos, new_sub[2]])[order]
            self._sub_filter = bitmap(self.sub_hash)

    def _full_n(self, toks: list[str], text: str) -> int:
        """The n-gram size of a segment's script: cjk_ngram when half its tokens are CJK characters, else ngram."""
        cjk = CJK.search(text) is not None and sum(1 for t in toks if CJK.match(t)) * 2 >= len(toks)
        return self.cjk_ngram if cjk else self.ngram

    def _segment_n(self, toks: list[str], text: str) -> int:
        """The n a segment is cut with, 0 for none (see the module doc)."""
        n = self._full_n(toks, text)
        if len(toks) >= n:
            return n
        return len(toks) if len(toks) >= self.min_ngram else 0

    # ---- checking ----

    def check(self, text: str) -> list[Hit]:
        """Every benchmark item whose n-grams or substrings `text` contains, or one of whose short fields it holds
        with one word changed, best overlap first."""
        toks = tokens(text)
        hits = self._check_ngrams(toks)
        if self.substring_chars and len(self.sub_hash):
            hits += self._check_substrings(" ".join(toks))
        if self.near_matching and len(self.near.seed_hash) and toks:
            hits += self._check_near(toks, {(h.benchmark, h.item) for h in hits})
        hits.sort(key=lambda h: (-h.overlap, h.benchmark, h.item, h.method))
        return hits

    def _check_ngrams(self, toks: list[str]) -> list[Hit]:
        if len(toks) < self.min_ngram or not len(self.gram_hash):
            return []
        sizes = [n for n in self.gram_sizes if n <= len(toks)]
        if not sizes:
            return []
        roll = Rolling(token_hashes(toks))
        grams = np.concatenate([roll.all_windows(n) for n in sizes])
        cand = grams[may_hold(self._filter, grams)]
        if not len(cand):
            return []
        _, idx = lookup(self.gram_hash, np.unique(cand))
        found: dict[int, list[int]] = {}  # global item -> [distinct n-grams matched, largest n]
        for g, n in zip(self.gram_item[idx].tolist(), self.gram_n[idx].tolist()):
            entry = found.setdefault(g, [0, 0])
            entry[0] += 1
            entry[1] = max(entry[1], n)
        hits = []
        for g, (matched, n) in found.items():
            bi = int(self.item_bench[g])
            bench, local = self.benches[bi], g - self.item_offset[bi]
            total = int(bench.gram_total[local])
            overlap = matched / total if total else 1.0
            if overlap >= self.min_overlap:
                hits.append(Hit(bench.name, local, bench.item_ids[local], "ngram", overlap, matched, total, n))
        return hits

    def _check_substrings(self, rec: str) -> list[Hit]:
        W, K = self.substring_chars, self.window
        if len(rec) < W:
            return []
        hashes = Rolling(char_values(rec)).all_windows(K)
        candidates = may_hold(self._sub_filter, hashes)
        if not len(candidates):
            return []
        q, idx = lookup(self.sub_hash, hashes[candidates])
        if not len(q):
            return []
        r_pos = candidates[q]
        segs, q_pos = self.sub_seg[idx].astype(np.int64), self.sub_pos[idx].astype(np.int64)
        order = np.lexsort((r_pos, r_pos - q_pos, segs))
        covered: dict[int, dict[int, list[tuple[int, int]]]] = {}  # global item -> segment -> intervals
        last: tuple[int, int] | None = None
        reach = -1
        for s, r, p in zip(segs[order].tolist(), r_pos[order].tolist(), q_pos[order].tolist()):
            if (s, r - p) == last and r < reach:
                continue  # inside a match already verified on this diagonal
            seg = self.seg_text[s]
            if rec[r : r + K] != seg[p : p + K]:
                continue  # hash collision
            left = common_suffix(rec, r, seg, p)
            right = K + common_prefix(rec, r + K, seg, p + K)
            last, reach = (s, r - p), r + right
            if left + right < W:
                continue
            a, b = p - left, p + right
            item = self.seg_item[s]
            region = seg[a:b]
            if not informative(region) or self._boilerplate(region, int(self.item_bench[item])):
                continue
            covered.setdefault(item, {}).setdefault(s, []).append((a, b))
        hits = []
        for g, per_seg in covered.items():
            bi = int(self.item_bench[g])
            bench, local = self.benches[bi], g - self.item_offset[bi]
            chars = sum(union_length(iv) for iv in per_seg.values())
            total = int(bench.item_chars[local])
            overlap = chars / total if total else 1.0
            if overlap >= self.min_overlap:
                hits.append(Hit(bench.name, local, bench.item_ids[local], "substring", overlap, chars, total, W))
        return hits

    def _check_near(self, toks: list[str], already: set[tuple[str, int]]) -> list[Hit]:
        hits = []
        for g, (edits, n) in self.near.check(token_hashes(toks)).items():
            bi = int(self.item_bench[g])
            bench, local = self.benches[bi], g - self.item_offset[bi]
            overlap = (n - edits) / n
            if (bench.name, local) not in already and overlap >= self.min_overlap:
                hits.append(Hit(bench.name, local, bench.item_ids[local], "near", overlap, n - edits, n, n))
        return hits

    def _boilerplate(self, region: str, bench: int) -> bool:
        """True when every W-window of `region` (a common substring) is one of the benchmark's template windows."""
        b = self.benches[bench]
        boiler = b.boiler
        if not len(boiler):
            return False
        hashes = Rolling(char_values(region)).all_windows(self.substring_chars) >> U64(b.item_bits)
        pos = np.searchsorted(boiler, hashes).clip(max=len(boiler) - 1)
        return bool(np.all(boiler[pos] == hashes))

    # ---- reporting ----

    @property
    def nbytes(self) -> int:
        arrays: list[np.ndarray] = [
            self.item_bench,
            self.sub_hash,
            self.sub_seg,
            self.sub_pos,
            self._filter,
            self._sub_filter,
        ]
        arrays += [self.gram_hash, self.gram_item, self.gram_n]
        arrays += [a for b in self.benches for a in (b.gram_total, b.item_chars, b.boiler)]
        return sum(a.nbytes for a in arrays) + sum(len(t) for t in self.seg_text) + self.near.nbytes

    def too_short(self) -> dict[str, list[str]]:
        """Per benchmark, the ids of the items no check can reach: every field (and every question-answer pair)
        is shorter than `min_ngram` tokens and `substring_chars` characters. Reported, never silently uncheckable."""
        return {b.name: list(b.unchecked) for b in self.benches if b.unchecked}

    def describe(self) -> dict[str, Any]:
        return {
            "benchmarks": {
                b.name: {"items": len(b.item_ids), "checkable": b.checkable, "too_short_to_check": b.unchecked[:20]}
                for b in self.benches
            },
            "ngram_entries": len(self.gram_hash),
            "substring_entries": len(self.sub_hash),
            "boilerplate_dropped": dict(self.dropped),
            "bytes": self.nbytes,
        }
