"""Magpie (Xu et al. 2024, arXiv 2406.08464): an aligned chat model, given only its chat template up to the user's
header (the pre-query template), writes a plausible user query; asked again, it answers it.

The pre-query request is an empty last user message (`llm.base.is_pre_query`); the llamacpp and transformers
backends render it from the model's own template. A query is kept when it is in the task's language, within the
question length bounds, looks finished (not cut at max_tokens), and is not a near-copy (ROUGE-L F above the
threshold) of an earlier query: at low temperature the model repeats its favourite queries.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from sftforge.config import Constraints, GeneratorConfig
from sftforge.generate.base import Ask, TemplateStep, Wave, WorkItem, lineage_of, register
from sftforge.generate.parsing import ParseError, check_language
from sftforge.generate.records import INSTRUCTION_TASK, AnswerStep, DriverGenerator, InstructionRecords
from sftforge.lib.novelty import NoveltyIndex

if TYPE_CHECKING:
    from sftforge.recipe import Recipe

_FINISHED = re.compile(r"[.?!。？！)）\"”'`:：]\s*$")
_ASSISTANT_START = re.compile(r"^(sure|certainly|of course|here is|here's|as an ai|好的|当然)\b", re.IGNORECASE)


class MagpieConfig(GeneratorConfig):
    """Magpie (Xu et al. 2024): the chat model writes a user query from the pre-query template alone, then answers it."""

    name: Literal["magpie"] = "magpie"
    system_prompt: str | None = Field(
        None, description="A system message before the pre-query template; default: the template's own."
    )
    rouge_threshold: float = Field(
        0.7, gt=0, le=1, description="Queries this similar (ROUGE-L F) to an earlier one are rejected."
    )
    batch: int = Field(16, ge=1, le=256, description="Queries per wave.")


class QueryStep(TemplateStep):
    """The pre-query request; parse checks that the output is one finished user query. The request is the model's
    own chat template up to the user's header, not a prompt template; the answer template is what lineage names."""

    def __init__(self, lang: str, system_prompt: str | None, constraints: Constraints) -> None:
        super().__init__("magpie", lang, "answer")
        self.system_prompt = system_prompt
        self.constraints = constraints

    def prompt(self, item: WorkItem) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return messages + [{"role": "user", "content": ""}]

    def parse(self, item: WorkItem, output: str) -> str:
        query = output.strip()
        c = self.constraints
        if len(query) < c.min_question_chars:
            raise ParseError("the query is empty or too short")
        if len(query) > c.max_question_chars:
            raise ParseError(f"the query is longer than {c.max_question_chars} characters")
        if not _FINISHED.search(query):
            raise ParseError("the query looks cut off (no final punctuation)")
        if _ASSISTANT_START.match(query):
            raise ParseError("the model wrote an assistant reply, not a user query")
        check_language(query, self.lang)
        return query


class MagpieDriver:
    """Waves of pre-query requests, the novel queries answered."""

    name = "magpie"

    def __init__(self, cfg: MagpieConfig, lang: str, records: InstructionRecords, constraints: Constraints) -> None:
        self.cfg = cfg
        self.records = records
        self.query = QueryStep(lang, cfg.system_prompt, constraints)
        self.answer = AnswerStep("magpie", lang, constraints.max_answer_chars, records.system_prompt)
        self.figures = {"waves": 0, "queries": 0, "not_novel": 0}

    def run(self, ask: Ask, count: int, seed: int) -> Iterator[Wave]:
        index = NoveltyIndex(self.cfg.rouge_threshold)
        made = fruitless = 0
        while made < count and fruitless < 5:
            w = self.figures["waves"]
            wave = Wave([f"magpie:wave{w}"])
            fresh = []
            size = min(self.cfg.batch, 2 * (count - made))  # about what is still needed
            for a in ask(self.query, [WorkItem(f"magpie:{w}:{j}", None) for j in range(size)]):
                if not a.ok:
                    wave.rejected.append(self.records.rejected([("user", a.completion.text)], [], a.error or ""))
                    continue
                self.figures["queries"] += 1
                novelty = index.check_and_add(a.value)
                if not novelty.novel:
                    self.figures["not_novel"] += 1
                    reason = f"ROUGE-L {novelty.score:.2f} against an earlier query {index.texts[novelty.match]!r}"
                    wave.rejected.append(self.records.rejected([("user", a.value)], [], reason))
                    continue
                fresh.append(a)
            answers = ask(self.answer, [WorkItem(q.item.key + ":answer", q.value) for q in fresh])
            for q, a in zip(fresh, answers):
                turns = [("user", q.value), ("assistant", a.value if a.ok else a.completion.text)]
                if not a.ok:
                    wave.rejected.append(self.records.rejected(turns, [], a.error or ""))
                    continue
                lineage = lineage_of(a, self.answer, self.records.model_id)
                lineage.attempts += q.attempt + 1
                lineage.prompt_tokens += q.prompt_tokens
                lineage.completion_tokens += q.completion_tokens
                wave.records.append(self.records.record(turns, [], lineage))
                made += 1
            fruitless = fruitless + 1 if not wave.records else 0
            self.figures["waves"] += 1
            yield wave


@register
class Magpie(DriverGenerator):
    """Magpie (Xu et al. 2024): the chat model writes a user query from the pre-query template alone, then answers it."""

    name = "magpie"
    Config = MagpieConfig
    config: MagpieConfig
    tasks = {"instruction": INSTRUCTION_TASK}

    @classmethod
    def check(cls, config: GeneratorConfig, recipe: Recipe) -> str | None:
        if recipe.generation.model.backend == "openai":
            return (
                "generator magpie needs the model's chat template (its pre-query form), which a chat server does "
                "not expose: use the llamacpp or transformers backend"
            )
        return None

    @classmethod
    def notes(cls, figures: dict[str, Any]) -> str:
        return f"{figures.get('queries', 0)} queries, {figures.get('not_novel', 0)} near-copies"

    def driver(self, records: InstructionRecords) -> MagpieDriver:
        return MagpieDriver(self.config, self.job.task.language, records, self.job.task.constraints)
