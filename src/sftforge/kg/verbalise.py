"""Relation paths to questions and statements, through the relation lexicon (`kg.lexicon`).

A relation path from a topic entity asks for the entities it reaches. Each hop reads through its relation's
wording: the hops before the last become nested phrases ("the countries located in Europe"), the last hop the
question about them ("What are the neighbors of the countries located in Europe?"). The words that must agree
(is/are, its/their, the lead "Which countries" or "Who") are chosen from the number of entities each hop
reaches and what those entities are (`kg.classes`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sftforge.kg.classes import UNKNOWN, EntityClass
from sftforge.kg.lexicon import Lexicon, LexiconError, Wording, base_language, fill, split_inverse
from sftforge.kg.words import article

Override = str | Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Subject:
    """What a hop is about: a name or a nested phrase, and whether it stands for several entities."""

    text: str
    plural: bool = False


@dataclass(frozen=True, slots=True)
class Hop:
    """One relation of a path (`name` or `name^-1`), whether it reaches several entities, and what they are."""

    relation: str
    plural: bool = False
    reaches: EntityClass = UNKNOWN


class Unworded(LexiconError):
    """A relation the lexicon has no wording for (its entry says `skip`)."""


def _mentions(words: str, noun: tuple[str, str] | None) -> bool:
    return noun is not None and bool({noun[0], noun[1]} & set(words.split()))


def _slots_en(entry: Wording, subject: Subject, hop: Hop, form: str, inverse: bool) -> dict[str, str]:
    cls = hop.reaches
    many = hop.plural
    if cls.person or (cls is UNKNOWN and entry.shape == "verb_by" and not inverse):  # who wrote it, whoever it was
        wh, lead_plural = "Who", False
    elif cls.en is not None and not _mentions(entry.words, cls.en):
        wh, lead_plural = f"Which {cls.en[1] if many else cls.en[0]}", many
    else:
        wh, lead_plural = "What", False
    if form == "phrase":
        lead_plural = many
    if cls.en is not None:
        ones = cls.en[1] if many else cls.en[0]
    else:
        ones = "entities" if many else "entity"
    noun = entry.noun or ("", "")
    return {
        "x": subject.text,
        "x_be": "are" if subject.plural else "is",
        "x_have": "have" if subject.plural else "has",
        "x_its": "their" if subject.plural else "its",
        "wh": wh,
        "be": "are" if lead_plural else "is",
        "have": "have" if lead_plural else "has",
        "was": "were" if lead_plural else "was",
        "its": "their" if (lead_plural or cls.person) else "its",
        "that": "who" if cls.person else "that",
        "are": "are" if many else "is",
        "ones": ones,
        "noun": noun[1] if many else noun[0],
        "noun1": noun[0],
    }


def _slots_zh(entry: Wording, subject: Subject, hop: Hop) -> dict[str, str]:
    cls = hop.reaches
    which = "哪些" if hop.plural else "哪个"
    ones = cls.zh or ("人" if cls.person else "实体")
    if cls.person:
        wh = "谁"
    elif cls.zh and cls.zh not in entry.words:  # not "的俱乐部是哪个俱乐部"
        wh = which + cls.zh
    else:
        wh = "什么"
    return {"x": subject.text, "wh": wh, "which": which + ones, "ones": ones}


def relation_form(
    relation: str,
    subject: Subject,
    lexicon: Lexicon,
    *,
    form: str = "question",
    hop: Hop | None = None,
) -> str:
    """The question or phrase (`form`) for one relation applied to `subject`."""
    entry = lexicon.get(relation)
    if entry.skip:
        raise Unworded(f"relation {entry.relation!r} has no wording ({entry.skip})")
    _, inverse = split_inverse(relation)
    hop = hop or Hop(relation)
    slots = _slots_zh(entry, subject, hop) if lexicon.lang == "zh" else _slots_en(entry, subject, hop, form, inverse)
    return fill(entry.templates(inverse)[form], slots)


def question(hops: Sequence[Hop], topic: str, lexicon: Lexicon, *, other_than: str | None = None) -> str:
    """The question for a relation path from `topic` (its display name). `other_than`: a name the answers
    leave out ("..., other than France?"), for paths whose answer set would hold the topic itself."""
    if not hops:
        raise ValueError("a relation path needs at least one relation")
    subject = Subject(topic)
    for hop in hops[:-1]:
        subject = Subject(relation_form(hop.relation, subject, lexicon, form="phrase", hop=hop), hop.plural)
    last = hops[-1]
    entry = lexicon.get(last.relation)
    one = entry.templates(split_inverse(last.relation)[1]).get("question_one")
    if len(hops) == 1 and one and not entry.skip:  # asked of a single name: the LLM's (or the user's) own question
        text = fill(one, {"x": topic})
    else:
        text = relation_form(last.relation, subject, lexicon, form="question", hop=last)
    if other_than is not None:
        if lexicon.lang == "zh":
            text = f"除{other_than}以外，{text}"
        else:
            text = f"{text.rstrip('?')}, other than {other_than}?"
    return text[:1].upper() + text[1:]


def make_lexicon(lang: str, overrides: Mapping[str, Override] | None = None) -> Lexicon:
    """A lexicon derived by the rules, with the recipe's overrides applied."""
    lexicon = Lexicon(base_language(lang), {})
    lexicon.apply(overrides)
    return lexicon


def verbalise(
    relations: Sequence[str],
    topic: str,
    *,
    lang: str = "en",
    overrides: Mapping[str, Override] | None = None,
    plural: Sequence[bool] | None = None,
    answer_noun: str | None = None,
    lexicon: Lexicon | None = None,
) -> str:
    """The question for a relation path from `topic`, without a graph: `plural[i]` says whether hop i reaches
    more than one entity (the last entry is the answer set); `answer_noun` what the answers are ("country")."""
    from sftforge.kg.words import plural as plural_of

    lexicon = lexicon or make_lexicon(lang, overrides)
    many = list(plural) if plural is not None else [False] * len(relations)
    hops = [Hop(r, p) for r, p in zip(relations, many)]
    if answer_noun:
        noun = EntityClass((answer_noun, plural_of(answer_noun)), answer_noun)
        hops[-1] = Hop(hops[-1].relation, hops[-1].plural, noun)
    return question(hops, topic, lexicon)


def statement(
    relation: str,
    head: str,
    tail: str,
    *,
    lang: str = "en",
    overrides: Mapping[str, Override] | None = None,
    several: bool = False,
    lexicon: Lexicon | None = None,
) -> str:
    """One triple as a sentence: "France is located in Western Europe.". `several`: the head has more than one
    tail for this relation, so a noun relation reads "Spain is a neighbor of France", not "the"."""
    lexicon = lexicon or make_lexicon(lang, overrides)
    base, inverse = split_inverse(relation)
    if inverse:  # statements are about the stored triple
        head, tail = tail, head
    entry = lexicon.get(base)
    if entry.skip:
        raise Unworded(f"relation {entry.relation!r} has no wording ({entry.skip})")
    template = entry.statement_several if (several and entry.statement_several) else entry.statement
    text = fill(template, {"h": head, "t": tail, "a_t": article(tail) if lexicon.lang != "zh" else ""})
    # a sentence that starts with a name keeps the name as written ("world war ii is a tag of ...")
    return text if template.startswith("{") else text[:1].upper() + text[1:]


def join_names(names: Sequence[str], lang: str = "en") -> str:
    """ "A, B and C" (English) or "A、B和C" (Chinese)."""
    names = list(names)
    if lang.split("-")[0] == "zh":
        return names[0] if len(names) == 1 else "、".join(names[:-1]) + "和" + names[-1]
    if len(names) <= 2:
        return " and ".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]
