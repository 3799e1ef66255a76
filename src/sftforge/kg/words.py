"""Words of relation names, in English and Chinese: splitting, inflection and translation by rules.

Relation names come as snake_case (`directed_by`), camelCase (`birthPlace`), URIs, glued lowercase words
(`nationalteam`, `countryofbirth`: DBpedia's infobox properties) and Chinese (`出生地`). English words are split
at case changes and separators, then glued runs are segmented by word frequency (wordfreq's English list: the
split whose words are most probable, as a unigram model scores it). Nouns are inflected with `inflect`
(`starred actors` -> singular `starred actor`, plural of `country of birth` -> `countries of birth`), never by
pasting an "s". English relation words become Chinese through the English-Chinese dictionary shipped in the
`cedict` package: the whole phrase if it is an entry, else each word's first sense of the right part of speech.
"""

from __future__ import annotations

import csv
import functools
import math
import re
from importlib import resources
from typing import Any

from sftforge.kg.graph import local_name

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
PREPOSITIONS = frozenset("into from with in of on at by to for as after before under over near".split())


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


@functools.cache
def _inflect() -> Any:  # inflect's engine; typed loosely, its methods return str | bool
    import inflect

    return inflect.engine()


@functools.cache
def zipf_en(word: str) -> float:
    from wordfreq import zipf_frequency

    return zipf_frequency(word, "en", wordlist="large")


def segment(glued: str) -> list[str]:
    """The most probable split of a lowercase run into English words (`countryofbirth` -> country, of, birth);
    the run itself when it is a common word or no split beats it. Unigram model over wordfreq's Zipf values."""
    n = len(glued)
    if n < 6 or zipf_en(glued) >= 3.0:
        return [glued]
    # best[i]: (log-probability, words) of glued[:i]; a word's log-probability is its Zipf value minus 9
    best: list[tuple[float, list[str]]] = [(0.0, [])]
    best += [(-math.inf, []) for _ in range(n)]
    for i in range(1, n + 1):
        for j in range(max(0, i - 20), i):
            word = glued[j:i]
            z = zipf_en(word)
            if z <= 0 or (len(word) == 1 and word not in "a"):
                continue
            score = best[j][0] + (z - 9.0)
            if score > best[i][0]:
                best[i] = (score, best[j][1] + [word])
    whole = zipf_en(glued) - 9.0 if zipf_en(glued) > 0 else -math.inf
    if best[n][0] == -math.inf or best[n][0] <= whole:
        return [glued]
    return best[n][1]


def split_words(name: str) -> list[str]:
    """Words of a relation name: `locatedIn`, `located_in`, `locatedin`, `http://x/ns#locatedIn` -> located, in;
    `nationalteam` -> national, team. Chinese names come back whole, as one word."""
    text = local_name(name)
    if has_cjk(text):
        return [text.strip()]
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", text)
    out: list[str] = []
    for w in (w.lower() for w in re.split(r"[\s_\-.:/#]+", text) if w):
        if w in ("isa", "isan"):
            out += ["is", w[2:]]
        elif w.isalpha():
            out += segment(w)
        else:
            out.append(w)
    return out


def singular(noun: str) -> str:
    """The singular of a noun phrase (`starred actors` -> `starred actor`); unchanged when already singular."""
    if not noun or noun.split(" ")[-1] in _UNCOUNTED:
        return noun
    s = _inflect().singular_noun(noun)
    if not isinstance(s, str) or not s:
        return noun
    # inflect strips any final s ("campus" -> "campu"): keep the singular only if it is a word in its own right
    last = s.split(" ")[-1]
    return s if zipf_en(last) >= 2.0 or not last.isalpha() else noun


def plural(noun: str) -> str:
    """The plural of a noun phrase, from its singular (`country of birth` -> `countries of birth`)."""
    if not noun or noun.split(" ")[-1] in _UNCOUNTED:
        return noun
    words = singular(noun).split(" ")
    if len(words) > 1 and words[-1].endswith("ed"):  # city served -> cities served
        return " ".join([*words[:-2], plural(words[-2]), words[-1]])
    return str(_inflect().plural_noun(" ".join(words)))


def is_plural(noun: str) -> bool:
    return singular(noun) != noun


def article(phrase: str) -> str:
    """`a` or `an` for the phrase, by its sound (an hour, a union)."""
    return str(_inflect().a(phrase)).split(" ", 1)[0]


# nouns without a plural of their own in relation names ("data" is not "datum" there)
_UNCOUNTED = frozenset("data media series species news information music equipment software staff".split())


# past participles that are not the past tense: "written by" asks "Who wrote ...?"
_IRREGULAR = {
    "written": "wrote",
    "sung": "sang",
    "drawn": "drew",
    "driven": "drove",
    "given": "gave",
    "taken": "took",
    "known": "knew",
    "shown": "showed",
    "begun": "began",
    "chosen": "chose",
    "done": "did",
    "eaten": "ate",
    "flown": "flew",
    "grown": "grew",
    "hidden": "hid",
    "ridden": "rode",
    "risen": "rose",
    "seen": "saw",
    "spoken": "spoke",
    "stolen": "stole",
    "sworn": "swore",
    "thrown": "threw",
    "woven": "wove",
    "worn": "wore",
    "beaten": "beat",
    "bitten": "bit",
    "broken": "broke",
    "forgotten": "forgot",
    "frozen": "froze",
    "born": "bore",
    "undertaken": "undertook",
    "overseen": "oversaw",
    "rewritten": "rewrote",
    "co-written": "co-wrote",
}


def past_tense(participle: str) -> str:
    """The simple past of a past participle (directed -> directed, written -> wrote)."""
    return _IRREGULAR.get(participle, participle)


# ---------------------------------------------------------------------------------------------------- Chinese


@functools.cache
def _dictionary() -> dict[str, str]:
    """The English-Chinese dictionary of the `cedict` package: word -> senses (`n.俱乐部,夜总会 ...`)."""
    path = resources.files("cedict") / "csv" / "EnWords.csv"
    with path.open(encoding="utf-8") as f:
        return {row["word"]: row["translation"] for row in csv.DictReader(f)}


_POS = re.compile(r"\b(n|vt|vi|v|adj|adv|prep|conj|pron|art|num|int|abbr|vbl)\.")


def _sense(entry: str, pos: tuple[str, ...]) -> str | None:
    """The first sense of an entry under one of the parts of speech `pos`, cleaned of notes in brackets."""
    parts = _POS.split(entry)
    # parts: [before, pos1, text1, pos2, text2, ...]
    pairs = list(zip(parts[1::2], parts[2::2])) or [("", entry)]
    for p, text in pairs:
        if pos and p not in pos:
            continue
        text = re.sub(r"\([^)]*\)|（[^）]*）|\[[^\]]*\]|<[^>]*>", "", text)
        for sense in re.split(r"[,，;；/]", text):
            sense = sense.strip().rstrip("的")
            if sense and has_cjk(sense) and not re.search(r"[A-Za-z.]", sense):
                return sense
    return None


# Relation words whose first dictionary sense is not the one knowledge graphs mean (album is 专辑, not a stamp
# album; predecessor is 前任, not an elder): a glossary of the common ones, checked against DBpedia's Chinese
# infobox names (前任, 继任, 母校, 专辑, 单曲, 总理, 唱片公司).
GLOSSARY = {
    "album": "专辑",
    "alma mater": "母校",
    "predecessor": "前任",
    "successor": "继任者",
    "single": "单曲",
    "prime minister": "总理",
    "label": "唱片公司",
    "record label": "唱片公司",
    "influences": "影响",
    "influence": "影响",
    "influenced": "影响",
    "hub": "枢纽",
    "youth": "青年",
    "youth club": "青年俱乐部",
    "current club": "现属俱乐部",
    "manager": "主教练",
    "title": "头衔",
    "issue": "子女",
    "office": "职位",
    "fam": "科",
    "genus": "属",
    "order": "目",
    "family": "科",
    "director": "导演",
    "directed": "导演",
    "starring": "主演",
    "writer": "编剧",
    "written": "编写",
    "producer": "制片人",
    "produced": "制作",
    "developer": "开发商",
    "developed": "开发",
    "publisher": "出版商",
    "published": "出版",
    "located": "位于",
    "born": "出生于",
    "after": "后任",
    "before": "前任",
    "near": "邻近地点",
    "birth place": "出生地",
    "death place": "逝世地",
    "place of birth": "出生地",
    "place of death": "逝世地",
    "country of birth": "出生国家",
    "city of birth": "出生城市",
    "national team": "国家队",
    "club": "俱乐部",
    "clubs": "俱乐部",
    "party": "政党",
    "spouse": "配偶",
    "child": "子女",
    "children": "子女",
    "parent": "父母",
    "country": "国家",
    "nationality": "国籍",
    "language": "语言",
    "languages": "语言",
    "genre": "类型",
    "location": "所在地",
    "headquarters": "总部",
    "president": "总统",
    "leader": "领导人",
    "capital": "首都",
    "artist": "艺术家",
    "associated acts": "相关艺人",
    "next single": "下一张单曲",
    "last single": "上一张单曲",
    "league": "联赛",
    "stadium": "体育场",
    "ground": "主场",
    "subdivision name": "行政区",
    "operating system": "操作系统",
    "platforms": "平台",
    "platform": "平台",
    "network": "电视网",
    "format": "格式",
    "owner": "所有者",
    "region": "地区",
    "state": "州",
    "states": "州",
    "city": "城市",
    "neighbor": "邻国",
    "neighbour": "邻国",
    "residence": "居住地",
    "origin": "发源地",
    "monarch": "君主",
    "house": "王室",
    "deputy": "副手",
    "team": "球队",
    "name": "名称",
    "related": "相关",
    "battles": "参与战役",
    "battle": "战役",
}


def translate(words: list[str]) -> str | None:
    """Chinese for an English relation's words, or None when a content word is not in the dictionary. The whole
    phrase (glued or spaced) first: `birth place` -> 诞生地; else word by word, modifiers as adjectives or nouns
    and the last word as a noun: `national team` -> 国家队; prepositions are dropped."""
    d = _dictionary()
    if " ".join(words) in GLOSSARY:
        return GLOSSARY[" ".join(words)]
    content = [w for w in words if w not in PREPOSITIONS and w not in ("has", "is", "the", "a", "an")]
    if not content:
        return None
    for key in (" ".join(content), singular(" ".join(content))):
        if key in GLOSSARY:
            return GLOSSARY[key]
    for key in (" ".join(content), "".join(content), singular(" ".join(content))):
        if key in d and (sense := _sense(d[key], ("n", ""))):
            return sense
    out = []
    for i, w in enumerate(content):
        last = i == len(content) - 1
        if w in GLOSSARY or singular(w) in GLOSSARY:
            out.append(GLOSSARY.get(w) or GLOSSARY[singular(w)])
            continue
        entry = d.get(w) or d.get(singular(w))
        if entry is None:
            return None
        sense = _sense(entry, ("n", "") if last else ("adj", "n", "")) or _sense(entry, ())
        if sense is None:
            return None
        out.append(sense)
    return "".join(out)


def translate_verb(words: list[str]) -> str | None:
    """Chinese for a verb relation's verb (`located in` -> 位于, `directed by` -> 导演): the glossary, else the
    dictionary's verb sense of the word or of its stem (directed -> direct, starring -> star)."""
    verbs = [w for w in words if w not in PREPOSITIONS]
    if len(verbs) != 1:
        return translate(words)
    v = verbs[0]
    if v in GLOSSARY:
        return GLOSSARY[v]
    d = _dictionary()
    stems = [v, v[:-1], v[:-2], v[:-3], v[:-3] + "e", v[:-2] + "e"] if v.endswith(("ed", "ing")) else [v]
    for stem in stems:
        if stem in d and (sense := _sense(d[stem], ("vt", "v", "vi")) or _sense(d[stem], ())):
            return sense
    return None
