"""The report's figures and the review decisions, without a browser: what collect() reads back from a run
directory, how decisions are stored and applied by export, and the errors a person sees."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sftforge.errors import ReviewError, RunDirError
from sftforge.sample import Lineage, Record, Rejected, SourceRef

HEAD = (
    "name: t\ntask: {type: qa, qa_mode: extractive, description: sums}\nsources: {documents: [{path: x.txt}]}\n"
    "output: {formats: [openai]}\n"
)


def rec(rid: str, q: str = "What is 1 plus 1?", a: str = "2", generator: str = "grounded", **features: float) -> Record:
    return Record(
        id=rid,
        messages=[{"role": "user", "content": q}, {"role": "assistant", "content": a}],
        task="qa",
        lang="en",
        source=[SourceRef("chunk", "d#0", "d", 0, 5)],
        lineage=Lineage(generator, "m"),
        features=dict(features),
    )


def make_run(tmp_path: Path, recipe_text: str = HEAD):
    """generate: 6 records and 1 reject; clean: keeps 4, removes 2 (one by a filter, one as a duplicate)."""
    from sftforge.figures import CleanFigures, Diversity, GenerateFigures, Usage
    from sftforge.recipe import load_recipe_text
    from sftforge.run import RunDir
    from sftforge.stages import Context

    recipe = load_recipe_text(recipe_text, base_dir=tmp_path)
    run = RunDir.create(tmp_path / "run", recipe_text, "t", tmp_path)
    made = [
        rec(
            f"r{i}",
            q=f"What is {i} plus {i}?",
            a=f"{2 * i}",
            generator="grounded" if i < 4 else "magpie",
            length_assistant_chars=float(i),
        )
        for i in range(6)
    ]
    log = run.begin("generate", "fp")
    log.commit(made, [Rejected(rec("bad", a=""), "generate", "grounded", "no answer")], ["k"])
    diversity = Diversity(texts=6, distinct_1=1.0, distinct_2=1.0, mean_pairwise_rouge_l=0.0)
    run.finish(
        "generate",
        {"records": 6, "rejected": 1, "work_items": 7},
        0.0,
        GenerateFigures(
            model="llamacpp:test",
            usage=Usage(),
            completion_tokens_per_s=0.0,
            acceptance_rate=6 / 7,
            diversity=diversity,
            rejected_by_reason={"no answer": 1},
            generators={},
        ).to_manifest(),
    )
    log = run.begin("clean", "fp")
    log.commit(
        made[:4],
        [
            Rejected(made[4], "clean", "length_assistant_chars", "too short"),
            Rejected(made[5], "clean", "exact_dedup", "duplicate of r1"),
        ],
        ["k"],
    )
    run.finish(
        "clean",
        {"input": 6, "records": 4, "rejected": 2},
        0.0,
        CleanFigures(
            removed_by_operator={"length_assistant_chars": 1, "exact_dedup": 1},
            seen_by_operator={"length_assistant_chars": 6, "exact_dedup": 5},
            operators={"pii_redact": {"found_by_type": {"EMAIL": 3}, "records_changed": 2}},
            operator_names={
                "pii_redact": "pii_redact",
                "length_assistant_chars": "length",
                "exact_dedup": "exact_dedup",
            },
            duplicate_clusters={"exact_dedup": "duplicates-exact_dedup.jsonl"},
            engine={"name": "local"},
        ).to_manifest(),
    )
    (run.stage_dir("clean") / "duplicates-exact_dedup.jsonl").write_text(
        json.dumps({"survivor": "r1", "size": 2, "duplicates": [{"id": "r5", "similarity": 1.0}]}) + "\n"
    )
    return Context(run=run, recipe=recipe)


# -- decisions ------------------------------------------------------------------------------------------------------


def test_the_last_decision_per_record_wins_and_clear_withdraws_it(tmp_path):
    from sftforge.review.decisions import append_decision, decisions_digest, load_decisions

    run = make_run(tmp_path).run
    assert load_decisions(run) == {} and decisions_digest(run) is None
    append_decision(run, "r0", "reject")
    append_decision(run, "r1", "reject")
    first = decisions_digest(run)
    append_decision(run, "r0", "accept")
    append_decision(run, "r1", "clear")
    assert load_decisions(run) == {"r0": "accept"}
    assert decisions_digest(run) not in (None, first)
    with pytest.raises(ReviewError, match="not one of accept, reject, clear"):
        append_decision(run, "r0", "maybe")


def test_a_bad_decisions_line_names_the_file_and_line(tmp_path):
    from sftforge.review.decisions import decisions_path, load_decisions

    run = make_run(tmp_path).run
    path = decisions_path(run)
    path.parent.mkdir(parents=True)
    path.write_text('{"id": "r0", "decision": "reject"}\n{"id": "r1"}\n')
    with pytest.raises(RunDirError, match=r"decisions.jsonl, line 2: not a review decision"):
        load_decisions(run)
    path.write_text('{"id": "r0", "decision": "drop"}\n')
    with pytest.raises(RunDirError, match=r"decisions.jsonl, line 1: decision 'drop'"):
        load_decisions(run)


def test_export_drops_rejected_records_and_brings_back_accepted_ones(tmp_path):
    from sftforge.review.decisions import append_decision
    from sftforge.stages import run_stage

    ctx = make_run(tmp_path)
    assert run_stage(ctx, "export")

    def exported() -> list[str]:
        return [
            json.loads(x)["messages"][0]["content"]
            for x in (ctx.run.stage_dir("export") / "openai.jsonl").read_text().splitlines()
        ]

    assert len(exported()) == 4
    append_decision(ctx.run, "r0", "reject")
    append_decision(ctx.run, "r4", "accept")  # removed by a length filter: a person overrules it
    assert run_stage(ctx, "export")  # the decisions are part of the export's fingerprint
    assert exported() == ["What is 1 plus 1?", "What is 2 plus 2?", "What is 3 plus 3?", "What is 4 plus 4?"]
    extra = ctx.run.stage_info("export").extra
    assert extra["review"] == {"rejected": ["r0"], "restored": ["r4"]}
    assert (
        "1 record(s) rejected by a reviewer, 1 removed record(s) brought back"
        in (ctx.run.stage_dir("export") / "README.md").read_text()
    )
    assert not run_stage(ctx, "export")


def test_accepting_a_generation_reject_or_an_unknown_record_is_refused(tmp_path):
    from sftforge.report.collect import collect
    from sftforge.review.decisions import append_decision, reviewable
    from sftforge.stages import run_stage

    ctx = make_run(tmp_path)
    allowed = reviewable(ctx.run)
    with pytest.raises(ReviewError, match="no record 'nope'"):
        allowed.check("nope", "reject")
    with pytest.raises(ReviewError, match="rejected during generation and is not a complete record"):
        allowed.check("bad", "accept")
    allowed.check("bad", "reject")
    append_decision(ctx.run, "bad", "accept")  # written by hand, past the page's checks
    with pytest.raises(
        ReviewError, match="decisions.jsonl: record bad was rejected during generation.*clear that decision"
    ):
        run_stage(ctx, "export")
    data = collect(ctx.run, ctx.recipe)  # the report still renders, and says why the decisions were not applied
    assert "record bad was rejected during generation" in data["review"]["error"] and data["totals"]["dataset"] == 4


def test_held_out_records_cannot_be_accepted(tmp_path):
    from sftforge.review.decisions import append_decision, reviewable
    from sftforge.stages import run_stage

    text = HEAD + "selection: {strategy: uniform, budget: {records: 2}, eval_fraction: 0.34}\n"
    ctx = make_run(tmp_path, text)
    run_stage(ctx, "select")
    held = [
        r["id"]
        for r in ctx.run.read_table("select", rejected=True).to_pylist()
        if r["reject_reason"].startswith("held out")
    ]
    assert held
    with pytest.raises(ReviewError, match="held out for evaluation"):
        reviewable(ctx.run).check(held[0], "accept")
    reviewable(ctx.run).check(held[0], "reject")  # rejecting one is harmless
    append_decision(ctx.run, held[0], "accept")  # written by hand, past the page
    with pytest.raises(ReviewError, match="would leak the evaluation"):
        run_stage(ctx, "export")


# -- figures --------------------------------------------------------------------------------------------------------


def test_collect_reads_the_funnel_reasons_and_distributions_back_from_the_run(tmp_path):
    from sftforge.report.collect import ReportOptions, collect
    from sftforge.review.decisions import append_decision
    from sftforge.stages import run_stage

    ctx = make_run(tmp_path)
    run_stage(ctx, "export")
    append_decision(ctx.run, "r2", "reject")
    data = collect(ctx.run, ctx.recipe, ReportOptions())
    assert data["funnel"] == [
        {"stage": "generate", "input": 7, "kept": 6, "removed": 1},
        {"stage": "clean", "input": 6, "kept": 4, "removed": 2},
        {"stage": "export", "input": None, "kept": 3, "removed": None},  # after the pending review decision
    ]
    assert data["totals"] == {"records": 7, "kept": 3, "removed": 4, "dataset": 3, "shown": 7}
    reasons = {(r["stage"], r["operator"], r["reason"]): r for r in data["reasons"]}
    assert reasons[("review", "reviewer", "rejected in review")]["examples"] == ["r2"]
    assert reasons[("clean", "exact_dedup", "duplicate of r1")]["count"] == 1
    hist = data["distributions"]["histograms"]["length_assistant_chars"]
    counts = hist["groups"]["qa · en"]
    assert sum(counts["kept"]["counts"]) == 3 and sum(counts["removed"]["counts"]) == 3
    assert hist["edges"][0] == 0.0 and hist["edges"][-1] == 5.0
    assert data["dedup"][0]["removed"] == 1 and data["dedup"][0]["top"][0]["survivor"] == "r1"
    assert data["pii"] == {"by_type": {"EMAIL": 3}, "records_changed": 2}
    assert data["map"] is None and data["training"] is None  # no embedding feature, no training in this recipe
    by_id = {r["id"]: r for r in data["records"]}
    assert by_id["r4"]["restorable"] and not by_id["bad"]["restorable"]
    assert by_id["r2"]["decision"] == "reject" and by_id["r4"]["generator"] == "magpie"


def test_a_capped_report_keeps_every_linked_example(tmp_path):
    from sftforge.report.collect import ReportOptions, collect

    ctx = make_run(tmp_path)
    data = collect(ctx.run, ctx.recipe, ReportOptions(max_records=3))
    shown = {r["id"] for r in data["records"]}
    assert data["totals"]["shown"] == 3 and data["totals"]["records"] == 7
    assert shown == {"bad", "r4", "r5"}  # the reason examples come first, before the dedup clusters' members
    assert {i for r in data["reasons"] for i in r["examples"]} <= shown


def test_passages_are_cut_from_the_document_around_the_cited_offsets(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sftforge.report.collect import PassageBook

    ctx = make_run(tmp_path)
    text = "x" * 500 + "THE PASSAGE" + "y" * 500
    ctx.run.stage_dir("sources").mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table({"doc_id": ["d"], "path": ["d.txt"], "text": [text]}),
        ctx.run.stage_dir("sources") / "documents.parquet",
    )
    book = PassageBook(ctx.run)
    key = book.key("d", 500, 511)
    p = book.passages[key]
    assert p["text"][p["hl"][0] : p["hl"][1]] == "THE PASSAGE" and len(p["text"]) < len(text)
    assert book.key("missing", 0, 3) is None and book.key("d", None, None) is None


def test_record_text_cannot_close_the_data_script_or_break_the_page(tmp_path, browser):
    from sftforge.report.collect import collect
    from sftforge.report.render import data_json, render_html

    from conftest import open_page

    hostile = "<!--<script> </script><script>window.pwned = 1</script><img src=x onerror='window.pwned=2'>\u2028"
    data = {"run": {"name": "x"}, "records": [{"text": hostile}]}
    blob = data_json(data)
    assert "<" not in blob and json.loads(blob) == data
    with pytest.raises(ValueError):
        data_json({"x": float("nan")})

    ctx = make_run(tmp_path)
    table = ctx.run.read_table("clean")
    rows = table.to_pylist()
    rows[0]["messages"][0]["content"] = hostile  # a record whose text is an attack on the page
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sftforge.sample import RECORD_SCHEMA

    (part,) = sorted(ctx.run.stage_dir("clean").glob("part-*.parquet"))
    pq.write_table(pa.Table.from_pylist(rows, schema=RECORD_SCHEMA), part)
    html = render_html(collect(ctx.run, ctx.recipe))
    assert html.count("</script>") == 3  # the data, the mode flag and the page's own script
    (tmp_path / "r.html").write_text(html, encoding="utf-8")
    page, errors = open_page(browser, (tmp_path / "r.html").as_uri())
    page.fill("#f-text", "r0")
    page.dispatch_event("#f-text", "input")
    page.click('#browser-rows tr[data-id="r0"] td')
    assert hostile.strip("\u2028") in page.text_content("#detail")  # shown as text
    assert page.evaluate("window.pwned") is None and errors == []
    page.close()


def test_training_rewards_are_read_per_step_and_per_example(tmp_path):
    from sftforge.report.collect import training

    ctx = make_run(tmp_path)
    out = ctx.run.stage_dir("train")
    out.mkdir(parents=True, exist_ok=True)
    rows = [
        {"kind": "train", "step": 1, "loss": 3.0, "arm": 1, "reward": 0.5, "probabilities": [0.5, 0.5]},
        {
            "kind": "train",
            "step": 2,
            "loss": 2.5,
            "arms": [0, 1, 0],
            "pulls": [[0, -1.0], [0, 0.25]],
            "probabilities": [0.4, 0.6],
            "left_out": 1,
        },
        {"kind": "train", "step": 3, "loss": 2.0, "arm": 0, "reward": None, "probabilities": [0.4, 0.6], "left_out": 2},
        {"kind": "eval", "step": 3, "eval_loss": 2.2},
    ]
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    t = training(ctx.run)
    assert t["rewards"] == [[1, 1, 0.5], [2, 0, -1.0], [2, 0, 0.25]]
    assert {a["arm"]: (a["pulls"], a["mean_reward"]) for a in t["per_arm"]} == {0: (2, -0.375), 1: (1, 0.5)}
    assert t["eval"] == [[3, 2.2]] and len(t["probabilities"]) == 3
    assert t["left_out"] == [[2, 1], [3, 3]]  # cumulated over the steps that report it


def test_the_map_projection_is_deterministic_and_separates_clusters():
    from sftforge.report.projection import pca_2d, project_2d

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 32)) * 5
    vectors = np.vstack([c + rng.normal(size=(20, 32)) for c in centres])
    xy, method = project_2d(vectors)
    again, _ = project_2d(vectors)
    assert method == "t-SNE" and xy.shape == (60, 2) and np.allclose(xy, again)
    inside = np.mean(
        [np.linalg.norm(xy[i * 20 : (i + 1) * 20] - xy[i * 20 : (i + 1) * 20].mean(0), axis=1).mean() for i in range(3)]
    )
    between = np.linalg.norm(xy[:20].mean(0) - xy[20:40].mean(0))
    assert between > 2 * inside
    flat = pca_2d(vectors)
    assert flat.shape == (60, 2) and np.allclose(flat, pca_2d(vectors))
    assert project_2d(np.zeros((0, 4)))[1] == "none"


def test_report_command_errors_name_the_problem(tmp_path):
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "sftforge.cli", *args], capture_output=True, text=True, timeout=120
        )

    proc = cli("report", str(tmp_path / "nowhere"))
    assert proc.returncode == 2 and "nowhere" in proc.stderr
    ctx = make_run(tmp_path)
    bad = tmp_path / "results.json"
    bad.write_text("{}")
    proc = cli("report", str(ctx.run.path), "--benchmark", str(bad))
    assert proc.returncode == 2 and "results.json: not a benchmarks/selection.py results file" in proc.stderr
    proc = cli("report", str(ctx.run.path))
    assert proc.returncode == 0, proc.stderr
    html = (ctx.run.path / "report.html").read_text()
    assert '"dataset":4' in html and "sftforge report: t" in html


def test_figures_are_read_back_typed_and_a_foreign_shape_says_how_to_redo_the_stage(tmp_path):
    from sftforge.figures import CleanFigures, SelectFigures, read_figures

    run = make_run(tmp_path).run
    clean = read_figures(run, CleanFigures)
    assert clean is not None and clean.pii() is not None and clean.pii().found_by_type == {"EMAIL": 3}
    assert clean.contamination() is None  # no decontaminate operator ran
    assert read_figures(run, SelectFigures) is None  # the stage has not run
    run.begin("select", "fp")
    run.finish("select", {"records": 1}, 0.0, {"strategy": "uniform"})  # figures of another shape
    with pytest.raises(RunDirError, match=r"manifest.json: the select stage's figures .* `sftforge select .* --force`"):
        read_figures(run, SelectFigures)
