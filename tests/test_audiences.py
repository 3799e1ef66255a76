"""Audiences and genres (task.audiences x task.genres), the Bloom-level proxy, and coverage: hand-made cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sftforge.config import Audience, Genre
from sftforge.errors import RecipeError
from sftforge.export.formats import DatasetWriter
from sftforge.generate.audiences import audience_figures, pair_for, pairs
from sftforge.generate.generators.dialogue import DialogueConfig, DialogueDriver
from sftforge.generate.generators.grounded import GroundedStep
from sftforge.lib.bloom import bloom_level, question_of
from sftforge.lib.coverage import CoverageCounter, coverage_order, section_at, sections
from sftforge.recipe import load_recipe_text
from sftforge.sample import Lineage, Record, SourceRef
from sftforge.sources.chunking import Passage

KID = {"name": "kid", "description": "a ten-year-old", "expertise": "beginner", "length": "one_line"}
PRO = {"name": "pro", "description": "a database engineer", "expertise": "expert", "interests": ["performance"]}


def recipe(task: dict, **rest) -> object:
    data = {"name": "t", "task": {"description": "about things", **task}, "sources": {"documents": [{"path": "x"}]}}
    return load_recipe_text(yaml.safe_dump(data | rest), "r.yaml")


def passage(i: int, doc: str = "d", text: str | None = None) -> Passage:
    text = text or "The kettle switches off when the water boils. It must be descaled once a month with vinegar."
    return Passage(f"{doc}#{i}", doc, i * 100, i * 100 + len(text), text)


# -- recipe ------------------------------------------------------------------------------------------------------


def test_audience_names_must_be_unique_and_levels_in_range():
    with pytest.raises(RecipeError, match="task.audiences: the name 'kid' is used twice"):
        recipe({"type": "summarization", "audiences": [KID, KID]})
    with pytest.raises(RecipeError, match=r"line \d+: task.audiences.0.level"):
        recipe({"type": "exercise", "audiences": [KID | {"level": 7}]})
    with pytest.raises(RecipeError, match="unknown field 'interest'"):
        recipe({"type": "summarization", "audiences": [{"name": "a", "description": "abc", "interest": ["x"]}]})


def test_pairs_cross_audiences_with_genres_and_are_drawn_in_turn():
    a, b = Audience(**KID), Audience(**PRO)
    g = Genre(name="steps", instruction="Answer step by step.")
    drawn = pairs([a, b], [g])
    assert [(p.audience_name, p.genre_name) for p in drawn] == [("kid", "steps"), ("pro", "steps")]
    assert [(p.audience_name, p.genre_name) for p in pairs([], [g])] == [(None, "steps")]
    assert pairs([], []) == []
    picks = [pair_for(drawn, i).audience_name for i in range(7)]
    assert picks.count("kid") == 4 and picks.count("pro") == 3
    assert pair_for([], 3) is None


# -- grounded prompts and records --------------------------------------------------------------------------------


def test_each_passage_items_get_different_audiences_named_in_prompt_record_and_lineage():
    r = recipe({"type": "summarization", "audiences": [KID, PRO], "system_prompt": "Be accurate."})
    step = GroundedStep(r.task)
    items = step.work_items([passage(0), passage(1)], 2)
    assert [step.pair_of(it).audience_name for it in items] == ["kid", "pro", "kid", "pro"]
    prompt = step.prompt(items[1])
    user = next(m["content"] for m in reversed(prompt) if m["role"] == "user")
    assert "a database engineer" in user and "precise technical terms" in user and "performance" in user
    assert "a ten-year-old" not in user
    kid_user = next(m["content"] for m in reversed(step.prompt(items[0])) if m["role"] == "user")
    assert "Keep it to one line." in kid_user and "plain words" in kid_user
    record = step.parse(items[1], " The kettle switches off when the water boils.")
    assert record.messages[0]["role"] == "system"
    assert record.messages[0]["content"].startswith("Be accurate.")
    assert "The reader is a database engineer." in record.messages[0]["content"]
    assert [m["role"] for m in record.messages].count("system") == 1


def test_without_audiences_the_prompt_and_record_are_as_before():
    r = recipe({"type": "summarization"})
    step = GroundedStep(r.task)
    item = step.work_items([passage(0)], 1)[0]
    assert step.pair_of(item) is None
    user = next(m["content"] for m in reversed(step.prompt(item)) if m["role"] == "user")
    assert user.endswith("Summarize this text in one or two sentences.")
    record = step.parse(item, " The kettle switches off when the water boils.")
    assert [m["role"] for m in record.messages] == ["user", "assistant"]


def test_audience_prompt_none_keeps_the_reader_out_of_the_record():
    r = recipe({"type": "summarization", "audiences": [KID], "audience_prompt": "none"})
    step = GroundedStep(r.task)
    item = step.work_items([passage(0)], 1)[0]
    record = step.parse(item, " The kettle switches off when the water boils.")
    assert [m["role"] for m in record.messages] == ["user", "assistant"]


def test_exercise_prompt_asks_for_the_audience_bloom_level_in_both_languages():
    for lang, words in (("en", "level 4 (analyse)"), ("zh", "第4级（分析）")):
        r = recipe({"type": "exercise", "language": lang, "audiences": [KID | {"level": 4}]})
        step = GroundedStep(r.task)
        item = step.work_items([passage(0)], 1)[0]
        user = next(m["content"] for m in reversed(step.prompt(item)) if m["role"] == "user")
        assert words in user


def test_dialogue_personas_are_the_audiences_unless_the_entry_names_its_own():
    auds = [Audience(**KID), Audience(**PRO)]
    drv = DialogueDriver.__new__(DialogueDriver)
    drv.cfg, drv.audiences = DialogueConfig(), auds
    assert drv.cast == [("a ten-year-old", "kid"), ("a database engineer", "pro")]
    drv.cfg = DialogueConfig(personas=["a plumber"])
    assert drv.cast == [("a plumber", None)]
    drv.cfg, drv.audiences = DialogueConfig(), []
    assert len(drv.cast) == 3 and all(name is None for _, name in drv.cast)


# -- Bloom levels ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "question, lang, level",
    [
        ("When was the tower completed?", "en", 1),
        ("Who designed the tower?", "en", 1),
        ("Why does the kettle switch itself off?", "en", 2),
        ("What is the purpose of a docstring?", "en", 2),
        ("If you lift the kettle from its base, what will happen?", "en", 3),
        ("How does a tuple differ from a list?", "en", 4),
        ("Which of these cleaning agents is best for descaling, according to the text?", "en", 5),
        ("Design a test that shows the kettle switches off.", "en", 6),
        ("铁塔是哪一年建成的？", "zh", 1),
        ("为什么水烧开后水壶会自动断电？", "zh", 2),
        ("如果把水壶从底座上拿起，会发生什么？", "zh", 3),
        ("叶绿体和线粒体有什么区别？", "zh", 4),
        ("根据文中内容，哪种除垢方法最好？", "zh", 5),
        ("请设计一个实验证明氧气支持燃烧。", "zh", 6),
    ],
)
def test_bloom_level_reads_the_question_cues(question: str, lang: str, level: int):
    assert bloom_level(question, lang) == level


def test_question_of_finds_an_exercise_stem_and_a_plain_question():
    exercise = "Read the text and answer.\n\nText:\nWhy is the sky blue? Light scatters.\n\nWhen was it built?\nA. 1889\nB. 1930"
    assert question_of(exercise) == "When was it built?"
    assert question_of("Text: something.\n\nWhat does it mean?") == "What does it mean?"
    assert question_of("Summarize this.") == "Summarize this."


def test_audience_figures_count_records_genres_and_level_agreement():
    rows = [
        ("kid", "steps", "Q\nWhen was it built?\nA. x\nB. y", "A"),
        ("kid", None, "Q\nWhy is it so?\nA. x\nB. y", "B"),
        ("pro", "steps", "Q\nHow does it differ from a list?\nA. x\nB. y", "A"),
    ]
    figs = audience_figures(rows, {"kid": 1, "pro": 4}, "en")
    assert figs["(all)"]["records"] == 3
    assert figs["kid"]["genres"] == {"steps": 1, "(none)": 1}
    assert figs["kid"]["measured_level"] == 1.5 and figs["kid"]["level_agreement"] == 0.5
    assert figs["pro"]["level_agreement"] == 1.0
    assert "level" not in figs["(all)"]


# -- coverage ----------------------------------------------------------------------------------------------------


def test_coverage_order_puts_every_document_quota_first():
    ranked = [passage(0, "a"), passage(1, "a"), passage(2, "a"), passage(0, "b"), passage(1, "b"), passage(0, "c")]
    assert coverage_order(ranked, 0, 0) == ranked
    ids = [p.chunk_id for p in coverage_order(ranked, 1, 0)]
    assert ids == ["a#0", "b#0", "c#0", "a#1", "a#2", "b#1"]
    # each passage is 17 tokens; 30 per 1k tokens: quotas a ceil(51 * 0.03) = 2, b ceil(34 * 0.03) = 2, c 1
    ids = [p.chunk_id for p in coverage_order(ranked, 1, 30)]
    assert ids == ["a#0", "b#0", "c#0", "a#1", "b#1", "a#2"]


def test_sections_of_markdown_and_restructuredtext():
    md = "# Setup\nPlug it in.\n\n## Cleaning\nUse vinegar.\n"
    heads = sections(md)
    assert [h for _, h in heads] == ["Setup", "Cleaning"]
    assert section_at(heads, md.index("vinegar")) == "Cleaning"
    assert section_at(heads, md.index("Plug")) == "Setup"
    rst = "PEP: 8\n\nIntroduction\n============\n\nText here.\n\nCode lay-out\n------------\n\nIndent.\n"
    heads = sections(rst)
    assert [h for _, h in heads] == ["Introduction", "Code lay-out"]
    assert section_at(heads, rst.index("PEP")) == "(before the first heading)"
    assert section_at(sections("plain text only"), 3) == "(no headings)"


def test_coverage_table_counts_records_per_document_and_section_and_what_is_left():
    doc_a = "# One\n" + "x" * 200 + "\n# Two\n" + "y" * 200
    docs = {"a": doc_a, "b": "plain"}
    ps = [
        Passage("a#0", "a", 6, 100, "alpha beta"),
        Passage("a#1", "a", doc_a.index("# Two") + 6, len(doc_a), "gamma"),
        Passage("b#0", "b", 0, 5, "plain"),
    ]
    counter = CoverageCounter()
    refs = [SourceRef("chunk", "a#0", "a")]
    counter.add([refs, refs])
    table = counter.table(ps, docs)
    assert table["documents"] == 2 and table["documents_covered"] == 1
    assert table["passages"] == 3 and table["passages_used"] == 1
    assert table["sections"] == 3 and table["sections_covered"] == 1
    assert [(d["doc_id"], d["records"]) for d in table["by_document"]] == [("b", 0), ("a", 2)]
    assert {(u["doc_id"], u["section"]) for u in table["uncovered_sections"]} == {("a", "Two"), ("b", "(no headings)")}


# -- export ------------------------------------------------------------------------------------------------------


def test_export_adds_audience_columns_when_asked(tmp_path: Path):
    msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    rec = Record("r1", msgs, "qa", "en", [], Lineage("grounded", "m", audience="kid", genre="steps"))
    with DatasetWriter(tmp_path / "on", ["openai", "alpaca"], audience_columns=True) as w:
        w.add([rec])
    row = json.loads((tmp_path / "on" / "openai.jsonl").read_text())
    assert row["audience"] == "kid" and row["genre"] == "steps"
    assert json.loads((tmp_path / "on" / "alpaca.jsonl").read_text())["audience"] == "kid"
    with DatasetWriter(tmp_path / "off", ["openai"]) as w:
        w.add([rec])
    assert "audience" not in json.loads((tmp_path / "off" / "openai.jsonl").read_text())


def test_a_readers_summary_length_is_kept_by_construction():
    r = recipe({"type": "summarization", "audiences": [KID, PRO | {"length": "short"}]})
    step = GroundedStep(r.task)
    items = step.work_items([passage(0)], 2)
    output = " The kettle switches off when the water boils. It must be descaled. Vinegar works."
    assert step.parse(items[0], output).messages[-1]["content"] == "The kettle switches off when the water boils."
    two = step.parse(items[1], output).messages[-1]["content"]
    assert two == "The kettle switches off when the water boils. It must be descaled."


# -- audiences proposed by the model (`sftforge audiences`): parsing -----------------------------------------------


def test_a_proposed_reader_is_parsed_and_copies_of_the_example_or_prompt_are_refused():
    from sftforge.generate.parsing import ParseError
    from sftforge.generate.proposals import ProposeAudienceStep

    en, zh = ProposeAudienceStep("en"), ProposeAudienceStep("zh")
    item = None
    assert en.parse(item, " a data scientist new to Python\nLevel: Expert.") == (
        "a data scientist new to Python",
        "expert",
    )
    assert en.parse(item, " a hobbyist\nLevel: somewhat") == ("a hobbyist", None)
    assert zh.parse(item, "刚学编程的高中生\n水平：入门") == ("刚学编程的高中生", "beginner")
    for bad in (" a new owner of the kettle who wants to keep it working\nLevel: beginner", " Level: expert", " x"):
        with pytest.raises(ParseError):
            en.parse(item, bad)
    with pytest.raises(ParseError):
        zh.parse(item, "水平：入门、中级或专家")


def test_proposals_spread_over_documents_and_keep_distinct_readers_most_named_first():
    from types import SimpleNamespace

    from sftforge.generate.proposals import propose_audiences, spread_over_documents

    ranked = [passage(0, "a"), passage(1, "a"), passage(0, "b"), passage(2, "a")]
    assert [p.chunk_id for p in spread_over_documents(ranked, 3)] == ["a#0", "b#0", "a#1"]
    replies = iter(
        [("a nurse", "beginner"), ("a surgeon", "expert"), ("A nurse", "beginner"), ("a nurse", "beginner"), None]
    )

    def ask(items):
        out = []
        for it in items:
            value = next(replies)
            out.append(SimpleNamespace(item=it, ok=value is not None, value=value, error="no reader"))
        return out

    ranked = [passage(i, d) for d in "abcde" for i in range(1)]
    found, failed = propose_audiences(ranked, 2, ask, "en")
    assert [(a.name, a.description, a.expertise) for a in found] == [
        ("nurse", "a nurse", "beginner"),
        ("surgeon", "a surgeon", "expert"),
    ]
    assert failed == {"no reader": 1}


def test_answer_first_questions_go_to_the_sentence_an_audience_cares_about():
    text = (
        "The kettle switches off by itself when the water boils. "
        "Descaling it once a month with white vinegar keeps the element clean. "
        "The warranty covers the heating element for two years after purchase."
    )
    buyer = {"name": "buyer", "description": "a careful buyer", "interests": ["warranty", "purchase"]}
    r = recipe({"type": "qa", "audiences": [buyer, KID]})
    step = GroundedStep(r.task)
    items = step.work_items([passage(0, text=text)], 2)
    chosen = [(step.pair_of(it).audience_name, it.payload.answer) for it in items]
    assert chosen[0] == ("buyer", "The warranty covers the heating element for two years after purchase.")
    assert chosen[1][0] == "kid" and chosen[1][1] != chosen[0][1]  # no interests: the next sentence in turn
