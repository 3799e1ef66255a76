"""The generate stage for instruction and dialogue tasks: run each of the recipe's generators for its share of
target_count, committing one wave at a time.

Drivers (generate/instruct/) are deterministic given their seed and the LLM's answers, so resume replays them: a
wave whose key is in the ledger is not committed again, and its answers come from the response cache (free), so
the pool, the evolution chains and the VAE's training texts are the same as in the interrupted run. That needs
the cache (a resume without it is refused) and, for the VAE, the same torch thread count.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

from sftforge.errors import StageError
from sftforge.generate.base import Step, WorkItem, templates_hash
from sftforge.generate.diversity import diversity
from sftforge.generate.grounded import Passage
from sftforge.generate.instruct.common import InstructionRecords, Wave
from sftforge.generate.instruct.dialogue import Dialogue
from sftforge.generate.instruct.evol_instruct import EvolInstruct
from sftforge.generate.instruct.magpie import Magpie
from sftforge.generate.instruct.self_instruct import SelfInstruct
from sftforge.generate.instruct.vae_augment import VAEAugment
from sftforge.llm import open_llm
from sftforge.llm.base import LLM
from sftforge.recipe import Recipe
from sftforge.run import ShardLog
from sftforge.sample import SourceRef
from sftforge.sources.seeds import SeedTask, load_seeds
from sftforge.stages.base import Context
from sftforge.stages.llm_runner import Answer, ask

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


def instruct_config(recipe: Recipe) -> dict[str, Any]:
    """What an instruction or dialogue generate stage's output depends on."""
    gen = recipe.generation
    cfg: dict[str, Any] = {
        "task": recipe.task.model_dump(), "generators": [g.model_dump() for g in recipe.generators],
        "model": gen.model.model_dump(), "sampling": gen.sampling.model_dump(), "max_attempts": gen.max_attempts,
        "templates": templates_hash(recipe.task.language),
    }
    if recipe.sources.seeds is not None:  # the sources stage has checked that it is a file
        path = recipe.resolve(recipe.sources.seeds.path)
        cfg["seeds"] = [str(path), path.stat().st_size, path.stat().st_mtime_ns]
    return cfg


def _seeds(recipe: Recipe) -> list[SeedTask]:
    return load_seeds(recipe.resolve(recipe.sources.seeds.path)) if recipe.sources.seeds else []


def _waves(recipe: Recipe, entry: Any, count: int, llm: LLM, records: InstructionRecords, seeds: list[SeedTask],
           at_hand: dict[str, SourceRef], passages: list[Passage], stats: Counter[str]) -> tuple[Any, Iterator[Wave]]:
    """The driver of one generator entry and its waves."""
    task = recipe.task
    c = task.constraints
    sampling = entry.sampling.over(recipe.generation.sampling)

    def ask_step(step: Step, items: list[WorkItem]) -> list[Answer]:
        return ask(llm, step, items, recipe.generation, sampling, stats)

    seed = sampling.seed
    if entry.name == "self_instruct":
        driver: Any = SelfInstruct(entry, seeds, task.language, records, c.max_answer_chars)
        return driver, driver.run(ask_step, count, seed)
    if entry.name == "evol_instruct":
        driver = EvolInstruct(entry, seeds, task.language, records, c.max_answer_chars)
        return driver, driver.run(ask_step, count, seed)
    if entry.name == "magpie":
        driver = Magpie(entry, task.language, records, c)
        return driver, driver.run(ask_step, count, seed)
    if entry.name == "vae":
        driver = VAEAugment(entry, task.language, records, c.max_answer_chars)
        return driver, driver.run(ask_step, count, seed, dict(at_hand))
    driver = Dialogue(entry, task.language, records, c, passages)
    return driver, driver.run(ask_step, count, seed)


def generate_instructions(ctx: Context, out: ShardLog, passages: list[Passage]) -> tuple[dict[str, int], dict[str, Any]]:
    recipe = ctx.recipe
    gen_cfg = recipe.generation
    if out.done and not gen_cfg.cache:
        raise StageError(
            "generate: resuming instruction or dialogue generators replays their committed waves from the response "
            "cache, and generation.cache is off; turn the cache on, or rerun with --force to start over"
        )
    seeds = _seeds(recipe)
    at_hand: dict[str, SourceRef] = {s.instruction: SourceRef("seed", s.id) for s in seeds}
    targets = shares(recipe.task.target_count, [g.share for g in recipe.generators])
    cache_path = ctx.run.path / "cache" / "llm.sqlite" if gen_cfg.cache else None
    figures: dict[str, Any] = {}
    made: Counter[str] = Counter()
    with open_llm(gen_cfg.model, recipe.resolve("."), cache_path) as llm:
        for entry, count in zip(recipe.generators, targets):
            sampling = entry.sampling.over(gen_cfg.sampling)
            records = InstructionRecords(entry.name, recipe.task.type, recipe.task.language, llm.model_id,
                                         recipe.task.system_prompt, sampling)
            stats: Counter[str] = Counter()
            driver, waves = _waves(recipe, entry, count, llm, records, seeds, at_hand, passages, stats)
            bar = ctx.reporter.task(f"generate: {entry.name}", total=count)
            for wave in waves:
                del wave.records[count - made[entry.name] :]  # a wave may overshoot the share; the driver's choices stand
                for r in wave.records:
                    at_hand.setdefault(r.content("user").split("\n\n")[0], SourceRef("record", r.id))
                made[entry.name] += len(wave.records)
                if wave.key not in out.done:
                    out.commit(wave.records, wave.rejected, [wave.key], dict(stats))
                stats.clear()
                ctx.reporter.advance(bar, n=len(wave.records), accepted=made[entry.name])
            ctx.reporter.done(bar)
            if made[entry.name] < count:
                log.warning("generate: %s made %d of its %d records: its rejections (rejected/generate) say why; "
                            "raise generation.max_attempts, loosen its filters or use a stronger model",
                            entry.name, made[entry.name], count)
            figures[entry.name] = {"target": count, "records": made[entry.name], "sampling": sampling.model_dump()} | driver.figures
        model_id = llm.model_id
    table = ctx.run.read_table("generate")
    users = [[m["content"] for m in msgs if m["role"] == "user"] for msgs in table.column("messages").to_pylist()]
    names = [lin["generator"] for lin in table.column("lineage").to_pylist()]
    rejected = ctx.run.read_table("generate", rejected=True)
    reasons: dict[str, Counter[str]] = {}
    for op, reason in zip(rejected.column("reject_operator").to_pylist(), rejected.column("reject_reason").to_pylist()):
        reasons.setdefault(op, Counter())[_reason_kind(reason)] += 1
    for name in figures:
        figures[name]["rejected_by_reason"] = dict(reasons.get(name, Counter()).most_common())
        figures[name]["diversity"] = diversity([u[0] for u, n in zip(users, names) if n == name and u], gen_cfg.sampling.seed)
    counts = {"records": out.counts["records"], "rejected": out.counts["rejected"]}
    extra = {
        "model": model_id,
        "generators": figures,
        "diversity": diversity([u[0] for u in users if u], gen_cfg.sampling.seed),
        "usage": {k: v for k, v in out.stats.items() if not k.startswith("fail:")},
        "parse_failures": {k[5:]: v for k, v in out.stats.most_common() if k.startswith("fail:")},
        "seed_tasks": len(seeds),
    }
    return counts, extra


def _reason_kind(reason: str) -> str:
    """A rejection reason without its specifics (the quoted text, the score), for counting."""
    for cut in (" against ", " (", ": '", ' ("'):
        if cut in reason:
            reason = reason.split(cut)[0]
    return reason
