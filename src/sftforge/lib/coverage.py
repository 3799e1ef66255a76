"""Coverage: which documents and sections the data reaches, and a work order that reaches all of them.

- `coverage_order`: the ranked passages reordered so every document's quota comes first: each document's best
  `min_per_doc` passages, then up to `per_1k_tokens` passages per 1,000 tokens of the document's usable text, then
  the rest of the ranking. Rank order holds within each tier, so relevance still decides who goes first.
- `sections` / `section_at`: the headings of a Markdown or reStructuredText document (plain text has none) and the
  one a character offset falls under.
- `CoverageCounter`: records per passage, gathered as records stream past (export), turned by `table` into records
  per document and per section and the passages and sections nothing was made from.
Pure: no I/O.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar

from sftforge.lib.text import tokens


class Passage(Protocol):
    """What coverage reads of a passage (`sources.chunking.Passage` has it)."""

    @property
    def chunk_id(self) -> str: ...
    @property
    def doc_id(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def text(self) -> str: ...


class SourceRef(Protocol):
    """What coverage reads of a record's source (`sample.SourceRef` has it)."""

    @property
    def kind(self) -> str: ...
    @property
    def id(self) -> str: ...
    @property
    def doc_id(self) -> str | None: ...


P = TypeVar("P", bound=Passage)


def _quota(n_tokens: int, min_per_doc: int, per_1k_tokens: float) -> int:
    return max(min_per_doc, math.ceil(per_1k_tokens * n_tokens / 1000))


def coverage_order(passages: Sequence[P], min_per_doc: int, per_1k_tokens: float) -> list[P]:
    """`passages` (best first) with each document's quota first: tier 0 its best `min_per_doc`, tier 1 up to
    its per-1k-tokens share, tier 2 the rest; rank order within a tier. Unchanged when both settings are 0."""
    if min_per_doc <= 0 and per_1k_tokens <= 0:
        return list(passages)
    doc_tokens: Counter[str] = Counter()
    for p in passages:
        doc_tokens[p.doc_id] += len(tokens(p.text))
    seen: Counter[str] = Counter()
    tiers: list[list[P]] = [[], [], []]
    for p in passages:
        k = seen[p.doc_id]
        seen[p.doc_id] += 1
        if k < min_per_doc:
            tiers[0].append(p)
        elif k < _quota(doc_tokens[p.doc_id], min_per_doc, per_1k_tokens):
            tiers[1].append(p)
        else:
            tiers[2].append(p)
    return tiers[0] + tiers[1] + tiers[2]


_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.+?)\s*#*\s*$")
_RST_RULE = re.compile(r"^([=\-~^\"'`#*+:.])\1{2,}\s*$")


def sections(text: str) -> list[tuple[int, str]]:
    """(offset, heading) of each heading, in order: Markdown `#` lines and reStructuredText titles (a line of
    text with a punctuation rule under it at least as long)."""
    out: list[tuple[int, str]] = []
    lines = text.splitlines(keepends=True)
    offset = 0
    starts = []
    for line in lines:
        starts.append(offset)
        offset += len(line)
    for i, line in enumerate(lines):
        body = line.rstrip("\r\n")
        m = _MD_HEADING.match(body)
        if m:
            out.append((starts[i], m.group(2)))
            continue
        title = body.strip()
        if (
            title
            and not _RST_RULE.match(body)
            and i + 1 < len(lines)
            and _RST_RULE.match(lines[i + 1].rstrip("\r\n"))
            and len(lines[i + 1].rstrip()) >= len(title)
        ):
            out.append((starts[i], title))
    return out


def section_at(heads: list[tuple[int, str]], offset: int) -> str:
    """The heading `offset` falls under ("(before the first heading)" or "(no headings)" otherwise)."""
    if not heads:
        return "(no headings)"
    i = bisect.bisect_right([o for o, _ in heads], offset) - 1
    return heads[i][1] if i >= 0 else "(before the first heading)"


class CoverageCounter:
    """Records per passage and per document, counted as records stream past (a record citing several passages
    counts once for each, and once per document)."""

    def __init__(self) -> None:
        self.by_chunk: Counter[str] = Counter()
        self.by_doc: Counter[str] = Counter()
        self.records = 0

    def add(self, sources: Iterable[Sequence[SourceRef]]) -> None:
        """Count records, given each record's sources."""
        for refs in sources:
            self.records += 1
            self.by_chunk.update({s.id for s in refs if s.kind == "chunk"})
            self.by_doc.update({s.doc_id for s in refs if s.kind == "chunk" and s.doc_id})

    def table(self, passages: Sequence[Passage], documents: dict[str, str], max_rows: int = 200) -> dict:
        """Records per document (every document, usable passages or not) and per section of the usable passages,
        with what nothing was made from: documents, sections and passages (counts; the uncovered sections listed,
        at most `max_rows`)."""
        docs: dict[str, dict] = {
            d: {"doc_id": d, "passages": 0, "passages_used": 0, "tokens": 0} for d in documents
        }  # a document with no usable passage is listed too: nothing can be made from it
        secs: dict[tuple[str, str], dict] = {}
        heads = {d: sections(t) for d, t in documents.items()}
        for p in passages:
            row = docs.setdefault(p.doc_id, {"doc_id": p.doc_id, "passages": 0, "passages_used": 0, "tokens": 0})
            used = self.by_chunk.get(p.chunk_id, 0)
            row["passages"] += 1
            row["passages_used"] += used > 0
            row["tokens"] += len(tokens(p.text))
            name = section_at(heads.get(p.doc_id, []), p.start)
            sec = secs.setdefault((p.doc_id, name), {"doc_id": p.doc_id, "section": name, "passages": 0, "records": 0})
            sec["passages"] += 1
            sec["records"] += used
        for row in docs.values():
            row["records"] = self.by_doc.get(row["doc_id"], 0)
        by_document = sorted(docs.values(), key=lambda r: (r["records"], r["doc_id"]))
        uncovered = [s for s in secs.values() if s["records"] == 0]
        return {
            "records": self.records,
            "documents": len(docs),
            "documents_covered": sum(r["records"] > 0 for r in docs.values()),
            "passages": len(passages),
            "passages_used": sum(r["passages_used"] for r in docs.values()),
            "sections": len(secs),
            "sections_covered": len(secs) - len(uncovered),
            "by_document": by_document[:max_rows],
            "uncovered_sections": uncovered[:max_rows],
        }
