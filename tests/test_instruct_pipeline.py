"""The instruction and dialogue generators end to end on the bundled model, in English and Chinese, with small
counts: lineage, manifest figures, rejections with reasons, and resume after an interruption."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from sftforge.lib.text import cjk_ratio
from sftforge.run import RunDir, ShardLog

from conftest import EXAMPLES, SHARED, run_recipe

pytestmark = pytest.mark.slow


def recipe_file(tmp: Path, name: str, target: int, generators: dict[str, dict], **sections: dict) -> Path:
    """A shipped recipe with absolute data paths, a small target and per-generator changes."""
    data = yaml.safe_load((EXAMPLES / "recipes" / f"{name}.yaml").read_text(encoding="utf-8"))
    data["task"]["target_count"] = target
    if "seeds" in data["sources"]:
        data["sources"]["seeds"]["path"] = str((EXAMPLES / "recipes" / data["sources"]["seeds"]["path"]).resolve())
    for doc in data["sources"].get("documents", []):
        doc["path"] = str((EXAMPLES / "recipes" / doc["path"]).resolve())
    data["generators"] = [g | generators.get(g["name"], {}) for g in data["generators"]]
    for section, values in sections.items():
        data[section] = data.get(section, {}) | values
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


run = run_recipe


SMALL = {"self_instruct": {"batch": 4}, "magpie": {"batch": 4}, "vae": {"epochs": 10}}


def test_english_instruction_generators(tmp_path: Path, monkeypatch):
    path = recipe_file(tmp_path, "instructions", 8, SMALL, generation={"sampling": {"max_tokens": 160}})
    rd = run(path, tmp_path / "whole")
    records = rd.read_records("generate")
    by_gen = {}
    for r in records:
        by_gen.setdefault(r.lineage.generator, []).append(r)
    assert set(by_gen) == {"self_instruct", "evol_instruct", "magpie", "vae"}
    assert len(records) == 8  # shares 3/2/2/1 of 8, waves cut at each share
    seed_ids = {f"seed_task_{i}" for i in range(175)}
    ids = {r.id for r in records}
    for r in records:
        assert (
            r.task == "instruction"
            and r.messages[-1]["role"] == "assistant"
            and r.lineage.model.startswith("llamacpp:")
        )
    for r in by_gen["self_instruct"]:
        assert r.source and all(s.kind == "seed" and s.id in seed_ids for s in r.source)  # the in-context seeds
        assert r.lineage.temperature == 1.0  # the generator's own sampling
    for r in by_gen["evol_instruct"]:
        assert r.lineage.parents and all(p in seed_ids or p in ids for p in r.lineage.parents)
        assert r.lineage.template.startswith("en/evol_instruct:")
    for r in by_gen["vae"]:
        assert r.lineage.parents and r.lineage.template in ("vae:near", "vae:between")
    extra = rd.manifest["stages"]["generate"]["extra"]
    figures = extra["generators"]
    vae = figures["vae"]
    assert vae["reconstruction_loss"] > 0 and vae["kl"] >= 0 and 0 < vae["acceptance_rate"] <= 1
    assert vae["proposed"] == vae["accepted"] + sum(vae["rejected"].values())
    assert figures["self_instruct"]["pool"] >= 175 + figures["self_instruct"]["kept_instructions"]
    for name in by_gen:
        d = figures[name]["diversity"]
        assert d["texts"] == len(by_gen[name]) and 0 < d["distinct_1"] <= 1 and 0 <= d["mean_pairwise_rouge_l"] < 1
    rejected = rd.read_table("generate", rejected=True)
    assert all(rejected.column("reject_reason").to_pylist())
    card = (rd.path / "export" / "README.md").read_text(encoding="utf-8")
    assert "Seed tasks**: 175" in card and f"| vae | {len(by_gen['vae'])} / 1 |" in card
    assert set(rejected.column("reject_operator").to_pylist()) <= set(by_gen)

    # Interrupted after its second wave, the rerun replays the committed waves and ends with the same dataset.
    cut = tmp_path / "cut"
    RunDir.create(cut, path.read_text(encoding="utf-8"), "instructions", path.parent)
    (cut / "cache").mkdir(exist_ok=True)
    shutil.copy(rd.path / "cache" / "llm.sqlite", cut / "cache" / "llm.sqlite")
    real_commit = ShardLog.commit
    calls = {"n": 0}

    def failing_commit(self, *args, **kwargs):
        if self.stage_dir.name == "generate":
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
        return real_commit(self, *args, **kwargs)

    monkeypatch.setattr(ShardLog, "commit", failing_commit)
    with pytest.raises(KeyboardInterrupt):
        run(path, cut)
    monkeypatch.setattr(ShardLog, "commit", real_commit)
    before = {r.id for r in RunDir.open(cut).read_records("generate")}
    assert before and before < ids
    resumed = run(path, cut)
    assert sorted(r.id for r in resumed.read_records("generate")) == sorted(ids)
    assert sorted(resumed.read_table("generate", rejected=True).column("id").to_pylist()) == sorted(
        rejected.column("id").to_pylist()
    )


def test_chinese_instruction_generators(tmp_path: Path):
    belle = SHARED / "seeds" / "belle_zh_seed_tasks.jsonl"  # research-only: tests, never shipped
    changes = SMALL | {"magpie": {"batch": 2}}
    path = recipe_file(tmp_path, "instructions_zh", 4, changes, generation={"sampling": {"max_tokens": 128}})
    if belle.is_file():
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data["sources"]["seeds"]["path"] = str(belle)
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    rd = run(path, tmp_path / "zh")
    records = rd.read_records("generate")
    made = {r.lineage.generator for r in records}
    assert "self_instruct" in made  # the others may find nothing Chinese enough in their small budget
    for r in records:
        assert r.lang == "zh" and cjk_ratio(r.text_of("assistant")) >= 0.3, r.messages
    figures = rd.manifest["stages"]["generate"]["extra"]["generators"]
    assert set(figures) == {"self_instruct", "evol_instruct", "magpie", "vae"}
    vae = figures["vae"]  # the VAE trained on Chinese seeds (by characters) and proposed
    assert vae["reconstruction_loss"] > 0 and vae["proposed"] > 0 and vae["vocab"] > 100
    reasons = rd.read_table("generate", rejected=True).column("reject_reason").to_pylist()
    assert reasons and all(reasons)
    assert any("not in Chinese" in r for r in reasons)  # the 135M model often drifts into English


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_dialogue_over_a_product_faq(tmp_path: Path, lang: str):
    name = "support_dialogue"
    path = recipe_file(
        tmp_path,
        name,
        2 if lang == "en" else 1,
        {"dialogue": {"turns": 2}},
        generation={"sampling": {"max_tokens": 128}},
    )
    if lang == "zh":
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data["task"] |= {
            "language": "zh",
            "description": "Aurora X2 扫地机器人的客服：设置、保养、错误代码和保修。",
            "system_prompt": "你是 Lumen Home 的客服助手，根据产品文档回答。",
        }
        data["sources"]["documents"][0]["path"] = str(EXAMPLES / "data" / "product_faq" / "zh")
        data["generators"][0]["personas"] = ["刚买了扫地机器人的新顾客", "机器人显示错误代码的顾客"]
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    rd = run(path, tmp_path / lang)
    docs = {row["doc_id"]: row["text"] for row in _documents(rd)}
    records = rd.read_records("generate")
    reasons = rd.read_table("generate", rejected=True).column("reject_reason").to_pylist()
    assert all(reasons)
    if lang == "en":
        assert records, reasons
    for r in records:
        body = r.messages[1:]  # after the system prompt
        assert r.messages[0]["role"] == "system"
        assert [m["role"] for m in body] == ["user", "assistant"] * (len(body) // 2) and len(body) <= 4
        cited = "\n".join(docs[s.doc_id][s.start : s.end] for s in r.source)
        assert all(s.kind == "chunk" for s in r.source)
        for m in body[1::2]:  # no assistant turn states a number its passages lack
            assert all(n in cited for n in re.findall(r"\d+(?:[.,]\d+)*", m["content"])), m["content"]
        assert r.answer_check.detail.startswith("goal: ") and r.answer_check.score >= 0.5
        if lang == "zh":
            assert cjk_ratio(r.text_of("assistant")) >= 0.3
    figures = rd.manifest["stages"]["generate"]["extra"]["generators"]["dialogue"]
    assert sum(figures["user_turns"].values()) == figures["conversations"] == len(records)


def _documents(rd: RunDir) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(rd.stage_dir("sources") / "documents.parquet").to_pylist()
