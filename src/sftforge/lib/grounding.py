"""Is a text grounded in another? Content-word support, sentences and spans, language-aware and pure.

`support(passage, text)` is the share of the text's content words (English stems, CJK characters; function words
left out) that occur in the passage: the cheap, measurable part of "the passage says this". Generators, checks
and the KG verbaliser use it; `sentence_spans` and `find_span` locate sentences and answers in a passage.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from sftforge.lib.text import is_cjk, tokens

# Function words carry no evidence that an answer is grounded.
_STOP = frozenset(
    "a an the of to in on at for by with from and or but is are was were be been being it its this that these those "
    "as if than then so such not no do does did has have had can could will would should may might must which who "
    "whom whose what when where why how there their they them he she his her we our you your i me my "
    # words that questions use to point at their source, not evidence of grounding
    "text passage according say says said mentioned described state states".split()
)
_PUNCT_EDGES = " \t\n\"'`“”‘’«».,;:!?。，；：！？、()（）[]【】"


def find_span(passage: str, answer: str) -> tuple[int, int] | None:
    """Character span of `answer` in `passage`: exact, then case- and whitespace-insensitive."""
    answer = answer.strip(_PUNCT_EDGES)
    if not answer:
        return None
    pos = passage.find(answer)
    if pos >= 0:
        return pos, pos + len(answer)
    parts = [re.escape(p) for p in unicodedata.normalize("NFKC", answer).split()]
    if not parts:
        return None
    m = re.search(r"\s+".join(parts), unicodedata.normalize("NFKC", passage), re.IGNORECASE)
    if m and len(unicodedata.normalize("NFKC", passage)) == len(passage):
        return m.start(), m.end()
    return None


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def _stems(words: list[str]) -> list[str]:
    """English words reduced to their stems (becomes/become, docstrings/docstring); CJK characters unchanged."""
    return _stemmer().stemWords(words)


def _content_stems(text: str) -> list[str]:
    """Stems of a text's words that are not stop words or single Latin letters, and its CJK characters."""
    want = [t for t in tokens(text) if t not in _STOP and not (len(t) == 1 and not is_cjk(t) and not t.isdigit())]
    return _stems(want)


def content_stems(text: str) -> set[str]:
    """The content tokens of a text, as `support` counts them."""
    return set(_content_stems(text))


def support(passage: str, answer: str) -> float:
    """Share of the answer's content tokens (CJK: characters; other words: stems) that occur in the passage."""
    have = set(_stems(tokens(passage)))
    want = _content_stems(answer)
    if not want:
        return 0.0
    return sum(t in have for t in want) / len(want)


_PARAGRAPH = re.compile(r"\n[ \t]*\n")
# A sentence ends at . ! ? (then closing quotes or brackets) before whitespace and a capital, digit or opening
# mark, so "e.g. this" stays whole; CJK sentence ends need no space.
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z0-9\"'(\[`*:])|(?<=[。！？])")


# Words that end in a period without ending the sentence ("Brown v. Board", "Dr. Smith", "U.S. Army"), and
# initials ("J. R. R. Tolkien"): a break after one of them is not a sentence end.
_ABBREVIATIONS = frozenset(
    "v vs mr mrs ms dr st mt jr sr no nos fig figs gen col lt capt sgt prof rev hon gov sen rep approx ca cf "
    "e.g i.e u.s u.k a.d b.c p.m a.m".split()
)
_WORD_BEFORE_PERIOD = re.compile(r"(?:^|[\s(\[\"'])([A-Za-z](?:\.?[A-Za-z])*)\.$")


def _ends_sentence(passage: str, cut: int) -> bool:
    """False where the period before `cut` closes an abbreviation or an initial, not a sentence."""
    head = passage[max(0, cut - 12) : cut].rstrip("\"')]")
    if not head.endswith("."):
        return True
    m = _WORD_BEFORE_PERIOD.search(head)
    if m is None:
        return True
    word = m.group(1)
    return not (word.lower() in _ABBREVIATIONS or (len(word) == 1 and word.isupper() and word != "I"))


def sentence_spans(passage: str) -> list[tuple[int, int]]:
    """Character spans of the passage's sentences, whitespace-trimmed. Single line breaks (hard-wrapped text)
    do not end a sentence; blank lines do; nor does the period of an abbreviation or an initial."""
    spans = []
    pos = 0
    bounds = [(m.start(), m.end()) for m in _PARAGRAPH.finditer(passage)] + [(len(passage), len(passage))]
    for para_end, next_start in bounds:
        cuts = [
            (m.start(), m.end())
            for m in _SENTENCE_BREAK.finditer(passage, pos, para_end)
            if _ends_sentence(passage, m.start())
        ]
        start = pos
        for cut_start, cut_end in cuts + [(para_end, para_end)]:
            s, e = start, cut_start
            while s < e and passage[s].isspace():
                s += 1
            while e > s and passage[e - 1].isspace():
                e -= 1
            if e - s >= 2:
                spans.append((s, e))
            start = cut_end
        pos = next_start
    return spans


def snap_to_sentence(passage: str, answer: str) -> tuple[tuple[int, int] | None, float]:
    """The passage sentence that best supports a paraphrased answer, and that support (0 to 1)."""
    best, best_score = None, 0.0
    for s, e in sentence_spans(passage):
        score = support(passage[s:e], answer)
        if score > best_score:
            best, best_score = (s, e), score
    return best, best_score
