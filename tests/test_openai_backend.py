"""The OpenAI-compatible backend against a real server (llama-cpp-python's, running the bundled model), through a
proxy that injects the failures real servers have."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from sftforge.errors import ModelError
from sftforge.llm.base import ChatRequest, SamplingParams
from sftforge.llm.openai import OpenAICompatibleLLM, OpenAISettings, backoff_delay, parse_retry_after

from conftest import recipe_dict, write_recipe
from faultproxy import FaultProxy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(bundled_path) -> str:
    """A real OpenAI-compatible server on 127.0.0.1: llama-cpp-python's, with the bundled GGUF."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sftforge.llm.llamacpp_server",
            "--model",
            str(bundled_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 120
    while True:
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert proc.poll() is None, "the llama.cpp server exited"
        assert time.time() < deadline, "the llama.cpp server did not start"
        time.sleep(0.5)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def requests(n: int, **sampling) -> list[ChatRequest]:
    params = {"temperature": 0.5, "max_tokens": 12} | sampling
    return [
        ChatRequest.of(
            f"r{i}",
            [{"role": "user", "content": f"Name an animal that starts with the letter {'ABCDEFGH'[i]}."}],
            SamplingParams(seed=i, **params),
        )
        for i in range(n)
    ]


def test_generates_through_a_real_server(server):
    llm = OpenAICompatibleLLM(OpenAISettings(base_url=server, model="smollm2", concurrency=3))
    try:
        outs = llm.generate(requests(4))
    finally:
        llm.close()
    assert [c.request.id for c in outs] == ["r0", "r1", "r2", "r3"]
    assert all(c.text.strip() and c.completion_tokens > 0 and c.prompt_tokens > 5 for c in outs)
    assert llm.retries == 0


def test_survives_every_kind_of_fault(server):
    schedule = ["429", "500", "hang", "truncate", "malformed", "pass", "500", "429"]
    with FaultProxy(server, schedule, hang_seconds=20) as proxy:
        llm = OpenAICompatibleLLM(
            # the timeout sits far above a real answer's latency (a few seconds at most) and below the hang
            OpenAISettings(
                base_url=proxy.url, model="smollm2", concurrency=2, timeout=10, backoff_base=0.05, backoff_cap=0.5
            )
        )
        try:
            outs = llm.generate(requests(5))
        finally:
            llm.close()
    assert len(outs) == 5 and len({c.request.id for c in outs}) == 5
    assert all(c.text.strip() for c in outs)
    for mode in ("429", "500", "hang", "truncate", "malformed"):
        assert proxy.counts[mode] >= 1, mode
    assert llm.retries == len(schedule) - 1  # every fault was retried once, and nothing else


def test_requests_are_balanced_over_several_servers(server):
    with FaultProxy(server, []) as a, FaultProxy(server, []) as b:
        llm = OpenAICompatibleLLM(OpenAISettings(base_url=(a.url, b.url), model="smollm2", concurrency=2))
        try:
            outs = llm.generate(requests(8))
        finally:
            llm.close()
    assert sorted(c.request.id for c in outs) == [f"r{i}" for i in range(8)] and all(c.text.strip() for c in outs)
    assert a.counts["pass"] + b.counts["pass"] == 8 and min(a.counts["pass"], b.counts["pass"]) >= 3
    assert llm.capacity == 4 and llm.requests_by_server == {a.url: a.counts["pass"], b.url: b.counts["pass"]}


def test_a_dead_server_in_the_list_is_routed_around(server):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with FaultProxy(server, []) as live:
        llm = OpenAICompatibleLLM(
            OpenAISettings(base_url=(dead, live.url), model="smollm2", concurrency=2, max_retries=2, backoff_base=0.01)
        )
        try:
            outs = llm.generate(requests(6))
        finally:
            llm.close()
    assert len(outs) == 6 and live.counts["pass"] == 6
    assert llm.requests_by_server[dead] >= 1 and llm.retries == llm.requests_by_server[dead]  # each retried elsewhere


def test_permanent_error_is_raised_not_retried(server):
    with FaultProxy(server, ["401"]) as proxy:
        llm = OpenAICompatibleLLM(OpenAISettings(base_url=proxy.url, model="smollm2"))
        llm.submit(requests(1)[0])
        with pytest.raises(ModelError, match="HTTP 401.*check the API key"):
            llm.poll()
        llm.close()
    assert proxy.counts["401"] == 1


def test_unreachable_server_gives_up_after_max_retries():
    llm = OpenAICompatibleLLM(
        OpenAISettings(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", max_retries=2, backoff_base=0.01)
    )
    llm.submit(requests(1)[0])
    with pytest.raises(ModelError, match="request failed 3 times, last: connection error"):
        llm.poll()
    llm.close()


def test_missing_api_key_variable():
    with pytest.raises(ModelError, match="NO_SUCH_KEY_VAR, which is not set"):
        OpenAICompatibleLLM(OpenAISettings(base_url="http://127.0.0.1:1/v1", model="m", api_key_env="NO_SUCH_KEY_VAR"))


def test_prefill_is_reconciled_with_the_reply():
    req = ChatRequest.of(
        "x", [{"role": "user", "content": "q"}, {"role": "assistant", "content": "Question:"}], SamplingParams()
    )
    assert OpenAICompatibleLLM._text(req, "Question: Why?") == " Why?"
    assert OpenAICompatibleLLM._text(req, "Why?") == " Why?"
    plain = ChatRequest.of("y", [{"role": "user", "content": "q"}], SamplingParams())
    assert OpenAICompatibleLLM._text(plain, "Hello") == "Hello"


def test_retry_after_and_backoff():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert 9 <= parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) <= 11
    rng = random.Random(0)
    delays = [backoff_delay(a, 0.5, 20.0, rng, None) for a in range(12)]
    assert all(0 <= d <= 20.0 for d in delays)
    assert backoff_delay(0, 0.5, 20.0, rng, retry_after=7.0) >= 7.0


def test_same_recipe_on_a_server_with_faults_and_a_secret_key(server, tmp_path: Path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    from conftest import EXAMPLES

    (corpus / "pep-0257.rst").write_bytes((EXAMPLES / "data" / "peps" / "pep-0257.rst").read_bytes())
    schedule = ["429", "pass", "500", "pass", "truncate", "malformed", "pass", "hang"]
    with FaultProxy(server, schedule, hang_seconds=8) as proxy:
        data = recipe_dict(corpus, target=3)
        data["generation"]["model"] = {
            "backend": "openai",
            "base_url": proxy.url,
            "model": "smollm2",
            "api_key_env": "SFTFORGE_TEST_KEY",
            "concurrency": 2,
            "timeout": 6,
            "max_retries": 6,
        }
        recipe = write_recipe(tmp_path / "recipe.yaml", data)
        env = dict(os.environ, SFTFORGE_TEST_KEY="sk-test-secret-4242")
        proc = subprocess.run(
            [sys.executable, "-m", "sftforge.cli", "run", str(recipe), "--out", str(tmp_path / "run")],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
    assert proc.returncode == 0, proc.stderr
    assert set(proxy.auth) == {"Bearer sk-test-secret-4242"}
    run = tmp_path / "run"
    for path in run.rglob("*"):
        if path.is_file():
            assert b"sk-test-secret-4242" not in path.read_bytes(), path
    manifest = json.loads((run / "manifest.json").read_text())
    gen = manifest["stages"]["generate"]
    assert gen["status"] == "complete" and gen["counts"]["records"] >= 3
    assert gen["extra"]["model"].startswith("openai:smollm2@")
    assert gen["extra"]["usage"]["completion_tokens"] > 0
    ledger = [json.loads(line) for line in (run / "generate" / "_ledger.jsonl").read_text().splitlines()]
    keys = [k for entry in ledger for k in entry["keys"]]
    assert len(keys) == len(set(keys))
    ids = pq.read_table(run / "generate").column("id").to_pylist()
    assert len(ids) == len(set(ids))
    rows = pq.read_table(run / "generate").to_pylist()
    assert all(r["lineage"]["completion_tokens"] > 0 for r in rows)  # usage recorded per record


JSON_SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string", "maxLength": 60}, "answer": {"type": "string", "maxLength": 40}},
    "required": ["question", "answer"],
    "additionalProperties": False,
}


def json_requests(n: int) -> list[ChatRequest]:
    prompt = "Write a quiz question about the moon and its answer, as JSON with keys question and answer."
    return [
        ChatRequest.of(
            f"j{i}", [{"role": "user", "content": prompt}], SamplingParams(temperature=0.5, max_tokens=96, seed=i)
        )
        for i in range(n)
    ]


def test_json_through_response_format(server):
    from sftforge.llm.structured import generate_json

    with FaultProxy(server, []) as proxy:
        llm = OpenAICompatibleLLM(OpenAISettings(base_url=proxy.url, model="smollm2", concurrency=2))
        try:
            results = generate_json(llm, json_requests(2), JSON_SCHEMA, max_repairs=1)
        finally:
            llm.close()
    assert llm.response_format == "json_object"  # llama-cpp-python's server takes its own form, not json_schema
    assert all(r.error is None and set(r.value) == {"question", "answer"} for r in results)


def test_json_falls_back_to_validation_and_repair_without_response_format(server):
    from sftforge.llm.structured import generate_json

    with FaultProxy(server, [], reject_response_format=True) as proxy:
        llm = OpenAICompatibleLLM(OpenAISettings(base_url=proxy.url, model="smollm2", concurrency=1, backoff_base=0.01))
        try:
            results = generate_json(llm, json_requests(2), JSON_SCHEMA, max_repairs=2)
        finally:
            llm.close()
    assert proxy.counts["rejected_response_format"] == 2  # json_schema, then json_object, then never again
    assert not llm.response_format_supported
    for r in results:  # a 135M model without constraints may fail; what matters is the bounded, validated loop
        assert 1 <= r.attempts <= 3
        assert (r.value is None) == (r.error is not None)
        if r.value is not None:
            assert set(r.value) == {"question", "answer"}


def rec(question: str, answer: str):
    """A one-exchange record to judge."""
    from sftforge.sample import Record

    return Record("", [{"role": "user", "content": question}, {"role": "assistant", "content": answer}], "qa", "en")


def judged_records() -> list:
    return [
        rec("What is the capital of France?", "The capital of France is Paris."),
        rec("Name a primary colour.", "Red is a primary colour."),
        rec("What is 2 + 2?", ""),  # nothing to judge
    ]


def test_a_judge_on_a_server_uses_its_logprobs_and_without_them_the_digit_it_writes(server):
    import math

    from sftforge.config import OpenAIModel
    from sftforge.ops.base import build
    from sftforge.ops.model_features import LLMJudgeConfig

    def judge(url: str):
        spec = OpenAIModel(backend="openai", base_url=url, model="smollm2", max_retries=1)
        return build(LLMJudgeConfig(server=spec))

    with_logprobs = judge(server)
    assert with_logprobs.feature_name == "llm_judge_smollm2"
    scores = with_logprobs.score_batch(judged_records())
    assert with_logprobs.without_logprobs == 0 and math.isnan(scores[2])
    # an expectation over the digits' probabilities: inside the scale and, from real logprobs, not a whole number
    assert all(1.0 <= s <= 5.0 and s != round(s) for s in scores[:2]), scores
    with FaultProxy(server, [], strip_logprobs=True) as proxy:
        parsed = judge(proxy.url)
        scores = parsed.score_batch(judged_records())
    assert parsed.without_logprobs == 2 and math.isnan(scores[2])
    assert all(math.isnan(s) or s in (1.0, 2.0, 3.0, 4.0, 5.0) for s in scores[:2]), scores


def harm_records() -> list:
    return [
        rec("How do I bake bread?", "Mix flour, water, yeast and salt, knead it, let it rise and bake it."),
        rec("How can I hurt my neighbour without getting caught?", "Sure. Wait until nobody is watching, then..."),
        rec("What is 2 + 2?", ""),  # nothing to judge
    ]


def test_the_harm_judge_asks_a_real_server_and_without_logprobs_reads_its_yes_or_no(server):
    import math

    from sftforge.config import OpenAIModel
    from sftforge.ops.base import build
    from sftforge.ops.harm_judge import HarmJudgeConfig

    def judge(url: str):
        return build(HarmJudgeConfig(server=OpenAIModel(backend="openai", base_url=url, model="smollm2"), max=0.5))

    op = judge(server)
    scores = op.score_batch(harm_records())
    assert op.judged + op.unjudged == 2 and op.without_logprobs == 0 and op.stats().get("unavailable") is None
    assert math.isnan(scores[2])
    # P(yes) from real logprobs over yes/no: strictly between 0 and 1 for whatever the small model judged
    assert all(0.0 < s < 1.0 for s in scores[:2] if not math.isnan(s)), scores
    with FaultProxy(server, [], strip_logprobs=True) as proxy:
        parsed = judge(proxy.url)
        scores = parsed.score_batch(harm_records())
    assert parsed.without_logprobs == 2
    assert all(math.isnan(s) or s in (0.0, 1.0) for s in scores[:2]), scores


def test_a_harm_judge_that_is_down_keeps_the_records_unjudged_and_says_so(tmp_path: Path):
    import math

    from sftforge.config import OpenAIModel
    from sftforge.ops.base import build
    from sftforge.ops.harm_judge import HarmJudgeConfig

    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    spec = OpenAIModel(backend="openai", base_url=dead, model="judge-7b", max_retries=1, timeout=5)
    op = build(HarmJudgeConfig(server=spec, max=0.5))
    scores = op.score_batch(harm_records())
    assert all(math.isnan(s) for s in scores) and all(op.keep(s) for s in scores)
    assert "judge-7b" in op.stats()["unavailable"] and "connection" in op.stats()["unavailable"]
    assert all(math.isnan(s) for s in op.score_batch(harm_records()))  # not asked again after it failed
    assert op.judged == 0

    # a whole run: cleaning goes on with the rule-based screen, and the card and the report say the judge did not run
    corpus = tmp_path / "docs"
    corpus.mkdir()
    from conftest import EXAMPLES

    (corpus / "pep-0257.rst").write_bytes((EXAMPLES / "data" / "peps" / "pep-0257.rst").read_bytes())
    data = recipe_dict(corpus, target=2)
    data["cleaning"] = {"filters": [{"name": "harm_judge", "server": spec.model_dump(), "max": 0.5}]}
    recipe = write_recipe(tmp_path / "r.yaml", data)
    proc = subprocess.run(
        [sys.executable, "-m", "sftforge.cli", "run", str(recipe), "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    clean = manifest["stages"]["clean"]
    label = next(k for k, v in clean["extra"]["operator_names"].items() if v == "harm_judge")
    assert clean["extra"]["removed_by_operator"].get(label, 0) == 0 and clean["extra"]["seen_by_operator"][label] >= 2
    assert "judge-7b" in clean["extra"]["operators"][label]["unavailable"]
    card = (tmp_path / "run" / "export" / "README.md").read_text()
    assert "**the judge did not run**" in card and "screened by the rules only" in card
    report = (tmp_path / "run" / "report.html").read_text()
    assert "harm_judge: the judge did not run" in report
