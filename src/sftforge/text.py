"""Language-aware text helpers shared by chunking, retrieval, answer checks and operators.

CJK text has no spaces between words, so it is compared by characters; other scripts by lowercase words.
"""

from __future__ import annotations

import re
import string
import unicodedata

_CJK_RANGES = (
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x3040, 0x30FF),  # kana
    (0xAC00, 0xD7AF),  # hangul
    (0x20000, 0x2A6DF),
)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)  # words; underscores split (__doc__ -> doc)
_SPACE = re.compile(r"\s+")
_PUNCT = set(string.punctuation) | set("，。！？；：、“”‘’（）《》【】—…·「」『』")


def is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def cjk_ratio(text: str) -> float:
    """Share of CJK characters among non-space characters."""
    chars = [c for c in text if not c.isspace()]
    return sum(is_cjk(c) for c in chars) / len(chars) if chars else 0.0


def normalize(text: str) -> str:
    """NFKC, lowercase, whitespace collapsed, punctuation removed: for exact-duplicate and span matching."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if c in _PUNCT else c for c in text)
    return _SPACE.sub(" ", text).strip()


def split_cjk(word: str) -> list[str]:
    """A word with every CJK character split off as its own token (runs of other characters stay together)."""
    if not any(is_cjk(c) for c in word):
        return [word]
    out: list[str] = []
    run = ""
    for c in word:
        if is_cjk(c):
            if run:
                out.append(run)
                run = ""
            out.append(c)
        else:
            run += c
    if run:
        out.append(run)
    return out


def tokens(text: str) -> list[str]:
    """Lowercase word tokens, with every CJK character its own token."""
    return [t for word in _WORD.findall(unicodedata.normalize("NFKC", text).lower()) for t in split_cjk(word)]


def text_length(text: str) -> int:
    """Length in words, counting each CJK character as one word."""
    return len(tokens(text))
