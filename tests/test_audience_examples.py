"""The audience examples (exercises for three student levels, summaries for three readers; English and Chinese) on
the real bundled model, cut to a few records: records carry their audience in lineage, system message and export,
the manifest reports each audience, and the export reports what the records cover of the documents."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from conftest import EXAMPLES, write_recipe

pytestmark = pytest.mark.slow

READER = {"en": "The reader is ", "zh": "读者是"}


def run_example(name: str, tmp: Path, target: int) -> tuple[dict, Path]:
    data = yaml.safe_load((EXAMPLES / "recipes" / f"{name}.yaml").read_text(encoding="utf-8"))
    data["task"]["target_count"] = target
    data["generation"]["shard_size"] = 4
    for doc in data["sources"]["documents"]:
        doc["path"] = str((EXAMPLES / "recipes" / doc["path"]).resolve())
    recipe = write_recipe(tmp / f"{name}.yaml", data)
    out = tmp / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "sftforge.cli", "run", str(recipe), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return data, out


@pytest.mark.parametrize(
    "name, target",
    [("exercise_levels", 2), ("exercise_levels_zh", 2), ("summary_readers", 3), ("summary_readers_zh", 2)],
)
def test_audience_example_runs_and_reports_each_audience(name: str, target: int, tmp_path: Path, browser):
    from conftest import open_page

    data, out = run_example(name, tmp_path, target)
    lang = data["task"]["language"]
    audiences = {a["name"]: a for a in data["task"]["audiences"]}
    rows = pq.read_table(out / "generate").to_pylist()
    assert len(rows) >= target
    for row in rows:
        audience = audiences[row["lineage"]["audience"]]
        system = row["messages"][0]
        assert system["role"] == "system" and system["content"].startswith(READER[lang])
        assert audience["description"] in system["content"]
    # items are drawn for the audiences in turn: what was made and what was rejected names more than one
    rejected = (
        pq.read_table(out / "rejected" / "generate").to_pylist() if (out / "rejected" / "generate").exists() else []
    )
    drawn = {r["lineage"]["audience"] for r in rows + rejected}
    assert drawn <= set(audiences) and len(drawn) >= 2

    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    figures = manifest["stages"]["generate"]["extra"]["audiences"]
    assert figures["(all)"]["records"] == len(rows)
    assert sum(f["records"] for k, f in figures.items() if k != "(all)") == len(rows)
    for key, fig in figures.items():
        if key != "(all)" and data["task"]["type"] == "exercise":
            assert fig["level"] == audiences[key]["level"]
            assert 1 <= fig["measured_level"] <= 6 and 0 <= fig["level_agreement"] <= 1

    coverage = manifest["stages"]["export"]["extra"]["coverage"]
    n_docs = len(list(Path(data["sources"]["documents"][0]["path"].split("*")[0]).glob("*.*")))
    assert coverage["documents"] == n_docs
    assert coverage["records"] == manifest["stages"]["export"]["counts"]["records"]
    assert coverage["passages_used"] <= coverage["passages"]
    card = (out / "export" / "README.md").read_text(encoding="utf-8")
    assert "## Coverage" in card and f"of {n_docs} documents" in card
    page, errors = open_page(browser, (out / "report.html").as_uri())
    assert errors == []
    shown = page.eval_on_selector_all(
        '[data-table="audiences"] tbody tr', "els => els.map(e => e.cells[0].textContent)"
    )
    assert set(shown) == set(figures)  # every audience the manifest reports, and (all)
    page.close()
    if data["output"].get("audience_columns"):
        exported = [json.loads(line) for line in (out / "export" / "openai.jsonl").read_text().splitlines()]
        assert all(r["audience"] in audiences for r in exported)


def test_the_model_proposes_audiences_a_recipe_accepts(tmp_path: Path):
    from sftforge.recipe import load_recipe_text

    data = yaml.safe_load((EXAMPLES / "recipes" / "summary_readers.yaml").read_text(encoding="utf-8"))
    del data["task"]["audiences"]
    data["sources"]["documents"] = [{"path": str(EXAMPLES / "data" / "peps")}]
    recipe = write_recipe(tmp_path / "r.yaml", data)
    proc = subprocess.run(
        [sys.executable, "-m", "sftforge.cli", "audiences", str(recipe), "--out", str(tmp_path / "run"), "-n", "2"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    proposed = yaml.safe_load((tmp_path / "run" / "audiences.yaml").read_text(encoding="utf-8"))
    assert 1 <= len(proposed["audiences"]) <= 2
    assert "paste the list under `task:`" in proc.stdout
    data["task"]["audiences"] = proposed["audiences"]  # what the user does after editing
    rec = load_recipe_text(yaml.safe_dump(data), "edited.yaml", tmp_path)
    assert [a.description for a in rec.task.audiences] == [a["description"] for a in proposed["audiences"]]
