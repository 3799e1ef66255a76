"""Is a generated KG question written as a person would write it? An automatic check, independent of the
verbaliser: it knows nothing of templates or relation names, only the question text and the entity names in it.

English, after the entity names are masked:
- every placeholder filled (no `{`, `}`, `^-1`, `_`, camelCase or URI left from a relation's name);
- every word is an English word (a dictionary other than the one the verbaliser segments with: the web2 and
  GCIDE lists of `english-words`), so "actorses", "nationalteam" and "almamater" fail;
- no doubled plural ("actorses", "citieses"), no word twice in a row ("the the", "in in");
- the neutral noun at most once ("Which entities are the entities that ..." fails);
- agreement: "is/was" not followed by "the" + a plural noun, "are/were" not by "the" + a singular noun, no
  "a"/"an" before a plural noun, and "a" vs "an" by the next word's sound;
- one question: starts with a capital, ends with a single "?", holds no other sentence end.
Chinese: ends with "？", every placeholder filled, no Latin word outside entity names (an untranslated relation
name), no "的的", the neutral noun 实体 at most once, and no English question mark.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

_PLACEHOLDER = re.compile(r"[{}]|\^-1|inverse of")
_CAMEL = re.compile(r"\b[a-z]+[A-Z][a-zA-Z]*\b")
_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")
_CJK = re.compile(r"[\u3400-\u9fff]")
MASK = "\ue000"  # a private-use character: no name or word contains it


@functools.cache
def _english() -> frozenset[str]:
    from english_words import get_english_words_set

    return frozenset(get_english_words_set(["web2", "gcide"], lower=True, alpha=True))


@functools.cache
def _inflect() -> Any:  # inflect's engine, typed loosely
    import inflect

    return inflect.engine()


def _is_plural_noun(word: str) -> bool:
    """A plural noun by inflect whose singular is itself a dictionary word (so "is" or "this" are not)."""
    if word in ("is", "was", "has", "its", "this", "us", "as", "whose"):
        return False
    s = _inflect().singular_noun(word)
    return isinstance(s, str) and s != word and s in _english()


def _mask(text: str, names: Sequence[str]) -> str:
    for name in sorted(set(names), key=len, reverse=True):
        if name:
            text = text.replace(name, MASK)
    return text


def problems(question: str, names: Sequence[str], lang: str = "en") -> list[str]:
    """What is wrong with `question` (empty: it reads as written by a person). `names`: the entity names it
    may contain (topic and nested entities), which are not judged."""
    if lang.split("-")[0] == "zh":
        return _problems_zh(question, names)
    out: list[str] = []
    text = _mask(question, names)
    if _PLACEHOLDER.search(text) or "_" in text or "http" in text:
        out.append("unfilled placeholder or raw relation name")
    if _CAMEL.search(text):
        out.append("camelCase relation name")
    if not text.endswith("?") or text.count("?") != 1:
        out.append("not one question ending with '?'")
    if re.search(r"[.!;]\s", text):
        out.append("more than one sentence")
    if text[:1].islower():
        out.append("does not start with a capital")
    lower = [w.lower() for w in _WORD.findall(text)]
    vocab = _english()
    for w in lower:
        if w not in vocab and not _is_plural_noun(w) and not _inflected(w, vocab):
            out.append(f"not an English word: {w!r}")
    for w in lower:
        if re.search(r"(ses|xes|ies)es$|sses$", w) and w not in vocab:
            out.append(f"doubled plural: {w!r}")
    seq = [w.lower() for w in re.findall(r"[A-Za-z]+(?:'[a-z]+)?|\ue000", text)]
    for a, b in zip(seq, seq[1:]):
        if a == b and a != MASK:
            out.append(f"word twice in a row: {a!r}")
    neutral = sum(w in ("entity", "entities") for w in lower)
    if neutral > 1:
        out.append("the neutral noun 'entities' more than once")
    for i in range(len(seq) - 2):
        verb, det, noun = seq[i], seq[i + 1], seq[i + 2]
        if det == "the" and noun != MASK:
            if verb in ("is", "was") and _is_plural_noun(noun) and _next_is_of_or_end(seq, i + 3):
                out.append(f"agreement: '{verb} the {noun}'")
            if verb in ("are", "were") and not _is_plural_noun(noun) and _is_singular_noun(noun, seq, i + 3):
                out.append(f"agreement: '{verb} the {noun}'")
    for i in range(len(seq) - 1):
        det, nxt = seq[i], seq[i + 1]
        if det in ("a", "an") and nxt != MASK:
            if _is_plural_noun(nxt) and (i + 2 >= len(seq) or seq[i + 2] in ("of", "that", "who")):
                out.append(f"article before a plural: '{det} {nxt}'")
            want = _inflect().a(nxt).split(" ", 1)[0]
            if want != det:
                out.append(f"article: '{det} {nxt}'")
    return sorted(set(out))


def _inflected(word: str, vocab: frozenset[str]) -> bool:
    """A verb form of a dictionary word (the lists hold base forms): preceded, located, starring, directs."""
    for suffix, repl in (
        ("ed", ""),
        ("ed", "e"),
        ("d", ""),
        ("ing", ""),
        ("ing", "e"),
        ("s", ""),
        ("es", ""),
        ("est", ""),
        ("er", ""),
    ):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            stem = word[: -len(suffix)] + repl
            if stem in vocab or (suffix in ("ed", "ing") and stem[-1:] == stem[-2:-1] and stem[:-1] in vocab):
                return True
    return False


def _next_is_of_or_end(seq: list[str], j: int) -> bool:
    return j >= len(seq) or seq[j] in ("of", "that", "who", "located")


def _is_singular_noun(word: str, seq: list[str], j: int) -> bool:
    """A singular noun heading "the ... of": only judged right before "of", where the noun ends its phrase."""
    return j < len(seq) and seq[j] == "of" and word in _english() and not word.endswith("s")


def _problems_zh(question: str, names: Sequence[str]) -> list[str]:
    out: list[str] = []
    text = _mask(question, names).replace(MASK, "某")
    if _PLACEHOLDER.search(text) or "_" in text:
        out.append("unfilled placeholder or raw relation name")
    if not text.endswith("？") or "?" in text:
        out.append("not one question ending with '？'")
    if re.search(r"[A-Za-z]{2,}", text):
        out.append("Latin words outside entity names (an untranslated relation name)")
    if "的的" in text:
        out.append("doubled 的")
    if text.count("实体") > 1:
        out.append("the neutral noun 实体 more than once")
    if not _CJK.search(text):
        out.append("not Chinese")
    return out
