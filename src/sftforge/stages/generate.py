"""Stage `generate`: run each of the recipe's generators (the task type's own when none are listed) for its share of
target_count, and commit their waves through the run directory's ledger.

The stage knows generators only through their contract (`generate/base.py`): it opens the LLM when one of them
asks it, gives each a `Session` with its share, its sampling and what an interrupted attempt committed, commits
every wave that is not in the ledger yet, and sums up the figures. A killed run resumes: generators that skip
committed work start where they stopped (requests in flight are answered by the response cache), generators that
replay are run again from the start with their committed waves answered by the cache and not committed twice.
A later round of the closed loop starts from the earlier rounds' cleaned records (committed once) and the plan's
passage order.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sftforge.errors import StageError
from sftforge.figures import GenerateFigures
from sftforge.generate.audiences import asked_levels, audience_figures
from sftforge.generate.base import CARRIED_KEY, GENERATORS, Generator, Job, Session, templates_hash
from sftforge.lib.diversity import diversity
from sftforge.llm import open_llm
from sftforge.recipe import Recipe
from sftforge.rounds import carried_run
from sftforge.run import RunDir, ShardLog
from sftforge.sample import SourceRef, reason_kind
from sftforge.sources.kinds.base import SOURCES
from sftforge.stages.base import Context, Stage
from sftforge.storage import RoundPlan, read_plan

log = logging.getLogger(__name__)


def shares(total: int, weights: list[float]) -> list[int]:
    """`total` split by `weights` (largest remainder), every share at least 1 when total allows."""
    raw = [total * w / sum(weights) for w in weights]
    out = [int(r) for r in raw]
    for i in sorted(range(len(raw)), key=lambda i: out[i] - raw[i])[: total - sum(out)]:
        out[i] += 1
    for i, n in enumerate(out):
        if n == 0 and max(out) > 1:
            out[out.index(max(out))] -= 1
            out[i] = 1
    return out


DIVERSITY_SAMPLE = 20_000  # first turns the diversity figures read at most (a seeded sample beyond that)


def _generators(table: pa.Table) -> list[str]:
    """Each row's generator, from the lineage column alone ("" where a record has none)."""
    names = pc.struct_field(table.column("lineage"), "generator")
    return [n or "" for n in names.to_pylist()]


def _tokens(table: pa.Table) -> list[int]:
    """Each row's prompt plus completion tokens, from its lineage."""
    lineage = table.column("lineage")
    total = pc.add(
        pc.fill_null(pc.struct_field(lineage, "prompt_tokens"), 0),
        pc.fill_null(pc.struct_field(lineage, "completion_tokens"), 0),
    )
    return total.to_pylist()


def _first_turns(run: RunDir, rows: Sequence[int], seed: int) -> list[str]:
    """The first user turn of the given rows of the stage's records, of a seeded sample of them when there are
    many: shard by shard, only those rows' messages become Python objects."""
    chosen = list(rows)
    if len(chosen) > DIVERSITY_SAMPLE:
        chosen = sorted(random.Random(seed).sample(chosen, DIVERSITY_SAMPLE))
    firsts: list[str] = []
    start = 0
    wanted = iter(chosen)
    want = next(wanted, None)
    for table in run.iter_tables("generate", columns=["messages"]):
        local = []
        while want is not None and want < start + table.num_rows:
            local.append(want - start)
            want = next(wanted, None)
        start += table.num_rows
        for msgs in table.column("messages").take(pa.array(local, pa.int64())).to_pylist() if local else []:
            first = next((m["content"] for m in msgs if m["role"] == "user"), None)
            if first:
                firsts.append(first)
        if want is None:
            break
    return firsts


def _uses_llm(recipe: Recipe) -> bool:
    return any(GENERATORS[g.name].uses_llm(g, recipe) for g in recipe.generators)


class GenerateStage(Stage):
    name = "generate"
    version = 3
    after = "sources"
    resumable = True

    def config(self, ctx: Context) -> Any:
        recipe = ctx.recipe
        gen = recipe.generation
        cfg: dict[str, Any] = {
            "task": recipe.task.model_dump(),
            "generators": [g.model_dump() for g in recipe.generators],
            "per_passage": gen.per_passage,
            "coverage": [gen.min_per_doc, gen.per_1k_tokens],
            "templates": templates_hash(recipe.task.language),
        }
        if _uses_llm(recipe):
            cfg |= {
                "model": gen.model.model_dump(),
                "sampling": gen.sampling.model_dump(),
                "max_attempts": gen.max_attempts,
            }
        else:
            cfg["seed"] = gen.sampling.seed
        for section in sorted({s for g in recipe.generators for s in GENERATORS[g.name].sections}):
            cfg[section] = getattr(recipe, section).model_dump()
        inputs = [p for g in recipe.generators for p in GENERATORS[g.name].inputs(g, recipe)]
        if inputs:
            cfg["inputs"] = [
                [str(p), hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None] for p in inputs
            ]
        for name in sorted(
            {need for g in recipe.generators for need in GENERATORS[g.name].needs(g)} - {"documents", "datasets"}
        ):
            # documents and datasets reach generation through the sources stage's output; others are read again
            cfg[f"files:{name}"] = [
                [str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in SOURCES[name].files(recipe)
            ]
        plan = read_plan(ctx.run)
        if plan is not None:
            cfg["plan"] = plan.model_dump()
        return cfg

    def execute(self, ctx: Context, out: ShardLog) -> tuple[dict[str, int], GenerateFigures]:
        recipe = ctx.recipe
        gen_cfg = recipe.generation
        classes = [GENERATORS[g.name] for g in recipe.generators]
        if out.done and not gen_cfg.cache and any(c.replays for c in classes):
            raise StageError(
                "generate: resuming generators that replay their committed waves needs the response cache, and "
                "generation.cache is off; turn the cache on, or rerun with --force to start over"
            )
        plan = read_plan(ctx.run)
        carried = self._carry(ctx, out, plan)
        job = Job(recipe, ctx.run, plan)
        # the instructions at hand are gathered only for a generator that reads them (a million imported
        # examples would otherwise sit in memory for nothing)
        keep_at_hand = any(GENERATORS[g.name].reads_at_hand for g in recipe.generators)
        if recipe.sources.seeds is not None:
            job.at_hand.update({s.instruction: SourceRef("seed", s.id) for s in job.seeds()})
        committed = self._committed(ctx, carried)
        targets = shares(recipe.task.target_count, [g.share for g in recipe.generators])
        cache_path = ctx.run.path / "cache" / "llm.sqlite" if gen_cfg.cache else None
        llm_ctx = (
            open_llm(gen_cfg.model, recipe.resolve("."), cache_path) if _uses_llm(recipe) else contextlib.nullcontext()
        )
        start = time.perf_counter()
        figures: dict[str, Any] = {}
        counts: dict[str, int] = {}
        with llm_ctx as llm:
            for entry, count in zip(recipe.generators, targets):
                generator = GENERATORS[entry.name](entry, job)
                sampling = entry.sampling.over(gen_cfg.sampling)
                session = Session(
                    llm, gen_cfg, sampling, count, out.done, committed[entry.name], plan.round if plan else 1
                )
                made = self._run(ctx, out, generator, session, keep_at_hand)
                if made < count and not generator.uses_llm(entry, recipe):
                    log.info(
                        "generate: %s made %d records, all its input allows (its share was %d)", entry.name, made, count
                    )
                elif made < count:
                    log.warning(
                        "generate: %s made %d of its %d records: its rejections (rejected/generate) say why; "
                        "raise generation.max_attempts, loosen its filters, add sources or use a stronger model",
                        entry.name,
                        made,
                        count,
                    )
                counts |= generator.counts(session)
                figures[entry.name] = {
                    "target": count,
                    "records": made,
                    "sampling": sampling.model_dump(),
                    "counts": generator.counts(session),
                } | generator.figures
            model_id = llm.model_id if llm is not None else "none"
        counts = {"records": out.counts["records"], "rejected": out.counts["rejected"]} | counts
        if plan:
            counts["carried"] = carried
        return counts, self._figures(ctx, out, model_id, figures, carried, time.perf_counter() - start)

    def _run(self, ctx: Context, out: ShardLog, generator: Generator, session: Session, keep_at_hand: bool) -> int:
        """Commit the generator's waves; return how many records it made in this attempt and those before."""
        label = generator.progress_label or f"generate: {generator.name}"
        bar = ctx.reporter.task(label, total=session.count)
        made = 0 if generator.replays else session.committed
        ctx.reporter.advance(bar, n=min(made, session.count))
        for wave in generator.run(session):
            stats = Counter(wave.stats)
            stats.update(session.stats)
            session.stats.clear()
            if not set(wave.keys) <= out.done:
                out.commit(wave.records, wave.rejected, wave.keys, dict(stats))
            for r in wave.records if keep_at_hand else []:
                generator.job.at_hand.setdefault(r.text_of("user").split("\n\n")[0], SourceRef("record", r.id))
            new = min(len(wave.records), max(0, session.count - made))
            made += len(wave.records)
            ctx.reporter.advance(bar, n=new, accepted=made, rejected=out.counts["rejected"])
        ctx.reporter.done(bar)
        return made

    @staticmethod
    def _committed(ctx: Context, carried: int) -> Counter[str]:
        """Records an interrupted attempt committed, by generator (the earlier rounds' records left out)."""
        names = _generators(ctx.run.read_table("generate", columns=["lineage"]))
        return Counter(names[carried:])

    @staticmethod
    def _carry(ctx: Context, out: ShardLog, plan: RoundPlan | None) -> int:
        """A later round's pool starts with the earlier rounds' cleaned records (committed once); their count."""
        if plan is None:
            return 0
        records = carried_run(ctx.run, plan).read_records("clean")
        if CARRIED_KEY not in out.done:
            out.commit(records, [], [CARRIED_KEY])
        return len(records)

    def _figures(
        self, ctx: Context, out: ShardLog, model_id: str, generators: dict[str, Any], carried: int, seconds: float
    ) -> GenerateFigures:
        """The stage's figures: tokens, speed, parse failures and rejections, diversity, and each generator's own."""
        seed = ctx.recipe.generation.sampling.seed
        info = ctx.run.stage_info(self.name)
        total_seconds = (info.seconds if info else 0.0) + seconds
        stats = out.stats  # summed over every attempt at this stage, interrupted ones included
        usage = {
            k: stats.get(k, 0)
            for k in ("requests", "cached", "prompt_tokens", "prompt_tokens_reused", "completion_tokens")
        }
        table = ctx.run.read_table(self.name, columns=["lineage"])
        rejected = ctx.run.read_table(self.name, rejected=True, columns=["lineage", "reject_operator", "reject_reason"])
        names = _generators(table)
        spent: Counter[str] = Counter()  # tokens each generator's items took, kept and rejected, cached or not
        for part in (table, rejected):
            for name, tokens in zip(_generators(part), _tokens(part)):
                spent[name] += tokens
        reasons: dict[str, Counter[str]] = {}
        for op, reason in zip(
            rejected.column("reject_operator").to_pylist(), rejected.column("reject_reason").to_pylist()
        ):
            reasons.setdefault(op, Counter())[reason_kind(reason)] += 1
        for name, figures in generators.items():
            figures["rejected_by_reason"] = dict(reasons.get(name, Counter()).most_common())
            mine = [i for i, n in enumerate(names) if n == name]
            figures["diversity"] = diversity(_first_turns(ctx.run, mine, seed), seed)
            figures["tokens_per_record"] = round(spent[name] / len(mine), 1) if mine else None
        made = out.counts["records"] - carried
        return GenerateFigures.model_validate(
            {
                "model": model_id,
                "usage": usage,
                "completion_tokens_per_s": round(usage["completion_tokens"] / total_seconds, 1)
                if total_seconds
                else 0.0,
                "parse_failures": {k[5:]: v for k, v in stats.most_common() if k.startswith("fail:")},
                "rejected_by_reason": dict(sum(reasons.values(), Counter()).most_common()),
                "acceptance_rate": round(made / max(1, made + out.counts["rejected"]), 3),
                "diversity": diversity(_first_turns(ctx.run, range(table.num_rows), seed), seed),
                "generators": generators,
                "audiences": self._audiences(ctx, seed),
            }
        )

    @staticmethod
    def _audiences(ctx: Context, seed: int) -> dict[str, Any]:
        """Figures per audience, from a seeded sample of the records (when the recipe names audiences or genres)."""
        task = ctx.recipe.task
        if not task.audiences and not task.genres:
            return {}
        total = ctx.run.read_table("generate", columns=["id"]).num_rows
        chosen = set(range(total))
        if total > DIVERSITY_SAMPLE:  # choose the rows first: only theirs become Python objects
            chosen = set(random.Random(seed).sample(range(total), DIVERSITY_SAMPLE))
        rows, start = [], 0
        for table in ctx.run.iter_tables("generate", columns=["messages", "lineage"]):
            local = [i - start for i in range(start, start + table.num_rows) if i in chosen]
            start += table.num_rows
            if not local:
                continue
            picked = table.take(pa.array(local, pa.int64()))
            for msgs, lineage in zip(picked.column("messages").to_pylist(), picked.column("lineage").to_pylist()):
                lineage = lineage or {}
                user = next((m["content"] for m in msgs if m["role"] == "user"), "")
                reply = next((m["content"] for m in reversed(msgs) if m["role"] == "assistant"), "")
                rows.append((lineage.get("audience"), lineage.get("genre"), user, reply))
        return audience_figures(rows, asked_levels(task), task.language, seed)
