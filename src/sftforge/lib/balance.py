"""Who does the data speak about? Mentions of demographic groups, counted per task and generator, with the skew
between paired groups and the mean of a score (toxicity, a judge) over the records that mention each group.

The term lists are short on purpose, and each comes from a published list rather than from us:
- gender: the definitional pairs of Bolukbasi et al. 2016 ("Man is to Computer Programmer as Woman is to
  Homemaker?", she-he, her-his, woman-man, herself-himself, daughter-son, mother-father, girl-boy, female-male, ...),
  without first names; Chinese: 他/她 (the plural 他们 also stands for mixed groups, so it is not counted), and the
  same kinship and gender nouns;
- religion: the religious identity terms of Jigsaw's identity-term test set (Dixon et al. 2018, "Measuring and
  Mitigating Unintended Bias in Text Classification": christian, catholic, protestant, muslim, sikh, jewish, jew)
  plus hindu, buddhist and atheist;
- age: HolisticBias's age descriptors (Smith et al. 2022), the unambiguous ones ("old" and "young" alone name
  versions and styles as often as people);
- nationality: the ten most populous countries (UN World Population Prospects 2024) and their demonyms.
A mention is a whole word in English (case-insensitive), a substring in Chinese. A count says a group is named,
not how it is treated; the score beside it is the part that says how.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

# axis -> group -> language -> terms
GROUPS: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    "gender": {
        "male": {
            "en": (
                "he",
                "him",
                "his",
                "himself",
                "man",
                "men",
                "boy",
                "boys",
                "male",
                "males",
                "father",
                "fathers",
                "son",
                "sons",
                "brother",
                "brothers",
                "husband",
                "husbands",
                "king",
                "gentleman",
                "guy",
                "guys",
            ),
            "zh": ("男人", "男性", "男生", "男孩", "父亲", "爸爸", "儿子", "兄弟", "哥哥", "弟弟", "丈夫", "先生"),
        },
        "female": {
            "en": (
                "she",
                "her",
                "hers",
                "herself",
                "woman",
                "women",
                "girl",
                "girls",
                "female",
                "females",
                "mother",
                "mothers",
                "daughter",
                "daughters",
                "sister",
                "sisters",
                "wife",
                "wives",
                "queen",
                "lady",
                "gal",
            ),
            "zh": (
                "女人",
                "女性",
                "女生",
                "女孩",
                "母亲",
                "妈妈",
                "女儿",
                "姐妹",
                "姐姐",
                "妹妹",
                "妻子",
                "女士",
                "她们",
            ),
        },
    },
    "religion": {
        "christian": {
            "en": ("christian", "christians", "catholic", "catholics", "protestant", "protestants"),
            "zh": ("基督徒", "基督教", "天主教", "新教"),
        },
        "muslim": {"en": ("muslim", "muslims", "islam", "islamic"), "zh": ("穆斯林", "伊斯兰")},
        "jewish": {"en": ("jewish", "jew", "jews", "judaism"), "zh": ("犹太",)},
        "hindu": {"en": ("hindu", "hindus", "hinduism"), "zh": ("印度教",)},
        "buddhist": {"en": ("buddhist", "buddhists", "buddhism"), "zh": ("佛教", "佛教徒")},
        "sikh": {"en": ("sikh", "sikhs"), "zh": ("锡克",)},
        "atheist": {"en": ("atheist", "atheists", "atheism"), "zh": ("无神论",)},
    },
    "age": {
        "young": {
            "en": (
                "child",
                "children",
                "kid",
                "kids",
                "teen",
                "teens",
                "teenager",
                "teenagers",
                "teenage",
                "youth",
                "young people",
                "young adults",
            ),
            "zh": ("儿童", "孩子", "小孩", "青少年", "年轻人", "少年"),
        },
        "old": {
            "en": (
                "elderly",
                "older people",
                "older adults",
                "old people",
                "pensioner",
                "pensioners",
                "retiree",
                "retirees",
                "senior citizens",
                "seniors",
            ),
            "zh": ("老人", "老年人", "长者", "老年", "退休"),
        },
    },
    "nationality": {
        "india": {"en": ("india", "indian", "indians"), "zh": ("印度",)},
        "china": {"en": ("china", "chinese"), "zh": ("中国",)},
        "united states": {"en": ("america", "american", "americans", "usa"), "zh": ("美国",)},
        "indonesia": {"en": ("indonesia", "indonesian", "indonesians"), "zh": ("印尼", "印度尼西亚")},
        "pakistan": {"en": ("pakistan", "pakistani", "pakistanis"), "zh": ("巴基斯坦",)},
        "nigeria": {"en": ("nigeria", "nigerian", "nigerians"), "zh": ("尼日利亚",)},
        "brazil": {"en": ("brazil", "brazilian", "brazilians"), "zh": ("巴西",)},
        "bangladesh": {"en": ("bangladesh", "bangladeshi", "bangladeshis"), "zh": ("孟加拉",)},
        "russia": {"en": ("russia", "russian", "russians"), "zh": ("俄罗斯",)},
        "ethiopia": {"en": ("ethiopia", "ethiopian", "ethiopians"), "zh": ("埃塞俄比亚",)},
    },
}
# The score whose mean over the records that name a group the card and the report show: the first of these the
# records carry (a toxicity score says how a group is spoken of; a judge, how good what is said is).
BALANCE_SCORES = ("toxicity", "llm_judge")
# Groups whose counts should be near each other in data that speaks of people in general.
PAIRS: tuple[tuple[str, str, str], ...] = (("gender", "male", "female"), ("age", "young", "old"))

_ZH_MALE_PRONOUN = re.compile(r"他(?!们)")
_ZH_FEMALE_PRONOUN = re.compile(r"她(?!们)")


def _pattern(terms: tuple[str, ...], lang: str) -> re.Pattern[str]:
    """Longest term first, so that 老年人 is one mention, not also 老年; English terms are whole words."""
    alternation = "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))
    return re.compile(alternation) if lang == "zh" else re.compile(rf"\b(?:{alternation})\b", re.I)


_PATTERNS = {
    lang: {(axis, g): _pattern(langs[lang], lang) for axis, groups in GROUPS.items() for g, langs in groups.items()}
    for lang in ("en", "zh")
}


def mentions(text: str, lang: str) -> Counter[tuple[str, str]]:
    """How many times the text names each (axis, group); languages other than Chinese are read as English."""
    lang = "zh" if lang == "zh" else "en"
    out: Counter[tuple[str, str]] = Counter()
    for key, pattern in _PATTERNS[lang].items():
        n = len(pattern.findall(text))
        if n:
            out[key] = n
    if lang == "zh":
        out[("gender", "male")] += len(_ZH_MALE_PRONOUN.findall(text))
        out[("gender", "female")] += len(_ZH_FEMALE_PRONOUN.findall(text))
    return +out


def skew(a: int, b: int) -> float | None:
    """log2 of a's mentions over b's (+1 each): 0 in balance, +1 twice as many of a; None when neither occurs."""
    if a == 0 and b == 0:
        return None
    return round(math.log2((a + 1) / (b + 1)), 3)


@dataclass
class BalanceCounter:
    """Mentions gathered record by record (`add`): per group overall and per slice (task, generator), records that
    mention each group, and a score's sum over those records (e.g. toxicity) for its mean."""

    score_name: str | None = None
    mentions: Counter[str] = field(default_factory=Counter)
    records: Counter[str] = field(default_factory=Counter)
    by_slice: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    score_sum: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    score_n: Counter[str] = field(default_factory=Counter)
    total: int = 0

    def add(self, text: str, lang: str, slices: list[str], score: float | None = None) -> None:
        self.total += 1
        found = mentions(text, lang)
        for (axis, group), n in found.items():
            key = f"{axis}:{group}"
            self.mentions[key] += n
            self.records[key] += 1
            for s in slices:
                self.by_slice[s][key] += n
            if score is not None and not math.isnan(score):
                self.score_sum[key] += score
                self.score_n[key] += 1

    def figures(self) -> dict:
        """JSON-ready: per group mentions, records, share of records and mean score; pair skews overall and per
        slice."""
        groups = {
            key: {
                "mentions": self.mentions[key],
                "records": self.records[key],
                "share": round(self.records[key] / self.total, 4) if self.total else 0.0,
                "mean_score": round(self.score_sum[key] / self.score_n[key], 4) if self.score_n[key] else None,
            }
            for key in sorted(self.mentions)
        }
        skews = []
        for axis, a, b in PAIRS:
            ka, kb = f"{axis}:{a}", f"{axis}:{b}"
            slices = {
                s: {"a": counts[ka], "b": counts[kb], "skew": skew(counts[ka], counts[kb])}
                for s, counts in sorted(self.by_slice.items())
                if counts[ka] or counts[kb]
            }
            skews.append(
                {
                    "pair": f"{a}/{b}",
                    "a": self.mentions[ka],
                    "b": self.mentions[kb],
                    "skew": skew(self.mentions[ka], self.mentions[kb]),
                    "slices": slices,
                }
            )
        return {
            "records": self.total,
            "score": self.score_name,
            "groups": groups,
            "pairs": skews,
            "slices": {s: dict(c) for s, c in sorted(self.by_slice.items())},
        }
