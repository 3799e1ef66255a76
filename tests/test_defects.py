"""Planted defects for the selection benchmark: counts, labels, lineage and determinism."""

from __future__ import annotations

import copy
import importlib.util
import re
from pathlib import Path

import pytest

from sftforge.sample import AnswerCheck, Lineage, Record, SourceRef, record_id

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "defects.py"
_SPEC = importlib.util.spec_from_file_location("benchmarks_defects", _PATH)
D = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(D)

TOPICS = [
    "photosynthesis",
    "the French Revolution",
    "plate tectonics",
    "the immune system",
    "binary search",
    "the water cycle",
    "supply and demand",
    "the Roman Empire",
    "black holes",
    "DNA replication",
    "the printing press",
    "volcanoes",
    "compound interest",
    "the Silk Road",
    "neural networks",
    "the Renaissance",
    "ocean tides",
    "vaccines",
    "the steam engine",
    "climate zones",
]


def _record(i: int, lang: str = "en") -> Record:
    if lang == "zh":
        messages = [
            {"role": "user", "content": f"第{i}个问题：光合作用在植物的哪个部位进行？"},
            {
                "role": "assistant",
                "content": f"光合作用主要在叶片的叶绿体中进行，编号{i}，它把光能转化为化学能。",
            },
        ]
    else:
        topic = TOPICS[i % len(TOPICS)]
        messages = [
            {"role": "system", "content": "You are a helpful tutor."},
            {"role": "user", "content": f"Question {i}: what is the main idea behind {topic}?"},
            {
                "role": "assistant",
                "content": f"The main idea behind {topic} is explained in lesson {i}. It connects several causes "
                f"and effects that students meet again later. Teachers usually start with a simple example.",
            },
        ]
    source = [SourceRef("chunk", f"doc{i}#0", f"doc{i}", 0, 100)]
    return Record(
        id=record_id(messages, source, "grounded/qa"),
        messages=messages,
        task="qa",
        lang=lang,
        source=source,
        lineage=Lineage(generator="grounded/qa", model="smollm2", temperature=0.7),
        features={"length": 30.0},
        answer_check=AnswerCheck("overlap", True, 0.9),
    )


@pytest.fixture()
def records() -> list[Record]:
    return [_record(i) for i in range(100)]


def _answer(r: Record) -> str:
    return r.messages[-1]["content"]


def _by_id(records: list[Record]) -> dict[str, Record]:
    return {r.id: r for r in records}


def test_counts_per_kind_match_fraction(records):
    pool, labels = D.plant_defects(records, fraction=0.3, seed=1)
    assert len(pool) == len(records)
    assert set(labels) == {r.id for r in pool}
    summary = D.defect_summary(labels)
    assert summary == {"clean": 70, "near_duplicate": 6, "off_topic": 6, "one_word": 6, "swapped": 6, "truncated": 6}
    # a remainder goes one each to the first kinds
    _, labels = D.plant_defects(records, fraction=0.12, seed=1, kinds=("truncated", "swapped", "one_word"))
    assert D.defect_summary(labels) == {"clean": 88, "one_word": 4, "swapped": 4, "truncated": 4}
    _, labels = D.plant_defects(records, fraction=0.07, seed=1, kinds=("truncated", "swapped"))
    assert D.defect_summary(labels) == {"clean": 93, "swapped": 3, "truncated": 4}
    _, labels = D.plant_defects(records, fraction=0.0, seed=1)
    assert D.defect_summary(labels) == {"clean": 100}


def test_ids_unique_parents_and_lineage(records):
    originals = _by_id(records)
    pool, labels = D.plant_defects(records, fraction=0.5, seed=2)
    assert len({r.id for r in pool}) == len(pool)
    for r in pool:
        kind = labels[r.id]
        if kind == "clean":
            assert r.id in originals and r is originals[r.id]
            continue
        assert r.id not in originals
        assert r.lineage.generator == f"defect:{kind}"
        assert r.lineage.model == "smollm2"
        assert len(r.lineage.parents) == 1 and r.lineage.parents[0] in originals
        assert r.id == record_id(r.messages, r.source, f"defect:{kind}")
        assert r.features == {}
        # the question is the parent's, except for near-duplicates, which may edit it
        parent = originals[r.lineage.parents[0]]
        if kind != "near_duplicate":
            assert r.messages[:-1] == parent.messages[:-1]
            assert _answer(r) != _answer(parent)


def test_inputs_not_modified(records):
    before = copy.deepcopy(records)
    D.plant_defects(records, fraction=0.6, seed=3)
    assert records == before


def test_swapped_answers_never_own(records):
    originals = _by_id(records)
    pool, labels = D.plant_defects(records, fraction=0.5, seed=4, kinds=("swapped",))
    swapped = [r for r in pool if labels[r.id] == "swapped"]
    assert len(swapped) == 50
    parents = [originals[r.lineage.parents[0]] for r in swapped]
    parent_answers = sorted(_answer(p) for p in parents)
    assert sorted(_answer(r) for r in swapped) == parent_answers  # a permutation among the chosen
    for r, p in zip(swapped, parents):
        assert _answer(r) != _answer(p)
        assert r.messages[1] == p.messages[1]  # the question stays


def test_lone_swapped_record_takes_another_answer(records):
    pool, labels = D.plant_defects(records[:10], fraction=0.1, seed=0, kinds=("swapped",))
    (r,) = [r for r in pool if labels[r.id] == "swapped"]
    parent = _by_id(records)[r.lineage.parents[0]]
    assert _answer(r) != _answer(parent)
    assert _answer(r) in {_answer(x) for x in records[:10]}


def test_truncated_answers_are_strict_word_prefixes(records):
    originals = _by_id(records)
    pool, labels = D.plant_defects(records, fraction=0.4, seed=5, kinds=("truncated",))
    truncated = [r for r in pool if labels[r.id] == "truncated"]
    assert len(truncated) == 40
    for r in truncated:
        full = _answer(originals[r.lineage.parents[0]])
        cut = _answer(r)
        assert full.startswith(cut) and len(cut) < len(full)
        words, full_words = cut.split(), full.split()
        assert words[:-1] == full_words[: len(words) - 1]
        assert full_words[len(words) - 1].startswith(words[-1])
        assert 0.2 * len(full_words) <= len(words) <= 0.5 * len(full_words)
        assert not re.search(r"[^\w\s]$", cut)  # no final punctuation


def test_truncated_chinese_by_characters():
    zh = [_record(i, "zh") for i in range(10)]
    pool, labels = D.plant_defects(zh, fraction=1.0, seed=0, kinds=("truncated",))
    for r in pool:
        full = _answer(_by_id(zh)[r.lineage.parents[0]])
        cut = _answer(r)
        assert full.startswith(cut) and 0.15 * len(full) <= len(cut) <= 0.5 * len(full)
        assert cut[-1] not in "，。！？"


def test_off_topic_and_one_word(records):
    originals = _by_id(records)
    pool, labels = D.plant_defects(records, fraction=0.4, seed=6, kinds=("off_topic", "one_word"))
    for r in pool:
        kind = labels[r.id]
        if kind == "off_topic":
            sentences = [s for s in D.OFF_TOPIC_EN if s in _answer(r)]
            assert 2 <= len(sentences) <= 3
            assert len(" ".join(sentences)) == len(_answer(r))  # nothing but those sentences
        elif kind == "one_word":
            text = _answer(r)
            original = _answer(originals[r.lineage.parents[0]])
            assert text in ("Yes.", "No.") or (len(text.split()) == 1 and text in original)
    assert len(set(D.OFF_TOPIC_EN)) >= 30


def test_near_duplicates_are_few_records_copied_often(records):
    originals = _by_id(records)
    pool, labels = D.plant_defects(records, fraction=0.4, seed=7, kinds=("near_duplicate",))
    copies = [r for r in pool if labels[r.id] == "near_duplicate"]
    assert len(copies) == 40
    parents = {r.lineage.parents[0] for r in copies}
    assert len(parents) == 10  # about four copies each
    for pid in parents:
        assert labels[pid] == "clean"  # the copied record stays, clean
    texts = {tuple(m["content"] for m in r.messages) for r in pool}
    assert len(texts) == len(pool)  # every copy differs from its source and from the other copies
    for r in copies:
        parent = originals[r.lineage.parents[0]]
        for a, b in zip(r.messages, parent.messages):
            assert a["role"] == b["role"]
            # small edits: same words up to order, case and punctuation
            norm = lambda s: sorted(re.sub(r"[^\w\s]", "", s).lower().split())  # noqa: E731
            assert norm(a["content"]) == norm(b["content"])


def test_deterministic_for_a_seed(records):
    a_pool, a_labels = D.plant_defects(records, fraction=0.3, seed=11)
    b_pool, b_labels = D.plant_defects(list(records), fraction=0.3, seed=11)
    assert [r.id for r in a_pool] == [r.id for r in b_pool]
    assert a_pool == b_pool and a_labels == b_labels
    c_pool, _ = D.plant_defects(records, fraction=0.3, seed=12)
    assert [r.id for r in a_pool] != [r.id for r in c_pool]


def test_rejects_bad_arguments(records):
    with pytest.raises(ValueError):
        D.plant_defects(records, fraction=1.5, seed=0)
    with pytest.raises(ValueError):
        D.plant_defects(records, fraction=0.2, seed=0, kinds=("typo",))
    with pytest.raises(ValueError):
        D.plant_defects(records + records[:1], fraction=0.2, seed=0)
    with pytest.raises(ValueError):
        D.plant_defects(records, fraction=1.0, seed=0)  # near-duplicates need a clean record to copy
    no_answer = Record(id="x", messages=[{"role": "user", "content": "hi"}], task="qa", lang="en")
    with pytest.raises(ValueError):
        D.plant_defects([no_answer], fraction=0.0, seed=0)
