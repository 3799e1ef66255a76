"""Evol-Instruct (Xu et al. 2023, arXiv 2304.12244): make instructions harder, epoch by epoch.

The pool starts as seed instructions (with their first input). In each epoch every pool instruction is rewritten
by one operation drawn from the recipe's: in depth (add constraints, deepening, concretizing, increase reasoning
steps, complicate the input) or in breadth (a new instruction of the same domain, rarer). The model then answers
the rewritten instruction. An evolution is eliminated, and its parent stays in the pool for the next epoch, when:

1. it brings no information gain: it adds no content word to its parent (the paper asks ChatGPT to judge; a
   lexical test is what a small model allows, and it is exact for the common failure, a copy);
2. the answer is a short apology (the model found it too hard to answer);
3. the answer holds only punctuation and stop words;
4. it copies the prompt's scaffolding ("given prompt", "rewritten prompt", ...).

A surviving evolution replaces its parent in the pool and becomes a record whose lineage names its parent.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from sftforge.config import PoolConfig
from sftforge.generate.base import (
    Ask,
    TemplateStep,
    Wave,
    WorkItem,
    chat_from_template,
    lineage_of,
    register,
)
from sftforge.generate.parsing import ParseError, check_language, first_paragraph, strip_quotes
from sftforge.generate.records import (
    INSTRUCTION_TASK,
    AnswerStep,
    DriverGenerator,
    InstructionRecords,
    instruction_text,
)
from sftforge.lib.grounding import content_stems
from sftforge.sample import SourceRef
from sftforge.sources.seeds import SeedTask

EVOL_OPERATIONS = ("add_constraints", "deepening", "concretizing", "increase_reasoning", "complicate_input", "breadth")


class EvolInstructConfig(PoolConfig):
    """Evol-Instruct (Xu et al. 2023): rewrite instructions in depth and in breadth over epochs, then answer them."""

    name: Literal["evol_instruct"] = "evol_instruct"
    epochs: int = Field(2, ge=1, le=10, description="Evolution rounds over the pool (the paper ran 4).")
    operations: list[Literal[EVOL_OPERATIONS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(EVOL_OPERATIONS),
        min_length=1,
        description="Evolutions drawn from, uniformly: the five in-depth ones and in-breadth mutation.",
    )


SCAFFOLDING = (
    "given prompt",
    "rewritten prompt",
    "created prompt",
    "new prompt:",
    "#",
    "原指令",
    "改写后的指令",
    "新指令",
)


def elimination(parent: str, child: str) -> str | None:
    """Rules 1 and 4 on an evolved instruction (rules 2 and 3 judge its answer: `common.answer_problem`)."""
    low = child.lower()
    copied = next((s for s in SCAFFOLDING if s in low), None)
    if copied:
        return f"eliminated: copies the prompt's scaffolding ({copied!r})"
    if not (content_stems(child) - content_stems(parent)):
        return "eliminated: no information gain over its parent (no new content word)"
    return None


@dataclass(frozen=True, slots=True)
class Member:
    """An instruction in the evolution pool: its text, its id (seed id or record id), its root seed."""

    text: str
    id: str
    seed: str
    depth: int = 0  # evolutions from the seed
    kind: str = "seed"  # the SourceRef kind of `seed` (an imported example is a "record")


class EvolveStep(TemplateStep):
    def __init__(self, lang: str) -> None:
        super().__init__("evol_instruct", lang, "evol_instruct")

    def prompt(self, item: WorkItem) -> list[dict[str, str]]:
        member, operation = item.payload
        return chat_from_template(self._template, instruction=member.text, operation=operation)

    def parse(self, item: WorkItem, output: str) -> str:
        text = strip_quotes(first_paragraph(output))
        if not text:
            raise ParseError("no rewritten instruction")
        check_language(text, self.lang)
        return text


class EvolInstructDriver:
    """The evolution algorithm; yields one wave per batch of pool members evolved and answered."""

    name = "evol_instruct"

    def __init__(
        self,
        cfg: EvolInstructConfig,
        seeds: list[SeedTask],
        lang: str,
        records: InstructionRecords,
        max_answer_chars: int,
    ) -> None:
        self.cfg = cfg
        self.seeds = seeds
        self.records = records
        self.evolve = EvolveStep(lang)
        self.answer = AnswerStep("evol_instruct", lang, max_answer_chars, records.system_prompt)
        self.figures: dict = {"epochs": 0, "evolved": 0, "eliminated": 0, "by_operation": {}}

    def run(self, ask: Ask, count: int, seed: int, batch: int = 16) -> Iterator[Wave]:
        rng = random.Random(seed)
        order = rng.sample(self.seeds, len(self.seeds))
        size = min(len(order), max(1, math.ceil(2 * count / self.cfg.epochs)))
        pool = [
            Member(instruction_text(s.instruction, s.instances[0][0] if s.instances else ""), s.id, s.id, kind=s.kind)
            for s in order[:size]
        ]
        made = 0
        tried: Counter[str] = Counter()
        kept: Counter[str] = Counter()
        for epoch in range(self.cfg.epochs):
            self.figures["epochs"] = epoch + 1
            start = 0
            while start < len(pool):
                idx = list(
                    range(start, min(start + batch, start + 2 * (count - made), len(pool)))
                )  # about what is still needed
                start = idx[-1] + 1
                items = [
                    WorkItem(f"evol_instruct:{epoch}:{i}", (pool[i], rng.choice(self.cfg.operations))) for i in idx
                ]
                wave = Wave([f"evol_instruct:{epoch}:{idx[0]}"])
                evolved = ask(self.evolve, items)
                alive = []
                for i, a in zip(idx, evolved):
                    member, op = a.item.payload
                    tried[op] += 1
                    source = [SourceRef(member.kind, member.seed)]
                    reason = a.error if not a.ok else elimination(member.text, a.value)
                    if reason:
                        wave.rejected.append(
                            self.records.rejected(
                                [("user", a.value if a.ok else a.completion.text)], source, reason, parents=[member.id]
                            )
                        )
                        continue
                    alive.append((i, a))
                answers = ask(self.answer, [WorkItem(a.item.key + ":answer", a.value) for _, a in alive])
                for (i, e), a in zip(alive, answers):
                    member, op = e.item.payload
                    source = [SourceRef(member.kind, member.seed)]
                    turns = [("user", e.value), ("assistant", a.value if a.ok else a.completion.text)]
                    if not a.ok:
                        wave.rejected.append(
                            self.records.rejected(turns, source, f"eliminated: {a.error}", parents=[member.id])
                        )
                        continue
                    lineage = lineage_of(a, self.answer, self.records.model_id, parents=[member.id])
                    lineage.template = f"{self.evolve.template.name}:{op}"
                    lineage.template_hash = self.evolve.template.hash
                    lineage.attempts += e.attempt + 1
                    lineage.prompt_tokens += e.prompt_tokens
                    lineage.completion_tokens += e.completion_tokens
                    record = self.records.record(turns, source, lineage)
                    wave.records.append(record)
                    pool[i] = Member(e.value, record.id, member.seed, member.depth + 1, member.kind)
                    kept[op] += 1
                    made += 1
                self.figures["evolved"] += len(wave.records)
                self.figures["eliminated"] += len(wave.rejected)
                self.figures["by_operation"] = {op: {"tried": tried[op], "kept": kept[op]} for op in sorted(tried)}
                self.figures["max_depth"] = max(m.depth for m in pool)  # evolutions in the longest chain
                yield wave
                if made >= count:
                    return


@register
class EvolInstruct(DriverGenerator):
    """Evol-Instruct (Xu et al. 2023): rewrite instructions in depth and in breadth over epochs, then answer them."""

    name = "evol_instruct"
    Config = EvolInstructConfig
    config: EvolInstructConfig
    tasks = {"instruction": INSTRUCTION_TASK}
    requires = ("seeds",)

    @classmethod
    def notes(cls, figures: dict[str, Any]) -> str:
        return (
            f"{figures.get('evolved', 0)} evolutions kept, {figures.get('eliminated', 0)} eliminated over "
            f"{figures.get('epochs', 0)} epochs"
        )

    def driver(self, records: InstructionRecords) -> EvolInstructDriver:
        task = self.job.task
        return EvolInstructDriver(
            self.config,
            self.job.pool(self.config.pool, self.config.pool_size),
            task.language,
            records,
            task.constraints.max_answer_chars,
        )
