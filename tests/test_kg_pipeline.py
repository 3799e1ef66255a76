"""kg_qa through the pipeline: the shipped countries recipes (English and Chinese), answers re-executed by brute
force over the triple files, resume after an interruption, paraphrases by the bundled model, bad input."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml

from sftforge.errors import RecipeError, SourceError
from sftforge.figures import GenerateFigures, read_figures
from sftforge.recipe import load_recipe
from sftforge.run import RunDir, ShardLog

from conftest import EXAMPLES, run_recipe

KG_DIR = EXAMPLES / "data" / "kg_countries"


def recipe_file(tmp: Path, name: str, **changes: dict) -> Path:
    """A shipped example recipe with its data paths made absolute and some sections changed."""
    data = yaml.safe_load((EXAMPLES / "recipes" / f"{name}.yaml").read_text(encoding="utf-8"))
    kg = data["sources"]["kg"]
    kg["path"] = [str(KG_DIR / Path(p).name) for p in kg["path"]]
    kg["labels"] = [str(KG_DIR / Path(p).name) for p in kg.get("labels", [])]
    for section, values in changes.items():
        data[section] = data.get(section, {}) | values
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


run = run_recipe


# -- brute force: plain Python sets over the raw triple lines ----------------------------------------------------


def edges() -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for name in ("train.txt", "valid.txt", "test.txt"):
        for line in (KG_DIR / name).read_text(encoding="utf-8").splitlines():
            h, r, t = line.split("\t")
            out.setdefault((h, r), set()).add(t)
            out.setdefault((t, r + "^-1"), set()).add(h)
    return out


def execute(adj: dict[tuple[str, str], set[str]], topic: str, relations: list[str]) -> set[str]:
    frontier = {topic}
    for r in relations:
        frontier = set().union(*(adj.get((e, r), set()) for e in frontier))
    return frontier


@pytest.fixture(scope="module")
def english(tmp_path_factory) -> RunDir:
    tmp = tmp_path_factory.mktemp("kg_en")
    return run(recipe_file(tmp, "kg_countries", task={"target_count": 40}), tmp / "run")


def test_countries_answers_are_the_full_answer_sets_of_their_paths(english: RunDir):
    from sftforge.kg import load_graph

    graph = load_graph([KG_DIR / n for n in ("train.txt", "valid.txt", "test.txt")])
    name_to_id = {graph.name(i): graph.entity(i) for i in range(graph.num_entities)}
    adj = edges()
    relations = sorted({r for _, r in adj})
    records = english.read_records("clean")
    assert len(records) == 40
    hops = set()
    for rec in records:
        assert rec.task == "kg_qa" and rec.answer_check.passed and rec.answer_check.method == "kg_execution"
        path = [s for s in rec.source if s.kind == "kg_path"]
        assert len(path) == 1
        topic, *rels = path[0].id.split("\t")
        hops.add(len(rels))
        expected = {name_to_id[n] for n in rec.answer_check.expected}
        full = execute(adj, topic, rels)  # the whole answer set, not the walk's end node
        # a set that holds the topic is asked "other than" it, and the topic is not an answer
        assert full - {topic} == expected and (topic in full) == ("other than" in rec.messages[-2]["content"])
        assert topic not in expected and 1 <= len(expected) <= 8
        for k in range(1, len(rels)):  # no shorter relation path gives the same answers
            for shorter in itertools.product(relations, repeat=k):
                assert execute(adj, topic, list(shorter)) != expected, (rels, shorter)
        # the reasoning chain's triples are graph triples, and its last line names every answer
        for s in rec.source:
            if s.kind == "triple":
                h, r, t = s.id.split("\t")
                assert t in adj[(h, r)]
        last = rec.messages[-1]["content"].splitlines()[-1]
        assert last.startswith("So the answer is:") and all(n in last for n in rec.answer_check.expected)
    assert len(hops) >= 2, "expected questions of more than one hop length"
    assert len({r.messages[0]["content"] for r in records}) == len(records)


def test_countries_rejections_are_kept_with_their_reasons(english: RunDir):
    info = english.stage_info("generate")
    reasons = info.extra["rejected_by_reason"]
    assert sum(reasons.values()) == info.counts["rejected"] > 0
    rejected = english.read_table("generate", rejected=True).to_pylist()
    assert len(rejected) == info.counts["rejected"]
    assert all(r["source"][0]["kind"] == "kg_path" and r["reject_reason"] for r in rejected)
    hops = read_figures(english, GenerateFigures).generators["kg_walk"].own["hops"]
    assert hops and sum(hops.values()) == info.counts["records"]


def test_chinese_recipe_uses_chinese_names_and_words(tmp_path: Path):
    rd = run(recipe_file(tmp_path, "kg_countries_zh", task={"target_count": 20}), tmp_path / "run")
    records = rd.read_records("clean")
    assert len(records) == 20
    for rec in records:
        question, answer = rec.messages[0]["content"], rec.messages[-1]["content"]
        assert rec.lang == "zh" and question.endswith("？")
        assert "所以答案是：" in answer
        assert all(any("\u4e00" <= ch <= "\u9fff" for ch in name) for name in rec.answer_check.expected)
        assert "located" not in question and "neighbor" not in question


def test_interrupted_kg_generation_resumes_to_the_same_dataset(tmp_path: Path, monkeypatch):
    path = recipe_file(tmp_path, "kg_countries", task={"target_count": 24}, generation={"shard_size": 4})
    whole = run(path, tmp_path / "whole")

    real_commit = ShardLog.commit
    calls = {"n": 0}

    def failing_commit(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real_commit(self, *args, **kwargs)

    monkeypatch.setattr(ShardLog, "commit", failing_commit)
    with pytest.raises(KeyboardInterrupt):
        run(path, tmp_path / "cut")
    monkeypatch.setattr(ShardLog, "commit", real_commit)
    cut = RunDir.open(tmp_path / "cut")
    assert cut.manifest["stages"]["generate"]["status"] == "running"
    before = {r.id for r in cut.read_records("generate")}
    assert before
    resumed = run(path, tmp_path / "cut")
    ids = [r.id for r in resumed.read_records("generate")]
    assert len(ids) == len(set(ids)) and before <= set(ids)
    assert sorted(ids) == sorted(r.id for r in whole.read_records("generate"))
    rejected = sorted(resumed.read_table("generate", rejected=True).column("id").to_pylist())
    assert rejected == sorted(whole.read_table("generate", rejected=True).column("id").to_pylist())


def test_kg_input_errors_name_the_problem(tmp_path: Path):
    data = yaml.safe_load((EXAMPLES / "recipes" / "kg_countries.yaml").read_text())
    del data["sources"]["kg"]
    data["sources"]["documents"] = [{"path": "x.txt"}]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(RecipeError, match="add sources.kg"):
        load_recipe(bad)

    path = recipe_file(tmp_path, "kg_countries")
    data = yaml.safe_load(path.read_text())
    data["sources"]["kg"]["path"] = [str(tmp_path / "missing.tsv")]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SourceError, match="missing.tsv is not a file"):
        run(path, tmp_path / "run1")

    broken = tmp_path / "broken.tsv"
    broken.write_text("a\tneighbor\tb\nc\tneighbor\n", encoding="utf-8")
    data["sources"]["kg"]["path"] = [str(broken)]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SourceError, match=r"broken.tsv.*line 2"):
        run(path, tmp_path / "run2")


@pytest.mark.slow
def test_paraphrases_by_the_bundled_model_keep_the_verified_answers(tmp_path: Path):
    plain = run(
        recipe_file(tmp_path, "kg_countries", task={"target_count": 8}, generation={"shard_size": 4}),
        tmp_path / "plain",
    )
    path = recipe_file(
        tmp_path,
        "kg_countries",
        task={"target_count": 8},
        generation={"shard_size": 4},
        walks={"paraphrase": True, "reasoning": False},
    )
    para = run(path, tmp_path / "para")
    by_path = {r.source[0].id: r for r in plain.read_records("generate")}
    records = para.read_records("generate")
    assert len(records) == 8
    reworded = 0
    for rec in records:
        twin = by_path[rec.source[0].id]  # the same walks: the same paths, in the same order
        assert rec.answer_check.expected == twin.answer_check.expected
        assert rec.lineage.generator == "kg_walk" and rec.lineage.model != "none"
        if rec.messages[0]["content"] != twin.messages[0]["content"]:
            reworded += 1
            assert "reworded by the LLM" in rec.answer_check.detail
            assert rec.messages[0]["content"].endswith("?")
    figures = read_figures(para, GenerateFigures)
    assert figures.generators["kg_walk"].own["paraphrased"] == reworded
    assert figures.usage.requests == 8


def test_kg_records_train_and_are_scored_by_their_answer_sets(tmp_path: Path, tiny_dir: Path):
    import json

    import pyarrow.parquet as pq

    from sftforge.train.evaluate import references

    path = recipe_file(
        tmp_path,
        "kg_countries",
        task={"target_count": 30},
        selection={"strategy": "all", "eval_fraction": 0.2},
        training={
            "model": str(tiny_dir),
            "method": "full",
            "steps": 2,
            "batch_size": 2,
            "max_seq_len": 256,
            "eval_every": 2,
            "save_every": 2,
            "threads": 2,
        },
        evaluation={"max_examples": 2, "max_new_tokens": 6},
    )
    rd = run(path, tmp_path / "run")
    assignments = pq.read_table(rd.stage_dir("select") / "assignments.parquet").to_pylist()
    eval_ids = {row["id"] for row in assignments if row["split"] == "eval"}
    held_out = [r for r in rd.read_records("clean") if r.id in eval_ids]
    assert held_out
    for rec in held_out:  # scored against the verified names, not the reasoning text
        assert references(rec, rec.messages[-1]["content"]) == rec.answer_check.expected
    results = json.loads((rd.stage_dir("evaluate") / "results.json").read_text())
    entry = next(iter(results.values()))
    for which in ("base", "tuned"):
        assert {"answer_recall", "answer_all_found", "loss"} <= set(entry[which])
        assert 0.0 <= entry[which]["answer_recall"] <= 1.0
