"""What a set of entities is, as a noun a question can use: "Which countries ...", "Who ...", "哪些俱乐部".

In order of trust:
1. the graph's types: the one type every entity has through its "is a" relation;
2. people: every entity is the head of a relation only people have (birth place, spouse, alma mater, ...) or
   the tail of one whose tails are people (directed by, father, starring, ...);
3. places: every entity is the tail of a locative verb relation (what X is located in, born in, based in);
4. the relation signature: every entity is a tail of one relation whose noun names a class, not a role (the
   tails of `clubs` are clubs, of `birthPlace` places). A relation whose heads and tails overlap (neighbor,
   predecessor, father) names a role between peers, not a class, and is not used; nor is one with under 20
   distinct tails or a rare or vague head word. Among the relations that fit, the one with the most edges
   into the entities is the most characteristic (Iran is reached by `country` more than by `ground`);
5. otherwise nothing is known, and the question says "What" and a phrase "the entities".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from sftforge.kg.graph import KnowledgeGraph
from sftforge.kg.lexicon import Lexicon, Wording
from sftforge.kg.words import has_cjk, plural, singular, translate, zipf_en

# words of relations that only people are the head of, and of relations whose tails are people
_PERSON_HEAD = frozenset(
    "birth born death died spouse wife husband father mother parents alma mater nationality occupation "
    "education almamater".split()
)
# nouns for people (the head word of a noun relation: `starred actors`, `prime minister`) and verbs whose
# agent is a person (`directed by`, `written by`, `starring`)
_PERSON_NOUNS = frozenset(
    "father mother spouse wife husband parent parents child children son daughter president director writer "
    "actor actress artist author producer composer monarch deputy commander leader minister chancellor governor "
    "mayor coach manager king queen founder member player".split()
)
_PERSON_VERBS = frozenset("directed written produced composed founded starring starred performed sung".split())
_PERSON_CJK = ("父亲", "母亲", "配偶", "主演", "导演", "導演", "作者", "总统", "總統", "领导人", "領導人")


def _names_people(entry: Wording) -> bool:
    """Whether the tails of a relation are people, by its wording's head word."""
    words = entry.words.lower().split()
    if not words or entry.skip:
        return False
    if any(w in entry.words for w in _PERSON_CJK):
        return True
    if entry.shape == "noun":
        head = words[words.index("of") - 1] if "of" in words[1:] else words[-1]
        return singular(head) in _PERSON_NOUNS
    return entry.shape in ("verb_by", "verb") and words[0] in _PERSON_VERBS


_VAGUE = frozenset("name title label type kind thing item other related status note image caption".split())
_SAMPLE = 64  # entities looked at per set


@dataclass(frozen=True, slots=True)
class EntityClass:
    """The noun for a set of entities: English singular and plural, Chinese, and whether they are people."""

    en: tuple[str, str] | None = None
    zh: str | None = None
    person: bool = False


UNKNOWN = EntityClass()
PEOPLE = EntityClass(("person", "people"), "人", True)
PLACES = EntityClass(("place", "places"), "地方")
# a locative verb with "in"/"at" takes a place: what X is located in, born in, based in is a place
_LOCATIVE = frozenset("located situated based born died lives lived headquartered buried".split())


class _RelationFacts:
    """Per forward relation: the class its tails are (None: not a class range), whether its tails are people,
    whether only people are its heads, whether its tails are places."""

    def __init__(self, count: int) -> None:
        self.classes: list[EntityClass | None] = [None] * count
        self.person_tail = np.zeros(count, dtype=bool)
        self.person_head = np.zeros(count, dtype=bool)
        self.locative = np.zeros(count, dtype=bool)


class ClassNamer:
    """Names sets of entities of one graph; the per-relation facts are computed once."""

    def __init__(self, graph: KnowledgeGraph, lexicon: Lexicon, answer_noun: str | None = None) -> None:
        self.graph = graph
        self.lexicon = lexicon
        # the evidence (shapes, head words) is read from the English wording of the relation names, whatever
        # the question's language; a Chinese relation name reads as itself
        self.evidence = lexicon if lexicon.lang == "en" else Lexicon("en", {})
        self.fixed = EntityClass((singular(answer_noun), plural(answer_noun)), answer_noun) if answer_noun else None
        self.type_relation = graph.type_relation()

    @cached_property
    def _facts(self) -> _RelationFacts:
        """What each forward relation says about its heads and tails, in one pass over the graph."""
        g = self.graph
        n, r_count = g.num_entities, g.num_relations
        heads = np.repeat(np.arange(n, dtype=np.int64), np.diff(g.indptr))
        fwd = g.rels < r_count
        rel, h, t = g.rels[fwd].astype(np.int64), heads[fwd], g.indices[fwd].astype(np.int64)
        facts = _RelationFacts(r_count)
        order = np.argsort(rel, kind="stable")
        cuts = np.searchsorted(rel[order], np.arange(r_count + 1))
        for r in range(r_count):
            label = g.relation_label(r)
            entry = self.evidence.get(label)
            words = entry.words.lower().split()
            facts.person_tail[r] = _names_people(entry)
            facts.person_head[r] = bool((set(words) | {label.lower()}) & _PERSON_HEAD) or "出生" in entry.words
            facts.locative[r] = (
                entry.shape == "verb_prep" and len(words) >= 2 and words[-1] in ("in", "at") and words[-2] in _LOCATIVE
            )
            idx = order[cuts[r] : cuts[r + 1]]
            hs, ts = np.unique(h[idx]), np.unique(t[idx])
            overlap = len(np.intersect1d(hs, ts, assume_unique=True))
            if entry.skip or entry.shape != "noun" or overlap > 0.05 * min(len(hs), len(ts)) or len(ts) < 20:
                continue
            facts.classes[r] = self._noun_class(entry.words, entry.noun)
        return facts

    def _noun_class(self, words: str, noun: tuple[str, str] | None) -> EntityClass | None:
        """The class a relation's noun names: its head word (`birth place` -> place, `country of birth` ->
        country); Chinese relation names as they are."""
        if has_cjk(words):
            return EntityClass(None, words)
        w = (noun[0] if noun else words).split()
        head = singular(w[w.index("of") - 1] if "of" in w[1:] else w[-1])
        if zipf_en(head) < 3.5 or head in _VAGUE:  # a rare word ("campus") or no class at all ("name")
            return None
        return EntityClass((head, plural(head)), translate([head]))

    def of(self, entities: np.ndarray) -> EntityClass:
        """The class of a set of entities (see the module's docstring for the order of evidence)."""
        if self.fixed is not None:
            return self.fixed
        if not len(entities):
            return UNKNOWN
        sample = entities[:: max(1, len(entities) // _SAMPLE)][:_SAMPLE]
        g = self.graph
        typed = self._typed(sample)
        if typed is not None:
            return typed
        r_count = g.num_relations
        incoming: set[int] | None = None
        outgoing: set[int] | None = None
        uses = np.zeros(r_count, dtype=np.int64)  # edges of each relation into the sample
        for e in sample.tolist():
            rels = g.rels[g.indptr[e] : g.indptr[e + 1]]
            out_rels = set(rels[rels < r_count].tolist())
            back = rels[rels >= r_count].astype(np.int64) - r_count
            np.add.at(uses, back, 1)
            in_rels = set(back.tolist())
            incoming = in_rels if incoming is None else incoming & in_rels
            outgoing = out_rels if outgoing is None else outgoing & out_rels
        incoming, outgoing = incoming or set(), outgoing or set()
        facts = self._facts
        if any(facts.person_head[r] for r in outgoing) or any(facts.person_tail[r] for r in incoming):
            return PEOPLE
        if any(facts.locative[r] for r in incoming):
            return PLACES
        fits = [r for r in incoming if facts.classes[r] is not None]
        if fits:
            best = max(fits, key=lambda r: (uses[r], -r))  # the relation that most often points at them
            return facts.classes[best] or UNKNOWN
        return UNKNOWN

    def _typed(self, sample: np.ndarray) -> EntityClass | None:
        r = self.type_relation
        if r is None:
            return None
        common: set[int] | None = None
        for e in sample.tolist():
            types = set(self.graph.tails(e, r).tolist())
            common = types if common is None else common & types
            if not common:
                return None
        if not common or len(common) != 1:
            return None
        name = self.graph.name(next(iter(common)))
        if self.lexicon.lang == "zh":
            return EntityClass(None, name)
        one = singular(name.lower())
        return EntityClass((one, plural(one)), translate([one]))
