"""The responsiveness round trip: hand-made question-answer pairs over hand-written passages, matched and mismatched,
in English and Chinese, through the real ranker (the packaged MiniLM's token vectors for English)."""

from __future__ import annotations

import pytest

from sftforge.config import Responsiveness
from sftforge.generate.answer_check import ResponsivenessCheck
from sftforge.generate.parsing import ParseError
from sftforge.lib.grounding import sentence_spans
from sftforge.lib.responsiveness import AnswerRanker, answer_type

EN = (
    "This proposal adds a new statement, with, to the Python language. "
    "The with statement makes it possible to factor out standard uses of try/finally statements. "
    "In Python 2.5 the new syntax is only recognized if a future statement is present. "
    "Without the future statement, using 'with' or 'as' as an identifier will cause a warning to be issued. "
    "Guido van Rossum accepted the proposal in June 2005."
)
ZH = (
    "长城是中国古代的军事防御工程。"
    "它的修筑历史可以上溯到西周时期。"
    "明朝修建的长城东起山海关，西至嘉峪关，全长约六千三百公里。"
    "1987年，长城被列入世界文化遗产名录。"
    "如今每年有数千万游客前来参观。"
)


def sentence(passage: str, i: int) -> tuple[str, tuple[int, int]]:
    s, e = sentence_spans(passage)[i]
    return passage[s:e], (s, e)


@pytest.fixture(scope="module")
def english() -> ResponsivenessCheck:
    return ResponsivenessCheck(Responsiveness(enabled=True), "en")


@pytest.fixture(scope="module")
def chinese() -> ResponsivenessCheck:
    return ResponsivenessCheck(Responsiveness(enabled=True), "zh")


@pytest.mark.parametrize(
    "question, i",
    [
        ("What does the with statement let you factor out?", 1),
        ("When does Python 2.5 recognize the new syntax?", 2),
        ("Who accepted the proposal?", 4),
        ("What happens if 'as' is used as an identifier without the future statement?", 3),
    ],
)
def test_english_answers_that_answer_pass(english: ResponsivenessCheck, question: str, i: int):
    answer, span = sentence(EN, i)
    check = english.check(EN, question, answer, span)
    assert check.method == "responsiveness" and check.passed and check.score >= 0.5
    assert check.detail.startswith("answer sentence ranks 1 of 5")
    assert "*+" in check.detail  # the evidence marks the answer's sentence among the competitors


@pytest.mark.parametrize(
    "question, i",
    [
        ("What does the with statement let you factor out?", 3),  # the kind: a sentence that mentions `with`
        ("Who accepted the proposal?", 1),
        ("When does Python 2.5 recognize the new syntax?", 0),
    ],
)
def test_english_answers_that_do_not_answer_fail(english: ResponsivenessCheck, question: str, i: int):
    answer, span = sentence(EN, i)
    with pytest.raises(ParseError) as err:
        english.check(EN, question, answer, span)
    assert "responsiveness" in str(err.value) and not err.value.final  # another question may pass: ask again


@pytest.mark.parametrize(
    "question, i",
    [
        ("长城在哪一年被列入世界文化遗产名录？", 3),
        ("明朝修建的长城全长多少公里？", 2),
        ("长城的修筑历史可以上溯到什么时期？", 1),
    ],
)
def test_chinese_answers_that_answer_pass(chinese: ResponsivenessCheck, question: str, i: int):
    answer, span = sentence(ZH, i)
    check = chinese.check(ZH, question, answer, span)
    assert check.passed and check.score >= 0.5 and check.detail.startswith("answer sentence ranks 1 of 5")


@pytest.mark.parametrize(
    "question, i",
    [
        ("明朝修建的长城全长多少公里？", 3),
        ("长城在哪一年被列入世界文化遗产名录？", 4),
        ("长城的修筑历史可以上溯到什么时期？", 0),
    ],
)
def test_chinese_answers_that_do_not_answer_fail(chinese: ResponsivenessCheck, question: str, i: int):
    answer, span = sentence(ZH, i)
    with pytest.raises(ParseError, match="responsiveness"):
        chinese.check(ZH, question, answer, span)


def test_a_free_answer_is_judged_by_the_sentence_behind_it(english: ResponsivenessCheck):
    question = "Who accepted the proposal?"
    assert english.check(EN, question, "It was accepted by Guido van Rossum in 2005.", None).passed
    with pytest.raises(ParseError, match="responsiveness"):
        english.check(EN, question, "A future statement has to be present for the syntax.", None)
    with pytest.raises(ParseError, match="no sentence of the passage supports"):
        english.check(EN, question, "Bananas are yellow.", None)


def test_a_single_sentence_passage_is_rejected_once_with_its_reason(english: ResponsivenessCheck):
    passage = "The with statement factors out standard uses of try/finally statements."
    with pytest.raises(ParseError, match="one sentence") as err:
        english.check(passage, "What does the with statement factor out?", passage, (0, len(passage)))
    assert err.value.final  # asking again cannot help


def test_a_stricter_margin_rejects_what_a_looser_one_accepts():
    question, (answer, span) = "When does Python 2.5 recognize the new syntax?", sentence(EN, 2)
    margin = ResponsivenessCheck(Responsiveness(enabled=True, min_margin=-10), "en").ranker.rank(
        question, [EN[s:e] for s, e in sentence_spans(EN)], 2
    )
    assert margin.rank == 1 and 0 < margin.margin < 50
    assert (
        ResponsivenessCheck(Responsiveness(enabled=True, min_margin=margin.margin - 0.01), "en")
        .check(EN, question, answer, span)
        .passed
    )
    with pytest.raises(ParseError, match="too little"):
        ResponsivenessCheck(Responsiveness(enabled=True, min_margin=margin.margin + 0.01), "en").check(
            EN, question, answer, span
        )


def test_answer_type_reads_what_the_question_asks_for():
    assert answer_type("How many people live there?", "About 12,000 people live there.", "en") == 1.0
    assert answer_type("How many people live there?", "Many people live there.", "en") == 0.0
    assert answer_type("Who wrote it?", "It was written by Ada Lovelace.", "en") == 1.0
    assert answer_type("What is it?", "It was written by Ada Lovelace.", "en") == 0.0
    assert answer_type("长城全长多少公里？", "全长约六千三百公里。", "zh") == 1.0
    assert answer_type("谁发明了它？", "它由詹姆斯·瓦特改良。", "zh") == 1.0
    assert answer_type("谁发明了它？", "它很有用。", "zh") == 0.0


def test_without_token_vectors_the_paraphrase_weight_goes_to_the_other_signals():
    ranker = AnswerRanker("en", vectors=None)
    assert ranker.weights["maxsim"] == 0.0 and sum(ranker.weights.values()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown responsiveness signals"):
        AnswerRanker("en", weights={"vibes": 1.0})
    with pytest.raises(ValueError, match="two sentences"):
        ranker.rank("Who?", ["One sentence."], 0)


def test_a_dialogue_answer_must_answer_the_user_message():
    from types import SimpleNamespace

    from sftforge.config import Constraints
    from sftforge.generate.base import WorkItem
    from sftforge.generate.generators.dialogue import AssistantStep
    from sftforge.sources.chunking import Passage

    step = AssistantStep("en", Constraints(responsiveness=Responsiveness(enabled=True)))
    assert step.attempts == 4
    item = WorkItem(
        "c:a0", (SimpleNamespace(turns=[("user", "Who accepted the proposal?")]), [Passage("d#0", "d", 0, len(EN), EN)])
    )
    answer, score = step.parse(item, "Guido van Rossum accepted the proposal in June 2005.")
    assert answer.startswith("Guido") and score >= 0.5
    with pytest.raises(ParseError, match="responsiveness"):
        step.parse(item, "The with statement makes it possible to factor out standard uses of try/finally statements.")


def test_an_exercise_key_and_explanation_must_answer_its_stem():
    from sftforge.generate.base import WorkItem
    from sftforge.generate.generators.grounded import GroundedItem, GroundedStep
    from sftforge.recipe import Task
    from sftforge.sources.chunking import Passage

    task = Task(type="exercise", description="Python", constraints={"responsiveness": {"enabled": True}})
    step = GroundedStep(task)
    item = WorkItem("d#0|0", GroundedItem(Passage("d#0", "d", 0, len(EN), EN)))
    options = "A. Guido van Rossum\nB. Barry Warsaw\nC. Tim Peters\nD. Nick Coghlan"
    output = "Question: Who accepted the proposal?\n{o}\nAnswer: {k}\nExplanation: {e}"
    fitting = output.format(o=options, k="A", e="Guido van Rossum accepted the proposal in June 2005.")
    record = step.parse(item, fitting.removeprefix(step._prefill))
    assert record.answer_check.method == "responsiveness" and record.answer_check.passed
    unfitting = output.format(
        o=options, k="A", e="A future statement must be present for the new syntax in Python 2.5."
    )
    with pytest.raises(ParseError, match="responsiveness"):
        step.parse(item, unfitting.removeprefix(step._prefill))


def test_a_rejection_names_the_sentences_that_outranked_the_answer(english: ResponsivenessCheck):
    answer, span = sentence(EN, 2)
    with pytest.raises(ParseError) as err:
        english.check(EN, "Who accepted the proposal?", answer, span)
    reason = str(err.value)
    assert "Guido van Rossum accepted" in reason and "*" in reason  # the winner and the marked answer
    from sftforge.sample import reason_kind

    assert reason_kind(reason) == "another sentence of the passage answers the question better"


def test_a_multi_passage_answer_must_join_the_sentences_that_answer(english: ResponsivenessCheck):
    other = "Guido van Rossum created Python in 1991 at CWI in the Netherlands. He led the language for decades."
    question = "Who accepted the with proposal, and in what year did he create Python?"
    answer = "Guido van Rossum, who accepted it in June 2005, created Python in 1991."
    check = english.check_joined([EN, other], [0, 1], question, answer)
    assert check.passed and check.detail.startswith("the 2 sentences the answer joins outrank the other 5")
    with pytest.raises(ParseError, match="ranks above the ones it joins") as err:
        english.check_joined(
            [EN, other],
            [0, 1],
            question,
            "The with statement factors out try/finally; he led the language for decades.",
        )
    assert "*" in str(err.value) and "Guido van Rossum accepted" in str(err.value)
    with pytest.raises(ParseError, match="nothing to rank it against"):
        english.check_joined(["Guido accepted it.", "Guido created Python."], [0, 1], "Who?", "Guido created Python.")


def test_every_summary_sentence_must_be_supported_by_the_passage():
    from sftforge.generate.answer_check import faithfulness_check

    faithful = "The with statement factors out try/finally uses. Guido van Rossum accepted it in June 2005."
    check = faithfulness_check(EN, faithful, 0.5)
    assert check.method == "faithfulness" and check.passed and check.score >= 0.5
    invented = faithful + " It was removed in Python 3 because users disliked the keyword."
    with pytest.raises(ParseError, match="sentence 3 of 3"):
        faithfulness_check(EN, invented, 0.5)
    zh = "长城是古代的军事防御工程。1987年长城被列入世界文化遗产名录。"
    assert faithfulness_check(ZH, zh, 0.5).passed
    with pytest.raises(ParseError, match="faithfulness"):
        faithfulness_check(ZH, zh + "长城由秦始皇在一夜之间用黄金建成。", 0.5)


def test_the_sentence_splitter_keeps_abbreviations_and_initials_inside_a_sentence():
    text = "After Brown v. Board of Education, schools changed. J. R. R. Tolkien met Dr. Smith. The U.S. Army came."
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "After Brown v. Board of Education, schools changed.",
        "J. R. R. Tolkien met Dr. Smith.",
        "The U.S. Army came.",
    ]
    text = "It cost 5 dollars. He fought in 1990. Then he left."
    assert len(sentence_spans(text)) == 3


def test_only_a_sentence_that_refers_back_is_read_after_its_neighbour():
    from sftforge.lib.responsiveness import context, lexical

    sentences = [
        "Börte married Temüjin and was soon kidnapped by the Merkits.",
        "She gave birth to a son, Jochi, nine months later.",
        "Jochi later led campaigns in the west.",
    ]
    question = "What was the name of Börte's first son?"
    own, read_after = lexical(question, sentences, "en"), context(question, sentences, "en")
    assert read_after[1] > own[1]  # "She" takes in Börte from the sentence before
    assert read_after[2] == own[2]  # an ordinary next sentence keeps its own score
    zh = ["明朝修建了长城。", "它东起山海关。", "游客很多。"]
    assert context("明朝长城东起哪里？", zh, "zh")[1] > lexical("明朝长城东起哪里？", zh, "zh")[1]
