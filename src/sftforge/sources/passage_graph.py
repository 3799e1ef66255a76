"""The passage graph that corpus walks (task multi_doc_qa) walk: passages linked to their BM25 nearest passages and
to passages that share a rare named entity.

It is a `KnowledgeGraph` (entities are passage indices; relations `similar` and `shares_entity`), so the KG walk
strategies (uniform, restart, node2vec, inverse degree) walk it unchanged. Which entity two passages share is kept
beside it: a walk step along a shared entity becomes a bridge question about that entity.

Named entities are found without a tagger, which would be a model download: in English, runs of capitalised
words (not a lone capitalised word that starts a sentence) and acronyms with numbers ("PEP 8"); in Chinese,
titles in 《》 and quoted terms, and Latin-script names. An entity links passages only when it is rare (in at
most `max(3, 5%)` of the passages): "Python" in a corpus of PEPs links everything and so says nothing.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sftforge.errors import SourceError
from sftforge.kg import KnowledgeGraph
from sftforge.sources.retrieval import bm25_neighbours

SIMILAR = "similar"
SHARES_ENTITY = "shares_entity"

_EN_ENTITY = re.compile(
    r"\b[A-Z]{2,}[ -]?\d+\b"  # PEP 8, ISO-8601
    r"|\b[A-Z][\w'’.-]*[\w](?:\s+(?:of|the|de|du|von|van|der|and|for|on)?\s*[A-Z][\w'’-]*[\w])*"
)
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|\n\s*)$")
_EN_COMMON = frozenset(
    "the a an this that these those it its there then when where what which who why how if in on at for and but or "
    "not no yes as by with from to of we you they he she i our your their his her my note see also however "
    "example examples for each all some any many most other such".split()
)
_ZH_ENTITY = re.compile(
    r"《([^》]{1,30})》|“([^”]{2,20})”|「([^」]{2,20})」|\b([A-Z][A-Za-z]{2,}(?:\s[A-Z][A-Za-z]+)*)\b"
)


def named_entities(text: str, lang: str) -> set[str]:
    """Candidate named entities of a passage, lowercased (see the module docstring for the rules)."""
    out: set[str] = set()
    if lang == "zh":
        for m in _ZH_ENTITY.finditer(text):
            out.add(next(g for g in m.groups() if g).strip().lower())
        return out
    for m in _EN_ENTITY.finditer(text):
        name = m.group(0).rstrip(".")
        words = name.split()
        if len(words) == 1:
            if name.lower() in _EN_COMMON or len(name) < 3:
                continue
            if _SENTENCE_START.search(text[max(0, m.start() - 3) : m.start()]) and not name.isupper():
                continue  # a capitalised word that only starts a sentence
        while words and words[0].lower() in _EN_COMMON:  # "The Rhine" -> "Rhine"
            words = words[1:]
        if words and not (len(words) == 1 and words[0].lower() in _EN_COMMON):
            out.add(" ".join(words).lower())
    return out


@dataclass(slots=True)
class PassageGraph:
    """Passages as a walkable graph, and the entity behind each shared-entity link."""

    graph: KnowledgeGraph  # entity names are passage indices ("0", "1", ...); unlinked passages are absent
    shared: dict[tuple[int, int], str]  # (a, b) -> an entity both mention (both orders)
    similar_links: int
    entity_links: int

    def entity_between(self, a: int, b: int) -> str | None:
        return self.shared.get((a, b))


def build_passage_graph(
    texts: Sequence[str],
    doc_ids: Sequence[str],
    lang: str,
    *,
    neighbours: int = 4,
    link_entities: bool = True,
    cross_document: bool = True,
) -> PassageGraph:
    """Link each passage to its `neighbours` nearest passages by BM25 and (with `link_entities`) to every passage
    sharing a rare named entity; with `cross_document`, only passages of different documents are linked."""
    n = len(texts)
    triples: set[tuple[str, str, str]] = set()

    def allowed(a: int, b: int) -> bool:
        return a != b and (not cross_document or doc_ids[a] != doc_ids[b])

    # Ask for more neighbours than needed when only other documents count: a passage's nearest are often its own.
    want = neighbours * (4 if cross_document else 1)
    for a, row in enumerate(bm25_neighbours(list(texts), lang, want)):
        kept = [b for b, _ in row if allowed(a, b)][:neighbours]
        for b in kept:
            triples.add((str(min(a, b)), SIMILAR, str(max(a, b))))
    similar = len(triples)
    shared: dict[tuple[int, int], str] = {}
    if link_entities and n > 1:
        where: dict[str, list[int]] = defaultdict(list)
        for i, text in enumerate(texts):
            for name in named_entities(text, lang):
                where[name].append(i)
        max_df = max(3, int(0.05 * n))
        for name in sorted(where):
            found = where[name]
            if not 2 <= len(found) <= max_df:
                continue
            for i, a in enumerate(found):
                for b in found[i + 1 :]:
                    if allowed(a, b) and (a, b) not in shared:
                        shared[(a, b)] = shared[(b, a)] = name
                        triples.add((str(a), SHARES_ENTITY, str(b)))
    if not triples:
        raise SourceError(
            f"corpus walks: none of the {n} passages is linked to another"
            + (
                " of a different document: add documents, or set walks.cross_document: false"
                if cross_document
                else ": add documents"
            )
        )
    return PassageGraph(KnowledgeGraph.from_triples(sorted(triples)), shared, similar, len(triples) - similar)
