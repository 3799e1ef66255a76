"""`sftforge audiences`: the model proposes audiences from the corpus, for the user to edit into task.audiences.

For each of the best-ranked passages (spread over the documents) the model names one kind of reader and their
level (`propose_audience.j2`); distinct readers become `Audience` entries, written as YAML the user edits and
pastes under `task:`. The step writes a file, never the recipe: what the data is written for stays the user's
decision.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from sftforge.config import Audience
from sftforge.generate.base import TemplateStep, WorkItem, chat_from_template
from sftforge.generate.parsing import ParseError, check_language, first_line, parse_fields, strip_quotes
from sftforge.lib.text import tokens
from sftforge.sources.chunking import Passage

PROPOSAL_LABELS: dict[str, tuple[str, ...]] = {"reader": ("reader", "读者"), "level": ("level", "水平")}
EXPERTISE = {"beginner": "beginner", "入门": "beginner", "intermediate": "intermediate", "中级": "intermediate"}
EXPERTISE |= {"expert": "expert", "专家": "expert"}


class ProposeAudienceStep(TemplateStep):
    """One passage in, one reader out: (description, expertise or None)."""

    stop = ("\n\n",)
    max_tokens = 48

    def __init__(self, lang: str) -> None:
        super().__init__("audiences", lang, "propose_audience")
        example = self._template.render_block("example_assistant")
        self._example = first_line(parse_fields(example, PROPOSAL_LABELS).get("reader", ""))

    def prompt(self, item: WorkItem) -> list[dict[str, str]]:
        return chat_from_template(self._template, passage=item.payload.text)

    def parse(self, item: WorkItem, output: str) -> tuple[str, str | None]:
        prefix = "Reader:" if self.lang == "en" else "读者："
        fields = parse_fields(prefix + output, PROPOSAL_LABELS)
        reader = strip_quotes(first_line(fields.get("reader", ""))).rstrip(".。")
        if not 3 <= len(reader) <= (40 if self.lang == "zh" else 120) or "\ufffd" in reader:
            raise ParseError("no reader of sensible length")
        if any(label in reader.lower() for names in PROPOSAL_LABELS.values() for label in names):
            raise ParseError("the reader echoes the prompt's labels")
        check_language(reader, self.lang)
        if reader.lower() == self._example.lower():
            raise ParseError("the reader is the worked example's")
        level = first_line(fields.get("level", "")).strip().lower().rstrip(".。")
        return reader, EXPERTISE.get(level)


def spread_over_documents(passages: list[Passage], n: int) -> list[Passage]:
    """The best-ranked passage of each document in turn, then each one's second best, ..., `n` in all."""
    by_doc: dict[str, list[Passage]] = {}
    for p in passages:
        by_doc.setdefault(p.doc_id, []).append(p)
    out: list[Passage] = []
    depth = 0
    while len(out) < n and any(len(ps) > depth for ps in by_doc.values()):
        out.extend(ps[depth] for ps in by_doc.values() if len(ps) > depth)
        depth += 1
    return out[:n]


_FILLER = {"the", "and", "who", "whom", "with", "for", "that", "wants", "want", "wanted", "their", "about", "new"}


def _name(description: str, taken: set[str]) -> str:
    """A short unique id from the description's first content words (`reader` when it has none in ASCII)."""
    words = [w for w in tokens(description) if w.isascii() and len(w) > 2 and w not in _FILLER][:2]
    base = "-".join(words) or "reader"
    name, k = base, 2
    while name in taken:
        name, k = f"{base}-{k}", k + 1
    return name


def propose_audiences(
    passages: list[Passage], count: int, ask: Callable[[list[WorkItem]], list], lang: str
) -> tuple[list[Audience], Counter[str]]:
    """Up to `count` distinct readers the model names for the passages (asked over 3x as many passages, spread
    over the documents), the most often named first; and the failures by reason."""
    chosen = spread_over_documents(passages, 3 * count)
    answers = ask([WorkItem(f"audience:{p.chunk_id}", p) for p in chosen])
    named: Counter[tuple[str, str | None]] = Counter()
    failed: Counter[str] = Counter()
    for a in answers:
        if a.ok:
            named[(a.value[0], a.value[1])] += 1
        else:
            failed[re.sub(r"\s+", " ", a.error or "")] += 1
    seen: set[str] = set()
    taken: set[str] = set()
    audiences: list[Audience] = []
    for (reader, expertise), _ in named.most_common():
        key = reader.lower()
        if key in seen:
            continue
        seen.add(key)
        name = _name(reader, taken)
        taken.add(name)
        audiences.append(Audience(name=name, description=reader, expertise=expertise))
        if len(audiences) == count:
            break
    return audiences, failed
