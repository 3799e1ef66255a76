"""`paraphrase`: new instructions from ones you have, reworded so that their answers still fit. Each pool member (by
default the most relevant examples of `sources.datasets`; or the seed tasks) has its instruction reworded by the
LLM, and the reworded instruction is paired with the member's own answer, the member named as the parent in
lineage.

The answer is kept, so the rewording must keep the meaning: it is rejected, with the figure, when its MiniLM
cosine to the original is below `min_similarity` (the meaning drifted) or its ROUGE-L F to it is above
`max_rouge` (hardly reworded), or when it is not in the task's language.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from sftforge.config import PoolConfig
from sftforge.generate.base import Ask, TemplateStep, Wave, WorkItem, chat_from_template, lineage_of, register
from sftforge.generate.parsing import ParseError, check_language, first_paragraph, strip_quotes
from sftforge.generate.records import DriverGenerator, InstructionRecords, instruction_text
from sftforge.lib.embed import LazyEmbedder
from sftforge.lib.novelty import rouge_l_f, rouge_tokens
from sftforge.sample import SourceRef
from sftforge.sources.seeds import SeedTask


class ParaphraseConfig(PoolConfig):
    """Reword found (or seed) instructions, keeping their answers."""

    name: Literal["paraphrase"] = "paraphrase"
    pool: Literal["seeds", "datasets"] = Field(
        "datasets", description="datasets: the most relevant examples of sources.datasets; seeds: sources.seeds."
    )
    min_similarity: float = Field(
        0.75, ge=-1, le=1, description="A rewording whose MiniLM cosine to the original is below this is rejected."
    )
    max_rouge: float = Field(
        0.8, gt=0, le=1, description="A rewording whose ROUGE-L F to the original is above this is rejected."
    )
    batch: int = Field(16, ge=1, le=256, description="Instructions reworded per wave.")


class RewordStep(TemplateStep):
    def __init__(self, lang: str) -> None:
        super().__init__("paraphrase", lang, "paraphrase")

    def prompt(self, item: WorkItem) -> list[dict[str, str]]:
        return chat_from_template(self._template, instruction=item.payload.instruction)

    def parse(self, item: WorkItem, output: str) -> str:
        text = strip_quotes(first_paragraph(output))
        if not text:
            raise ParseError("no reworded instruction")
        check_language(text, self.lang)
        return text


class ParaphraseDriver:
    name = "paraphrase"

    def __init__(self, cfg: ParaphraseConfig, pool: list[SeedTask], lang: str, records: InstructionRecords) -> None:
        self.cfg = cfg
        self.pool = [s for s in pool if s.instances]  # a member without an answer has nothing to keep
        self.records = records
        self.step = RewordStep(lang)
        self.embedder = LazyEmbedder(None)
        self.figures: dict[str, Any] = {"pool": len(self.pool), "reworded": 0, "drifted": 0, "copied": 0}

    def problem(self, original: str, reworded: str) -> str | None:
        """Why a rewording cannot take the original's answer, or None."""
        rouge = rouge_l_f(rouge_tokens(original), rouge_tokens(reworded))
        if rouge > self.cfg.max_rouge:
            self.figures["copied"] += 1
            return f"hardly reworded: ROUGE-L {rouge:.2f} above {self.cfg.max_rouge}"
        a, b = self.embedder.encode([original, reworded])
        cosine = float(a @ b)
        if cosine < self.cfg.min_similarity:
            self.figures["drifted"] += 1
            return f"the meaning drifted: MiniLM cosine {cosine:.2f} below {self.cfg.min_similarity}"
        return None

    def run(self, ask: Ask, count: int, seed: int) -> Iterator[Wave]:
        order = random.Random(seed).sample(self.pool, len(self.pool))
        made = 0
        for start in range(0, len(order), self.cfg.batch):
            if made >= count:
                return
            members = order[start : start + self.cfg.batch]
            wave = Wave([f"paraphrase:{start}"])
            items = [WorkItem(f"paraphrase:{m.id}", m) for m in members]
            for member, a in zip(members, ask(self.step, items)):
                source = [SourceRef(member.kind, member.id)]
                input_, output = member.instances[0]
                if not a.ok:
                    turns = [("user", a.completion.text)]
                    wave.rejected.append(self.records.rejected(turns, source, a.error or "", [member.id]))
                    continue
                turns = [("user", instruction_text(a.value, input_)), ("assistant", output)]
                reason = self.problem(member.instruction, a.value)
                if reason:
                    wave.rejected.append(self.records.rejected(turns, source, reason, [member.id]))
                    continue
                lineage = lineage_of(a, self.step, self.records.model_id, parents=[member.id])
                wave.records.append(self.records.record(turns, source, lineage))
                self.figures["reworded"] += 1
                made += 1
            yield wave


@register
class Paraphrase(DriverGenerator):
    """Reword found (or seed) instructions, keeping their answers."""

    name = "paraphrase"
    Config = ParaphraseConfig
    config: ParaphraseConfig
    tasks = {}
    any_task = True
    requires = ("seeds",)

    @classmethod
    def notes(cls, figures: dict[str, Any]) -> str:
        return (
            f"{figures.get('reworded', 0)} of a pool of {figures.get('pool', 0)} reworded; rejected: "
            f"{figures.get('drifted', 0)} drifted in meaning, {figures.get('copied', 0)} hardly reworded"
        )

    def driver(self, records: InstructionRecords) -> ParaphraseDriver:
        pool = self.job.pool(self.config.pool, self.config.pool_size)
        return ParaphraseDriver(self.config, pool, self.job.task.language, records)
