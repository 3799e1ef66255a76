"""The relevance feature (a reply that ignores its instruction) with the packaged MiniLM, on hand-made pairs."""

from __future__ import annotations

import math

import pytest

from sftforge.ops import build
from sftforge.ops.presets import preset_filters
from sftforge.ops.relevance import RelevanceConfig
from sftforge.sample import Record, turn_pairs


def chat(*turns: str) -> Record:
    roles = ["user", "assistant"] * len(turns)
    return Record(id="", messages=[{"role": r, "content": t} for r, t in zip(roles, turns)], task="t", lang="en")


@pytest.fixture(scope="module")
def relevance():
    return build(next(c for c in preset_filters("en") if c.name == "relevance"))


def test_a_reply_that_answers_passes_and_one_that_drifts_fails(relevance):
    answered = chat(
        "How do I keep basil fresh after buying it?",
        "Trim the stems and stand the basil in a glass of water on the counter, loosely covered with a bag.",
    )
    drifted = chat(
        "How do I keep basil fresh after buying it?",
        "The 1998 season ended with the club third in the league after a late run of away wins.",
    )
    good, bad = relevance.score_batch([answered, drifted])
    assert relevance.keep(good) and not relevance.keep(bad)
    assert "relevance=" in relevance.reason(drifted, bad) and "< min 0.03" in relevance.reason(drifted, bad)


def test_the_lowest_turn_counts_and_a_record_without_a_reply_fails_any_bound(relevance):
    two_turns = chat(
        "How do I keep basil fresh after buying it?",
        "Stand the stems in a glass of water on the counter.",
        "Can I also freeze fresh basil leaves for winter cooking?",
        "The 1998 season ended with the club third in the league after a late run of away wins.",
    )
    first_only = chat(two_turns.messages[0]["content"], two_turns.messages[1]["content"])
    both, first = relevance.score_batch([two_turns, first_only])
    assert both < first and not relevance.keep(both)
    (no_reply,) = relevance.score_batch(
        [Record(id="", messages=[{"role": "user", "content": "hi"}], task="t", lang="en")]
    )
    assert math.isnan(no_reply) and not relevance.keep(no_reply)


def test_turn_pairs_skip_system_messages():
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "Q2"},
        {"role": "assistant", "content": "A2"},
    ]
    assert turn_pairs(messages) == [("Q1", "A1"), ("Q2", "A2")]


def test_the_chinese_preset_does_not_apply_it():
    assert not any(c.name == "relevance" for c in preset_filters("zh"))
    assert RelevanceConfig(min=0.05).min == 0.05
