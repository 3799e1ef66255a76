"""The relation lexicon (derived, written, edited, fed back), entity class nouns, names as written, and the
wording check: on the countries graph and the issue's own bad questions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from sftforge.kg import KnowledgeGraph, load_graph, path_example
from sftforge.kg.classes import ClassNamer
from sftforge.kg.lexicon import Lexicon, LexiconError, Proposal, adopt, check_proposal, parse_proposal
from sftforge.kg.paths import RelationPath
from sftforge.kg.verbalise import verbalise
from sftforge.kg.wording import problems
from test_kg_pipeline import recipe_file

from conftest import EXAMPLES, run_recipe

KG_DIR = EXAMPLES / "data" / "kg_countries"


@pytest.fixture(scope="module")
def countries() -> KnowledgeGraph:
    return load_graph([KG_DIR / n for n in ("train.txt", "valid.txt", "test.txt")])


def path_of(g: KnowledgeGraph, topic: str, *relations: str) -> RelationPath:
    return RelationPath(g.entity_id(topic), tuple(g.relation_id(r) for r in relations))


# ---------------------------------------------------------------------------------------------- the YAML file


def test_lexicon_round_trips_and_an_edit_changes_the_questions(countries: KnowledgeGraph, tmp_path: Path):
    lexicon = Lexicon.for_graph(countries, "en")
    # neighbor is symmetric in the graph: its inverse reads like its forward direction
    assert lexicon.get("neighbor").inverse == lexicon.get("neighbor").forward
    path = tmp_path / "lexicon.yaml"
    lexicon.write(path)
    again = Lexicon.load(path, "en", countries.relations)
    assert {k: v.as_dict() for k, v in again.entries.items()} == {k: v.as_dict() for k, v in lexicon.entries.items()}
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["relations"]["locatedin"]["inverse"]["question"] = "{wh} {be} in {x}?"
    data["relations"]["locatedin"]["inverse"]["phrase"] = "the {ones} in {x}"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    edited = Lexicon.for_graph(countries, "en", path=path)
    ex = path_example(countries, path_of(countries, "southern_africa", "locatedin^-1"), lexicon=edited)
    assert ex.question == "What is in Southern Africa?" and "Namibia" in ex.answers


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r["locatedin"].update(question="{wh} {bogus} {x}?"), "unknown placeholder {bogus}"),
        (lambda r: r["locatedin"].update(question="Where is it?"), "lacks the placeholder {x}"),
        (lambda r: r["locatedin"].update(statement="{h} 位于 {t}"), "has Chinese"),
        (lambda r: r.update(locatedIn_typo=r["locatedin"]), "'locatedIn_typo' is not a relation of the graph"),
        (lambda r: r["neighbor"].update(shape="adverb"), "shape 'adverb' is not one of"),
        (lambda r: r["neighbor"].pop("inverse"), "needs `question` and `inverse"),
    ],
)
def test_bad_lexicon_names_file_line_and_relation(countries: KnowledgeGraph, tmp_path: Path, edit, message: str):
    path = tmp_path / "lexicon.yaml"
    Lexicon.for_graph(countries, "en").write(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(data["relations"])
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with pytest.raises(LexiconError) as err:
        Lexicon.load(path, "en", countries.relations)
    text = str(err.value)
    assert str(path) in text and " line " in text and message in text


def test_lexicon_for_the_wrong_language_is_refused(countries: KnowledgeGraph, tmp_path: Path):
    path = tmp_path / "lexicon.yaml"
    Lexicon.for_graph(countries, "zh").write(path)
    with pytest.raises(LexiconError, match="lexicon is for language 'zh'"):
        Lexicon.load(path, "en", countries.relations)


def test_unreadable_relation_names_are_skipped_with_a_reason():
    g = KnowledgeGraph.from_triples(
        [("a", "1namedata", "b"), ("a", "t", "c"), ("a", "12", "d"), ("a", "birthPlace", "e")]
    )
    lexicon = Lexicon.for_graph(g, "en")
    for name in ("1namedata", "t", "12"):
        assert lexicon.get(name).skip
        out = path_example(g, path_of(g, "a", name), lexicon=lexicon)
        assert "has no wording" in out.reason
    assert not lexicon.get("birthPlace").skip


def test_run_writes_the_lexicon_and_reads_an_edited_one(tmp_path: Path):
    first = run_recipe(recipe_file(tmp_path, "kg_countries", task={"target_count": 12}), tmp_path / "run")
    written = first.path / "kg_lexicon.yaml"
    data = yaml.safe_load(written.read_text(encoding="utf-8"))
    assert data["language"] == "en" and set(data["relations"]) == {"locatedin", "neighbor"}
    data["relations"]["neighbor"]["question"] = "{wh} {are} the countries bordering {x}?"
    data["relations"]["neighbor"]["phrase"] = "the countries bordering {x}"
    data["relations"]["neighbor"]["inverse"] = {
        "question": "{wh} {are} the countries bordering {x}?",
        "phrase": "the countries bordering {x}",
    }
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    second = run_recipe(
        recipe_file(
            tmp_path, "kg_countries", task={"target_count": 12}, walks={"lexicon": str(edited), "relations": {}}
        ),
        tmp_path / "run2",
    )
    questions = [r.messages[-2]["content"] for r in second.read_records("generate")]
    assert any("bordering" in q for q in questions) and not any("neighbor" in q for q in questions)


# ---------------------------------------------------------------------------------------------- classes and names


def test_entity_classes_from_people_cues_and_relation_signatures():
    triples = [(f"p{i}", "birthPlace", f"city{i % 3}") for i in range(30)]
    triples += [(f"p{i}", "clubs", f"club{i % 25}") for i in range(30)]
    g = KnowledgeGraph.from_triples(triples)
    namer = ClassNamer(g, Lexicon.for_graph(g, "en"))
    people = np.array([g.entity_id("p1"), g.entity_id("p2")])
    assert namer.of(people).person
    clubs = np.array([g.entity_id("club1"), g.entity_id("club2")])
    assert namer.of(clubs).en == ("club", "clubs")
    q = path_example(
        g, path_of(g, "club1", "clubs^-1", "birthPlace"), lexicon=Lexicon.for_graph(g, "en"), classes=namer
    )
    assert q.question == "What are the birth places of the people who have Club1 as their club?"


def test_names_keep_their_casing_unless_the_graph_writes_ids_in_lowercase():
    mixed = KnowledgeGraph.from_triples(
        [
            ("Inception", "has_tags", "world war ii"),
            ("Inception", "in_language", "r"),
            ("Tom_Hardy", "starred", "Inception"),
        ]
    )
    assert mixed.name(mixed.entity_id("world war ii")) == "world war ii" and mixed.name(mixed.entity_id("r")) == "r"
    lower = KnowledgeGraph.from_triples([("united_states", "neighbor", "canada")])
    assert lower.name(lower.entity_id("united_states")) == "United States"


# ---------------------------------------------------------------------------------------------- the wording check


def test_wording_check_flags_the_issues_questions_and_passes_plain_ones():
    bad = {
        "What are the starred actorses of Inception?": "not an English word",
        "Which entities are the entities that have Tom Hanks as their starred actors written by?": "neutral noun",
        "What is the neighbors of France?": "agreement",
        "What are the nationalteam of Pelé?": "not an English word",
        "What is the {r1} of France?": "placeholder",
        "What are the almaMater of X?": "camelCase",
        "Is an neighbor of France?": "article",
    }
    for question, problem in bad.items():
        found = problems(question, ["Inception", "Tom Hanks", "France", "Pelé", "X"])
        assert any(problem in p for p in found), (question, found)
    good = [
        "Who directed Inception?",
        "Which films were directed by Christopher Nolan?",
        "What are the neighbors of the countries located in Europe?",
        "Who wrote the films starring Tom Hanks?",
        "What is the capital of France, other than Paris?",
    ]
    for question in good:
        assert problems(question, ["Inception", "Christopher Nolan", "Europe", "Tom Hanks", "France", "Paris"]) == []
    assert problems("法国的邻国是什么？", ["法国"], "zh") == []
    assert problems("法国的almaMater是什么？", ["法国"], "zh")
    assert problems("哪些实体的邻国是实体的首都？", [], "zh")


def test_derived_questions_on_the_countries_graph_pass_the_check(countries: KnowledgeGraph):
    from sftforge.kg import paths_from_walks, random_walks, start_nodes

    lexicon = Lexicon.for_graph(countries, "en")
    namer = ClassNamer(countries, lexicon)
    walks = random_walks(countries, start_nodes(countries, 300, seed=3), 3, "uniform", seed=4)
    made = [path_example(countries, p, lexicon=lexicon, classes=namer) for p in paths_from_walks(walks, seed=5)]
    questions = [(e.question, e.topic) for e in made if hasattr(e, "question")]
    assert len(questions) > 50
    flagged = [q for q, t in questions if problems(q, [t])]
    assert len(flagged) <= 0.05 * len(questions), flagged[:5]
    assert verbalise(["neighbor"], "France", plural=[True]) == "What are the neighbors of France?"


# ---------------------------------------------------------------------------------------------- the LLM's wordings


EXAMPLES_DIRECTED = [("Inception", "Christopher Nolan"), ("Jaws", "Steven Spielberg")]


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("ASK: Who directed {x}?\nASK_BACK: Which films were directed by {x}?\nSAY: {h} was directed by {t}.", None),
        ("ASK: Who directed {x}?\nASK_BACK: Who directed {x}?\nSAY: {h} was directed by {t}.", "the same question"),
        ("ASK: Who directed Inception?\nASK_BACK: Which films did {x} direct?\nSAY: {h} was directed by {t}.", "{x}"),
        ("ASK: Who directed {x}?\nASK_BACK: Which films did {x} direct?\nSAY: {h}{t}.", "does not read back"),
        ("ASK: Who directed {x}?\nASK_BACK: Which films did {x} direct?\nSAY: {h} was directed by {y}.", "{h} and {t}"),
        ("ASK: {x}?\nASK_BACK: Which films did {x} direct?\nSAY: {h} was directed by {t}.", "nothing beyond the name"),
        ("ASK: 谁导演了{x}？\nASK_BACK: Which films did {x} direct?\nSAY: {h} was directed by {t}.", "not in English"),
        (
            "ASK: Who directed Jaws, {x}?\nASK_BACK: Which films did {x} direct?\nSAY: {h} was directed by {t}.",
            "copies",
        ),
    ],
)
def test_proposals_are_checked(reply: str, reason: str | None):
    found = check_proposal(parse_proposal(reply), "en", EXAMPLES_DIRECTED)
    assert found is None if reason is None else (found is not None and reason in found), found


def test_proposal_without_a_line_does_not_parse():
    with pytest.raises(ValueError, match="no SAY line"):
        parse_proposal("ASK: Who directed {x}?\nASK_BACK: Which films did {x} direct?")
    zh = parse_proposal("问：{x}的导演是谁？\n反问：{x}导演了哪些电影？\n述：{h}由{t}导演。")
    assert check_proposal(zh, "zh", [("盗梦空间", "诺兰"), ("大白鲨", "斯皮尔伯格")]) is None


def test_an_adopted_wording_asks_single_names_and_keeps_the_derived_phrases(tmp_path: Path):
    g = KnowledgeGraph.from_triples(
        [
            ("Inception", "directed_by", "Christopher Nolan"),
            ("Dunkirk", "directed_by", "Christopher Nolan"),
            ("Inception", "starring", "Tom Hardy"),
            ("Dunkirk", "starring", "Tom Hardy"),
        ]
    )
    lexicon = Lexicon.for_graph(g, "en")
    proposal = parse_proposal("ASK: Who made {x}?\nASK_BACK: What did {x} make?\nSAY: {t} made {h}.")
    assert check_proposal(proposal, "en", [("Inception", "Christopher Nolan")]) is None
    adopt(lexicon.get("directed_by"), proposal)
    one = path_example(g, path_of(g, "Inception", "directed_by"), lexicon=lexicon, reasoning=True)
    assert one.question == "Who made Inception?" and one.reasoning == ["Christopher Nolan made Inception."]
    back = path_example(g, path_of(g, "Christopher Nolan", "directed_by^-1"), lexicon=lexicon)
    assert back.question == "What did Christopher Nolan make?"
    two = path_example(g, path_of(g, "Tom Hardy", "starring^-1", "directed_by"), lexicon=lexicon)
    assert two.question.startswith("Who directed the")  # nested: the derived phrase, which agrees in number
    path = tmp_path / "lexicon.yaml"
    lexicon.write(path)
    again = Lexicon.load(path, "en", g.relations).get("directed_by")
    assert again.origin == "llm" and again.forward["question_one"] == "Who made {x}?"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["relations"]["directed_by"]["question_one"] = "Who {be} behind {x}?"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(LexiconError, match="unknown placeholder {be}"):
        Lexicon.load(path, "en", g.relations)


def test_bundled_model_proposals_are_checked_and_cached(llm, countries: KnowledgeGraph, tmp_path: Path):
    """The real bundled model words the countries relations; whatever it writes is either accepted by the check
    (and then re-checks clean) or rejected with a reason; a second call asks nothing."""
    from sftforge.config import Generation, Sampling
    from sftforge.generate.kg_lexicon import PROPOSALS_FILE, examples_of, propose

    lexicon = Lexicon.for_graph(countries, "en")
    counts = propose(lexicon, countries, llm, Generation(max_attempts=2), Sampling(seed=1), 2, tmp_path)
    assert counts["accepted"] + counts["rejected"] == 2 and counts["cached"] == 0
    stored = json.loads((tmp_path / PROPOSALS_FILE).read_text(encoding="utf-8"))
    assert stored["model"] == llm.model_id and set(stored["relations"]) == {"neighbor", "locatedin"}
    for name, got in stored["relations"].items():
        if "rejected" in got:
            assert got["rejected"] and lexicon.get(name).origin == "rules"
        else:
            r = countries.relation_id(name)
            assert check_proposal(Proposal(**got), "en", examples_of(countries, r)) is None
            assert lexicon.get(name).origin == "llm"
    again = propose(Lexicon.for_graph(countries, "en"), countries, llm, Generation(), Sampling(seed=1), 2, tmp_path)
    assert again["cached"] == 2 and again["accepted"] == counts["accepted"]
