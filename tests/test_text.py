"""The one tokenizer and normaliser (`sftforge.lib.text`) against a plain reference implementation of their rule,
written here character by character, on hand-made edge cases, random strings and the shipped corpora (PEPs, XQuAD in
English and Chinese, the product FAQ). Every part that splits words (retrieval, checks, MinHash, decontamination) relies on it."""

from __future__ import annotations

import random
import string
import unicodedata
from pathlib import Path

import pytest

from sftforge.lib import minhash as M
from sftforge.lib.text import normalize, split_cjk, tokens

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"

_CJK = [(0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x3040, 0x30FF), (0xAC00, 0xD7AF), (0x20000, 0x2A6DF)]
_PUNCT = set(string.punctuation) | set("，。！？；：、“”‘’（）《》【】—…·「」『』")


def reference_tokens(text: str) -> list[str]:
    """The rule, spelled out: NFKC, lowercase; a token is a maximal run of letters and digits (not `_`) without CJK
    characters, or one CJK character."""
    out: list[str] = []
    run = ""
    for ch in unicodedata.normalize("NFKC", text).lower():
        cjk = any(lo <= ord(ch) <= hi for lo, hi in _CJK)
        if cjk and ch.isalnum():
            if run:
                out.append(run)
                run = ""
            out.append(ch)
        elif ch.isalnum() and ch != "_":
            run += ch
        elif run:
            out.append(run)
            run = ""
    if run:
        out.append(run)
    return out


def reference_normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join("".join(" " if c in _PUNCT else c for c in text).split())


TOKEN_CASES = [
    "Hello, World! It's 2024; e-mail me@example.com",
    "snake_case __doc__ CamelCase ALLCAPS x86_64",
    "Crème brûlée, naïve café — „quotes“ and ‘these’",
    "ﬁnancial ｆｕｌｌｗｉｄｔｈ Ⅻ ²³",  # NFKC changes these
    "我爱北京天安门，天安门上太阳升。",
    "混合 text 和 English123词语 mixed",
    "カタカナ・ひらがな と 한국어 텍스트",
    "tab\tnew\nline\u00a0nbsp\u3000ideographic space",
    "",
    "   ",
    "!!!",
]


@pytest.mark.parametrize("text", TOKEN_CASES)
def test_tokens_and_normalize_follow_the_rule(text):
    assert tokens(text) == reference_tokens(text)
    assert normalize(text) == reference_normalize(text)


def test_tokens_on_hand_checked_examples():
    assert tokens("snake_case __doc__ x86_64") == ["snake", "case", "doc", "x86", "64"]
    assert tokens("我爱Python3和ｆｕｌｌ") == ["我", "爱", "python3", "和", "full"]
    assert normalize("Hello,   WORLD!\n(it's)") == "hello world it s"
    assert split_cjk("abc中文d") == ["abc", "中", "文", "d"]


def test_tokens_on_random_strings():
    rng = random.Random(0)
    pool = [chr(c) for c in [*range(32, 127), *range(0x3000, 0x3100), *range(0x4E00, 0x4E30), *range(0xAC00, 0xAC08)]]
    pool += ["é", "\u0301", "’", "ﬁ", "Ａ", "１", "Ⅻ", "_", "\U00020001", "😀", "・", "ー", "々", "\u00a0"]
    for _ in range(5000):
        s = "".join(rng.choice(pool) for _ in range(rng.randint(0, 40)))
        assert tokens(s) == reference_tokens(s), s
        assert normalize(s) == reference_normalize(s), s


def _corpus_texts() -> list[str]:
    """The shipped example corpora (English PEPs, Chinese XQuAD articles, the product FAQ in both languages), by
    paragraph."""
    files = sorted((EXAMPLES / "peps").glob("*.rst")) + sorted((EXAMPLES / "xquad_zh").glob("*.txt"))
    files += sorted((EXAMPLES / "product_faq").rglob("*.md"))
    return [para for f in files for para in f.read_text(encoding="utf-8").split("\n\n") if para.strip()]


def test_tokens_on_real_corpora_and_minhash_byte_path():
    texts = _corpus_texts()
    assert sum(map(len, texts)) > 100_000
    hasher = M.MinHasher(num_perm=16, seed=1, unit="word", n=1)
    for text in texts:
        assert tokens(text) == reference_tokens(text)
        assert normalize(text) == reference_normalize(text)
    # MinHash hashes ASCII text from its bytes without calling `tokens`: the same token counts per text
    _, counts = hasher._token_hashes(texts)
    assert counts.tolist() == [len(reference_tokens(t)) for t in texts]
