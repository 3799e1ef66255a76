"""Stage `generate`: turn ranked passages into records with the LLM, resumably.

Work items are (passage, sample number) in passage rank order, or passage sets from corpus walks (multi_doc_qa;
kg_qa has its own path in generate_kg.py, instruction and dialogue tasks theirs in generate_instruct.py). `LLMRunner` (llm_runner.py) drives the model over them, and finished
items are committed in shards through the run directory's ledger. A killed run resumes from the ledger; the items that were in
flight are asked again and answered by the response cache.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

import pyarrow.parquet as pq

from sftforge.generate.base import Generator, WorkItem, templates_hash
from sftforge.generate.corpus_walk import CorpusWalkGenerator
from sftforge.generate.grounded import GroundedGenerator, Passage
from sftforge.llm import open_llm
from sftforge.rounds import carried_run, read_plan, weighted_order
from sftforge.run import ShardLog
from sftforge.stages.base import Context, Stage
from sftforge.sources.passage_graph import build_passage_graph
from sftforge.stages.generate_instruct import generate_instructions, instruct_config
from sftforge.stages.generate_kg import generate_kg, kg_config
from sftforge.stages.llm_runner import LLMRunner

log = logging.getLogger(__name__)

INSTRUCT_TASKS = ("instruction", "dialogue")
CARRIED = "carried"  # the ledger key of the earlier rounds' records in a later round


def passages(ctx: Context, plan: dict[str, Any] | None = None) -> list[Passage]:
    """Passages in rank order; in a later round of the closed loop, in the plan's weighted order instead."""
    table = pq.read_table(ctx.run.stage_dir("sources") / "chunks.parquet")
    rows = table.filter(table["used"]).to_pylist()  # already in rank order
    if plan is not None:
        by_id = {r["chunk_id"]: r for r in rows}
        order = weighted_order(list(by_id), plan["weights"], ctx.recipe.generation.sampling.seed + plan["round"])
        rows = [by_id[c] for c in order]
    return [Passage(r["chunk_id"], r["doc_id"], r["start"], r["end"], r["text"]) for r in rows]


class GenerateStage(Stage):
    name = "generate"
    version = 1
    after = "sources"
    resumable = True

    def config(self, ctx: Context) -> Any:
        if ctx.recipe.task.type == "kg_qa":
            return kg_config(ctx) | {"templates": templates_hash(ctx.recipe.task.language)}
        if ctx.recipe.task.type in INSTRUCT_TASKS:
            return instruct_config(ctx.recipe)
        gen = ctx.recipe.generation
        plan = read_plan(ctx.run)
        return ({"plan": plan} if plan else {}) | {
            "task": ctx.recipe.task.model_dump(),
            "model": gen.model.model_dump(),
            "sampling": gen.sampling.model_dump(),
            "per_passage": gen.per_passage,
            **({"walks": ctx.recipe.walks.model_dump()} if ctx.recipe.task.type == "multi_doc_qa" else {}),
            "max_attempts": gen.max_attempts,
            "templates": templates_hash(ctx.recipe.task.language),
        }

    def execute(self, ctx: Context, out: ShardLog) -> tuple[dict[str, int], dict[str, Any]]:
        if ctx.recipe.task.type == "kg_qa":
            return generate_kg(ctx, out)
        if ctx.recipe.task.type in INSTRUCT_TASKS:
            return generate_instructions(ctx, out, passages(ctx) if ctx.recipe.sources.documents else [])
        recipe = ctx.recipe
        gen_cfg = recipe.generation
        plan = read_plan(ctx.run)
        carried = self._carry(ctx, out, plan)
        generator, items, work_extra = self._work(ctx, plan)
        cache_path = ctx.run.path / "cache" / "llm.sqlite" if gen_cfg.cache else None
        target = recipe.task.target_count
        start = time.perf_counter()
        bar = ctx.reporter.task("generate", total=target)
        ctx.reporter.advance(bar, n=min(out.counts["records"] - carried, target))
        with open_llm(gen_cfg.model, recipe.resolve("."), cache_path) as llm:
            runner = LLMRunner(llm, generator, gen_cfg, items, out.done, plan["round"] if plan else 1)
            accepted = out.counts["records"] - carried
            for records, rejected, keys, stats in runner.batches(lambda: accepted < target, gen_cfg.shard_size):
                out.commit(records, rejected, keys, stats)
                new = min(len(records), max(0, target - accepted))
                accepted += len(records)
                ctx.reporter.advance(bar, n=new, accepted=accepted, rejected=out.counts["rejected"])
            model_id = llm.model_id
        ctx.reporter.done(bar)
        seconds = time.perf_counter() - start
        stats = out.stats  # summed over every attempt at this stage, interrupted ones included
        info = ctx.run.stage_info(self.name)
        total_seconds = (info.seconds if info else 0.0) + seconds
        if accepted < target:
            log.warning(
                "generate: %d records accepted, fewer than target_count %d: the work items are used up (%s); add "
                "documents, raise generation.per_passage (walks.max_walks for multi_doc_qa) or relax retrieval",
                accepted, target, ", ".join(f"{k} {v}" for k, v in work_extra.items()),
            )
        rejected_table = ctx.run.read_table(self.name, rejected=True)
        reasons = Counter(rejected_table.column("reject_reason").to_pylist())
        counts = {"records": out.counts["records"], "rejected": out.counts["rejected"], "work_items": len(out.done) - bool(plan)}
        if plan:
            counts["carried"] = carried
        usage = {k: stats[k] for k in ("requests", "cached", "prompt_tokens", "prompt_tokens_reused", "completion_tokens")}
        extra = {
            "model": model_id,
            "usage": usage,
            "completion_tokens_per_s": round(usage["completion_tokens"] / total_seconds, 1) if total_seconds else 0.0,
            "parse_failures": {k[5:]: v for k, v in stats.most_common() if k.startswith("fail:")},
            "rejected_by_reason": dict(reasons.most_common()),
            "acceptance_rate": round((counts["records"] - carried) / max(1, counts["work_items"]), 3),
        } | work_extra
        return counts, extra

    @staticmethod
    def _work(ctx: Context, plan: dict[str, Any] | None) -> tuple[Generator, Iterable[WorkItem], dict[str, Any]]:
        """The generator and its work items (a lazy stream for corpus walks), with figures for the manifest."""
        recipe = ctx.recipe
        ranked = passages(ctx, plan)
        if recipe.task.type != "multi_doc_qa":
            generator = GroundedGenerator(recipe.task)
            items = generator.work_items(ranked, recipe.generation.per_passage)
            return generator, items, {"usable_passages": len(ranked)}
        w = recipe.walks
        pgraph = build_passage_graph(
            [p.text for p in ranked], [p.doc_id for p in ranked], recipe.task.language,
            neighbours=w.neighbours, link_entities=w.link_entities, cross_document=w.cross_document,
        )
        walker = CorpusWalkGenerator(recipe.task, w)
        max_walks = w.max_walks or 200 * recipe.task.target_count
        items = walker.work_items(pgraph, ranked, recipe.generation.sampling.seed, max_walks)
        graph_extra = {"usable_passages": len(ranked), "linked_passages": pgraph.graph.num_entities,
                       "similar_links": pgraph.similar_links, "entity_links": pgraph.entity_links}
        return walker, items, {"passage_graph": graph_extra}

    @staticmethod
    def _carry(ctx: Context, out: ShardLog, plan: dict[str, Any] | None) -> int:
        """A later round's pool starts with the earlier rounds' cleaned records (committed once); their count."""
        if plan is None:
            return 0
        records = carried_run(ctx.run, plan).read_records("clean")
        if CARRIED not in out.done:
            out.commit(records, [], [CARRIED])
        return len(records)
