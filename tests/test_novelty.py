"""ROUGE-L novelty filter (sftforge.lib.novelty): rouge_l_f against hand-computed values and the rouge-score
package, Chinese by characters, and NoveltyIndex's decisions against the exhaustive loop."""

from __future__ import annotations

import random

import pytest

from sftforge.lib import novelty as NV
from sftforge.lib.novelty import Novelty, NoveltyIndex, lcs_length, rouge_l_f, rouge_tokens

# ---------------------------------------------------------------------------------------------------- reference


def dp_lcs(a, b) -> int:
    """Textbook O(|a||b|) LCS, independent of the module's bit-parallel one."""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def ref_f(a, b) -> float:
    """rouge_scorer._score_lcs's F, written out: target a, prediction b."""
    if not a or not b:
        return 0.0
    lcs = dp_lcs(a, b)
    p, r = lcs / len(b), lcs / len(a)
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def brute_force(texts, threshold, tokenize=rouge_tokens):
    """The Self-Instruct loop: score against every pool entry, keep if the max is <= threshold."""
    pool: list[list[str]] = []
    out = []
    for text in texts:
        toks = list(tokenize(text))
        scores = [ref_f(toks, p) for p in pool]
        best = max(scores, default=0.0)
        novel = best <= threshold
        out.append((novel, best, scores.index(best) if scores and not novel else None))
        if novel:
            pool.append(toks)
    return out


# ---------------------------------------------------------------------------------------------------- rouge_l_f


def test_hand_computed_values():
    a = "the cat sat on the mat".split()
    b = "the cat on the mat".split()
    assert lcs_length(a, b) == 5
    assert rouge_l_f(a, b) == pytest.approx(10 / 11)  # P = 5/5, R = 5/6
    assert rouge_l_f(list("abcd"), list("bda")) == pytest.approx(4 / 7)  # LCS "bd"
    assert rouge_l_f(list("abcdef"), list("fedcba")) == pytest.approx(2 / 12)  # LCS of a reversal: 1
    assert rouge_l_f(["x", "y"], ["x"]) == pytest.approx(2 / 3)


def test_identical_disjoint_empty():
    a = "write a poem about the sea".split()
    assert rouge_l_f(a, a) == 1.0
    assert rouge_l_f(a, "list three prime numbers".split()) == 0.0
    assert rouge_l_f([], a) == 0.0
    assert rouge_l_f(a, []) == 0.0
    assert rouge_l_f([], []) == 0.0
    assert lcs_length([], a) == 0


def test_rouge_tokens_are_rouge_scores_default_tokens():
    # lowercase, maximal runs of [a-z0-9] (underscores and accented letters split/dropped), no stemming
    assert rouge_tokens("Under_score, x-y 2nd café's RUNNING dogs") == [
        "under",
        "score",
        "x",
        "y",
        "2nd",
        "caf",
        "s",
        "running",
        "dogs",
    ]
    assert rouge_tokens("") == [] and rouge_tokens(" ?! ") == []


def test_symmetric_and_exact_float():
    # the same float operations as rouge-score, so equality (not approx) with the written-out formula
    rng = random.Random(1)
    for _ in range(300):
        a = [rng.randrange(6) for _ in range(rng.randrange(0, 25))]
        b = [rng.randrange(6) for _ in range(rng.randrange(0, 25))]
        assert rouge_l_f(a, b) == ref_f(a, b) == rouge_l_f(b, a)


def test_lcs_matches_dp_including_long_sequences():
    rng = random.Random(2)
    for _ in range(200):
        k = rng.choice([2, 4, 30])
        a = [rng.randrange(k) for _ in range(rng.randrange(0, 100))]
        b = [rng.randrange(k) for _ in range(rng.randrange(0, 100))]
        assert lcs_length(a, b) == dp_lcs(a, b)


SEEDS = [
    "Is there anything I can eat for a breakfast that doesn't include eggs, yet includes protein?",
    "Generate a one-sentence description for each of the following people.",
    "Describe a situation in which the given stereotype can harm you.",
    "Translate this sentence into any Arabic dialect: “The beautiful ones are not yet born”",
    "Tell me why this joke’s not funny.",
    "Write a Python function (def f(x): ...) that returns x**2 + 1, in 3 lines!",
    "  MIXED case, UPPER-case & under_scores; 2nd-place 100%  ",
    "Café, naïve, résumé — accents.",
]


def test_matches_rouge_score_package():
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    rng = random.Random(3)
    texts = SEEDS + [" ".join(rng.sample(s.split(), len(s.split()))) for s in SEEDS]
    texts += [" ".join(rng.choice(s.split()) for _ in range(rng.randint(1, 12))) for s in SEEDS * 2]
    for a in texts:
        assert rouge_tokens(a) == scorer._tokenizer.tokenize(a)
        for b in texts:
            assert rouge_l_f(rouge_tokens(a), rouge_tokens(b)) == scorer.score(a, b)["rougeL"].fmeasure, (a, b)


def test_chinese_by_characters():
    assert rouge_tokens("我喜欢猫") == ["我", "喜", "欢", "猫"]
    assert rouge_tokens("用Python写一个函数。") == ["用", "python", "写", "一", "个", "函", "数"]
    assert rouge_l_f(rouge_tokens("我喜欢猫"), rouge_tokens("我喜欢狗")) == pytest.approx(0.75)
    a, b = rouge_tokens("请写一首关于夏天的诗"), rouge_tokens("请写一首关于冬天的诗")
    assert rouge_l_f(a, b) == pytest.approx(0.9)
    words = NV.TOKENIZERS["words"]
    assert rouge_l_f(words("请写一首关于夏天的诗"), words("请写一首关于冬天的诗")) == pytest.approx(0.9)

    index = NoveltyIndex(0.7)
    assert index.check_and_add("请写一首关于夏天的诗").novel
    r = index.check_and_add("请写一首关于冬天的诗")
    assert (r.novel, r.match) == (False, 0) and r.score == pytest.approx(0.9)
    assert index.check_and_add("给出下面词语的同义词").novel
    assert len(index) == 2


# ---------------------------------------------------------------------------------------------------- the index


VERBS = ["Write", "Compose", "Draft", "Create", "Give me", "Generate"]
THINGS = ["a poem", "a short story", "an email", "a summary", "a list of ideas", "a joke", "a haiku", "a tweet"]
TOPICS = [
    "about the sea",
    "about winter",
    "for my boss",
    "about cats and dogs",
    "on climate change",
    "about the history of Rome",
    "for a birthday party",
    "about learning to code",
]
EXTRAS = [
    "",
    "in three sentences",
    "for children",
    "with a title",
    "using simple words",
    "in the style of the the the a a of",
    "and explain it",
]


def template_texts(n: int, seed: int) -> list[str]:
    """Short instructions from templates, half of them edits of earlier ones: many near-duplicates."""
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(n):
        if out and rng.random() < 0.5:
            w = rng.choice(out).split()
            for _ in range(rng.randint(1, 3)):
                op = rng.random()
                if op < 0.3 and len(w) > 1:
                    del w[rng.randrange(len(w))]
                elif op < 0.6:
                    w.insert(rng.randint(0, len(w)), rng.choice(["the", "a", "of", "please", "now", "sea"]))
                elif op < 0.8:
                    w[rng.randrange(len(w))] = rng.choice(rng.choice(TOPICS).split())
                elif len(w) > 1:
                    i = rng.randrange(len(w) - 1)
                    w[i], w[i + 1] = w[i + 1], w[i]
            out.append(" ".join(w))
        else:
            out.append(
                " ".join(
                    x for x in (rng.choice(VERBS), rng.choice(THINGS), rng.choice(TOPICS), rng.choice(EXTRAS)) if x
                )
                + rng.choice([".", "!", "", "?"])
            )
    return out


def repetitive_texts(n: int, seed: int) -> list[str]:
    """Tiny vocabulary, heavy repetition: long posting lists, skipped keys, tokens repeated within a text."""
    rng = random.Random(seed)
    return [" ".join(rng.choice("the a of to x y".split()) for _ in range(rng.randint(1, 14))) for _ in range(n)]


def run_index(texts, threshold, **kw):
    index = NoveltyIndex(threshold, **kw)
    return index, [index.check_and_add(t) for t in texts]


def assert_same_as_brute_force(texts, threshold, **kw):
    index, got = run_index(texts, threshold, **kw)
    want = brute_force(texts, threshold, **({"tokenize": index.tokenize} if kw else {}))
    for text, g, (novel, best, match) in zip(texts, got, want):
        assert isinstance(g, Novelty)
        assert g.novel == novel, (text, g, best)
        if not novel:  # exact best score and the first pool entry reaching it
            assert (g.score, g.match) == (best, match), (text, g, best, match)
        else:
            assert g.score <= min(best, threshold) + 1e-12
    kept = sum(novel for novel, _, _ in want)
    assert len(index) == kept
    return kept, index, pairs(want)


def pairs(decisions) -> int:
    """(text, pool entry) pairs the exhaustive loop scores."""
    total = pool = 0
    for novel, _, _ in decisions:
        total += pool
        pool += novel
    return total


@pytest.mark.parametrize("threshold", [0.5, 0.7])
def test_index_decisions_equal_brute_force_on_templates(threshold):
    texts = template_texts(300, seed=int(threshold * 10))
    kept, index, n_pairs = assert_same_as_brute_force(texts, threshold)
    assert 0.1 * len(texts) < kept < 0.9 * len(texts)  # both kinds of decision are exercised
    assert index.comparisons < 0.2 * n_pairs  # and the prefilter does prune


@pytest.mark.parametrize("threshold", [0.0, 0.5, 0.7, 1.0])
def test_index_decisions_equal_brute_force_on_repetitive_texts(threshold):
    assert_same_as_brute_force(repetitive_texts(200, seed=7), threshold)


def test_index_chinese_equal_brute_force():
    rng = random.Random(5)
    heads = ["请写一首", "请给出", "帮我写一段", "用三句话描述", "解释"]
    topics = ["关于夏天的诗", "关于冬天的诗", "下面词语的同义词", "人工智能的历史", "如何学习编程", "猫和狗的区别"]
    tails = ["", "。", "，要简短", "，给孩子看"]
    texts = [rng.choice(heads) + rng.choice(topics) + rng.choice(tails) for _ in range(150)]
    kept, _, _ = assert_same_as_brute_force(texts, 0.7)
    assert 5 < kept < 100


def test_threshold_boundary_uses_rouge_scores_floats():
    # F is exactly 0.7 as a fraction in both cases; rouge-score's float is 0.7 for 10/10 tokens but
    # 0.7000000000000001 for 8/12, so the first is novel at 0.7 and the second is not, as in the naive loop.
    index = NoveltyIndex(0.7, texts=["a b c d e f g x y z"])
    assert index.is_novel("a b c d e f g h i j").novel
    index = NoveltyIndex(0.7, texts=["a b c d e f g x y z w v"])
    r = index.is_novel("a b c d e f g h")
    assert not r.novel and r.score == ref_f(list("abcdefgh"), "a b c d e f g x y z w v".split()) > 0.7
    # exactly at the threshold is novel (rejection is strictly above)
    assert NoveltyIndex(0.5, texts=["a c"]).is_novel("a b") == Novelty(True, 0.5, 0)


def test_pool_grows_and_is_novel_does_not_add():
    index = NoveltyIndex(0.7, texts=["Write a poem about the sea."])
    assert len(index) == 1
    r = index.is_novel("Write a poem about the sea!")
    assert r == Novelty(False, 1.0, 0) and len(index) == 1
    assert index.check_and_add("List three prime numbers.").novel and len(index) == 2
    assert index.texts[1] == "List three prime numbers."
    r = index.check_and_add("List three prime numbers, please.")
    assert (r.novel, r.match) == (False, 1) and len(index) == 2
    assert index.add("anything at all") == 2 and len(index) == 3
    assert index.is_novel("Anything at all!").match == 2


def test_empty_text():
    index = NoveltyIndex(0.7)
    assert index.is_novel("") == Novelty(True, 0.0, -1)  # empty pool
    index.add("Write a poem.")
    assert index.is_novel("") == Novelty(True, 0.0, -1)
    assert index.is_novel("?!  ...") == Novelty(True, 0.0, -1)  # no tokens
    assert index.check_and_add("").novel and len(index) == 2  # ROUGE-L 0 against everything: novel, kept
    assert index.check_and_add("Write a poem!").novel is False
    assert index.is_novel("brand new words").novel


def test_scores_are_exhaustive():
    texts = template_texts(60, seed=11)
    index = NoveltyIndex(0.7)
    for t in texts:
        index.add(t)
    q = texts[0] + " today"
    want = [ref_f(rouge_tokens(q), rouge_tokens(t)) for t in texts]
    assert index.scores(q).tolist() == want


def test_custom_tokenizer_and_validation():
    index = NoveltyIndex(0.5, tokenizer=str.split)
    assert index.check_and_add("A b").novel
    assert index.check_and_add("a b").novel  # case-sensitive tokens: "A" != "a", F = 0.5
    assert not index.check_and_add("a b c").novel
    with pytest.raises(ValueError):
        NoveltyIndex(1.5)
    with pytest.raises(ValueError):
        NoveltyIndex(0.7, tokenizer="nope")
