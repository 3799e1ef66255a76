"""The report and the review page in headless Chromium (Debian's, installed by `make test`), over a run whose
features, cleaning, selection, training, evaluation and export really ran: the charts draw, the key numbers match
the manifest, and a decision made through the review page changes the export."""

from __future__ import annotations

import json
import threading

import pytest

from sftforge.sample import Lineage, Record, Rejected, SourceRef

from conftest import CHROMIUM, open_page

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (`make test` installs it)")

DOC = (
    "Adding numbers. To add a number to itself, double it: 3 plus 3 is 6 and 7 plus 7 is 14.\n"
    "Doubling is the same as multiplying by two, so the sum of a number with itself is always even.\n"
    "Contact the maths desk at desk@example.org for worksheets.\n"
)
BENCH_QUESTION = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May."


def _rec(q: str, a: str, rid: str, generator: str, start: int, end: int) -> Record:
    return Record(
        id=rid,
        messages=[{"role": "user", "content": q}, {"role": "assistant", "content": a}],
        task="qa",
        lang="en",
        source=[SourceRef("chunk", "kb.txt#0", "kb.txt", start, end)],
        lineage=Lineage(generator, "test-model", temperature=0.3),
    )


def _generated(doc_len: int) -> tuple[list[Record], list[Rejected]]:
    """Doubling records by two generators, two exact duplicates, answers with an e-mail address, one record that
    quotes a benchmark question, and two generation rejects."""
    records = [
        _rec(
            f"What is {i} plus {i}?",
            f"{i} plus {i} is {2 * i}, because doubling a number gives an even sum, {('he', 'she')[i // 2 % 2]} says.",
            f"s{i:02d}",
            "grounded" if i % 2 else "self_instruct",
            0,
            doc_len,
        )
        for i in range(36)
    ]
    records += [
        _rec("What is 3 plus 3?", "3 plus 3 is 6, as the text says.", "dup1", "grounded", 0, 90),
        _rec("What is 5 plus 5?", "5 plus 5 is 10, as doubling five gives ten.", "dup2", "grounded", 0, 90),
    ]
    records += [
        _rec(
            f"Where do I get worksheet {i}?",
            f"Write to desk@example.org and ask for worksheet {i} on doubling.",
            f"mail{i}",
            "grounded",
            185,
            doc_len,
        )
        for i in range(2)
    ]
    records.append(
        _rec(
            f"{BENCH_QUESTION} How many clips did she sell?",
            "She sold 72 clips altogether in April and May.",
            "bench",
            "self_instruct",
            0,
            90,
        )
    )
    bad = [
        Rejected(
            _rec(f"broken {i}", "", f"bad{i}", "grounded", 0, 10),
            "generate",
            "grounded",
            "unparseable after 2 attempts: question has no question mark",
        )
        for i in range(2)
    ]
    return records, bad


@pytest.fixture(scope="module")
def review_run(tmp_path_factory, tiny_dir):
    """A run through every stage after generation, on hand-made generated records and a tiny model."""
    from sftforge.figures import Diversity, GenerateFigures, Usage
    from sftforge.recipe import load_recipe_text
    from sftforge.run import RunDir
    from sftforge.stages import Context, run_stage

    tmp = tmp_path_factory.mktemp("report")
    (tmp / "kb.txt").write_text(DOC, encoding="utf-8")
    (tmp / "bench.jsonl").write_text(json.dumps({"question": BENCH_QUESTION}) + "\n", encoding="utf-8")
    text = (
        "name: doubling\n"
        "task: {type: qa, qa_mode: extractive, description: doubling numbers}\n"
        "sources: {documents: [{path: kb.txt}], chunking: {max_tokens: 256, min_tokens: 5}}\n"
        "features: [{name: embedding}, {name: length, role: assistant, unit: words}]\n"
        "cleaning:\n"
        "  mappers: [{name: pii_redact}]\n"
        "  filters: [{name: decontaminate, benchmarks: [{path: bench.jsonl, fields: [question], name: gsm8k}]}]\n"
        "  dedup: [{name: exact_dedup}]\n"
        "selection:\n  strategy: exp3s\n  arms: {by: generator}\n  budget: {records: 14}\n  eval_fraction: 0.1\n"
        "  probe_size: 4\n  score: length_assistant_words\n"
        "  bandit: {reward: gradient_alignment, batches: mixed, drop_below: 0}\n"
        f"training: {{model: '{tiny_dir}', method: lora, steps: 8, batch_size: 4, learning_rate: 0.01, "
        "eval_every: 4, save_every: 4, max_seq_len: 64, threads: 2}\n"
        "evaluation: {max_examples: 2, max_new_tokens: 8}\noutput: {formats: [openai]}\n"
    )
    recipe = load_recipe_text(text, base_dir=tmp)
    run = RunDir.create(tmp / "run", text, "doubling", tmp)
    ctx = Context(run=run, recipe=recipe)
    run_stage(ctx, "sources")
    records, bad = _generated(len(DOC))
    log = run.begin("generate", "handmade")
    log.commit(records, bad, ["all"])
    run.finish(
        "generate",
        {"records": len(records), "rejected": len(bad), "work_items": len(records) + len(bad)},
        0.0,
        GenerateFigures(
            model="test-model",
            usage=Usage(),
            completion_tokens_per_s=0.0,
            rejected_by_reason={bad[0].reason: len(bad)},
            acceptance_rate=len(records) / (len(records) + len(bad)),
            generators={},
            diversity=Diversity(texts=len(records), distinct_1=1.0, distinct_2=1.0, mean_pairwise_rouge_l=0.0),
        ).to_manifest(),
    )
    for stage in ("features", "clean", "select", "train", "evaluate", "export"):
        assert run_stage(ctx, stage), stage
    return ctx


def _marks(page, chart: str) -> int:
    return page.eval_on_selector(f'[data-chart="{chart}"]', "el => el.querySelectorAll('.mark').length")


def test_report_draws_every_chart_and_its_numbers_match_the_manifest(review_run, browser):
    from sftforge.report.collect import ReportOptions
    from sftforge.report.render import write_report

    run = review_run.run
    path = write_report(run, review_run.recipe, ReportOptions())
    html = path.read_text(encoding="utf-8")
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html  # nothing fetched
    page, errors = open_page(browser, path.as_uri())
    assert errors == [] and page.locator("[data-error]").count() == 0
    stages = run.manifest["stages"]

    # the funnel: one bar per stage and outcome, valued as the manifest counts them
    bars = page.eval_on_selector_all(
        '[data-chart="funnel"] rect.bar', "els => els.map(e => [e.dataset.label, +e.dataset.value])"
    )
    values = dict(bars)
    assert values["generate: kept"] == stages["generate"]["counts"]["records"] == 41
    assert values["generate: removed"] == 2
    assert values["clean: kept"] == stages["clean"]["counts"]["records"]
    assert values["clean: removed"] == stages["clean"]["counts"]["rejected"] == 3  # 2 duplicates, 1 benchmark question
    assert values["train: kept"] == stages["train"]["counts"]["records"] == 14
    assert values["export: kept"] == stages["export"]["counts"]["records"] == 14
    removed_by = dict(
        page.eval_on_selector_all(
            '[data-chart="operators"] rect.bar', "els => els.map(e => [e.dataset.label, +e.dataset.value])"
        )
    )
    assert removed_by == {k: v for k, v in stages["clean"]["extra"]["removed_by_operator"].items()} | {
        k: 0
        for k in stages["clean"]["extra"]["seen_by_operator"]
        if k not in stages["clean"]["extra"]["removed_by_operator"]
    }
    assert removed_by["exact_dedup"] == 2 and removed_by["contaminated"] == 1
    assert page.text_content('[data-key="dataset"]') == "14"

    # distributions, map, cleaning, selection: every chart drew marks
    assert _marks(page, "languages") >= 2 and _marks(page, "hist:length_assistant_words") > 0
    assert _marks(page, "map") == 41  # every record that reached the features stage has an embedding
    assert (
        _marks(page, "pii") == 1 and page.eval_on_selector('[data-chart="pii"] rect.bar', "e => +e.dataset.value") == 2
    )
    balance = dict(
        page.eval_on_selector_all(
            '[data-chart="balance"] rect.bar', "els => els.map(e => [e.dataset.label, +e.dataset.value])"
        )
    )
    assert (
        balance.get("gender:male", 0) >= 1 and balance.get("gender:female", 0) >= 1
    )  # the doubling replies quote him or her
    assert _marks(page, "contamination") == 1 and page.text_content('[data-key="contaminated"]') == "1"
    assert page.text_content('[data-key="dedup-removed:exact_dedup"]') == "2"
    assert _marks(page, "loss") >= 2 and _marks(page, "arm-probabilities") == 2 and _marks(page, "arm-rewards") == 2
    assert _marks(page, "left-out") == 1  # the bandit's record-level lesson, cumulated over the steps
    results = json.loads((run.stage_dir("evaluate") / "results.json").read_text())
    eval_text = page.text_content("#eval-table")
    assert f"{results['heldout']['tuned']['loss']:.2f}" in eval_text  # the tiny model's loss is > 1: two decimals

    # the map colours by arm; clicking a point opens its record with the passage highlighted
    page.select_option("#map-colour", "arm")
    assert page.locator('[data-chart="map"] .legend span').count() == 3  # two arms and the records without one
    page.click('[data-chart="map"] circle[data-id="s01"]')
    assert page.text_content("#detail-id") == "s01"
    assert page.text_content("#detail .passage mark.src").startswith("Adding numbers.")

    # the browser filters by generator, status and a feature range (opening s01 had filtered by its id)
    assert page.eval_on_selector_all("#browser-rows tr", "els => els.map(e => e.dataset.id)") == ["s01"]
    page.fill("#f-text", "")
    page.dispatch_event("#f-text", "input")
    page.select_option("#f-generator", "self_instruct")
    page.select_option("#f-status", "removed")
    ids = page.eval_on_selector_all("#browser-rows tr", "els => els.map(e => e.dataset.id)")
    assert "bench" in ids and all(i != "dup1" for i in ids)
    page.select_option("#f-generator", "")
    page.select_option("#f-status", "")
    page.select_option("#f-feature", "length_assistant_words")
    page.fill("#f-max", "10")
    page.dispatch_event("#f-max", "input")
    short = page.eval_on_selector_all("#browser-rows tr", "els => els.map(e => e.dataset.id)")
    words = {r.id: r.features["length_assistant_words"] for r in run.read_records("features")}
    assert sorted(short) == sorted(i for i, w in words.items() if w <= 10) and 0 < len(short) < len(words)
    page.close()


def _post(url: str, payload: dict) -> tuple[int, dict]:
    import httpx

    res = httpx.post(url + "api/decisions", json=payload, timeout=10)
    return res.status_code, res.json()


def test_a_decision_made_in_the_review_page_changes_the_export(review_run, browser):
    from sftforge.review.server import ReviewServer
    from sftforge.stages import run_stage

    run = review_run.run
    exported = [json.loads(x) for x in (run.stage_dir("export") / "openai.jsonl").read_text().splitlines()]
    kept_ids = [r.id for r in run.read_records("train")]
    assert len(exported) == len(kept_ids) == 14
    victim = kept_ids[0]
    removed = {r["id"]: r["reject_reason"] for r in run.read_table("train", rejected=True).to_pylist()}
    rescued = sorted(removed)[0]  # not chosen within the budget: a person can bring it back
    held_out = next(r["id"] for r in run.read_table("select", rejected=True).to_pylist())

    server = ReviewServer(run, review_run.recipe, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert server.server_address[0] == "127.0.0.1"
        page, errors = open_page(browser, server.url)
        page.fill("#f-text", victim)
        page.dispatch_event("#f-text", "input")
        page.click(f'#browser-rows tr[data-id="{victim}"]')
        page.click("#review-reject")
        page.wait_for_function("document.getElementById('review-message').textContent.startsWith('saved')")
        page.fill("#f-text", rescued)
        page.dispatch_event("#f-text", "input")
        page.click(f'#browser-rows tr[data-id="{rescued}"]')
        page.click("#review-accept")
        page.wait_for_function("document.getElementById('review-message').textContent.startsWith('saved')")
        page.fill("#f-text", held_out)
        page.dispatch_event("#f-text", "input")
        page.click(f'#browser-rows tr[data-id="{held_out}"]')
        assert page.is_disabled("#review-accept")  # held out for evaluation: the page does not offer it
        assert errors == []
        status, body = _post(server.url, {"id": held_out, "decision": "accept"})
        assert status == 409 and "held out" in body["error"]
        status, body = _post(server.url, {"id": "no-such-record", "decision": "reject"})
        assert status == 409 and "no record" in body["error"]
        import httpx

        port = server.server_address[1]
        rebound = httpx.get(server.url, headers={"Host": f"evil.example:{port}"}, timeout=10)  # DNS rebinding
        assert rebound.status_code == 403 and "127.0.0.1" in rebound.json()["error"]
        cross = httpx.post(
            server.url + "api/decisions",
            json={"id": victim, "decision": "accept"},
            headers={"Origin": "http://evil.example"},
            timeout=10,
        )
        assert cross.status_code == 403
        form = httpx.post(
            server.url + "api/decisions", content=b"id=x", headers={"Content-Type": "text/plain"}, timeout=10
        )
        assert form.status_code == 415
        page.reload()  # the decisions survive a reload: they are read back from the run directory
        page.wait_for_selector("body[data-ready=yes]")
        page.select_option("#f-decision", "reject")
        assert page.eval_on_selector_all("#browser-rows tr", "els => els.map(e => e.dataset.id)") == [victim]
        page.close()
    finally:
        server.shutdown()
        server.server_close()

    lines = (run.path / "review" / "decisions.jsonl").read_text().splitlines()
    assert [(json.loads(x)["id"], json.loads(x)["decision"]) for x in lines] == [
        (victim, "reject"),
        (rescued, "accept"),
    ]
    assert run_stage(review_run, "export")  # new decisions change the export's fingerprint
    ids = [json.loads(x) for x in (run.stage_dir("export") / "openai.jsonl").read_text().splitlines()]
    assert len(ids) == 14
    texts = {x["messages"][0]["content"] for x in ids}
    by_id = {r.id: r for r in run.read_records("train")} | {
        r["id"]: r for r in run.read_table("train", rejected=True).to_pylist()
    }
    victim_q = by_id[victim].messages[0]["content"]
    rescued_q = by_id[rescued]["messages"][0]["content"]
    assert victim_q not in texts and rescued_q in texts
    card = (run.stage_dir("export") / "README.md").read_text()
    assert "1 record(s) rejected by a reviewer, 1 removed record(s) brought back" in card
    assert not run_stage(review_run, "export")  # and nothing changes without new decisions
