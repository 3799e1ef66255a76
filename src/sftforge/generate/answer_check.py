"""Does the passage support the answer, and does the answer answer the question? Span match for extractive answers,
token overlap otherwise, and the responsiveness round trip for QA: the generators' `answer_check` records, built on
`sftforge.lib.grounding` and `sftforge.lib.responsiveness`."""

from __future__ import annotations

import math

from sftforge.config import Responsiveness
from sftforge.generate.parsing import ParseError
from sftforge.lib.embed import shared_embedder
from sftforge.lib.grounding import find_span, sentence_spans, snap_to_sentence, support
from sftforge.lib.responsiveness import AnswerRanker, evidence
from sftforge.sample import AnswerCheck


def span_check(passage: str, answer: str, min_support: float) -> tuple[AnswerCheck, tuple[int, int] | None]:
    """Extractive answers: an exact span passes; a paraphrase is snapped to the passage sentence that supports it
    best, if that sentence holds at least `min_support` of its content tokens; otherwise there is no span."""
    span = find_span(passage, answer)
    if span is not None:
        return AnswerCheck("span", True, 1.0, f"answer at characters {span[0]}-{span[1]} of the passage"), span
    snapped, score = snap_to_sentence(passage, answer)
    if snapped is not None and score >= min_support:
        detail = f"paraphrase snapped to the passage sentence at {snapped[0]}-{snapped[1]} ({score:.0%} of its content tokens)"
        return AnswerCheck("span_snapped", True, score, detail), snapped
    return AnswerCheck(
        "span", False, score, f"answer is not a span of the passage (best sentence overlap {score:.2f})"
    ), None


def overlap_check(passage: str, answer: str, min_support: float) -> AnswerCheck:
    score = support(passage, answer)
    passed = score >= min_support
    return AnswerCheck("overlap", passed, score, f"{score:.0%} of answer content tokens occur in the passage")


class ResponsivenessCheck:
    """Does the answer answer the question? The round trip of `sftforge.lib.responsiveness`: the passage's sentences
    are ranked as answers to the question, independently of the model that wrote the pair, and the answer's
    sentence (the span's, or for a free answer the sentence that supports it best) must lead the next best one by
    `min_margin`. A pair that fails raises ParseError (retried, then rejected); one that passes gets the ranking
    as its evidence."""

    ROUND_TRIP = "another sentence of the passage answers the question better (responsiveness round trip)"
    MARGIN = "the answer's sentence leads the passage's other sentences by too little (responsiveness margin)"
    OUTRANKED = "a sentence the answer does not draw on ranks above the ones it joins (responsiveness round trip)"

    def __init__(self, cfg: Responsiveness, lang: str) -> None:
        self.cfg = cfg
        vectors = None
        if lang != "zh":  # the paraphrase signal is English only (sftforge.lib.responsiveness)
            vectors = shared_embedder(cfg.embedder).token_vectors
        self.ranker = AnswerRanker(lang, vectors)

    def check(self, passage: str, question: str, answer: str, span: tuple[int, int] | None) -> AnswerCheck:
        """`span`: the answer's characters in the passage (extractive answers); None for a free answer."""
        spans = sentence_spans(passage)
        if len(spans) < 2:
            raise ParseError(
                "the passage has one sentence: there is nothing to rank the answer against (responsiveness)", final=True
            )
        if span is not None:
            chosen = max(range(len(spans)), key=lambda i: min(spans[i][1], span[1]) - max(spans[i][0], span[0]))
        else:
            scores = [support(passage[s:e], answer) for s, e in spans]
            chosen = max(range(len(spans)), key=lambda i: scores[i])
            if scores[chosen] == 0.0:
                raise ParseError("no sentence of the passage supports the answer (responsiveness)")
        ranking = self.ranker.rank(question, [passage[s:e] for s, e in spans], chosen)
        min_margin = self.cfg.min_margin
        if ranking.margin < min_margin:
            raise ParseError(f"{self.ROUND_TRIP if ranking.rank > 1 else self.MARGIN}: {ranking.evidence()}")
        detail = (
            f"answer sentence ranks {ranking.rank} of {len(spans)} as the answer to the question, leading by "
            f"{ranking.margin:.2f} (min {min_margin}); sentences: {ranking.evidence()}"
        )
        return AnswerCheck("responsiveness", True, _squash(ranking.margin - min_margin), detail)

    def check_joined(self, passages: list[str], draws_on: list[int], question: str, answer: str) -> AnswerCheck:
        """A question over several passages whose answer joins a fact of each of `draws_on` (multi_doc_qa): in
        each of those the sentence that supports the answer best is the one joined, and together they must outrank
        every other sentence of the set as answers to the question (the weakest of them above the best of the
        rest)."""
        sentences: list[str] = []
        joined: list[int] = []
        for k, text in enumerate(passages):
            own = [text[s:e] for s, e in sentence_spans(text)] or [text]
            supported = [support(s, answer) for s in own]
            best = max(range(len(own)), key=lambda i: supported[i])
            if k in draws_on and supported[best] > 0:
                joined.append(len(sentences) + best)
            sentences += own
        if not joined:
            raise ParseError("no sentence of the passages supports the answer (responsiveness)")
        if len(sentences) == len(joined):
            raise ParseError(
                "every sentence of the passages is one the answer joins: there is nothing to rank it against "
                "(responsiveness)",
                final=True,
            )
        scores, _ = self.ranker.scores(question, sentences)
        rest = max(range(len(sentences)), key=lambda i: -math.inf if i in joined else scores[i])
        lead = min(float(scores[i]) for i in joined) - float(scores[rest])
        shown = evidence(sentences, scores, set(joined), len(joined) + 2)
        if lead < 0:
            raise ParseError(f"{self.OUTRANKED}: {shown}")
        detail = (
            f"the {len(joined)} sentences the answer joins outrank the other {len(sentences) - len(joined)} as answers "
            f"to the question, by {lead:.2f}; sentences: {shown}"
        )
        return AnswerCheck("responsiveness", True, _squash(lead), detail)


def _squash(lead: float) -> float:
    """A lead over the threshold as a score in (0, 1), 0.5 at the threshold."""
    return round(1.0 / (1.0 + math.exp(-2.0 * lead)), 4)


def faithfulness_check(passage: str, summary: str, min_support: float) -> AnswerCheck:
    """Summaries: every sentence of the summary must be supported by the passage (at least `min_support` of its
    content tokens occur there), so one invented sentence fails the summary even when the rest copies the passage
    (the whole-summary overlap averages it away). Raises ParseError naming the weakest sentence."""
    sentences = [summary[s:e] for s, e in sentence_spans(summary)] or [summary]
    scores = [support(passage, s) for s in sentences]
    weakest = min(range(len(scores)), key=lambda i: scores[i])
    if scores[weakest] < min_support:
        raise ParseError(
            f"a summary sentence is not supported by the passage (faithfulness): sentence {weakest + 1} of "
            f"{len(sentences)}, {scores[weakest]:.0%} of its content words occur there: {sentences[weakest][:120]!r}"
        )
    return AnswerCheck(
        "faithfulness",
        True,
        round(scores[weakest], 4),
        f"each of the summary's {len(sentences)} sentences is supported by the passage; the weakest "
        f"(sentence {weakest + 1}) has {scores[weakest]:.0%} of its content words there",
    )
