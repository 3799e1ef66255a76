"""Parsing model outputs into records, answer checks, and the retry loop (with scripted outputs)."""

from __future__ import annotations

import pytest

from sftforge.generate.answer_check import span_check
from sftforge.generate.base import WorkItem
from sftforge.generate.generators.grounded import GroundedItem, GroundedStep, answer_candidates
from sftforge.generate.parsing import ParseError, parse_fields, question_text, split_options
from sftforge.lib.grounding import find_span, sentence_spans, snap_to_sentence, support
from sftforge.recipe import Task
from sftforge.sources.chunking import Passage

PASSAGE = (
    "Docstrings are string literals that occur as the first statement in a module, function, class, or method "
    "definition. Such a docstring becomes the __doc__ special attribute of that object. All modules should "
    "normally have docstrings, and all functions and classes exported by a module should also have docstrings."
)
P = Passage("pep-0257.rst#3", "pep-0257.rst", 1000, 1000 + len(PASSAGE), PASSAGE)


def task(**kw) -> Task:
    return Task(description="Python docstring conventions", **kw)


def item(gen: GroundedStep, k: int = 0) -> WorkItem:
    return gen.work_items([P], per_passage=k + 1)[k]


def test_parse_fields_labels_case_colons_and_chinese():
    text = "question: What is X?\nmore\nANSWER： it is y\n问题：这是什么？\n答案：一个例子"
    f = parse_fields(text)
    assert f["question"] == "What is X?\nmore" and f["answer"] == "it is y"
    assert parse_fields("**Question:** Why?\n**Answer:** Because.") == {"question": "Why?", "answer": "Because."}


def test_question_text_joins_wrapped_lines():
    assert question_text("How do I\nwrap a long question?\n\nnoise") == "How do I wrap a long question?"
    assert question_text("No mark here\nsecond") == "No mark here"


def test_split_options_in_order():
    stem, opts = split_options("What is it?\nA. one\nB) two\nC. three\nD. four", ["A", "B", "C", "D"])
    assert stem == "What is it?" and opts == ["one", "two", "three", "four"]
    with pytest.raises(ParseError, match="expected options A, B, C, D; found 2"):
        split_options("Q?\nA. one\nB. two", ["A", "B", "C", "D"])


def test_sentence_spans_ignore_hard_wraps_and_abbreviations():
    text = "First sentence is\nwrapped here. Second one (e.g. this) ends! Third?\n\n中文句子。第二句！"
    got = [text[s:e] for s, e in sentence_spans(text)]
    assert got == [
        "First sentence is\nwrapped here.",
        "Second one (e.g. this) ends!",
        "Third?",
        "中文句子。",
        "第二句！",
    ]


def test_find_span_exact_and_case_whitespace_insensitive():
    assert find_span(PASSAGE, "the __doc__ special attribute") is not None
    s, e = find_span(PASSAGE, "  SUCH a docstring   becomes ")
    assert PASSAGE[s:e] == "Such a docstring becomes"
    assert find_span(PASSAGE, "not in there") is None


def test_span_check_snaps_paraphrases_and_rejects_unsupported():
    check, span = span_check(PASSAGE, "All modules should normally have docstrings", 0.5)
    assert check.method == "span" and check.passed and span is not None
    check, span = span_check(PASSAGE, "docstrings become the doc attribute of the object", 0.5)
    assert check.method == "span_snapped" and check.passed
    assert PASSAGE[span[0] : span[1]].startswith("Such a docstring")
    check, span = span_check(PASSAGE, "bananas grow in tropical climates", 0.5)
    assert not check.passed and span is None
    assert snap_to_sentence(PASSAGE, "")[0] is None


def test_support_ignores_stop_words():
    assert support(PASSAGE, "the of and") == 0.0
    assert support(PASSAGE, "modules have docstrings") == 1.0
    assert support("素数是自然数", "素数") == 1.0


def test_answer_first_extractive_record():
    gen = GroundedStep(task(type="qa"))
    it = item(gen)
    assert isinstance(it.payload, GroundedItem) and it.payload.answer in PASSAGE
    messages = gen.prompt(it)
    assert messages[-1] == {"role": "assistant", "content": "Question:"}
    assert it.payload.answer in messages[-2]["content"]
    assert gen.stop == ("\n",)
    answer_words = [w for w in it.payload.answer.split() if w.isalpha() and len(w) > 4]
    record = gen.parse(it, f" What does the text say about {answer_words[0]}?")
    assert record.messages[-1]["content"] == it.payload.answer
    assert record.messages[0]["role"] == "user" and PASSAGE in record.messages[0]["content"]
    assert record.answer_check.method == "answer_first_span" and record.answer_check.passed
    chunk, span = record.source
    assert (chunk.kind, chunk.start, chunk.end) == ("chunk", P.start, P.end)
    s, e = it.payload.answer_span
    assert (span.kind, span.start, span.end) == ("span", P.start + s, P.start + e)


@pytest.mark.parametrize(
    "output, reason",
    [
        (" What does the text say", "question has no question mark"),
        (" Who won the football world cup in 1998?", "question is not about the passage"),
        ("", "no 'Question:'"),
    ],
)
def test_answer_first_rejections(output, reason):
    gen = GroundedStep(task(type="qa"))
    with pytest.raises(ParseError, match=reason):
        gen.parse(item(gen), output)


def test_answer_candidates_skip_markup_and_code():
    text = "Title\n=====\n\n.. note:: skip me please now\n\nThis is a real sentence with enough words in it.\n\n    code = 1"
    assert [text[s:e] for s, e in answer_candidates(text, "en")] == ["This is a real sentence with enough words in it."]


def test_per_passage_samples_get_different_answers():
    gen = GroundedStep(task(type="qa"))
    items = gen.work_items([P], per_passage=3)
    assert len({it.payload.answer_span for it in items}) == 3
    assert [it.key for it in items] == [f"{P.chunk_id}|{k}" for k in range(3)]


def test_question_first_extractive_requires_a_span():
    gen = GroundedStep(task(type="qa", qa_strategy="question_first"))
    it = item(gen)
    rec = gen.parse(it, " Which attribute does a docstring become?\nAnswer: the __doc__ special attribute")
    assert rec.messages[-1]["content"] == "the __doc__ special attribute"
    assert rec.answer_check.method == "span"
    with pytest.raises(ParseError, match="not a span"):
        gen.parse(it, " Which attribute does a docstring become?\nAnswer: bananas and apples grow on trees")


def test_open_qa_is_closed_book_with_overlap_check():
    gen = GroundedStep(task(type="qa", qa_mode="open"))
    rec = gen.parse(item(gen), " What should modules have?\nAnswer: All modules should normally have docstrings.")
    assert rec.messages[0]["content"] == "What should modules have?"  # no passage: closed-book
    assert rec.answer_check.method == "overlap" and rec.answer_check.passed


def test_summary_checks_length_and_support():
    gen = GroundedStep(task(type="summarization"))
    rec = gen.parse(item(gen), " Modules, functions and classes should have docstrings, stored in __doc__.")
    assert rec.task == "summarization" and rec.answer_check.passed
    with pytest.raises(ParseError, match="not shorter than the passage"):
        gen.parse(item(gen), " " + PASSAGE + " " + PASSAGE)


def test_exercise_parses_options_key_and_explanation():
    gen = GroundedStep(task(type="exercise"))
    out = (
        " What does a docstring become?\nA. the __doc__ attribute\nB. a comment\nC. a module\nD. a class\n"
        "Answer: A\nExplanation: Such a docstring becomes the __doc__ special attribute."
    )
    rec = gen.parse(item(gen), out)
    assert "A. the __doc__ attribute" in rec.messages[0]["content"]
    assert rec.messages[1]["content"].startswith("The answer is A.")
    assert rec.answer_check.passed
    with pytest.raises(ParseError, match="not one of the option letters"):
        gen.parse(item(gen), out.replace("Answer: A", "Answer: E"))
    with pytest.raises(ParseError, match="options are not distinct"):
        gen.parse(item(gen), out.replace("B. a comment", "B. a module"))


def test_chinese_answer_first():
    zh = "素数是指在大于1的自然数中，除了1和该数自身外，无法被其他自然数整除的数。大于1的自然数若不是素数，则称之为合数。"
    p = Passage("zh#0", "zh", 0, len(zh), zh)
    gen = GroundedStep(Task(type="qa", description="关于素数的问题", language="zh"))
    it = gen.work_items([p], 1)[0]
    assert gen.prompt(it)[-1]["content"] == "问题："
    rec = gen.parse(it, "什么是素数？" if "素数" in it.payload.answer else "什么是合数？")
    assert rec.lang == "zh" and rec.messages[-1]["content"] == it.payload.answer
    with pytest.raises(ParseError, match="not in Chinese"):
        gen.parse(it, "What is a prime number?")


def test_failed_record_keeps_prompt_and_raw_output():
    gen = GroundedStep(task(type="qa"))
    rec = gen.failed_record(item(gen), " garbage")
    assert rec.messages[-1] == {"role": "assistant", "content": "Question: garbage"}
    assert rec.messages[-2]["role"] == "user"


def test_with_the_check_on_every_summary_sentence_must_be_supported():
    gen = GroundedStep(task(type="summarization", constraints={"responsiveness": {"enabled": True}}))
    rec = gen.parse(item(gen), " Modules should have docstrings. A docstring becomes the __doc__ attribute.")
    assert rec.answer_check.method == "faithfulness" and rec.answer_check.passed
    with pytest.raises(ParseError, match="sentence 2 of 2"):
        gen.parse(item(gen), " Modules should have docstrings. Tabs are preferred over spaces for indentation.")
