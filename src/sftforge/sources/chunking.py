"""Split documents into passages of at most N model tokens, on paragraph boundaries, with overlap.

Every chunk is a character span of its document (`doc.text[start:end] == chunk.text`), so records can point
back at the exact passage they came from. Paragraphs are kept whole where they fit; a longer paragraph is split
at sentence ends, and a longer sentence at word (or, for CJK, character) boundaries.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sftforge.sources.readers import Document

_PARA_BREAK = re.compile(r"\n[ \t]*\n\s*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？；])|\n")
_WORD_GAP = re.compile(r"\s+")

CountTokens = Callable[[str], int]


@dataclass(slots=True)
class Chunk:
    id: str
    doc_id: str
    index: int
    start: int
    end: int
    text: str
    n_tokens: int


@dataclass(frozen=True, slots=True)
class Passage:
    """A usable chunk as generators see it: its ids, its offsets in the document, its text."""

    chunk_id: str
    doc_id: str
    start: int
    end: int
    text: str
    page: int | None = None  # a PDF's page (1-based) where it starts


def _spans(text: str, start: int, end: int, splitter: re.Pattern[str]) -> list[tuple[int, int]]:
    """Non-empty, whitespace-trimmed sub-spans of text[start:end] separated by `splitter`."""
    out: list[tuple[int, int]] = []
    pos = start
    for m in splitter.finditer(text, start, end):
        out.append((pos, m.start()))
        pos = m.end()
    out.append((pos, end))
    trimmed = []
    for s, e in out:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e:
            trimmed.append((s, e))
    return trimmed


def _split_long(text: str, start: int, end: int, max_tokens: int, count: CountTokens) -> list[tuple[int, int]]:
    """Split a span with no usable sentence break into pieces of at most max_tokens, at word or CJK char gaps."""
    cuts = [m.end() for m in _WORD_GAP.finditer(text, start, end)]
    if len(cuts) < 8:  # CJK or one enormous word: any character boundary is a gap
        cuts = list(range(start + 1, end))
    cuts.append(end)
    pieces: list[tuple[int, int]] = []
    s = start
    while s < end:
        candidates = [c for c in cuts if c > s]
        lo, hi, best = 0, len(candidates) - 1, candidates[0]
        while lo <= hi:  # furthest cut whose piece fits
            mid = (lo + hi) // 2
            if count(text[s : candidates[mid]]) <= max_tokens:
                best, lo = candidates[mid], mid + 1
            else:
                hi = mid - 1
        pieces.extend(_spans(text, s, best, re.compile(r"(?!)")))
        s = best
    return pieces


def units(text: str, max_tokens: int, count: CountTokens) -> list[tuple[int, int, int]]:
    """(start, end, tokens) of paragraphs, or of sentences/pieces of paragraphs too long to keep whole."""
    out: list[tuple[int, int, int]] = []
    for ps, pe in _spans(text, 0, len(text), _PARA_BREAK):
        n = count(text[ps:pe])
        if n <= max_tokens:
            out.append((ps, pe, n))
            continue
        for ss, se in _spans(text, ps, pe, _SENTENCE_END):
            n = count(text[ss:se])
            if n <= max_tokens:
                out.append((ss, se, n))
            else:
                out.extend((a, b, count(text[a:b])) for a, b in _split_long(text, ss, se, max_tokens, count))
    return out


def chunk_document(doc: Document, max_tokens: int, overlap_tokens: int, count: CountTokens) -> Iterator[Chunk]:
    """Greedily pack units into chunks of at most max_tokens; each chunk after the first repeats trailing units of
    the previous one worth at most overlap_tokens."""
    text = doc.text
    us = units(text, max_tokens, count)
    i, index = 0, 0
    while i < len(us):
        j, total = i, 0
        while j < len(us):
            if j == i:
                total = us[j][2]
            else:
                estimate = total + us[j][2] + 1
                if estimate > max_tokens:
                    break
                if estimate > 0.9 * max_tokens:  # near the limit: count the joined span exactly
                    estimate = count(text[us[i][0] : us[j][1]])
                    if estimate > max_tokens:
                        break
                total = estimate
            j += 1
        start, end = us[i][0], us[j - 1][1]
        yield Chunk(
            id=f"{doc.id}#{index}",
            doc_id=doc.id,
            index=index,
            start=start,
            end=end,
            text=text[start:end],
            n_tokens=count(text[start:end]),
        )
        index += 1
        if j >= len(us):
            break
        # Overlap: step back over trailing units worth at most overlap_tokens, always moving forward,
        # and keeping room for at least the next unit.
        k, back = j, 0
        while k - 1 > i and back + us[k - 1][2] <= overlap_tokens and back + us[k - 1][2] + us[j][2] < max_tokens:
            k -= 1
            back += us[k][2]
        i = k
