"""The Ray engine against the local one, on a real local Ray (`ray.init(num_cpus=2)`): the example recipes and a
near-duplicate corpus spread over several blocks give the same records, rejects and clusters on both engines;
an interrupted Ray clean resumes from its completed blocks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import ray

from sftforge.sample import Lineage, Record, SourceRef

from conftest import EXAMPLES


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One local Ray for the module: the engine finds it running and leaves it running."""
    import os

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
    yield
    ray.shutdown()


def run_recipe_file(recipe: Path, out: Path, engine: str):
    from sftforge.recipe import load_recipe_text
    from sftforge.run import RunDir
    from sftforge.stages import Context, run_pipeline

    text = recipe.read_text(encoding="utf-8") + f"\nengine: {engine}\n"
    rec = load_recipe_text(text, base_dir=recipe.parent)
    run = RunDir.create(out, text, rec.name, recipe.parent)
    run_pipeline(Context(run=run, recipe=rec))
    return run


def ids(run, stage: str, rejected: bool = False) -> list[str]:
    return run.read_table(stage, rejected=rejected).column("id").to_pylist()


@pytest.mark.parametrize("name", ["kg_countries.yaml", "kg_countries_zh.yaml"])
def test_example_recipes_give_the_same_dataset_on_both_engines(tmp_path, name):
    local = run_recipe_file(EXAMPLES / "recipes" / name, tmp_path / "local", "local")
    distributed = run_recipe_file(EXAMPLES / "recipes" / name, tmp_path / "ray", "ray")
    assert ids(local, "clean") == ids(distributed, "clean") and len(ids(local, "clean")) > 10
    assert ids(local, "clean", True) == ids(distributed, "clean", True)
    a, b = local.stage_info("clean"), distributed.stage_info("clean")
    assert a.counts == b.counts and a.extra["removed_by_operator"] == b.extra["removed_by_operator"]
    blocks = len(list(local.stage_dir("features").glob("part-*.parquet")))
    assert b.extra["engine"] == {"name": "ray", "workers": 2, "blocks": blocks, "blocks_reused": 0}
    assert a.extra["engine"] == {"name": "local"}
    assert (local.stage_dir("export") / "openai.jsonl").read_bytes() == (
        distributed.stage_dir("export") / "openai.jsonl"
    ).read_bytes()


def test_sources_on_ray_read_chunk_and_rank_in_blocks_and_resume_after_an_interruption(tmp_path, monkeypatch):
    """Every file is a block on Ray: BM25 terms are counted in the workers and added up in the driver, which must
    give the local single-block ranking; a Ctrl-C after two blocks leaves them for the rerun to reuse."""
    import pyarrow.parquet as pq

    from sftforge.progress import SilentReporter
    from sftforge.recipe import load_recipe_text
    from sftforge.run import RunDir
    from sftforge.sources.kinds import documents
    from sftforge.stages import Context, run_stage

    recipe = EXAMPLES / "recipes" / "pep_qa.yaml"
    runs = {}
    for engine in ("local", "ray"):
        text = recipe.read_text(encoding="utf-8") + f"\nengine: {engine}\n"
        rec = load_recipe_text(text, base_dir=recipe.parent)
        runs[engine] = Context(run=RunDir.create(tmp_path / engine, text, rec.name, recipe.parent), recipe=rec)
    assert run_stage(runs["local"], "sources")

    monkeypatch.setattr(documents, "FILES_PER_BLOCK", 1)
    ctx = runs["ray"]
    ctx.reporter = StopAfter(2)  # interrupted once the second block is stored
    with pytest.raises(KeyboardInterrupt):
        run_stage(ctx, "sources")
    assert len([p for p in (ctx.run.stage_dir("sources") / "_blocks").iterdir() if not p.name.startswith(".")]) == 2
    ctx.reporter = SilentReporter()
    assert run_stage(ctx, "sources")
    n_files = len(list((EXAMPLES / "data" / "peps").iterdir()))
    assert ctx.run.stage_info("sources").extra["engine"] == {
        "name": "ray",
        "workers": 2,
        "blocks": n_files,
        "blocks_reused": 2,
    }
    assert runs["local"].run.stage_info("sources").extra["engine"] == {"name": "local"}
    for table in ("chunks", "documents"):
        a, b = (pq.read_table(c.run.stage_dir("sources") / f"{table}.parquet") for c in runs.values())
        assert a.num_rows > (300 if table == "chunks" else 5) and a.equals(b), table
    assert not (ctx.run.stage_dir("sources") / "_blocks").exists()
    assert runs["local"].run.stage_info("sources").counts == ctx.run.stage_info("sources").counts


# -- a corpus made for dedup -----------------------------------------------------------------------------------------

WORDS = (
    "apple river seven blue quickly under paper lamp storm violin cloud tiger salt garden window mountain "
    "silver orange pencil bridge engine winter summer coffee market yellow forest letter rabbit candle"
).split()


def corpus(n: int, seed: int = 0) -> list[Record]:
    """Documents of 30-60 words; every 7th a copy of an earlier one with two words changed (near-duplicate), every
    11th an exact copy, every 13th has an e-mail address, every 17th is too short."""
    rng = np.random.default_rng(seed)
    texts: list[str] = []
    for i in range(n):
        if i % 7 == 6 and i > 7:
            words = texts[int(rng.integers(0, i - 1))].split()
            for j in rng.choice(len(words), 2, replace=False):
                words[j] = str(rng.choice(WORDS))
            text = " ".join(words)
        elif i % 11 == 10:
            text = texts[int(rng.integers(0, i - 1))]
        elif i % 17 == 16:
            text = "too short"
        else:
            text = " ".join(rng.choice(WORDS, int(rng.integers(30, 60))))
        if i % 13 == 12:
            text += f" write to person{i}@example.org"
        texts.append(text)
    return [
        Record(
            id=f"d{i:04d}",
            messages=[{"role": "user", "content": f"Summarise document {i}."}, {"role": "assistant", "content": t}],
            task="summarization",
            lang="en",
            source=[SourceRef("chunk", f"doc{i}#0", f"doc{i}", 0, 1)],
            lineage=Lineage("made", "none"),
        )
        for i, t in enumerate(texts)
    ]


RECIPE = """name: dedup
task: {type: summarization, description: documents}
sources: {documents: [{path: x.txt}]}
features: [{name: length, role: assistant, unit: words}, {name: distinct_n, n: 2, role: assistant}]
cleaning:
  preset: none
  mappers: [{name: pii_redact}]
  filters: [{name: length, role: assistant, unit: words, min: 5}]
  dedup:
    - {name: exact_dedup, scope: assistant}
    - {name: minhash_dedup, scope: assistant, threshold: 0.7, num_perm: 64}
output: {formats: [openai]}
"""


SEMANTIC = "    - {name: semantic_dedup, scope: assistant, threshold: 0.97}\n"


def generated_run(tmp_path: Path, engine: str, blocks: int = 5, n: int = 400, semantic: bool = False):
    """A run whose generate stage holds `corpus(n)` in `blocks` shards; features and clean still to run; with
    `semantic`, SemDeDup (a MiniLM per worker) runs after the other deduplicators."""
    from sftforge.recipe import load_recipe_text
    from sftforge.run import RunDir
    from sftforge.stages import Context

    text = (RECIPE.replace("output:", SEMANTIC + "output:") if semantic else RECIPE) + f"engine: {engine}\n"
    recipe = load_recipe_text(text, base_dir=tmp_path)
    run = RunDir.create(tmp_path / engine, text, "dedup", tmp_path)
    records = corpus(n)
    log = run.begin("generate", "fp")
    size = -(-n // blocks)
    for k in range(blocks):
        log.commit(records[k * size : (k + 1) * size], [], [f"b{k}"])
    run.finish("generate", {"records": n, "rejected": 0}, 0.0)
    return Context(run=run, recipe=recipe)


def clusters(run, op: str) -> list[dict]:
    return [json.loads(x) for x in (run.stage_dir("clean") / f"duplicates-{op}.jsonl").read_text().splitlines()]


def test_features_and_cleaning_across_blocks_are_the_same_on_both_engines(tmp_path):
    from sftforge.stages import run_stage

    results = {}
    for engine in ("local", "ray"):
        ctx = generated_run(tmp_path, engine, semantic=True)
        assert run_stage(ctx, "features") and run_stage(ctx, "clean")
        results[engine] = ctx.run
    local, distributed = results["local"], results["ray"]
    fa, fb = local.read_records("features"), distributed.read_records("features")
    assert [r.id for r in fa] == [r.id for r in fb] and [r.features for r in fa] == [r.features for r in fb]
    assert ids(local, "clean") == ids(distributed, "clean")
    reasons = lambda run: [(r["id"], r["reject_reason"]) for r in run.read_table("clean", rejected=True).to_pylist()]  # noqa: E731
    assert reasons(local) == reasons(distributed)  # the same rejects, in the same order
    for op in ("exact_dedup", "minhash_dedup", "semantic_dedup"):
        assert clusters(local, op) == clusters(distributed, op)
    assert len(clusters(local, "minhash_dedup")) >= 20  # near-duplicates spread over different blocks were found
    ea, eb = local.stage_info("clean").extra, distributed.stage_info("clean").extra
    assert ea["removed_by_operator"] == eb["removed_by_operator"] and ea["seen_by_operator"] == eb["seen_by_operator"]
    assert ea["operators"] == eb["operators"]
    emails = sum(r.text_of("assistant").count("@example.org") for r in fb)
    assert eb["operators"]["pii_redact"]["found_by_type"]["EMAIL"] == emails >= 30
    redacted = [r for r in distributed.read_records("clean") if "[EMAIL]" in r.text_of("assistant")]
    assert redacted and not any("@example.org" in r.text_of("assistant") for r in distributed.read_records("clean"))
    assert eb["engine"]["name"] == "ray" and eb["engine"]["blocks"] == 5


class StopAfter:
    """A reporter that interrupts the stage, as Ctrl-C would, after `n` blocks were advanced."""

    def __init__(self, n: int) -> None:
        self.n = n

    def task(self, name, total=None):
        return name

    def advance(self, task, n=1, **fields):
        self.n -= n
        if self.n <= 0:
            raise KeyboardInterrupt

    def done(self, task):
        pass


@pytest.mark.parametrize(
    "first_engine, stop_after, reused",
    [
        ("ray", 3, 3),  # during the operators: three blocks stored
        ("local", 7, 5),  # during the commits of a local attempt: every block stored, two committed; Ray takes over
    ],
)
def test_an_interrupted_clean_resumes_on_ray_from_its_completed_blocks(tmp_path, first_engine, stop_after, reused):
    from sftforge.progress import SilentReporter
    from sftforge.stages import run_stage

    reference = generated_run(tmp_path / "a", "local")
    run_stage(reference, "features")
    run_stage(reference, "clean")

    ctx = generated_run(tmp_path / "b", first_engine)
    run_stage(ctx, "features")
    ctx.reporter = StopAfter(stop_after)
    with pytest.raises(KeyboardInterrupt):
        run_stage(ctx, "clean")
    assert ctx.run.stage_info("clean").status == "running"
    assert len([p for p in (ctx.run.stage_dir("clean") / "_blocks").iterdir() if not p.name.startswith(".")]) == reused
    committed = stop_after - 5 if stop_after > 5 else 0
    ledger = ctx.run.stage_dir("clean") / "_ledger.jsonl"
    assert (len(ledger.read_text().splitlines()) if ledger.exists() else 0) == committed

    ray_ctx = generated_run(tmp_path / "unused", "ray")  # the same recipe on Ray, over the interrupted run
    ray_ctx.run, ray_ctx.reporter = ctx.run, SilentReporter()
    assert run_stage(ray_ctx, "clean")
    extra = ctx.run.stage_info("clean").extra
    assert extra["engine"]["blocks_reused"] == reused
    assert ids(ctx.run, "clean") == ids(reference.run, "clean")
    assert ids(ctx.run, "clean", True) == ids(reference.run, "clean", True)
    want = reference.run.stage_info("clean")
    assert ctx.run.stage_info("clean").counts == want.counts
    assert (
        extra["removed_by_operator"] == want.extra["removed_by_operator"]
        and extra["operators"] == want.extra["operators"]
    )
    assert not (ctx.run.stage_dir("clean") / "_blocks").exists()


@pytest.mark.parametrize("partitions", [1, 3])
def test_band_pairs_from_the_ray_shuffle_equal_the_local_resolution(partitions):
    from sftforge.engine.ray_engine import candidate_pairs
    from sftforge.lib.minhash import find_duplicates
    from sftforge.ops.dedup import MinHashDedup, MinHashDedupConfig

    texts = [r.text_of("assistant") for r in corpus(300, seed=3)]
    dedup = MinHashDedup(MinHashDedupConfig(scope="assistant", threshold=0.7, num_perm=64, bands=16, rows=4))
    sigs = dedup.hasher.signatures(texts)
    tmp = Path(__import__("tempfile").mkdtemp())
    try:
        files, sizes = [], []
        for k, start in enumerate(range(0, len(sigs), 70)):
            files.append(tmp / f"b{k}.npy")
            np.save(files[-1], sigs[start : start + 70])
            sizes.append(len(sigs[start : start + 70]))
        first, member = candidate_pairs(ray, dedup, files, sizes, partitions=partitions)
    finally:
        shutil.rmtree(tmp)
    decided = dedup.resolve_pairs(sigs, first, member)
    expected = find_duplicates(sigs, 16, 4, threshold=0.7, verify=True)
    assert np.array_equal(decided.survivor, expected.survivor)
    assert np.allclose(decided.similarity, np.nan_to_num(expected.similarity, nan=1.0))
    assert np.array_equal(decided.survivor, dedup.resolve(sigs).survivor)
    assert (decided.survivor != np.arange(len(sigs))).sum() >= 30
