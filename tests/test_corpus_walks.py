"""Corpus walks (multi_doc_qa): named entities, the passage graph, the walks' passage sets, the parse checks on
hand-written outputs (English and Chinese), and a run on the bundled model."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sftforge.config import Walks
from sftforge.errors import SourceError
from sftforge.figures import GenerateFigures, read_figures
from sftforge.generate.base import WorkItem
from sftforge.generate.generators.corpus_walk import BRIDGE, COMPARISON, CorpusWalkStep, PassageSet, drawn_from
from sftforge.generate.parsing import ParseError
from sftforge.recipe import Task
from sftforge.sources.chunking import Passage
from sftforge.sources.passage_graph import SHARES_ENTITY, build_passage_graph, named_entities

from conftest import EXAMPLES

DOCS = {
    "rhine": [
        "The Rhine rises in the Swiss Alps and flows north through Basel before it reaches the North Sea.",
        "Shipping on the Rhine carries coal and grain; the river port of Duisburg is the largest inland port.",
    ],
    "alps": [
        "The Swiss Alps hold glaciers such as the Aletsch Glacier, which feed rivers that flow to the sea.",
        "Tourism in the mountains grew after railways such as the Gotthard line were built through the Alps.",
    ],
    "steam": [
        "James Watt improved the steam engine with a separate condenser, which saved fuel in coal mines.",
        "Early steam locomotives hauled coal from mines to ports; the Gotthard railway later used electric trains.",
    ],
}


def passages() -> list[Passage]:
    out = []
    for doc, texts in DOCS.items():
        pos = 0
        for i, text in enumerate(texts):
            out.append(Passage(f"{doc}#{i}", doc, pos, pos + len(text), text))
            pos += len(text) + 2
    return out


def test_named_entities_english_and_chinese():
    found = named_entities(
        "The Rhine flows to the North Sea. It passes Basel. PEP 8 was written by Guido van Rossum.", "en"
    )
    assert {"rhine", "north sea", "basel", "pep 8", "guido van rossum"} <= found
    assert not {"the", "it", "the rhine"} & found  # sentence-initial common words are not names
    zh = named_entities("莱茵河流经《德国宪法》提到的“北海”地区，Basel 是城市。", "zh")
    assert {"德国宪法", "北海", "basel"} <= zh


def test_passage_graph_links_across_documents_and_by_shared_entity():
    ps = passages()
    pg = build_passage_graph([p.text for p in ps], [p.doc_id for p in ps], "en", neighbours=2)
    g = pg.graph
    for e in range(g.num_entities):  # no link stays inside one document
        a = int(g.entity(e))
        for t in g.indices[g.indptr[e] : g.row_end()[e]]:
            assert ps[a].doc_id != ps[int(g.entity(int(t)))].doc_id
    # "gotthard" is named in alps#1 and steam#1 only: a shared-entity link with the name kept
    assert pg.entity_between(3, 5) == pg.entity_between(5, 3) == "gotthard"
    assert g.has_edge(g.entity_id("3"), g.relation_id(SHARES_ENTITY), g.entity_id("5"))
    assert pg.entity_links >= 1 and pg.similar_links >= 3
    within = build_passage_graph([p.text for p in ps], [p.doc_id for p in ps], "en", neighbours=2, cross_document=False)
    assert within.graph.num_edges >= g.num_edges
    with pytest.raises(SourceError, match="cross_document"):
        build_passage_graph(["one text", "another text"], ["d", "d"], "en")


def walks(**kw) -> Walks:
    return Walks(**({"strategy": "uniform", "min_passages": 2, "max_passages": 3, "batch": 16} | kw))


def task(lang: str = "en", **kw) -> Task:
    return Task(type="multi_doc_qa", description="rivers, mountains and engines", language=lang, **kw)


def test_walks_give_distinct_linked_passage_sets_the_same_on_every_run():
    ps = passages()
    pg = build_passage_graph([p.text for p in ps], [p.doc_id for p in ps], "en", neighbours=2)
    gen = CorpusWalkStep(task(), walks())
    first = list(gen.work_items(pg, ps, seed=5, max_walks=64))
    again = list(gen.work_items(pg, ps, seed=5, max_walks=64))
    assert [i.key for i in first] == [i.key for i in again]
    assert [[p.chunk_id for p in i.payload.passages] for i in first] == [
        [p.chunk_id for p in i.payload.passages] for i in again
    ]
    sets = [frozenset(p.chunk_id for p in i.payload.passages) for i in first]
    assert len(sets) == len(set(sets)) > 3
    for item in first:
        chain = item.payload.passages
        assert 2 <= len(chain) <= 3 and len({p.doc_id for p in chain[:2]}) == 2  # each step crosses documents
        if item.payload.entity:
            assert item.payload.kind == BRIDGE
    assert {i.payload.kind for i in first} == {BRIDGE, COMPARISON}
    other = list(gen.work_items(pg, ps, seed=6, max_walks=64))
    assert [i.key for i in other] != [i.key for i in first] or sets != [
        frozenset(p.chunk_id for p in i.payload.passages) for i in other
    ]


def item(*ids: int, entity: str | None = None) -> WorkItem:
    ps = passages()
    return WorkItem("k", PassageSet(tuple(ps[i] for i in ids), entity))


def test_parse_accepts_an_answer_that_needs_both_passages():
    gen = CorpusWalkStep(task(), walks())
    it = item(3, 5, entity="gotthard")
    prompt = gen.prompt(it)
    assert '"gotthard"' in prompt[-2]["content"] and "Text 2:" in prompt[-2]["content"]
    rec = gen.parse(
        it,
        " Which railway through the Alps later used electric trains?\n"
        "Answer: The Gotthard line, built through the Alps, later used electric trains.",
    )
    assert rec.task == "multi_doc_qa" and rec.answer_check.passed and rec.answer_check.score == 1.0
    assert [s.id for s in rec.source] == ["alps#1", "steam#1"] and all(s.kind == "chunk" for s in rec.source)
    user = rec.messages[0]["content"]
    assert (
        "Text 1:" in user
        and "Text 2:" in user
        and user.endswith("Question: Which railway through the Alps later used electric trains?")
    )


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        (" What does the Rhine carry?\nAnswer: Shipping on the Rhine carries coal and grain.", "only one passage"),
        (" Which river does Duisburg lie on?\nAnswer: West Germany won the World Cup in Rome.", "not supported"),
        (" Which railway used electric trains?", "no 'Answer:'"),
        (
            " Tell me about trains\nAnswer: The Gotthard line used electric trains through the Alps.",
            "not phrased as a question",
        ),
    ],
)
def test_parse_rejects_with_the_reason(output: str, reason: str):
    gen = CorpusWalkStep(task(), walks())
    with pytest.raises(ParseError, match=reason):
        gen.parse(item(1, 5, entity=None), output)


def test_drawn_from_counts_only_words_a_passage_has_alone():
    texts = ["Basel lies on the Rhine.", "Duisburg lies on the Rhine.", "Glaciers feed rivers."]
    assert drawn_from(texts, "Which cities lie on the Rhine?") == []
    assert drawn_from(texts, "Do Basel and Duisburg both lie on the Rhine?") == [0, 1]


def test_chinese_parse_and_record():
    zh = [
        Passage("a#0", "a", 0, 30, "莱茵河发源于瑞士阿尔卑斯山，流经巴塞尔。"),
        Passage("b#0", "b", 0, 30, "杜伊斯堡是莱茵河上最大的内河港口，运输煤炭。"),
    ]
    gen = CorpusWalkStep(task("zh"), walks())
    it = WorkItem("k", PassageSet(tuple(zh), "莱茵河"))
    assert "文字2：" in gen.prompt(it)[-2]["content"]
    rec = gen.parse(
        it, "莱茵河流经哪座瑞士城市，又有哪个最大的内河港口？\n答案：莱茵河流经巴塞尔，杜伊斯堡是它最大的内河港口。"
    )
    assert (
        rec.lang == "zh" and rec.answer_check.passed and rec.messages[0]["content"].startswith("根据这些文字回答问题。")
    )
    with pytest.raises(ParseError, match="not in Chinese"):
        gen.parse(it, "Which city?\n答案：Basel and Duisburg are on the Rhine.")


@pytest.mark.slow
def test_multi_doc_recipe_on_the_bundled_model(tmp_path: Path):
    from sftforge.recipe import load_recipe
    from sftforge.run import RunDir
    from sftforge.stages import Context, run_pipeline

    data = yaml.safe_load((EXAMPLES / "recipes" / "peps_multi_doc.yaml").read_text())
    data["sources"]["documents"] = [{"path": str(EXAMPLES / "data" / "peps" / "*.rst")}]
    data["task"]["target_count"] = 2
    data["walks"]["max_passages"] = 2
    data["sources"]["retrieval"]["top_k"] = 40
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data))
    recipe, text = load_recipe(path)
    run = RunDir.create(tmp_path / "run", text, recipe.name, tmp_path)
    run_pipeline(Context(run=run, recipe=recipe))
    records = run.read_records("clean")
    assert len(records) >= 2
    import pyarrow.parquet as pq

    texts = {r["doc_id"]: r["text"] for r in pq.read_table(run.stage_dir("sources") / "documents.parquet").to_pylist()}
    chunks = {r["chunk_id"]: r["text"] for r in pq.read_table(run.stage_dir("sources") / "chunks.parquet").to_pylist()}
    for rec in records:
        refs = [s for s in rec.source if s.kind == "chunk"]
        assert len(refs) == 2 and refs[0].doc_id != refs[1].doc_id
        for s in refs:
            assert texts[s.doc_id][s.start : s.end] == chunks[s.id]  # ids and offsets point at the passage
            assert chunks[s.id] in rec.messages[0]["content"]
        assert rec.answer_check.method == "multi_passage" and rec.answer_check.passed
        assert rec.lineage.generator == "corpus_walk" and rec.lineage.model
    figures = read_figures(run, GenerateFigures)
    assert figures.generators["corpus_walk"].own["passage_graph"]["similar_links"] > 0


def test_a_question_about_something_else_is_rejected():
    """The bundled model copies the prompt's worked example ("1911 Nobel Prize..."): not about these passages."""
    gen = CorpusWalkStep(task(), walks())
    with pytest.raises(ParseError, match="not about the passages"):
        gen.parse(
            item(3, 5, entity="gotthard"),
            " In which city was the winner of the 1911 Nobel Prize in Chemistry born?\n"
            "Answer: The Gotthard line through the Alps later used electric trains.",
        )


def test_with_the_responsiveness_check_the_answer_must_join_the_sentences_that_answer():
    gen = CorpusWalkStep(task(constraints={"responsiveness": {"enabled": True}}), walks())
    assert gen.attempts == 4  # best of n
    two = [
        Passage("alps#0", "alps", 0, 0, DOCS["alps"][1] + " " + DOCS["alps"][0]),
        Passage("steam#0", "steam", 0, 0, DOCS["steam"][1] + " " + DOCS["steam"][0]),
    ]
    it = WorkItem("k", PassageSet(tuple(two), "gotthard"))
    question = " Which railway built through the Alps later used electric trains?\nAnswer: "
    rec = gen.parse(it, question + "The Gotthard line, built through the Alps, later used electric trains.")
    assert rec.answer_check.method == "responsiveness" and rec.answer_check.passed
    assert "the 2 sentences the answer joins" in rec.answer_check.detail and rec.answer_check.score > 0.5
    with pytest.raises(ParseError, match="ranks above the ones it joins"):  # drawn from both, not what was asked
        gen.parse(it, question + "Glaciers such as the Aletsch feed rivers; James Watt improved the steam engine.")
