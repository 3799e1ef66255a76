"""End to end on the real bundled model: a run, its outputs, resume after kill -9 and Ctrl-C, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import recipe_dict, write_recipe

pytestmark = pytest.mark.slow


def sftforge(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sftforge.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


def ledger(run: Path) -> list[dict]:
    path = run / "generate" / "_ledger.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def generated_ids(run: Path) -> list[str]:
    return [i for p in sorted((run / "generate").glob("part-*.parquet")) for i in pq.read_table(p)["id"].to_pylist()]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, three_peps_module) -> Path:
    tmp = tmp_path_factory.mktemp("e2e")
    data = recipe_dict(three_peps_module, target=6)
    data["features"] = [{"name": "length", "unit": "tokens"}, {"name": "distinct_n", "n": 2}]
    recipe = write_recipe(tmp / "recipe.yaml", data)
    proc = sftforge("run", str(recipe), "--out", str(tmp / "run"))
    assert proc.returncode == 0, proc.stderr
    return tmp / "run"


@pytest.fixture(scope="module")
def three_peps_module(tmp_path_factory) -> Path:
    from conftest import EXAMPLES

    corpus = tmp_path_factory.mktemp("corpus")
    for name in ("pep-0008.rst", "pep-0257.rst", "pep-0020.rst"):
        (corpus / name).write_bytes((EXAMPLES / "data" / "peps" / name).read_bytes())
    return corpus


def test_end_to_end_records_point_at_their_passages(finished_run: Path, three_peps_module: Path):
    m = manifest(finished_run)
    assert [s for s in m["stages"]] == ["sources", "generate", "features", "clean", "export"]
    assert all(s["status"] == "complete" for s in m["stages"].values())
    gen = m["stages"]["generate"]
    assert gen["counts"]["records"] >= 6
    assert gen["extra"]["usage"]["completion_tokens"] > 0
    assert gen["extra"]["model"].startswith("llamacpp:SmolLM2-135M-Instruct")

    docs = {d["doc_id"]: d["text"] for d in pq.read_table(finished_run / "sources" / "documents.parquet").to_pylist()}
    assert set(docs) == {"pep-0008.rst", "pep-0257.rst", "pep-0020.rst"}
    rows = pq.read_table(finished_run / "export" / "data.parquet").to_pylist()
    assert len(rows) == m["stages"]["clean"]["counts"]["records"] >= 1
    for row in rows:
        chunk = next(s for s in row["source"] if s["kind"] == "chunk")
        passage = docs[chunk["doc_id"]][chunk["start"] : chunk["end"]]
        assert passage in row["messages"][0]["content"]  # the passage is the context of the question
        span = next(s for s in row["source"] if s["kind"] == "span")
        assert row["messages"][-1]["content"] == docs[span["doc_id"]][span["start"] : span["end"]]
        assert row["answer_check"]["passed"]
        assert row["lineage"]["template"] == "en/qa_extractive" and row["lineage"]["model"].startswith("llamacpp:")
        assert row["messages"][-2]["content"].rstrip().endswith("?")
        features = dict(row["features"])
        assert 1 <= features["length_assistant_tokens"] < 200 and 0 < features["distinct_2_assistant"] <= 1
        assert features["lang_prob_assistant"] >= 0.2  # the English preset's language filter ran in clean

    card = (finished_run / "export" / "README.md").read_text()
    assert f"| records | {len(rows)} |" in card
    assert "temperature 0.3" in card and "pep-" in card
    assert "tokens per record" in card and "barely agrees with human preference" not in card  # no model scores


def test_the_card_says_where_the_bundled_model_scored_the_records(finished_run: Path):
    from sftforge.export.card import CardStats, render_card
    from sftforge.recipe import load_recipe
    from sftforge.run import RunDir

    run = RunDir.open(finished_run)
    records = run.read_records("clean")
    for r in records:
        r.features["ifd"], r.features["llm_judge"] = 0.8, 3.5
    recipe, _ = load_recipe(finished_run / "recipe.yaml")
    card = render_card(recipe, CardStats.of(records), run, {}, [], "test")
    assert "barely agrees with human preference" in card
    assert "`llm_judge` 0.54, `ifd` 0.56" in card and "`perplexity`" not in card
    for name in ("openai.jsonl", "alpaca.jsonl", "sharegpt.jsonl", "data.parquet", "hf", "recipe.yaml"):
        assert (finished_run / "export" / name).exists()


def test_the_card_shows_who_the_records_speak_about(finished_run: Path):
    from sftforge.export.card import CardStats, render_card
    from sftforge.recipe import load_recipe
    from sftforge.run import RunDir

    run = RunDir.open(finished_run)
    records = run.read_records("clean")
    records[0].messages[-1]["content"] += " He asked his sister; she and her mother agreed."
    for r in records:
        r.features["toxicity"] = 0.25
    recipe, _ = load_recipe(finished_run / "recipe.yaml")
    card = render_card(recipe, CardStats.of(records), run, {}, [], "test")
    assert "## Who the data speaks about" in card and "mean `toxicity`" in card
    female = next(line for line in card.splitlines() if line.startswith("| gender:female |"))
    assert female.split("|")[2].strip() == "1" and female.rstrip(" |").endswith("0.25")
    assert "- **male/female**:" in card and "task qa" in card
    assert "**Offensive language** (`toxicity`, in cleaning):" in card and "not screened" not in card  # English
    assert "**Replies that refuse**" in card and f"0 of {len(records)} records" in card  # the preset measured it


def test_the_run_writes_a_report_whose_funnel_is_the_manifest_s(finished_run: Path, browser):
    from conftest import open_page

    report = finished_run / "report.html"
    assert report.exists()  # `sftforge run` writes it after the last stage
    page, errors = open_page(browser, report.as_uri())
    assert errors == [] and page.locator("[data-error]").count() == 0
    bars = dict(
        page.eval_on_selector_all(
            '[data-chart="funnel"] rect.bar', "els => els.map(e => [e.dataset.label, +e.dataset.value])"
        )
    )
    stages = manifest(finished_run)["stages"]
    assert bars["generate: kept"] == stages["generate"]["counts"]["records"]
    assert bars["generate: removed"] == stages["generate"]["counts"]["rejected"]
    assert bars["clean: kept"] == bars["export: kept"] == stages["export"]["counts"]["records"]
    covered = dict(
        page.eval_on_selector_all(
            '[data-chart="coverage"] rect.bar', "els => els.map(e => [e.dataset.label, +e.dataset.value])"
        )
    )
    by_doc = stages["export"]["extra"]["coverage"]["by_document"]
    assert covered == {d["doc_id"]: d["records"] for d in by_doc}
    assert set(covered) == {"pep-0008.rst", "pep-0257.rst", "pep-0020.rst"}
    assert sum(covered.values()) >= 1
    rows = page.locator("#browser-rows tr").count()
    assert rows == min(50, stages["generate"]["counts"]["records"] + stages["generate"]["counts"]["rejected"])
    page.close()


def test_rerun_skips_completed_stages_and_config_change_reruns_downstream(finished_run: Path, tmp_path: Path):
    recipe = finished_run / "recipe.yaml"
    before = manifest(finished_run)
    outputs = ("sources", "generate", "features", "clean", "export", "cache")
    files = {p: p.stat().st_mtime_ns for d in outputs for p in (finished_run / d).rglob("*") if p.is_file()}
    proc = sftforge("run", str(recipe), "--out", str(finished_run))
    assert proc.returncode == 0, proc.stderr
    assert "up to date, skipped: sources, generate, features, clean, export" in proc.stderr
    assert manifest(finished_run)["stages"] == before["stages"]
    # no stage wrote anything and no model request was made (the response cache is untouched)
    assert {p: p.stat().st_mtime_ns for d in outputs for p in (finished_run / d).rglob("*") if p.is_file()} == files

    data = __import__("yaml").safe_load(recipe.read_text())
    data["cleaning"] = {"filters": [{"name": "length", "role": "assistant", "min": 100000}]}
    changed = write_recipe(tmp_path / "changed.yaml", data)
    proc = sftforge("run", str(changed), "--out", str(finished_run))
    assert proc.returncode == 0, proc.stderr
    after = manifest(finished_run)["stages"]
    assert after["generate"] == before["stages"]["generate"]  # generation was not redone
    assert after["features"] == before["stages"]["features"]  # nor were the features
    assert after["clean"]["counts"]["records"] == 0
    assert after["clean"]["counts"]["rejected"] == before["stages"]["clean"]["counts"]["input"]

    proc = sftforge("inspect", str(finished_run))
    assert proc.returncode == 0
    assert "assistant length" in proc.stdout  # rejects by reason are listed


def test_stage_commands_need_their_input(tmp_path: Path, three_peps_module: Path):
    proc = sftforge("clean", str(tmp_path))
    assert proc.returncode == 2 and "is not a run directory" in proc.stderr
    from sftforge.run import RunDir

    recipe = write_recipe(tmp_path / "r.yaml", recipe_dict(three_peps_module))
    RunDir.create(tmp_path / "run", recipe.read_text(), "small", tmp_path)
    proc = sftforge("clean", str(tmp_path / "run"))
    assert proc.returncode == 2 and "needs stage 'features'" in proc.stderr and "Traceback" not in proc.stderr


def wait_for_ledger(run: Path, lines: int, proc: subprocess.Popen, limit: float = 300) -> None:
    deadline = time.time() + limit
    while len(ledger(run)) < lines:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.time() < deadline, "generation made no progress"
        time.sleep(0.2)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_interrupted_generation_resumes_without_loss_or_duplicates(tmp_path: Path, three_peps_module: Path, sig):
    data = recipe_dict(three_peps_module, target=14)
    recipe = write_recipe(tmp_path / "recipe.yaml", data)
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sftforge.cli", "run", str(recipe), "--out", str(run)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_ledger(run, 2, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "rerun the same command to resume" in err
        assert "Traceback" not in err
    else:
        assert proc.returncode == -signal.SIGKILL
    assert manifest(run)["stages"]["generate"]["status"] == "running"
    committed_before = {key for entry in ledger(run) for key in entry["keys"]}
    ids_before = set(generated_ids(run))
    assert committed_before

    done = sftforge("run", str(recipe), "--out", str(run))
    assert done.returncode == 0, done.stderr
    entries = ledger(run)
    keys = [key for entry in entries for key in entry["keys"]]
    assert len(keys) == len(set(keys)), "a work item was committed twice"
    assert committed_before <= set(keys)
    ids = generated_ids(run)
    assert len(ids) == len(set(ids)), "a record was written twice"
    assert ids_before <= set(ids), "a record committed before the interruption was lost"
    m = manifest(run)["stages"]["generate"]
    assert m["status"] == "complete"
    assert m["counts"]["records"] == len(ids) >= 14
    assert m["counts"]["work_items"] == len(keys)
    rejected = pq.read_table(run / "rejected" / "generate").num_rows if (run / "rejected" / "generate").exists() else 0
    assert m["counts"]["rejected"] == rejected == len(keys) - len(ids)
    # usage is committed with its work items: every request counted once, for the item it served
    lineages = pq.read_table(run / "generate").column("lineage").to_pylist()
    if rejected:
        lineages += pq.read_table(run / "rejected" / "generate").column("lineage").to_pylist()
    assert m["extra"]["usage"]["requests"] == sum(lin["attempts"] for lin in lineages)


def test_bad_inputs_are_clear_errors(tmp_path: Path, three_peps_module: Path):
    cases = []
    data = recipe_dict(tmp_path / "no-such-folder")
    cases.append((data, "matches no file"))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "blank.txt").write_text("   \n")
    (empty / "image.txt").write_bytes(b"\x89PNG\x00\x00")
    cases.append((recipe_dict(empty), "the corpus is empty"))
    data = recipe_dict(three_peps_module)
    data["generation"]["model"]["path"] = str(tmp_path / "missing.gguf")
    cases.append((data, "model file not found"))
    for i, (data, message) in enumerate(cases):
        recipe = write_recipe(tmp_path / f"r{i}.yaml", data)
        proc = sftforge("run", str(recipe), "--out", str(tmp_path / f"run{i}"))
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr
        assert "Traceback" not in proc.stderr

    (tmp_path / "a-file").write_text("x")
    recipe = write_recipe(tmp_path / "ok.yaml", recipe_dict(three_peps_module))
    proc = sftforge("run", str(recipe), "--out", str(tmp_path / "a-file" / "run"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "not a directory" in proc.stderr


def test_skipped_files_are_counted_and_named(tmp_path: Path, three_peps_module: Path):
    corpus = tmp_path / "mixed"
    corpus.mkdir()
    (corpus / "good.txt").write_text((three_peps_module / "pep-0257.rst").read_text())
    (corpus / "bad.txt").write_bytes(b"\x00\x01\x02\x03 not text")  # binary: skipped (a legacy encoding is read)
    data = recipe_dict(corpus, target=1)
    recipe = write_recipe(tmp_path / "r.yaml", data)
    proc = sftforge("run", str(recipe), "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    assert "bad.txt" in proc.stderr and "binary file" in proc.stderr
    src = manifest(tmp_path / "run")["stages"]["sources"]
    assert src["counts"]["files"] == 2 and src["counts"]["documents"] == 1
    assert src["extra"]["skipped"][0]["reason"] == "binary file"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a small tmpfs")
def test_disk_full_during_generation_is_reported_and_resumable(tmp_path: Path, three_peps_module: Path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        recipe = write_recipe(tmp_path / "recipe.yaml", recipe_dict(three_peps_module, target=14))
        run = mnt / "run"
        proc = subprocess.Popen(
            [sys.executable, "-m", "sftforge.cli", "run", str(recipe), "--out", str(run)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for_ledger(run, 1, proc)
        filler = mnt / "filler"
        with open(filler, "wb") as fh:  # fill the disk
            try:
                while True:
                    fh.write(b"\0" * (1 << 16))
                    fh.flush()
            except OSError:
                pass
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 2, err
        assert "disk is full" in err or "database or disk is full" in err
        assert "Traceback" not in err
        before = set(generated_ids(run))
        filler.unlink()
        done = sftforge("run", str(recipe), "--out", str(run))
        assert done.returncode == 0, done.stderr
        assert before <= set(generated_ids(run))
        assert manifest(run)["stages"]["export"]["status"] == "complete"
    finally:
        subprocess.run(["umount", "-l", str(mnt)])


def test_chinese_recipe_end_to_end(tmp_path: Path):
    from conftest import EXAMPLES

    corpus = tmp_path / "zh"
    corpus.mkdir()
    for name in ("oxygen.txt", "prime_number.txt", "rhine.txt"):
        (corpus / name).write_bytes((EXAMPLES / "data" / "xquad_zh" / name).read_bytes())
    data = recipe_dict(corpus, target=1)
    data["task"].update(language="zh", description="关于氧气、素数和莱茵河的阅读理解问题")
    data["sources"]["chunking"] = {"max_tokens": 160, "overlap_tokens": 16, "min_tokens": 30}
    data["generation"]["sampling"]["max_tokens"] = 40
    recipe = write_recipe(tmp_path / "zh.yaml", data)
    proc = sftforge("run", str(recipe), "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    rows = pq.read_table(tmp_path / "run" / "generate").to_pylist()
    assert rows
    docs = {
        d["doc_id"]: d["text"] for d in pq.read_table(tmp_path / "run" / "sources" / "documents.parquet").to_pylist()
    }
    for row in rows:
        assert row["lang"] == "zh"
        span = next(s for s in row["source"] if s["kind"] == "span")
        assert row["messages"][-1]["content"] == docs[span["doc_id"]][span["start"] : span["end"]]
        assert "问题：" in row["messages"][0]["content"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a read-only tmpfs")
def test_unwritable_run_directory_is_a_clear_error(tmp_path: Path, three_peps_module: Path):
    mnt = tmp_path / "ro"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        recipe = write_recipe(tmp_path / "r.yaml", recipe_dict(three_peps_module))
        proc = sftforge("run", str(recipe), "--out", str(mnt / "run"))
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert "permission denied: choose a writable --out directory" in proc.stderr
    finally:
        subprocess.run(["umount", "-l", str(mnt)])
