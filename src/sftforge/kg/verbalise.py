"""Relation paths to questions, noun phrases and statements, derived from relation names.

A relation path from a topic entity asks for the entities it reaches. Each relation reads three ways:
- question: asks for what the relation reaches from {x} ("What are the neighbors of {x}?");
- phrase: names what it reaches from {x}, to nest inside the next hop ("the neighbors of {x}");
- statement: one triple as a sentence, for the reasoning chain ("{h} is located in {t}.").
A 2-hop question is the last relation's question about the first relation's phrase: "What are the neighbors of
the entities located in Europe?" is the question of "neighbor" about the phrase of "locatedin^-1" from Europe.

Forms are derived from the relation's name: snake_case, camelCase and URIs are split into words and glued words
like `locatedin` or `bornin` are split before a trailing preposition. Names sort into five shapes: "is a" type
relations, role nouns with "of" ("capital of", "part of"), verb phrases ending in a preposition ("located in",
"directed by"), past participles ("directed") and nouns ("capital", "neighbor", "has capital" -> "capital").
Anything derived can be overridden per relation and language: a string is a question template with {x}; a dict
may give `question`, `phrase` (both with {x}), `statement` (with {h} and {t}) and `words` (the relation's words
in that language, used by the derived templates, e.g. {"locatedin": {"words": "所在地区"}} for Chinese; a
relation's words serve its inverse too). Inverse relations are keyed `name^-1` (or `inverse of name`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sftforge.kg.graph import INVERSE_PREFIX, INVERSE_SUFFIX, local_name

Override = str | Mapping[str, str]

_PREPOSITIONS = ("into", "from", "with", "in", "of", "on", "at", "by", "to", "for", "as")
# Stems that read as words before a glued preposition even without "-ed" (bornin -> born in).
_STEMS = frozenset(
    "born part member capital citizen head leader author child parent son daughter spouse friend native "
    "instance subclass type kind located based lives works died plays".split()
)
_TYPE_WORDS = {"is a", "isa", "is an", "type", "instance of", "rdf type", "p31"}


def split_words(name: str) -> list[str]:
    """Words of a relation name: `locatedIn`, `located_in`, `locatedin`, `http://x/ns#locatedIn` -> located, in."""
    text = local_name(name)
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", text)
    words = [w.lower() for w in re.split(r"[\s_\-.:/]+", text) if w]
    out: list[str] = []
    for w in words:
        if w in ("isa", "isan"):
            out += ["is", w[2:]]
            continue
        if w.startswith("has") and len(w) >= 7:
            out.append("has")
            w = w[3:]
        for prep in _PREPOSITIONS:
            stem = w[: -len(prep)]
            if w.endswith(prep) and len(stem) >= 3 and (stem.endswith("ed") or stem in _STEMS):
                out += [stem, prep]
                break
        else:
            out.append(w)
    return out


def _plural(noun: str) -> str:
    words = noun.split(" ")
    last = words[-1]
    if re.search(r"[^aeiou]y$", last):
        last = last[:-1] + "ies"
    elif re.search(r"(s|x|z|ch|sh)$", last):
        last += "es"
    else:
        last += "s"
    return " ".join(words[:-1] + [last])


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


# "X is part of Y" takes no article, "X is a member of Y" the indefinite one, others "X is the capital of Y".
_NO_ARTICLE = frozenset("part".split())
_INDEFINITE = frozenset("member subclass instance citizen native child son daughter friend neighbor neighbour".split())


def _with_article(noun: str, plural: bool = False) -> str:
    """The role noun of a "noun of" relation with its article: "the capital", "a member", "part"; plural
    "capitals", "members", "part"."""
    last = noun.split(" ")[-1]
    if last in _NO_ARTICLE:
        return noun
    if plural:
        return _plural(noun)
    return f"{_article(noun)} {noun}" if last in _INDEFINITE else f"the {noun}"


def _split_inverse(relation: str) -> tuple[str, bool]:
    if relation.endswith(INVERSE_SUFFIX):
        return relation[: -len(INVERSE_SUFFIX)], True
    if relation.startswith(INVERSE_PREFIX):
        return relation[len(INVERSE_PREFIX) :], True
    return relation, False


def _override(overrides: Mapping[str, Override] | None, base: str, inverse: bool) -> Mapping[str, str]:
    if not overrides:
        return {}
    keys = [base + INVERSE_SUFFIX, INVERSE_PREFIX + base] if inverse else [base]
    keys += [local_name(k) for k in keys]
    for key in keys:
        if key in overrides:
            value = overrides[key]
            return {"question": value} if isinstance(value, str) else value
    return {}


@dataclass(frozen=True, slots=True)
class Subject:
    """What a hop is about: a name or a nested phrase, and whether it stands for several entities."""

    text: str
    plural: bool = False


def _shape(words: list[str]) -> tuple[str, str]:
    """(shape, words) for English: type | noun_of | prep | participle | noun."""
    joined = " ".join(words)
    if joined in _TYPE_WORDS:
        return "type", joined
    if words and words[0] in ("is", "was", "are") and len(words) > 1:
        words = words[1:]
    if words and words[0] in ("has", "have") and len(words) > 1:
        return "noun", " ".join(words[1:])
    if len(words) >= 2 and words[-1] == "of" and not words[-2].endswith("ed"):
        return "noun_of", " ".join(words[:-1])  # capital of, part of, member of
    if len(words) >= 2 and words[-1] in _PREPOSITIONS:
        return "prep", " ".join(words)
    if len(words) == 1 and words[0].endswith("ed") and len(words[0]) > 4:
        return "participle", words[0]
    return "noun", " ".join(words)


def _english(relation: str, subject: Subject, plural_answer: bool, noun: str | None, form: str) -> str:
    """One English form ("question" or "phrase") of a relation about `subject`."""
    base, inverse = _split_inverse(relation)
    shape, words = _shape(split_words(base))
    x, be = subject.text, ("are" if subject.plural else "is")
    ent = noun or "entity"
    ents = _plural(ent) if plural_answer else ent
    which = f"Which {ents}" if (noun or inverse or shape in ("noun_of", "prep", "participle")) else "What"
    the_ents = f"the {ents}"
    if shape == "type":
        if not inverse:
            return f"What type of entity {be} {x}?" if form == "question" else f"the type of {x}"
        return f"Which {_plural(ent)} are of type {x}?" if form == "question" else f"the {_plural(ent)} of type {x}"
    if shape == "noun_of":  # h capital-of t: h is the capital of t
        if not inverse:
            role = _with_article(words)
            return f"{which} {be} {x} {role} of?" if form == "question" else f"{the_ents} that {x} {be} {role} of"
        verb = "are" if plural_answer else "is"
        role = _with_article(words, plural_answer)
        return f"{which} {verb} {role} of {x}?" if form == "question" else f"{the_ents} that {verb} {role} of {x}"
    if shape == "prep":
        if not inverse:  # h located-in t: what is x located in?
            if form == "question":
                return f"{which} {be} {x} {words}?"
            return f"{the_ents} that {x} {be} {words}"
        verb = "are" if plural_answer else "is"
        return f"{which} {verb} {words} {x}?" if form == "question" else f"{the_ents} {words} {x}"
    if shape == "participle":
        have = "have" if subject.plural else "has"
        if not inverse:  # h directed t: what has x directed?
            return f"{which} {have} {x} {words}?" if form == "question" else f"{the_ents} that {x} {words}"
        return f"{which} {words} {x}?" if form == "question" else f"{the_ents} that {words} {x}"
    # noun: h capital t means t is the capital of h
    if not inverse:
        nouns = _plural(words) if plural_answer else words
        if form == "question":
            lead = (
                f"Which {_plural(ent) if plural_answer else ent} {'are' if plural_answer else 'is'}"
                if noun
                else ("What are" if plural_answer else "What is")
            )
            return f"{lead} the {nouns} of {x}?"
        return f"the {nouns} of {x}"
    their = "their" if (plural_answer or subject.plural) else "its"
    have = "have" if plural_answer else "has"
    if form == "question":
        return f"Which {ents} {have} {x} as {their} {words}?"
    return f"{the_ents} that {have} {x} as {their} {words}"


def _chinese(relation: str, subject: Subject, words: str | None, noun: str | None, form: str) -> str:
    base, inverse = _split_inverse(relation)
    p = words or " ".join(split_words(base))
    x = subject.text
    ent = noun or "实体"
    if not inverse:
        return f"{x}的{p}是什么？" if form == "question" else f"{x}的{p}"
    return f"哪些{ent}的{p}是{x}？" if form == "question" else f"{p}为{x}的{ent}"


def relation_form(
    relation: str,
    subject: Subject,
    *,
    form: str = "question",
    lang: str = "en",
    plural_answer: bool = False,
    answer_noun: str | None = None,
    overrides: Mapping[str, Override] | None = None,
) -> str:
    """The question or phrase (`form`) for one relation applied to `subject`."""
    base, inverse = _split_inverse(relation)
    custom = _override(overrides, base, inverse)
    if form in custom:
        return custom[form].replace("{x}", subject.text)
    # a relation's words serve its inverse too: {"neighbor": {"words": "邻国"}} also reads neighbor^-1
    words = custom.get("words") or _override(overrides, base, False).get("words")
    if lang.split("-")[0] == "zh":
        return _chinese(relation, subject, words, answer_noun, form)
    if words:
        relation = words.replace(" ", "_") + (INVERSE_SUFFIX if inverse else "")
    return _english(relation, subject, plural_answer, answer_noun, form)


def verbalise(
    relations: Sequence[str],
    topic: str,
    *,
    lang: str = "en",
    overrides: Mapping[str, Override] | None = None,
    plural: Sequence[bool] | None = None,
    answer_noun: str | None = None,
) -> str:
    """The question for a relation path from `topic` (its display name). `plural[i]`: whether hop i reaches
    more than one entity (the last entry is the answer set), so nested phrases agree in number;
    `answer_noun`: what the answers are ("country"), when known."""
    if not relations:
        raise ValueError("a relation path needs at least one relation")
    plural = list(plural) if plural is not None else [False] * len(relations)
    subject = Subject(topic)
    for i, rel in enumerate(relations[:-1]):
        text = relation_form(rel, subject, form="phrase", lang=lang, plural_answer=plural[i], overrides=overrides)
        subject = Subject(text, plural[i])
    question = relation_form(
        relations[-1],
        subject,
        form="question",
        lang=lang,
        plural_answer=plural[-1],
        answer_noun=answer_noun,
        overrides=overrides,
    )
    return question[:1].upper() + question[1:]


def statement(
    relation: str,
    head: str,
    tail: str,
    *,
    lang: str = "en",
    overrides: Mapping[str, Override] | None = None,
    several: bool = False,
) -> str:
    """One forward triple as a sentence: "France is located in Western Europe.". `several`: the head has more
    than one tail for this relation, so a noun relation reads "Spain is a neighbor of France", not "the"."""
    base, inverse = _split_inverse(relation)
    if inverse:  # statements are about the stored triple
        head, tail = tail, head
    custom = _override(overrides, base, False)
    if "statement" in custom:
        return custom["statement"].replace("{h}", head).replace("{t}", tail)
    if lang.split("-")[0] == "zh":
        p = custom.get("words") or " ".join(split_words(base))
        return f"{head}的{p}是{tail}。"
    shape, words = _shape(custom["words"].split() if "words" in custom else split_words(base))
    if shape == "type":
        return f"{head} is {_article(tail)} {tail}."
    if shape == "noun_of":
        return f"{head} is {_with_article(words)} of {tail}."
    if shape == "prep":
        return f"{head} is {words} {tail}."
    if shape == "participle":
        return f"{head} {words} {tail}."
    if several:
        return f"{tail} is {_article(words)} {words} of {head}."
    return f"The {words} of {head} is {tail}."


def join_names(names: Sequence[str], lang: str = "en") -> str:
    """ "A, B and C" (English) or "A、B和C" (Chinese)."""
    names = list(names)
    if lang.split("-")[0] == "zh":
        return names[0] if len(names) == 1 else "、".join(names[:-1]) + "和" + names[-1]
    if len(names) <= 2:
        return " and ".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]
