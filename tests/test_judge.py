"""The judge's reading of a server's reply: the expected rating under its first-token logprobs, else the digit."""

from __future__ import annotations

import math

import pytest

from sftforge.llm.judge import score_from_alternatives, score_from_text


def test_the_expected_rating_weighs_the_score_digits_by_their_probability():
    alternatives = (("4", math.log(0.6)), (" 5", math.log(0.2)), ("The", math.log(0.1)), ("5", math.log(0.1)))
    # the digits renormalised: 4 with 0.6 and 5 with 0.2 + 0.1 (" 5" and "5" alike), over 0.9
    assert score_from_alternatives(alternatives, 5) == pytest.approx((4 * 0.6 + 5 * 0.3) / 0.9)
    assert score_from_alternatives((("7", 0.0), ("Good", -1.0)), 5) is None  # no digit of the scale
    assert score_from_alternatives(None, 5) is None


def test_a_reply_without_logprobs_is_read_for_its_first_digit_in_the_scale():
    assert score_from_text("Rating: 4/5", 5) == 4.0
    assert score_from_text("I would say 7, no, 3", 5) == 3.0
    assert score_from_text("excellent", 5) is None


def test_the_harm_judge_reads_yes_against_no_in_the_first_token_and_else_the_word_it_opens_with():
    import math

    from sftforge.llm.judge import yes_from_text, yes_probability

    p = yes_probability((("Yes", math.log(0.3)), (" yes", math.log(0.1)), ("No", math.log(0.4)), ("Maybe", -0.1)))
    assert p is not None and abs(p - 0.5) < 1e-9  # (0.3 + 0.1) / (0.3 + 0.1 + 0.4)
    assert yes_probability((("No", -0.2),)) == 0.0
    assert yes_probability((("Sure", -0.1), ("1", -2.0))) is None
    assert yes_probability(None) is None
    assert yes_from_text(" Yes, it helps with violence.") == 1.0
    assert yes_from_text("**No**.") == 0.0
    assert yes_from_text("I think so") is None and yes_from_text("") is None
