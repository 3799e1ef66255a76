"""Does an answer answer its question? A round trip: rank the passage's sentences as answers to the question and
see where the answer's sentence lands.

A generator that writes a question for a chosen sentence (answer-first QA) can write one that the sentence does not
answer ("What is the purpose of the `with` statement?" for a sentence that only mentions `with`); the span check
cannot see it, because the answer is a span by construction. Ranking every sentence of the passage against the
question, independently of the model that wrote it, can: when another sentence answers the question better, the
pair is rejected. Cheap, well-understood signals, each normalised within the passage (z-scores) and summed with
weights per language:

- `lexical`: the IDF-weighted share of the question's content terms the sentence holds (English stems; Chinese
  characters and character bigrams), IDF taken over the passage's sentences;
- `bm25`: BM25 of the sentence for the question, over the passage's sentences (`sftforge.lib.bm25`);
- `answer_type`: 1 where the question asks for a number or date (how many, when, 多少, 哪一年...) and the sentence
  holds a number the question lacks, or asks who (who, 谁) and the sentence names someone the question does not;
- `context`: `lexical` of a sentence that opens by referring back ("She gave birth to a son, Jochi..." after
  "...Börte's marriage to Temüjin..."; a pronoun, a demonstrative, 他/她/这/该...) read after the sentence before
  it: it answers questions that name what the neighbour introduced. Other sentences keep their own `lexical`, so
  a sentence is not lifted by merely following the one a question was written from;
- `novel`: how many content terms the sentence adds to the question (a sentence that only restates the question
  cannot be its answer);
- `maxsim`: late interaction over MiniLM token vectors (BERTScore, Zhang et al. 2020; ColBERT's MaxSim, Khattab and
  Zaharia 2020): each question token's best cosine with the sentence's tokens, IDF-weighted. It carries the
  paraphrases the lexical signals miss ("dealt with by whom" / "reserved to"). English only: the packaged MiniLM
  was trained on English, and on Chinese it adds nothing (measured).

The weights were chosen on XQuAD's human-written questions (`benchmarks/answer_check.py` shows the grid and a
cross-fitted figure); the reference LM's likelihood of each sentence was measured too and left out: under the
135M bundled model it picked the gold sentence a quarter of the time, no better than chance.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from sftforge.lib.bm25 import bm25_scores, cjk_terms
from sftforge.lib.grounding import content_stems
from sftforge.lib.text import is_cjk, tokens

SIGNALS = ("lexical", "context", "bm25", "answer_type", "novel", "maxsim")
WEIGHTS: dict[str, dict[str, float]] = {
    "en": {"lexical": 0.0, "context": 0.2, "bm25": 0.2, "answer_type": 0.2, "novel": 0.0, "maxsim": 0.4},
    "zh": {"lexical": 0.3, "context": 0.0, "bm25": 0.3, "answer_type": 0.3, "novel": 0.1, "maxsim": 0.0},
}
DEFAULT_MIN_MARGIN = 0.75  # z-score units between the answer's sentence and the best other one

# Token vectors of texts: [(vectors [tokens, dim] L2-normalised, tokens)], as `Embedder.token_vectors` gives them.
TokenVectors = Callable[[list[str]], list[tuple[np.ndarray, list[str]]]]


@dataclass(frozen=True, slots=True)
class Ranking:
    """The passage's sentences ranked as answers to one question, and where the chosen one landed."""

    sentences: list[str]
    scores: np.ndarray  # combined score per sentence (weighted z-scores)
    signals: dict[str, np.ndarray]  # each signal's raw value per sentence
    chosen: int  # index of the answer's sentence
    rank: int  # 1 = best
    margin: float  # the chosen sentence's score minus the best other sentence's

    @property
    def runner_up(self) -> int:
        """The best sentence other than the chosen one."""
        others = [i for i in range(len(self.sentences)) if i != self.chosen]
        return max(others, key=lambda i: self.scores[i])

    def evidence(self, limit: int = 3) -> str:
        """The best-ranked sentences with their scores, the chosen one marked: what a reviewer reads."""
        return evidence(self.sentences, self.scores, {self.chosen}, limit)


def evidence(sentences: list[str], scores: np.ndarray, marked: set[int], limit: int, width: int = 90) -> str:
    """The `limit` best-scored sentences (and every marked one), best first, each with its score, the marked ones
    (the answer's) starred and every sentence clipped to `width` characters."""
    order = sorted(range(len(sentences)), key=lambda i: -scores[i])[:limit]
    order += sorted(marked - set(order), key=lambda i: -scores[i])
    parts = []
    for i in order:
        s = " ".join(sentences[i].split())
        s = s if len(s) <= width else s[: width - 1] + "…"
        parts.append(f"{'*' if i in marked else ''}{scores[i]:+.2f} {s!r}")
    return "; ".join(parts)


def _bigrams(text: str) -> set[str]:
    return {t for t in cjk_terms(text) if len(t) == 2 and all(is_cjk(c) for c in t)}


def _terms(text: str, lang: str) -> set[str]:
    """Content terms: English stems less function words; Chinese characters and character bigrams."""
    terms = content_stems(text)
    return terms | _bigrams(text) if lang == "zh" else terms


def _idf(term_sets: list[set[str]], terms: set[str]) -> dict[str, float]:
    n = len(term_sets)
    return {t: math.log1p((n - (df := sum(t in s for s in term_sets)) + 0.5) / (df + 0.5)) for t in terms}


def lexical(question: str, sentences: list[str], lang: str) -> np.ndarray:
    """IDF-weighted share of the question's content terms held by each sentence."""
    sets = [_terms(s, lang) for s in sentences]
    q = _terms(question, lang)
    idf = _idf(sets, q)
    total = sum(idf.values())
    if not total:
        return np.zeros(len(sentences))
    return np.array([sum(idf[t] for t in q if t in s) / total for s in sets])


_EN_REFERS_BACK = re.compile(
    r"^\W*(he|she|it|they|his|her|its|their|this|these|those|that|such|there|both|each|another|other|after|then|"
    r"however|thus|also|the latter|the former|in addition)\b",
    re.I,
)
_ZH_REFERS_BACK = re.compile(r"^\W*(他|她|它|这|该|其|此|那|后来|随后|然而|因此|同时|并且)")


def context(question: str, sentences: list[str], lang: str) -> np.ndarray:
    """`lexical` of each sentence, read after the one before it where it opens by referring back."""
    refers = _ZH_REFERS_BACK if lang == "zh" else _EN_REFERS_BACK
    joined = [(sentences[i - 1] + " " if i and refers.match(s) else "") + s for i, s in enumerate(sentences)]
    return lexical(question, joined, lang)


def novel(question: str, sentences: list[str], lang: str) -> np.ndarray:
    """log(1 + content terms of the sentence that the question lacks): what the sentence adds."""
    q = _terms(question, lang) if lang != "zh" else _bigrams(question)
    return np.array([math.log1p(len((_terms(s, lang) if lang != "zh" else _bigrams(s)) - q)) for s in sentences])


_EN_NUMBER_Q = re.compile(
    r"\b(how (many|much|old|long|far|large|big|tall|high|often)|when|what (year|century|decade|date|percentage|age|"
    r"time)|which (year|century|decade)|in what year|what is the (population|number))\b",
    re.I,
)
_EN_WHO_Q = re.compile(r"\b(who|whom|whose)\b", re.I)
_ZH_NUMBER_Q = re.compile(
    r"多少|几|哪一年|哪年|何时|什么时候|哪个世纪|哪一天|年份|多久|多长|多大|多高|多远|百分之|哪一时期"
)
_ZH_WHO_Q = re.compile(r"谁")
_NUMBER_WORDS = frozenset(
    "one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty hundred thousand million "
    "billion dozen half first second third".split()
)
_ZH_NUMBER = re.compile(r"[0-9０-９一二三四五六七八九十百千万亿两]")
_EN_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+")
_ZH_NAME = re.compile(r"[\u4e00-\u9fff]+·[\u4e00-\u9fff·]+|[A-Za-z]{2,}")


def answer_type(question: str, sentence: str, lang: str) -> float:
    """1 if the sentence holds the kind of thing the question asks for (a number or date; a name) and the question
    does not hold it already; 0 otherwise, and for questions of other kinds."""
    if lang == "zh":
        if _ZH_NUMBER_Q.search(question):
            return float(any(c not in question for c in _ZH_NUMBER.findall(sentence)))
        if _ZH_WHO_Q.search(question):
            return float(any(n not in question for n in _ZH_NAME.findall(sentence)))
        return 0.0
    if _EN_NUMBER_Q.search(question):
        asked = set(tokens(question))
        return float(any((t[0].isdigit() or t in _NUMBER_WORDS) and t not in asked for t in tokens(sentence)))
    if _EN_WHO_Q.search(question):
        lowered = question.lower()
        return float(any(name.lower() not in lowered for name in _EN_NAME.findall(sentence)))
    return 0.0


_FUNCTION_PIECES = frozenset(
    "a an the of to in on at for by with from and or but is are was were be been being it its this that what which "
    "who when where why how did does do".split()
)


def maxsim(
    question: str, sentences: list[str], vectors: TokenVectors, cache: dict[str, tuple[np.ndarray, list[str]]]
) -> np.ndarray:
    """Each question token's best cosine with a sentence's tokens, averaged with IDF weights over the passage's
    sentences (function words and punctuation left out). `cache` keeps sentence vectors across questions."""
    missing = [s for s in dict.fromkeys([question, *sentences]) if s not in cache]
    if missing:
        cache.update(zip(missing, vectors(missing)))

    def content(text: str) -> tuple[np.ndarray, list[str]]:
        v, toks = cache[text]
        keep = [
            k
            for k, t in enumerate(toks)
            if t.lstrip("#").lower() not in _FUNCTION_PIECES and any(c.isalnum() for c in t)
        ]
        return v[keep], [toks[k] for k in keep]

    qv, qt = content(question)
    sents = [content(s) for s in sentences]
    if not qt:
        return np.zeros(len(sentences))
    idf = _idf([set(st) for _, st in sents], set(qt))
    w = np.array([idf[t] for t in qt])
    out = np.zeros(len(sentences))
    for i, (sv, _) in enumerate(sents):
        if len(sv):
            out[i] = float(((qv @ sv.T).max(axis=1) * w).sum() / max(w.sum(), 1e-9))
    return out


def zscores(x: np.ndarray) -> np.ndarray:
    """Values as standard scores within their passage (all zero where they do not vary)."""
    sd = x.std()
    return (x - x.mean()) / sd if sd > 1e-12 else np.zeros_like(x)


def combine(signals: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """The weighted sum of the signals' z-scores: one score per sentence."""
    total = np.zeros(len(next(iter(signals.values()))) if signals else 0)
    for name, values in signals.items():
        if weights.get(name):
            total = total + weights[name] * zscores(values)
    return total


class AnswerRanker:
    """Ranks a passage's sentences as answers to a question (see the module docstring for the signals).

    `vectors` gives MiniLM token vectors (`Embedder.token_vectors`); without it the `maxsim` signal is left out
    and its weight spread over the others in proportion."""

    def __init__(
        self, lang: str, vectors: TokenVectors | None = None, weights: Mapping[str, float] | None = None
    ) -> None:
        self.lang = "zh" if lang == "zh" else "en"
        w = dict(weights if weights is not None else WEIGHTS[self.lang])
        unknown = set(w) - set(SIGNALS)
        if unknown:
            raise ValueError(f"unknown responsiveness signals {sorted(unknown)}; known: {', '.join(SIGNALS)}")
        if vectors is None and w.get("maxsim"):
            rest = sum(v for k, v in w.items() if k != "maxsim") or 1.0
            scale = (rest + w["maxsim"]) / rest
            w = {k: (0.0 if k == "maxsim" else v * scale) for k, v in w.items()}
        self.weights = w
        self.vectors = vectors
        self._cache: dict[str, tuple[np.ndarray, list[str]]] = {}

    def signals(self, question: str, sentences: list[str]) -> dict[str, np.ndarray]:
        """Each signal with a non-zero weight, raw, per sentence."""
        w, lang = self.weights, self.lang
        out: dict[str, np.ndarray] = {}
        if w.get("lexical"):
            out["lexical"] = lexical(question, sentences, lang)
        if w.get("context"):
            out["context"] = context(question, sentences, lang)
        if w.get("bm25"):
            out["bm25"] = bm25_scores(sentences, question, lang).astype(float)
        if w.get("answer_type"):
            out["answer_type"] = np.array([answer_type(question, s, lang) for s in sentences])
        if w.get("novel"):
            out["novel"] = novel(question, sentences, lang)
        if w.get("maxsim") and self.vectors is not None:
            if len(self._cache) > 20_000:
                self._cache.clear()
            out["maxsim"] = maxsim(question, sentences, self.vectors, self._cache)
        return out

    def scores(self, question: str, sentences: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The combined score of each sentence (weighted z-scores within the passage) and the raw signals."""
        signals = self.signals(question, sentences)
        return (combine(signals, self.weights) if signals else np.zeros(len(sentences))), signals

    def rank(self, question: str, sentences: list[str], chosen: int) -> Ranking:
        """Where sentence `chosen` ranks among `sentences` as the answer to `question` (two sentences at least)."""
        if len(sentences) < 2:
            raise ValueError("ranking needs a passage of two sentences or more")
        scores, signals = self.scores(question, sentences)
        best_other = max(float(scores[i]) for i in range(len(sentences)) if i != chosen)
        rank = 1 + int((scores > scores[chosen] + 1e-9).sum())
        return Ranking(sentences, scores, signals, chosen, rank, float(scores[chosen]) - best_other)
