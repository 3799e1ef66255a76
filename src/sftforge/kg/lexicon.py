"""The relation lexicon: how each relation of a graph, and its inverse, reads in questions and statements.

One `Wording` per relation and language holds templates, derived once from the relation's name by rules and
written to the run directory as YAML (`kg_lexicon.yaml`), where a user can read and edit them and feed the file
back through the recipe (`walks.lexicon`): a few minutes of review fix the wording of a whole graph.

Each relation reads four ways, forward and inverse: a question asking for what it reaches from {x}, and a
phrase naming it, to nest inside the next hop ("the neighbors of {x}"); a statement writes one triple ({h},
{t}). Templates are text with slots that the verbaliser fills with words that agree in number:

  {x}        the subject: an entity's name, or the phrase of the hops before
  {x_be} {x_have} {x_its}     is/are, has/have, its/their, agreeing with {x}
  {wh}       the question's lead for its answers: What, Who, Which country, Which countries
  {be} {have} {was} {its} {that}   agreeing with {wh} in a question, with {ones} in a phrase
  {are}      is/are agreeing with the number of answers ("What are the neighbors of ...")
  {ones}     the answers' noun: countries, people, entities (a phrase's head)
  {noun} {noun1}   the relation's noun agreeing with the answers, and its singular
  {h} {t} {a_t}    statements: head, tail, the article for the tail ("a"/"an")

An entry may also hold `question_one` (forward and inverse): the question asked of a single entity's name, with
{x} only ("Where was {x} born?"). It is used for one-hop questions, where no agreement is needed; the LLM step
(`walks.propose_lexicon`) writes these, after `check_proposal` accepts them.

Chinese has no agreement: {x}, {wh} (什么, 谁, 哪些国家), {which} (哪些国家, 哪个实体), {ones}, {h}, {t}.

Shapes of English relation names, from their words (`kg.words.split_words`):
  type       is a / rdf:type                         Paris is a city
  noun       capital, neighbor, has_genre, in_language, birthPlace (t is the birth place of h)
  noun_of    capital of, part of, member of          h is the capital of t
  verb_by    directed by, written_by                 t directed h
  verb_prep  located in, born in, after              h is located in t
  verb       directed, influenced, starring          h directed t
A relation whose name cannot be read (`t`, `1namedata`, a number) gets `skip` with the reason: paths through
it are rejected until the lexicon gives it wording.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sftforge.errors import SourceError
from sftforge.kg.graph import INVERSE_PREFIX, INVERSE_SUFFIX, KnowledgeGraph, local_name
from sftforge.kg.words import (
    PREPOSITIONS,
    article,
    has_cjk,
    past_tense,
    plural,
    singular,
    split_words,
    translate,
    translate_verb,
)

SLOTS_EN = frozenset("x x_be x_have x_its wh be have was its that are ones noun noun1".split())
SLOTS_ZH = frozenset("x wh which ones".split())
STATEMENT_SLOTS = frozenset("h t a_t".split())
SHAPES = ("type", "noun", "noun_of", "verb_by", "verb_prep", "verb", "custom")
_SLOT = re.compile(r"\{([^{}]*)\}")
_TYPE_WORDS = {"is a", "is an", "type", "instance of", "rdf type", "p31"}
# stems that read as verbs before a glued preposition even without "-ed": "born in", "lives in"
_VERB_STEMS = frozenset("born lives works died plays based located situated".split())


class LexiconError(SourceError):
    """A lexicon file or override that cannot be used; the message names the file, line and relation."""


def split_inverse(relation: str) -> tuple[str, bool]:
    """(`name`, is_inverse) for `name^-1` / `inverse of name` / `name`."""
    if relation.endswith(INVERSE_SUFFIX):
        return relation[: -len(INVERSE_SUFFIX)], True
    if relation.startswith(INVERSE_PREFIX):
        return relation[len(INVERSE_PREFIX) :], True
    return relation, False


@dataclass(slots=True)
class Wording:
    """How one relation reads in one language: templates for the forward and the inverse direction."""

    relation: str
    shape: str
    words: str
    forward: dict[str, str] = field(default_factory=dict)  # question, phrase
    inverse: dict[str, str] = field(default_factory=dict)
    statement: str = ""
    statement_several: str = ""  # when the head has several tails ("Spain is a neighbor of France.")
    noun: tuple[str, str] | None = None  # English: singular, plural
    skip: str | None = None  # why the relation has no wording
    origin: str = "rules"  # rules | file | recipe

    def templates(self, inverse: bool) -> dict[str, str]:
        return self.inverse if inverse else self.forward

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"shape": self.shape, "words": self.words}
        if self.skip:
            out["skip"] = self.skip
            return out
        if self.noun:
            out["noun"] = list(self.noun)
        out["question"] = self.forward["question"]
        out["phrase"] = self.forward["phrase"]
        if "question_one" in self.forward:
            out["question_one"] = self.forward["question_one"]
        out["inverse"] = dict(self.inverse)
        if self.origin in ("llm", "recipe"):  # what a reviewer should look at first
            out["origin"] = self.origin
        out["statement"] = self.statement
        if self.statement_several and self.statement_several != self.statement:
            out["statement_several"] = self.statement_several
        return out


# ---------------------------------------------------------------------------------------------------- rules


def _shape_en(words: list[str]) -> tuple[str, list[str]]:
    """(shape, the words that shape reads) for an English relation name."""
    joined = " ".join(words)
    if joined in _TYPE_WORDS or joined in ("isa", "is a type", "rdf:type"):
        return "type", words
    if words[:1] in (["is"], ["was"], ["are"]) and len(words) > 1:
        words = words[1:]
    if words[:1] in (["has"], ["have"]) and len(words) > 1:
        return "noun", words[1:]
    if len(words) >= 2 and words[0] in PREPOSITIONS and words[0] != "of":  # in_language, fromAlbum
        return "noun", words[1:]
    if len(words) >= 2 and words[-1] == "by" and _participle(words[-2]):
        return "verb_by", words
    if len(words) >= 2 and words[-1] == "of" and not _participle(words[-2]):
        return "noun_of", words[:-1]
    if len(words) >= 2 and words[-1] in PREPOSITIONS:
        return "verb_prep", words
    if len(words) == 1 and words[0] in PREPOSITIONS:
        return "verb_prep", words
    if len(words) == 1 and (_participle(words[0]) or words[0].endswith("ing")) and len(words[0]) > 5:
        return "verb", words
    return "noun", words


def _participle(word: str) -> bool:
    return (word.endswith("ed") and len(word) > 4) or word in _VERB_STEMS or word in ("born", "written", "known")


_NO_ARTICLE = frozenset("part".split())
_INDEFINITE = frozenset("member subclass instance citizen native child son daughter friend neighbor neighbour".split())


def _role(noun: str) -> tuple[str, str]:
    """The role of a `noun of` relation with its article, singular and plural: (the capital, capitals),
    (a member, members), (part, part)."""
    last = noun.split(" ")[-1]
    if last in _NO_ARTICLE:
        return noun, noun
    one = f"{article(noun)} {noun}" if last in _INDEFINITE else f"the {noun}"
    return one, plural(noun)


def derive_en(relation: str, words: list[str] | None = None) -> Wording:
    """The English wording of a relation, from its name's words."""
    words = words if words is not None else split_words(relation)
    reason = _unreadable(words)
    if reason:
        return Wording(relation, "custom", " ".join(words), skip=reason)
    shape, w = _shape_en(words)
    text = " ".join(w)
    if shape == "type":
        return Wording(
            relation,
            shape,
            text,
            forward={"question": "What type of entity {x_be} {x}?", "phrase": "the type of {x}"},
            inverse={"question": "{wh} {be} of type {x}?", "phrase": "the {ones} of type {x}"},
            statement="{h} is {a_t} {t}.",
        )
    if shape == "noun":
        one = singular(text)
        w1 = Wording(relation, shape, text, noun=(one, plural(one)))
        w1.forward = {"question": "{wh} {are} the {noun} of {x}?", "phrase": "the {noun} of {x}"}
        w1.inverse = {
            "question": "{wh} {have} {x} as {its} " + one + "?",
            "phrase": "the {ones} {that} {have} {x} as {its} " + one,
        }
        w1.statement = f"The {one} of {{h}} is {{t}}."
        w1.statement_several = f"{{t}} is {article(one)} {one} of {{h}}."
        return w1
    if shape == "noun_of":
        one, many = _role(text)
        return Wording(
            relation,
            shape,
            text,
            noun=(one, many),
            forward={
                "question": "{wh} {x_be} {x} " + one + " of?",
                "phrase": "the {ones} {that} {x} {x_be} " + one + " of",
            },
            # "What is part of Europe?": a role without an article agrees with the lead, one with an article with
            # its own number ("What are the capitals of ...")
            inverse={
                "question": "{wh} " + ("{be}" if one == many else "{are}") + " {noun} of {x}?",
                "phrase": "the {noun} of {x}",
            },
            statement=f"{{h}} is {one} of {{t}}.",
        )
    if shape == "verb_by":
        verb = " ".join(past_tense(x) for x in w[:-1])  # written by -> wrote
        return Wording(
            relation,
            shape,
            text,
            forward={"question": "{wh} " + verb + " {x}?", "phrase": "the {ones} {that} " + verb + " {x}"},
            inverse={"question": "{wh} {was} " + text + " {x}?", "phrase": "the {ones} " + text + " {x}"},
            statement=f"{{h}} was {text} {{t}}.",
        )
    if shape == "verb_prep":
        return Wording(
            relation,
            shape,
            text,
            forward={"question": "{wh} {x_be} {x} " + text + "?", "phrase": "the {ones} {that} {x} {x_be} " + text},
            inverse={"question": "{wh} {be} " + text + " {x}?", "phrase": "the {ones} " + text + " {x}"},
            statement=f"{{h}} is {text} {{t}}.",
        )
    # verb: a participle (directed) or a gerund (starring)
    if text.endswith("ing"):
        return Wording(
            relation,
            shape,
            text,
            forward={"question": "{wh} {x_be} {x} " + text + "?", "phrase": "the {ones} {that} {x} {x_be} " + text},
            inverse={"question": "{wh} {be} " + text + " {x}?", "phrase": "the {ones} " + text + " {x}"},
            statement=f"{{h}} is {text} {{t}}.",
        )
    return Wording(
        relation,
        shape,
        text,
        forward={"question": "{wh} {x_have} {x} " + text + "?", "phrase": "the {ones} {that} {x} " + text},
        inverse={"question": "{wh} " + text + " {x}?", "phrase": "the {ones} {that} " + text + " {x}"},
        statement=f"{{h}} {text} {{t}}.",
    )


def _unreadable(words: list[str]) -> str | None:
    text = "".join(words)
    if not text:
        return "the relation's name is empty"
    if text.isdigit() or re.search(r"^\d|[a-z]\d+[a-z]", text):  # 1namedata, demographics1info, a number
        return "the relation's name is a number or has digits inside: say in the lexicon how it reads"
    if len(text) < 2 and not has_cjk(text):
        return "the relation's name is too short to read: say in the lexicon how it reads"
    return None


def derive_zh(relation: str, words: list[str] | None = None) -> Wording:
    """The Chinese wording of a relation: a Chinese name is used as it is (a noun: X的出生地); an English one
    is translated word by word through the dictionary (`kg.words.translate`), or skipped if it cannot be."""
    words = words if words is not None else split_words(relation)
    reason = _unreadable(words)
    if reason:
        return Wording(relation, "custom", " ".join(words), skip=reason)
    if has_cjk(" ".join(words)):
        shape, p = "noun", "".join(words)
    else:
        shape, w = _shape_en(words)
        if "of" in w:  # country of birth -> 出生国家: Chinese puts the "of" part first
            i = w.index("of")
            w = w[i + 1 :] + w[:i]
        if shape == "verb_prep" and len(w) == 1:  # after, before, near: Chinese says it with a noun (后任)
            shape = "noun"
        found = translate_verb(w) if shape in ("verb_by", "verb_prep", "verb") else translate(w)
        if not found:
            return Wording(
                relation, "custom", " ".join(words), skip="no Chinese for these words in the dictionary: write it"
            )
        p = found
    return _zh_templates(relation, shape, p)


# Chinese templates per shape, with P standing for the relation's words: (forward question, forward phrase,
# inverse question, inverse phrase, statement). Chinese has no agreement; {wh}, {which} and {ones} carry the class.
_ZH_SHAPES: dict[str, tuple[str, str, str, str, str]] = {
    "type": ("{x}是什么类型的实体？", "{x}的类型", "哪些实体属于{x}类型？", "属于{x}类型的实体", "{h}是{t}。"),
    "noun_of": ("{x}是{wh}的P？", "以{x}为P的{ones}", "{x}的P是{wh}？", "{x}的P", "{h}是{t}的P。"),
    "verb_by": ("{x}是由{wh}P的？", "P{x}的{ones}", "{x}P了{wh}？", "{x}P的{ones}", "{h}由{t}P。"),
    "verb_prep": ("{x}P{wh}？", "{x}P的{ones}", "{which}P{x}？", "P{x}的{ones}", "{h}P{t}。"),
    "verb": ("{x}P了{wh}？", "{x}P的{ones}", "{wh}P了{x}？", "P了{x}的{ones}", "{h}P了{t}。"),
    "noun": ("{x}的P是{wh}？", "{x}的P", "{which}的P是{x}？", "P为{x}的{ones}", "{h}的P是{t}。"),
}


def _zh_templates(relation: str, shape: str, p: str) -> Wording:
    shape = shape if shape in _ZH_SHAPES else "noun"
    fq, fp, iq, ip, st = (t.replace("P", p) for t in _ZH_SHAPES[shape])
    return Wording(
        relation,
        shape,
        p,
        forward={"question": fq, "phrase": fp},
        inverse={"question": iq, "phrase": ip},
        statement=st,
    )


# ---------------------------------------------------------------------------------------------------- the lexicon


def base_language(lang: str) -> str:
    return "zh" if lang.split("-")[0].lower() == "zh" else "en"


@dataclass(slots=True)
class Lexicon:
    """Wordings of a graph's relations in one language, by relation name (local names work too)."""

    lang: str
    entries: dict[str, Wording]

    @classmethod
    def derive(cls, relations: Iterable[str], lang: str = "en") -> Lexicon:
        """Wordings of `relations` (names or labels) by the rules."""
        zh = base_language(lang) == "zh"
        entries = {r: (derive_zh(r) if zh else derive_en(r)) for r in relations}
        return cls(base_language(lang), entries)

    @classmethod
    def for_graph(
        cls,
        graph: KnowledgeGraph,
        lang: str = "en",
        *,
        path: Path | None = None,
        overrides: Mapping[str, str | Mapping[str, str]] | None = None,
    ) -> Lexicon:
        """The lexicon of a graph: derived by the rules from its relation labels, a symmetric relation (neighbor:
        nearly every triple also stored reversed) read the same both ways, then the user's file (`path`) and
        the recipe's overrides on top."""
        names = [graph.relation_label(r) for r in range(graph.num_relations)]
        lexicon = cls.derive(names, lang)
        for r in symmetric_relations(graph):
            entry = lexicon.entries[names[r]]
            if not entry.skip:
                entry.inverse = dict(entry.forward)
        if path is not None:
            edited = cls.load(path, lang, names + list(graph.relations))
            lexicon.entries.update(edited.entries)
        lexicon.apply(overrides)
        return lexicon

    def get(self, relation: str) -> Wording:
        """The wording of a relation (`name`, `name^-1` or a URI's local name); derived on the spot for a relation
        the lexicon does not hold."""
        base, _ = split_inverse(relation)
        entry = self.entries.get(base) or self.entries.get(local_name(base))
        if entry is None:
            entry = derive_zh(base) if self.lang == "zh" else derive_en(base)
            self.entries[base] = entry
        return entry

    # -- overrides from the recipe (walks.relations) -----------------------------------------------------------

    def apply(self, overrides: Mapping[str, str | Mapping[str, str]] | None, where: str = "walks.relations") -> None:
        """Apply the recipe's per-relation overrides: a string is the question template (with {x}); a mapping
        may give `question`, `phrase` (with {x}), `statement` (with {h} and {t}) and `words` (the relation's
        words, from which the rest is derived again). Keys `name^-1` set the inverse."""
        for key, value in (overrides or {}).items():
            base, inverse = split_inverse(key)
            spec = {"question": value} if isinstance(value, str) else dict(value)
            entry = self.get(base)
            if "words" in spec:  # Chinese words are a noun phrase (所在地区, 邻国); English ones are read by the rules
                w = str(spec["words"])
                fresh = _zh_templates(base, "noun", w) if self.lang == "zh" else derive_en(base, w.split())
                fresh.words, fresh.origin = w, "recipe"
                entry = self.entries[base] = fresh
            templates = entry.templates(inverse)
            for form in ("question", "phrase"):
                if form in spec:
                    templates[form] = str(spec[form])
            if "statement" in spec:
                entry.statement = entry.statement_several = str(spec["statement"])
            if {"question", "phrase", "statement"} & set(spec):
                entry.origin, entry.skip = "recipe", None
                if not entry.forward or not entry.inverse:
                    other = entry.inverse if inverse else entry.forward
                    mine = entry.templates(inverse)
                    for form in ("question", "phrase"):
                        mine.setdefault(form, mine.get("question", ""))
                        other.setdefault(form, mine[form])
                    entry.statement = entry.statement or "{h}: {t}"
            check_wording(entry, self.lang, where=f"{where}: {key}")

    # -- YAML -------------------------------------------------------------------------------------------------

    def to_yaml(self) -> str:
        head = (
            "# The relation lexicon: how each relation reads in questions (see sftforge.kg.lexicon for the slots).\n"
            "# Edit and pass back through the recipe as walks.lexicon; remove `skip` and write templates to use a\n"
            "# relation the rules could not read.\n"
        )
        body = {"language": self.lang, "relations": {k: v.as_dict() for k, v in sorted(self.entries.items())}}
        return head + yaml.safe_dump(body, allow_unicode=True, sort_keys=False, width=120)

    def write(self, path: Path) -> None:
        path.write_text(self.to_yaml(), encoding="utf-8")

    @classmethod
    def load(cls, path: Path, lang: str, relations: Iterable[str] | None = None) -> Lexicon:
        """A lexicon YAML (as `to_yaml` writes it, edited). Every error names the file, the line and the relation.
        `relations`: the graph's relation names; a relation the graph lacks is an error (a typo would be silent)."""
        try:
            text = path.read_text(encoding="utf-8")
            root = yaml.compose(text)
        except (OSError, UnicodeDecodeError) as e:
            raise LexiconError(f"{path}: cannot read the lexicon: {e}") from e
        except yaml.YAMLError as e:
            raise LexiconError(f"{path}: not valid YAML: {e}") from e
        if not isinstance(root, yaml.MappingNode):
            raise LexiconError(f"{path}: expected a mapping with `language` and `relations`")
        top = {k.value: v for k, v in root.value}
        declared = top.get("language")
        if declared is not None and base_language(str(declared.value)) != base_language(lang):
            raise LexiconError(
                f"{path} line {declared.start_mark.line + 1}: the lexicon is for language {declared.value!r}, the "
                f"task's language is {lang!r}"
            )
        rels = top.get("relations")
        if not isinstance(rels, yaml.MappingNode):
            raise LexiconError(f"{path}: missing `relations:` mapping of relation name to wording")
        known = None
        if relations is not None:
            known = set(relations) | {local_name(r) for r in relations}
        out = cls(base_language(lang), {})
        for key_node, value_node in rels.value:
            name, line = str(key_node.value), key_node.start_mark.line + 1
            where = f"{path} line {line}: relation {name!r}"
            if known is not None and name not in known:
                raise LexiconError(f"{where} is not a relation of the graph")
            value = yaml.safe_load(yaml.serialize(value_node))
            if not isinstance(value, dict):
                raise LexiconError(f"{where}: expected a mapping (shape, question, phrase, inverse, statement)")
            out.entries[name] = _from_dict(name, value, out.lang, where)
        return out


_FIELDS = frozenset(
    "shape words noun skip question phrase question_one inverse statement statement_several origin".split()
)


def _from_dict(name: str, value: dict[str, Any], lang: str, where: str) -> Wording:
    unknown = set(value) - _FIELDS
    if unknown:
        raise LexiconError(
            f"{where}: unknown field(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_FIELDS))}"
        )
    shape = str(value.get("shape", "custom"))
    if shape not in SHAPES:
        raise LexiconError(f"{where}: shape {shape!r} is not one of {', '.join(SHAPES)}")
    noun = value.get("noun")
    if noun is not None and not (isinstance(noun, list) and len(noun) == 2 and all(isinstance(x, str) for x in noun)):
        raise LexiconError(f"{where}: noun must be [singular, plural]")
    entry = Wording(name, shape, str(value.get("words", "")), noun=(noun[0], noun[1]) if noun else None, origin="file")
    if value.get("skip"):
        entry.skip = str(value["skip"])
        return entry
    inverse = value.get("inverse") or {}
    if not isinstance(inverse, dict):
        raise LexiconError(f"{where}: inverse must be a mapping with question and phrase")
    for form in ("question", "phrase"):
        if form not in value or form not in inverse:
            raise LexiconError(f"{where}: needs `{form}` and `inverse: {{{form}: ...}}` (or `skip: reason`)")
        entry.forward[form], entry.inverse[form] = str(value[form]), str(inverse[form])
    if "question_one" in value:
        entry.forward["question_one"] = str(value["question_one"])
    if "question_one" in inverse:
        entry.inverse["question_one"] = str(inverse["question_one"])
    unknown_inverse = set(inverse) - {"question", "phrase", "question_one"}
    if unknown_inverse:
        raise LexiconError(f"{where}: unknown field(s) under inverse: {', '.join(sorted(unknown_inverse))}")
    entry.origin = str(value.get("origin", "file"))
    if "statement" not in value:
        raise LexiconError(f"{where}: needs `statement` with {{h}} and {{t}}")
    entry.statement = str(value["statement"])
    entry.statement_several = str(value.get("statement_several", entry.statement))
    check_wording(entry, lang, where)
    return entry


def symmetric_relations(graph: KnowledgeGraph, share: float = 0.9) -> list[int]:
    """Relations with at least 10 triples of which `share` or more are also stored reversed."""
    n, r_count = graph.num_entities, graph.num_relations
    heads = np.repeat(np.arange(n, dtype=np.int64), np.diff(graph.indptr))
    fwd = graph.rels < r_count
    rel, h, t = graph.rels[fwd].astype(np.uint64), heads[fwd].astype(np.uint64), graph.indices[fwd].astype(np.uint64)
    n64 = np.uint64(n)
    # (relation, head, tail) packed into one 64-bit key; on a graph too big for that the key wraps, and a
    # collision can only make a relation look a little more symmetric than it is
    with np.errstate(over="ignore"):
        keys = (rel * n64 + h) * n64 + t
        mirrored = np.isin((rel * n64 + t) * n64 + h, keys)
    rel = rel.astype(np.int64)
    counts = np.bincount(rel, minlength=r_count)
    hits = np.bincount(rel, weights=mirrored, minlength=r_count)
    return [r for r in range(r_count) if counts[r] >= 10 and hits[r] >= share * counts[r]]


def check_wording(entry: Wording, lang: str, where: str) -> None:
    """Every template uses known slots and has its placeholders: {x} in questions and phrases, {h} and {t} in
    statements; Chinese templates are in Chinese and English ones hold no Chinese."""
    slots = SLOTS_ZH if lang == "zh" else SLOTS_EN
    if entry.skip:
        return
    for direction, templates in (("", entry.forward), ("inverse ", entry.inverse)):
        for form, text in templates.items():
            # question_one is asked of a single name: no agreement, so {x} is its only slot
            allowed = frozenset({"x"}) if form == "question_one" else slots
            _check_template(text, allowed, ("x",), f"{where}: {direction}{form}")
            _check_language(text, lang, f"{where}: {direction}{form}")
    for form, text in (("statement", entry.statement), ("statement_several", entry.statement_several)):
        if text:
            _check_template(text, STATEMENT_SLOTS, ("h", "t"), f"{where}: {form}")
            _check_language(text, lang, f"{where}: {form}")


def _check_template(text: str, allowed: frozenset[str], required: tuple[str, ...], where: str) -> None:
    used = _SLOT.findall(text)
    bad = [s for s in used if s not in allowed]
    if bad:
        raise LexiconError(
            f"{where}: unknown placeholder {{{bad[0]}}} in {text!r}; known: {', '.join('{' + s + '}' for s in sorted(allowed))}"
        )
    if text.count("{") != text.count("}"):
        raise LexiconError(f"{where}: unbalanced braces in {text!r}")
    missing = [s for s in required if s not in used]
    if missing:
        raise LexiconError(f"{where}: {text!r} lacks the placeholder {{{missing[0]}}}")


def _check_language(text: str, lang: str, where: str) -> None:
    bare = _SLOT.sub("", text)
    if lang == "zh" and not has_cjk(bare):
        raise LexiconError(f"{where}: {text!r} is not Chinese, and the task's language is zh")
    if lang != "zh" and has_cjk(bare):
        raise LexiconError(f"{where}: {text!r} has Chinese, and the task's language is {lang}")


def fill(template: str, slots: Mapping[str, str]) -> str:
    """A template with its slots filled."""
    return _SLOT.sub(lambda m: slots[m.group(1)], template)


# ---------------------------------------------------------------------------------------------------- proposals


@dataclass(frozen=True, slots=True)
class Proposal:
    """An LLM's wording of one relation: the question about the head ({x}), the question back about the tail
    ({x}), and the statement of a triple ({h}, {t})."""

    ask: str
    ask_back: str
    say: str


_LINE = re.compile(r"^\s*(ASK_BACK|ASK|SAY|反问|问|述)\s*[:：]\s*(.+?)\s*$", re.MULTILINE)
_KEYS = {"ASK": "ask", "问": "ask", "ASK_BACK": "ask_back", "反问": "ask_back", "SAY": "say", "述": "say"}


def parse_proposal(text: str) -> Proposal:
    """The three lines of a proposal (`ASK: ...`, `ASK_BACK: ...`, `SAY: ...`; Chinese labels 问, 反问, 述), or a
    ValueError naming what is missing."""
    found: dict[str, str] = {}
    for label, value in _LINE.findall(text):
        found.setdefault(_KEYS[label], value.strip().strip("\"'“”"))
    missing = [k for k in ("ask", "ask_back", "say") if k not in found]
    if missing:
        raise ValueError(f"no {missing[0].upper()} line")
    return Proposal(found["ask"], found["ask_back"], found["say"])


def check_proposal(proposal: Proposal, lang: str, examples: list[tuple[str, str]]) -> str | None:
    """Why a proposed wording cannot be used, or None. Placeholders present and alone ({x} once in each
    question, {h} and {t} once in the statement, nothing else in braces); the language right; questions end with
    a question mark and say more than the name; the two questions differ; no example name copied into a
    template; and the statement re-parses: filled with each example triple, the template read back as a pattern
    gives that same head and tail, and swapping them changes the sentence (the direction is said)."""
    zh = base_language(lang) == "zh"
    for name, text, need in (
        ("ASK", proposal.ask, ("x",)),
        ("ASK_BACK", proposal.ask_back, ("x",)),
        ("SAY", proposal.say, ("h", "t")),
    ):
        used = _SLOT.findall(text)
        if sorted(used) != sorted(need):
            return f"{name} must hold {' and '.join('{' + n + '}' for n in need)} once each, and no other {{...}}"
        bare = _SLOT.sub("", text)
        if zh != has_cjk(bare):
            return f"{name} is not in {'Chinese' if zh else 'English'}"
        if any(name_ in text for pair in examples for name_ in pair if len(name_) > 2):
            return f"{name} copies an example's name instead of using a placeholder"
        if name != "SAY":
            if not bare.rstrip().endswith(("?", "？")):
                return f"{name} is not a question"
            if len(re.findall(r"\w+", bare)) < (1 if zh else 2):
                return f"{name} says nothing beyond the name"
    if proposal.ask.strip() == proposal.ask_back.strip():
        return "ASK and ASK_BACK are the same question"
    pattern = re.compile(
        "^"
        + re.escape(proposal.say).replace(re.escape("{h}"), "(?P<h>.+?)").replace(re.escape("{t}"), "(?P<t>.+?)")
        + "$"
    )
    for h, t in examples:
        said = fill(proposal.say, {"h": h, "t": t})
        m = pattern.match(said)
        if m is None or (m.group("h"), m.group("t")) != (h, t):
            return f"SAY does not read back as the triple ({h}, {t})"
        if h != t and fill(proposal.say, {"h": t, "t": h}) == said:
            return "SAY reads the same both ways: it does not say which entity is which"
    return None


def adopt(entry: Wording, proposal: Proposal) -> None:
    """Use an accepted proposal for a relation the rules read: its questions for single names (nested hops keep
    the derived phrases, which agree in number), its statement for triples."""
    entry.forward["question_one"] = proposal.ask
    entry.inverse["question_one"] = proposal.ask_back
    entry.statement = entry.statement_several = proposal.say
    entry.origin = "llm"
