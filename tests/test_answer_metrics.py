"""Generation metrics: hand-made cases where a plausible implementation would get the number wrong."""

from __future__ import annotations

import pytest

from sftforge.train.answer_metrics import (
    aggregate,
    answer_set_scores,
    exact_match,
    metrics_for,
    normalize_answer,
    rouge_l,
    token_f1,
)


def test_normalize_english_is_squad():
    assert normalize_answer("  The U.S. Army's  BEST!  ", "en") == "us armys best"
    assert normalize_answer("an apple, a pear", "en") == "apple pear"
    # articles only as whole words: "theory" and "Anna" keep their letters
    assert normalize_answer("Anna's theory", "en") == "annas theory"


def test_normalize_chinese_drops_full_width_punctuation_and_spaces():
    assert normalize_answer("“巴黎”，法国的 首都！", "zh") == "巴黎法国的首都"
    assert normalize_answer("（北京）、上海；广州？", "zh") == "北京上海广州"
    # CJK content switches to character mode whatever the language says
    assert normalize_answer("巴黎。", "en") == "巴黎"


def test_exact_match_ignores_articles_punctuation_case():
    assert exact_match("The Eiffel Tower.", ["eiffel tower"], "en") == 1.0
    assert exact_match("Eiffel Towers", ["the Eiffel Tower"], "en") == 0.0
    # max over references
    assert exact_match("Paris", ["London", "paris!"], "en") == 1.0


def test_exact_match_chinese_full_width_punctuation():
    assert exact_match("巴黎。", ["巴黎"], "zh") == 1.0
    assert exact_match("“巴 黎”！", ["巴黎"], "zh") == 1.0
    assert exact_match("巴黎市", ["巴黎"], "zh") == 0.0


def test_token_f1_partial_overlap_by_hand():
    # pred tokens (articles dropped): cat sat on mat (4); gold: cat on mat today (4); overlap cat, on, mat = 3
    # precision 3/4, recall 3/4 -> F1 0.75
    assert token_f1("the cat sat on the mat", ["a cat on a mat today"], "en") == pytest.approx(0.75)
    # multiset overlap: "red red red" vs "red blue": overlap 1, P = 1/3, R = 1/2, F1 = 0.4 (not 1/3 * 3)
    assert token_f1("red red red", ["red blue"], "en") == pytest.approx(0.4)
    assert token_f1("blue", ["green", "blue sky"], "en") == pytest.approx(2 / 3)  # best reference
    assert token_f1("nothing shared", ["other words"], "en") == 0.0


def test_token_f1_chinese_characters_are_tokens():
    # pred 北京是首都 (5 chars, punctuation dropped); gold 首都北京 (4); overlap 首 都 北 京 = 4
    # P = 4/5, R = 1, F1 = 8/9
    assert token_f1("北京是首都。", ["首都：北京"], "zh") == pytest.approx(8 / 9)


def test_rouge_l_reuses_lcs():
    # LCS of "a b c d" and "a c d e" is "a c d" = 3; P = R = 3/4
    assert rouge_l("a c d e", ["x", "a b c d"]) == pytest.approx(0.75)
    assert rouge_l("", ["anything"]) == 0.0
    assert rouge_l("北京是首都", ["首都是北京"]) == pytest.approx(0.4)  # LCS 是 or 北京 -> 2/5


def test_answer_set_recall_two_of_three():
    recall, all_found = answer_set_scores(
        "The films were directed by Christopher Nolan and Greta Gerwig.",
        ["Christopher Nolan", "Greta Gerwig", "Denis Villeneuve"],
        "en",
    )
    assert recall == pytest.approx(2 / 3)
    assert all_found == 0.0
    assert answer_set_scores("Gerwig, greta; and NOLAN christopher", ["Greta Gerwig"], "en") == (0.0, 0.0)
    assert answer_set_scores("greta gerwig, christopher nolan", ["Christopher Nolan", "Greta Gerwig"], "en") == (
        1.0,
        1.0,
    )


def test_answer_set_whole_words_in_english():
    # "Oman" is inside "Romania" and "Niger" inside "Nigeria", but neither country is named
    assert answer_set_scores("It borders Romania and Nigeria.", ["Oman", "Niger"], "en") == (0.0, 0.0)
    assert answer_set_scores("It borders Oman.", ["Oman", "Niger"], "en") == (0.5, 0.0)
    # articles and duplicate gold names do not count twice
    assert answer_set_scores("The answer is USA.", ["the USA", "U.S.A."], "en") == (1.0, 1.0)


def test_answer_set_chinese_substring():
    recall, all_found = answer_set_scores("所以答案是：北京、上海。", ["北京", "上海", "广州"], "zh")
    assert recall == pytest.approx(2 / 3) and all_found == 0.0
    assert answer_set_scores("答案是北京和上海", ["北京", "上海"], "zh") == (1.0, 1.0)


def test_answer_set_rejects_empty_gold():
    with pytest.raises(ValueError):
        answer_set_scores("anything", [], "en")
    with pytest.raises(ValueError):
        answer_set_scores("anything", ["  "], "en")
    with pytest.raises(ValueError):
        exact_match("anything", [], "en")
    with pytest.raises(ValueError):
        token_f1("anything", "a string, not a list", "en")  # type: ignore[arg-type]


def test_metrics_for_picks_by_task():
    extractive = metrics_for("qa", "extractive", "The Eiffel Tower", ["Eiffel Tower"], "en")
    assert set(extractive) == {"exact_match", "token_f1", "rouge_l"}
    assert extractive["exact_match"] == 1.0
    kg = metrics_for("multi_hop_qa", None, "Nolan and Gerwig", ["Nolan", "Gerwig", "Villeneuve"], "en")
    assert set(kg) == {"answer_recall", "answer_all_found"}
    assert kg["answer_recall"] == pytest.approx(2 / 3)
    assert set(metrics_for("qa", "open", "x y", ["x z"], "en")) == {"rouge_l"}
    assert set(metrics_for("summarization", None, "x y", ["x z"], "en")) == {"rouge_l"}


def test_aggregate_means_per_metric():
    rows = [
        {"exact_match": 1.0, "rouge_l": 0.5},
        {"exact_match": 0.0, "rouge_l": 1.0},
        {"rouge_l": 0.0},
        {"answer_recall": 0.5},
    ]
    out = aggregate(rows)
    assert out["exact_match"] == pytest.approx(0.5)
    assert out["rouge_l"] == pytest.approx(0.5)
    assert out["answer_recall"] == pytest.approx(0.5)
    assert out["n"] == 4
    assert aggregate([]) == {"n": 0}
