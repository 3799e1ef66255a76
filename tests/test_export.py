"""Export formats load back to the same examples."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from sftforge.export.formats import write_all
from sftforge.sample import AnswerCheck, Lineage, Record, SourceRef, table_to_records


def records() -> list[Record]:
    single = Record(
        id="a1",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is 2+2? «ünïcode» 中文"},
            {"role": "assistant", "content": "4"},
        ],
        task="qa",
        lang="en",
        source=[SourceRef("chunk", "doc#0", "doc", 0, 42)],
        lineage=Lineage(generator="grounded", model="m", temperature=0.3, seed=1, parents=["p"]),
        features={"length_assistant_chars": 1.0},
        answer_check=AnswerCheck("span", True, 1.0, "ok"),
    )
    multi = Record(
        id="b2",
        messages=[
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Bye"},
            {"role": "assistant", "content": "Goodbye"},
        ],
        task="dialogue",
        lang="en",
    )
    return [single, multi]


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_every_format_round_trips(tmp_path: Path):
    recs = records()
    info = write_all(recs, tmp_path, ["openai", "alpaca", "sharegpt", "parquet", "hf"])

    assert [r["messages"] for r in jsonl(tmp_path / "openai.jsonl")] == [r.messages for r in recs]

    alpaca = jsonl(tmp_path / "alpaca.jsonl")
    assert alpaca == [{"instruction": "What is 2+2? «ünïcode» 中文", "input": "", "output": "4", "system": "Be brief."}]
    assert info["alpaca"]["multi_turn_skipped"] == 1

    share = jsonl(tmp_path / "sharegpt.jsonl")
    assert [m["from"] for m in share[1]["conversations"]] == ["human", "gpt", "human", "gpt"]
    assert share[0]["conversations"][0] == {"from": "system", "value": "Be brief."}

    assert table_to_records(pq.read_table(tmp_path / "data.parquet")) == recs

    import datasets

    ds = datasets.load_from_disk(str(tmp_path / "hf"))
    assert len(ds) == 2
    assert ds[0]["messages"] == recs[0].messages
    assert ds[0]["features"] == [{"name": "length_assistant_chars", "value": 1.0}]
    assert ds[0]["answer_check"]["method"] == "span"


def test_only_requested_formats(tmp_path: Path):
    write_all(records(), tmp_path, ["openai"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["openai.jsonl"]
