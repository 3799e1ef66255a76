"""Language-aware text primitives shared by chunking, retrieval, checks, dedup, decontamination and operators.

CJK text has no spaces between words, so it is compared by characters; other scripts by lowercase words. Every
module that splits text into words uses `tokens` (and every one that compares normalised text uses `normalize`),
so two operators never disagree about what a word is. Both take fast paths: ASCII text (most text) needs neither
NFKC nor a regex, and text without CJK characters needs no per-character split; `tests/test_text.py` checks them
against a plain reference implementation of the rule on real English and Chinese corpora.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Sequence

CJK_RANGES = (
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x3040, 0x30FF),  # kana
    (0xAC00, 0xD7AF),  # hangul
    (0x20000, 0x2A6DF),
)
CJK_CLASS = "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in CJK_RANGES)  # for a regex character class
CJK = re.compile(f"[{CJK_CLASS}]")
CJK_PUNCTUATION = frozenset("，。！？；：、“”‘’（）《》【】—…·「」『』")
PUNCTUATION = frozenset(string.punctuation) | CJK_PUNCTUATION

WORD = re.compile(r"[^\W_]+", re.UNICODE)  # words; underscores split (__doc__ -> doc)
_CJK_OR_WORD = re.compile(f"(?=[^\\W_])[{CJK_CLASS}]|(?:(?![{CJK_CLASS}])[^\\W_])+")
_ASCII_WORDS = str.maketrans({i: (chr(i).lower() if chr(i).isalnum() else " ") for i in range(128)})
_PUNCT_TO_SPACE = str.maketrans({c: " " for c in PUNCTUATION})


def is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in CJK_RANGES)


def cjk_ratio(text: str) -> float:
    """Share of CJK characters among non-space characters."""
    chars = [c for c in text if not c.isspace()]
    return sum(is_cjk(c) for c in chars) / len(chars) if chars else 0.0


def normalize(text: str) -> str:
    """NFKC, lowercase, punctuation removed, whitespace collapsed: for exact-duplicate and span matching."""
    text = unicodedata.normalize("NFKC", text).lower().translate(_PUNCT_TO_SPACE)
    return " ".join(text.split())


def split_cjk(word: str) -> list[str]:
    """A word with every CJK character split off as its own token (runs of other characters stay together)."""
    if not CJK.search(word):
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
    """Lowercase word tokens (NFKC; runs of letters and digits, underscores split), every CJK character its own
    token."""
    if text.isascii():  # NFKC leaves ASCII unchanged and it has no CJK
        return text.translate(_ASCII_WORDS).split()
    text = unicodedata.normalize("NFKC", text).lower()
    return (_CJK_OR_WORD if CJK.search(text) else WORD).findall(text)


def text_length(text: str) -> int:
    """Length in words, counting each CJK character as one word."""
    return len(tokens(text))


# -- reversible tokens: for text generators (the sentence VAE) that decode tokens back into text ------------------

# A word (letters/digits, with inner apostrophes: "doesn't"), or any other single non-space character.
_REVERSIBLE_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|\S", re.UNICODE)
_CJK_PUNCTUATION_SPLIT = re.compile("([" + re.escape("".join(sorted(CJK_PUNCTUATION))) + "])")
_NO_SPACE_BEFORE = set(".,!?;:%)]}") | CJK_PUNCTUATION
_NO_SPACE_AFTER = set("([{$#@")
_JOINERS = set("-/_~")  # glued to both neighbours: "well-known", "700-1000", "and/or"
_QUOTES = {'"', "'"}  # straight quotes: open and close alternate
_NUM_SEPARATORS = {".", ",", ":"}  # glued between digits: "3.5", "1,000", "10:30"


def reversible_tokens(text: str) -> list[str]:
    """Lowercase tokens like `tokens` (NFKC; words; each CJK character a token) but keeping each punctuation
    character as a token and apostrophes inside words ("doesn't"), so that `detokenize` turns a token sequence
    (a text generator's output) back into text."""
    out: list[str] = []
    # NFKC, except that fullwidth CJK punctuation ("，" "：") is kept, so that Chinese decodes as written
    text = "".join(
        p if p in CJK_PUNCTUATION else unicodedata.normalize("NFKC", p) for p in _CJK_PUNCTUATION_SPLIT.split(text)
    )
    for tok in _REVERSIBLE_TOKEN.findall(text.lower()):
        out.extend(split_cjk(tok))
    return out


def _cjk_like(tok: str) -> bool:
    return len(tok) == 1 and (is_cjk(tok) or tok in CJK_PUNCTUATION)


def detokenize(toks: Sequence[str]) -> str:
    """Readable text from tokens: no spaces between CJK characters, none before closing or after opening
    punctuation, joiners and number separators glued, first letter of each sentence and the pronoun "I"
    capitalised (tokens are lowercase)."""
    parts: list[str] = []
    open_quote = False
    glue_next = False
    for i, tok in enumerate(toks):
        prev = toks[i - 1] if i else None
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        space = bool(parts) and not glue_next
        glue_next = False
        if tok in _QUOTES:
            if open_quote:
                space = False
            else:
                glue_next = True
            open_quote = not open_quote
        elif tok in _NO_SPACE_BEFORE or tok in _JOINERS:
            space = False
            if tok in _JOINERS:
                glue_next = True
            elif tok in _NUM_SEPARATORS and prev and nxt and prev.isdigit() and nxt.isdigit():
                # "3.5", "1,000", "10:30" but "1, 2, 3"
                glue_next = tok == "." or (tok == "," and len(nxt) == 3) or (tok == ":" and len(nxt) == 2)
        if tok in _NO_SPACE_AFTER:
            glue_next = True
        if prev is not None and (_cjk_like(tok) or _cjk_like(prev)):
            space = False
        if tok == "i" or tok.startswith(("i'", "i’")):
            tok = "I" + tok[1:]
        parts.append((" " if space else "") + tok)
    text = "".join(parts)
    # capitalise the first letter of the text and of each sentence
    return re.sub(r"(^|[.!?]\s+)([^\W\d_])", lambda m: m.group(1) + m.group(2).upper(), text)
