"""Does the passage support the answer? Span match for extractive answers, token overlap otherwise: the generators'
`answer_check` records, built on `sftforge.lib.grounding`."""

from __future__ import annotations

from sftforge.lib.grounding import find_span, snap_to_sentence, support
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
