"""The generate stage for kg_qa: walk the knowledge graph, turn relation paths into verified examples, and (with
`walks.paraphrase`) have the LLM reword the questions. Resumable like every generator: walks are drawn in seeded
batches in the same order on every run, each path's key goes into the ledger once its example or rejection is
committed, and a rerun skips committed keys.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from typing import Any

from sftforge.generate.base import WorkItem
from sftforge.generate.kg_walk import KGWalkGenerator
from sftforge.kg import PathExample, PathRejection
from sftforge.llm import open_llm
from sftforge.run import ShardLog
from sftforge.sample import Lineage, Record, Rejected, record_id
from sftforge.stages.base import Context
from sftforge.stages.llm_runner import LLMRunner
from sftforge.stages.sources import load_kg

log = logging.getLogger(__name__)


def kg_config(ctx: Context) -> dict[str, Any]:
    """What a kg_qa generate stage's output depends on (the model only when it paraphrases)."""
    recipe = ctx.recipe
    cfg: dict[str, Any] = {"task": recipe.task.model_dump(), "walks": recipe.walks.model_dump(),
                           "seed": recipe.generation.sampling.seed}
    if recipe.walks.paraphrase:
        cfg |= {"model": recipe.generation.model.model_dump(), "sampling": recipe.generation.sampling.model_dump()}
    return cfg


def _finish(record: Record, key: str, seed: int) -> Record:
    record.lineage = Lineage(generator=KGWalkGenerator.name, model="none", seed=seed, round=1)
    record.id = record_id(record.messages, record.source, f"{KGWalkGenerator.name}|{key}")
    return record


def generate_kg(ctx: Context, out: ShardLog) -> tuple[dict[str, int], dict[str, Any]]:
    """Examples from walks until target_count are accepted, max_walks are drawn, or the walks keep finding only
    paths already seen (a small graph's paths are used up)."""
    recipe = ctx.recipe
    walks = recipe.walks
    gen_cfg = recipe.generation
    seed = gen_cfg.sampling.seed
    graph = load_kg(recipe)
    generator = KGWalkGenerator(recipe.task, walks, graph)
    target = recipe.task.target_count
    max_walks = walks.max_walks or 200 * target
    accepted = out.counts["records"]
    bar = ctx.reporter.task("generate: KG walks", total=target)
    ctx.reporter.advance(bar, n=min(accepted, target))
    cache_path = ctx.run.path / "cache" / "llm.sqlite" if gen_cfg.cache else None
    llm_ctx = open_llm(gen_cfg.model, recipe.resolve("."), cache_path) if walks.paraphrase else contextlib.nullcontext()
    paths = duplicates_in_a_row = 0
    exhausted = False
    with llm_ctx as llm:
        items: list[WorkItem] = []
        rejected: list[Rejected] = []
        keys: list[str] = []

        def flush() -> None:
            nonlocal accepted, items, rejected, keys
            if rejected:
                out.commit([], rejected, keys)
            if items and llm is not None:
                runner = LLMRunner(llm, generator, gen_cfg, items, out.done)
                for records, failed, done_keys, stats in runner.batches(lambda: True, gen_cfg.shard_size):
                    out.commit(records, failed, done_keys, stats)
            elif items:
                out.commit([_finish(generator.record(it.payload), it.key, seed) for it in items], [], [it.key for it in items])
            accepted += len(items)
            ctx.reporter.advance(bar, n=len(items), accepted=accepted, rejected=out.counts["rejected"])
            items, rejected, keys = [], [], []

        for cand in generator.candidates(seed, max_walks):
            if accepted + len(items) >= target:
                break
            paths += 1
            duplicates_in_a_row = duplicates_in_a_row + 1 if cand.duplicate else 0
            if duplicates_in_a_row >= max(walks.batch, 1000):
                exhausted = True
                break
            if cand.key in out.done:
                continue
            result = generator.example(cand)
            if isinstance(result, PathRejection):
                rejected.append(Rejected(_finish(generator.rejected_record(result), cand.key, seed), "generate",
                                         generator.name, result.reason))
                keys.append(cand.key)
            else:
                assert isinstance(result, PathExample)
                items.append(WorkItem(cand.key, result))
            if len(items) >= min(gen_cfg.shard_size, target - accepted) or len(rejected) >= 50 * gen_cfg.shard_size:
                flush()
        flush()
        model_id = llm.model_id if llm is not None else "none"
    ctx.reporter.done(bar)
    if accepted < target:
        why = ("the walks kept finding paths already seen: the graph's distinct paths from these starts are used up"
               if exhausted else f"walks.max_walks ({max_walks}) were drawn")
        log.warning("generate: %d kg_qa records accepted, fewer than target_count %d: %s; widen walks.start, raise "
                    "walks.max_hops or walks.max_answers", accepted, target, why)
    # Reasons name the path ("shortcut: the shorter path ...", "answer set of 52 entities ..."): count by kind.
    reasons = Counter(r.split(":")[0] for r in ctx.run.read_table("generate", rejected=True).column("reject_reason").to_pylist())
    records = ctx.run.read_table("generate")
    details = [c["detail"] for c in records.column("answer_check").to_pylist() if c]
    hops = Counter(src[0]["id"].count("\t") for src in records.column("source").to_pylist() if src)
    counts = {"records": out.counts["records"], "rejected": out.counts["rejected"], "paths": paths}
    extra = {
        "model": model_id,
        "graph": repr(graph),
        "rejected_by_reason": dict(reasons.most_common()),
        "hops": {str(k): hops[k] for k in sorted(hops)},
        "paraphrased": sum("reworded by the LLM" in d for d in details),
        "acceptance_rate": round(out.counts["records"] / max(1, out.counts["records"] + out.counts["rejected"]), 3),
        "usage": {k: v for k, v in out.stats.items() if not k.startswith("fail:")},
    }
    return counts, extra
