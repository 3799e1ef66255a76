"""Generation metrics for `sftforge evaluate`: how close a model's answer is to the reference, per task.

Which metric fits depends on what the reference is (`metrics_for`):

- extractive QA: the reference is a span of the passage, so the answer should say the same thing in about the same
  words. SQuAD's exact match and token F1 (after SQuAD normalisation) measure that, and ROUGE-L is reported too
  so that every QA task shares one number.
- multi-hop / knowledge-graph QA (`SET_ANSWER_TASKS`): the reference is a set of entity names, and a correct
  answer may phrase them in any order, with reasoning around them. String overlap with one reference text would
  reward the phrasing, so the metrics are the share of gold names the answer mentions (`answer_recall`) and
  whether it mentions them all (`answer_all_found`). Extra names (intermediate hops in a reasoning chain) are not
  penalised: these are recall metrics.
- anything else (open QA, summaries, exercises, dialogue): free text with many right answers, where ROUGE-L F
  (longest common subsequence) is the usual, if rough, measure.

Text is compared the way sftforge compares text everywhere (DESIGN.md): English and other space-separated scripts
by words, with SQuAD's normalisation (lowercase, no punctuation, no articles a/an/the, whitespace collapsed);
CJK text by characters, with ASCII and full-width punctuation and all whitespace dropped. A comparison is in CJK
mode when the language is Chinese, Japanese or Korean or when either text holds a CJK character, so that both
sides are always normalised the same way.

Pure: no I/O.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter

from sftforge.lib.novelty import rouge_l_f, rouge_tokens
from sftforge.lib.text import is_cjk, split_cjk

CJK_LANGS = frozenset({"zh", "ja", "ko"})
EXTRACTIVE_TASKS = frozenset({"qa"})  # with qa_mode == "extractive"
SET_ANSWER_TASKS = frozenset({"multi_hop_qa", "kg_qa"})

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_ASCII_PUNCT = frozenset(string.punctuation)


def _is_punct(ch: str) -> bool:
    """ASCII punctuation and symbols (SQuAD's set) or any Unicode punctuation (，。？！、：；“”（）…)."""
    return ch in _ASCII_PUNCT or unicodedata.category(ch).startswith("P")


def _lang_is_cjk(lang: str | None) -> bool:
    return bool(lang and re.split(r"[-_]", lang)[0].lower() in CJK_LANGS)


def _cjk_mode(lang: str | None, *texts: str) -> bool:
    """Compare by characters when the language is CJK or any of the texts holds a CJK character."""
    return _lang_is_cjk(lang) or any(is_cjk(c) for text in texts for c in text)


def _words(text: str, cjk: bool, drop_articles: bool = True) -> list[str]:
    """Normalised tokens: SQuAD words (punctuation deleted, as SQuAD does, so "U.S." is "us"), or (CJK mode)
    every CJK character its own token and runs of other characters (Latin words, numbers) kept whole, so
    "iPhone 15发布" is ["iphone", "15", "发", "布"]."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(c for c in text if not _is_punct(c))
    if cjk:
        return [t for word in text.split() for t in split_cjk(word)]
    if drop_articles:
        text = _ARTICLES.sub(" ", text)
    return text.split()


def _normalized(text: str, cjk: bool) -> str:
    tokens = _words(text, cjk)
    return "".join(tokens) if cjk else " ".join(tokens)


def normalize_answer(text: str, lang: str | None) -> str:
    """SQuAD normalisation for space-separated languages; for CJK (by `lang` or by content) the characters
    without punctuation or whitespace, so that "巴黎。" and "巴 黎" both become "巴黎"."""
    return _normalized(text, _cjk_mode(lang, text))


def _check_references(references: list[str]) -> None:
    if isinstance(references, str):
        raise ValueError("references must be a list of strings, not one string")
    if not references:
        raise ValueError("references is empty: a metric needs at least one reference answer")


def exact_match(prediction: str, references: list[str], lang: str | None) -> float:
    """1.0 when the normalised prediction equals any normalised reference, else 0.0."""
    _check_references(references)
    for ref in references:
        cjk = _cjk_mode(lang, prediction, ref)
        if _normalized(prediction, cjk) == _normalized(ref, cjk):
            return 1.0
    return 0.0


def _f1(pred: list[str], gold: list[str]) -> float:
    """SQuAD token F1 with multiset overlap; two empty sides agree (1.0), one empty side scores 0.0."""
    if not pred or not gold:
        return float(pred == gold)
    overlap = sum((Counter(pred) & Counter(gold)).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred), overlap / len(gold)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, references: list[str], lang: str | None) -> float:
    """Best SQuAD token F1 over the references (CJK: characters are the tokens)."""
    _check_references(references)
    best = 0.0
    for ref in references:
        cjk = _cjk_mode(lang, prediction, ref)
        best = max(best, _f1(_words(prediction, cjk), _words(ref, cjk)))
    return best


def rouge_l(prediction: str, references: list[str]) -> float:
    """Best ROUGE-L F over the references, with rouge-score's tokens (CJK characters included; see
    `sftforge.lib.novelty.rouge_tokens`: letters outside a-z, such as accented ones, are not tokens)."""
    _check_references(references)
    pred = rouge_tokens(prediction)
    return max(rouge_l_f(rouge_tokens(ref), pred) for ref in references)


def _mentions(prediction: str, answer: str, cjk: bool) -> bool:
    """Whether the normalised prediction holds the normalised answer: as whole words (so "Oman" is not found in
    "Romania"), or for CJK as a substring of the characters."""
    if cjk:
        target = _normalized(answer, cjk=True)
        return bool(target) and target in _normalized(prediction, cjk=True)
    want, drop = _words(answer, cjk=False), True
    if not want:  # an answer that is only an article ("A": an option letter) keeps it rather than vanish
        want, drop = _words(answer, cjk=False, drop_articles=False), False
    have, n = _words(prediction, cjk=False, drop_articles=drop), len(want)
    return bool(want) and any(have[i : i + n] == want for i in range(len(have) - n + 1))


def answer_set_scores(prediction: str, answers: list[str], lang: str | None) -> tuple[float, float]:
    """(recall, all_found) of a set of gold entity names in the prediction: the share of the distinct gold
    names it mentions, and 1.0 when it mentions every one of them (else 0.0). Blank names are ignored."""
    if isinstance(answers, str):
        raise ValueError("answers must be a list of entity names, not one string")
    distinct: dict[str, str] = {}  # normalised name -> first spelling, so "the USA" and "USA" count once
    for answer in answers:
        if answer.strip():
            distinct.setdefault(normalize_answer(answer, lang) or answer.strip().lower(), answer)
    if not distinct:
        raise ValueError("answers is empty: answer-set metrics need at least one gold answer")
    found = sum(_mentions(prediction, a, _cjk_mode(lang, prediction, a)) for a in distinct.values())
    return found / len(distinct), float(found == len(distinct))


def metric_names(task: str, qa_mode: str | None) -> tuple[str, ...]:
    """The metrics `metrics_for` reports for a task (see the module docstring for why)."""
    if task in SET_ANSWER_TASKS:
        return ("answer_recall", "answer_all_found")
    if task in EXTRACTIVE_TASKS and qa_mode == "extractive":
        return ("exact_match", "token_f1", "rouge_l")
    return ("rouge_l",)


def metrics_for(
    task: str, qa_mode: str | None, prediction: str, references: list[str], lang: str | None
) -> dict[str, float]:
    """The metrics that fit the task, by name. For set-answer tasks (multi-hop / KG QA) `references` are the gold
    entity names, not a reference answer text."""
    names = metric_names(task, qa_mode)
    if "answer_recall" in names:
        recall, all_found = answer_set_scores(prediction, references, lang)
        return {"answer_recall": recall, "answer_all_found": all_found}
    out: dict[str, float] = {}
    if "exact_match" in names:
        out["exact_match"] = exact_match(prediction, references, lang)
    if "token_f1" in names:
        out["token_f1"] = token_f1(prediction, references, lang)
    out["rouge_l"] = rouge_l(prediction, references)
    return out


def aggregate(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean of each metric over the rows that have it (tasks differ in their metrics), plus `n`, the number of
    rows."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for row in rows:
        for name, value in row.items():
            sums[name] = sums.get(name, 0.0) + float(value)
            counts[name] = counts.get(name, 0) + 1
    out = {name: sums[name] / counts[name] for name in sums}
    out["n"] = float(len(rows))
    return out
