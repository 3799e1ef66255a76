"""`dialogue`: multi-turn conversations grounded in the documents (e.g. customer service over a product's FAQ or manual).

Each conversation starts from a passage (in rank order) and a persona (drawn in turn, seeded): the model, playing
the user, states a goal and a first message. Then, turn by turn, the assistant answers from the passages BM25
retrieves for the user's last message (the starting passage first), and the user either says the goal is met
(DONE) or asks a follow-up, up to `turns` user turns. An assistant turn must be supported by its passages
(`constraints.min_support` of its content words occur in them, and every number it states is in them) or it is
asked again; a conversation whose first
answer never passes is rejected, a later failure ends the conversation at the last good turn.

Conversations advance together, one turn per wave step, in cohorts of `batch`; a cohort is one committed wave.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field

from sftforge.config import Audience, Constraints, GeneratorConfig
from sftforge.generate.answer_check import ResponsivenessCheck
from sftforge.generate.base import (
    Ask,
    TemplateStep,
    Wave,
    WorkItem,
    chat_from_template,
    register,
)
from sftforge.generate.parsing import ParseError, check_language, first_paragraph, parse_fields, strip_quotes
from sftforge.generate.records import DriverGenerator, InstructionRecords, answer_problem
from sftforge.lib.grounding import support
from sftforge.lib.novelty import rouge_l_f, rouge_tokens
from sftforge.sample import AnswerCheck, SourceRef
from sftforge.sources.chunking import Passage
from sftforge.sources.retrieval import BM25Index


class DialogueConfig(GeneratorConfig):
    """Multi-turn conversations over the documents: a persona with a goal asks, the assistant answers from passages."""

    name: Literal["dialogue"] = "dialogue"
    turns: int = Field(
        3, ge=1, le=12, description="Most user turns; a conversation stops earlier when the goal is met."
    )
    personas: list[str] = Field(
        default_factory=lambda: [
            "a new customer who has just bought the product",
            "an experienced user who wants to solve a specific problem",
            "a busy manager deciding whether the product fits their team",
        ],
        min_length=1,
        description="User personas, drawn in turn (seeded); default, when task.audiences is set: the audiences' "
        "descriptions (each conversation's lineage names its audience).",
    )
    retrieve: int = Field(2, ge=1, le=8, description="Passages retrieved (BM25) for each assistant turn.")


START_LABELS: dict[str, tuple[str, ...]] = {"goal": ("goal", "目标"), "message": ("message", "消息")}
_DONE = re.compile(r"^\W*(done|完成)\W*$", re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# The user prompt's own words coming back as the user's message.
_ECHO = re.compile(
    r"next message|your goal|customer support|first message|sentence:|下一条消息|你的目标|第一条消息", re.IGNORECASE
)


def check_user_message(text: str, grounds: str, lang: str, constraints: Constraints) -> None:
    """A user turn must be a message of sensible length in the task's language, about the documentation
    (`min_question_support` of its content words occur in `grounds`), and not the prompt's words echoed."""
    if not constraints.min_question_chars <= len(text) <= constraints.max_question_chars:
        raise ParseError("the user message is too short or too long")
    check_language(text, lang)
    if _ECHO.search(text):
        raise ParseError("the user message echoes the prompt")
    score = support(grounds, text)
    if score < constraints.min_question_support:
        raise ParseError(f"the user message is not about the documentation (support {score:.2f})")


@dataclass
class Conversation:
    key: str
    passage: Passage
    persona: str
    audience: str | None = None  # the task.audiences name the persona is, if it is one
    goal: str = ""
    turns: list[tuple[str, str]] = field(default_factory=list)  # (user|assistant, text)
    used: list[Passage] = field(default_factory=list)  # passages shown to the assistant, first use first
    supports: list[float] = field(default_factory=list)
    goal_met: bool = False
    ended: str = ""  # why it stopped
    failed: list[tuple[str, str]] = field(default_factory=list)  # the turns that failed, kept for rejected/
    tokens: list[int] = field(default_factory=lambda: [0, 0, 0])  # prompt, completion, requests


class StartStep(TemplateStep):
    def __init__(self, lang: str, constraints: Constraints) -> None:
        super().__init__("dialogue", lang, "dialogue_start")
        self.constraints = constraints

    def prompt(self, item: WorkItem) -> list[dict[str, str]]:
        c: Conversation = item.payload
        return chat_from_template(self._template, persona=c.persona, passage=c.passage.text)

    def parse(self, item: WorkItem, output: str) -> tuple[str, str]:
        fields = parse_fields("Goal: " + output if self.lang == "en" else "目标：" + output, START_LABELS)
        goal = first_paragraph(fields.get("goal", ""))
        message = strip_quotes(first_paragraph(fields.get("message", "")))
        if not goal or not message:
            raise ParseError("expected a goal and a first message")
        check_user_message(message, item.payload.passage.text, self.lang, self.constraints)
        return goal, message


class AssistantStep(TemplateStep):
    def __init__(self, lang: str, constraints: Constraints) -> None:
        super().__init__("dialogue", lang, "dialogue_assistant")
        self.constraints = constraints
        checked = constraints.responsiveness
        # With the check on, each answer must answer the user's message: among its passages' sentences, the one
        # behind the answer must rank first as the answer to that message (asked again up to `candidates` times).
        self.responsiveness = ResponsivenessCheck(checked, lang) if checked.enabled else None
        if self.responsiveness is not None:
            self.attempts = checked.candidates

    def prompt(self, item: WorkItem) -> list[dict[str, str]]:
        conv, passages = item.payload
        system = self._template.render_block("system", passages=[p.text for p in passages])
        return [{"role": "system", "content": system}] + [{"role": r, "content": t} for r, t in conv.turns]

    def parse(self, item: WorkItem, output: str) -> tuple[str, float]:
        _, passages = item.payload
        answer = first_paragraph(output)
        problem = answer_problem(answer, self.constraints.max_answer_chars)
        if problem:
            raise ParseError(problem)
        check_language(answer, self.lang)
        grounds = "\n".join(p.text for p in passages)
        invented = [n for n in _NUMBER.findall(answer) if n not in _NUMBER.findall(grounds)]
        if invented:
            raise ParseError(f"the answer states a number its passages do not have ({invented[0]})")
        score = support(grounds, answer)
        if score < self.constraints.min_support:
            raise ParseError(
                f"the answer is not supported by its passages (support {score:.2f} < {self.constraints.min_support})"
            )
        if self.responsiveness is not None:
            conv, _ = item.payload
            question = conv.turns[-1][1]  # the user message being answered
            score = min(
                score, self.responsiveness.check("\n\n".join(p.text for p in passages), question, answer, None).score
            )
        return answer, score


class UserStep(TemplateStep):
    def __init__(self, lang: str, constraints: Constraints) -> None:
        super().__init__("dialogue", lang, "dialogue_user")
        self.constraints = constraints

    def prompt(self, item: WorkItem) -> list[dict[str, str]]:
        c: Conversation = item.payload
        return chat_from_template(self._template, persona=c.persona, goal=c.goal, turns=c.turns)

    def parse(self, item: WorkItem, output: str) -> str | None:
        """The next user message, or None when the user says the goal is met."""
        c: Conversation = item.payload
        text = strip_quotes(first_paragraph(output))
        if _DONE.match(text) or text.upper().startswith("DONE"):
            return None
        text = re.sub(r"^(you|customer|user|你|顾客)\s*[:：]\s*", "", text, flags=re.IGNORECASE)
        check_user_message(text, "\n".join([c.passage.text] + [p.text for p in c.used]), self.lang, self.constraints)
        mine = rouge_tokens(text)
        for role, earlier in c.turns:
            if rouge_l_f(mine, rouge_tokens(earlier)) > 0.7:
                raise ParseError(f"the user message repeats an earlier {role} turn")
        return text


class DialogueDriver:
    """Cohorts of conversations advanced turn by turn; a cohort is one wave."""

    name = "dialogue"

    def __init__(
        self,
        cfg: DialogueConfig,
        lang: str,
        records: InstructionRecords,
        constraints: Constraints,
        passages: list[Passage],
        audiences: list[Audience] | None = None,
    ) -> None:
        self.cfg = cfg
        self.audiences = audiences or []
        self.records = records
        self.passages = passages
        self.index = BM25Index([p.text for p in passages], lang)
        self.start = StartStep(lang, constraints)
        self.assistant = AssistantStep(lang, constraints)
        self.user = UserStep(lang, constraints)
        self.figures: dict = {"conversations": 0, "goal_met": 0, "user_turns": {}}

    @property
    def cast(self) -> list[tuple[str, str | None]]:
        """(persona, audience name) of every persona to draw: the recipe's audiences unless the dialogue entry
        names its own personas."""
        if self.audiences and "personas" not in self.cfg.model_fields_set:
            return [(a.description, a.name) for a in self.audiences]
        return [(p, None) for p in self.cfg.personas]

    def _retrieve(self, c: Conversation) -> list[Passage]:
        query = c.turns[-1][1]
        found = [c.passage] + [self.passages[i] for i in self.index.top(query, self.cfg.retrieve)]
        return list({p.chunk_id: p for p in found}.values())[: self.cfg.retrieve]

    @staticmethod
    def _spent(c: Conversation, a) -> None:
        c.tokens[0] += a.prompt_tokens
        c.tokens[1] += a.completion_tokens
        c.tokens[2] += a.attempt + 1

    def run(self, ask: Ask, count: int, seed: int, batch: int = 16) -> Iterator[Wave]:
        rng = random.Random(seed)
        personas = rng.sample(self.cast, len(self.cast))
        made = 0
        start = cohort = 0
        while start < len(self.passages) and made < count:
            size = min(batch, 2 * (count - made))  # about what is still needed
            convs = [
                Conversation(f"dialogue:{i}", p, *personas[i % len(personas)])
                for i, p in enumerate(self.passages[start : start + size], start)
            ]
            start += size
            cohort += 1
            wave = Wave([f"dialogue:cohort{cohort}"])
            live = []
            for c, a in zip(convs, ask(self.start, [WorkItem(c.key + ":start", c) for c in convs])):
                self._spent(c, a)
                if a.ok:
                    c.goal, message = a.value
                    c.turns.append(("user", message))
                    live.append(c)
                else:
                    wave.rejected.append(
                        self.records.rejected([("user", a.completion.text)], [self._ref(c.passage)], a.error or "")
                    )
            turn = 0
            while live:
                items = []
                for c in live:
                    passages = self._retrieve(c)
                    items.append(WorkItem(f"{c.key}:a{turn}", (c, passages)))
                answered = []
                for c, a in zip(live, ask(self.assistant, items)):
                    self._spent(c, a)
                    if not a.ok:
                        c.ended = f"assistant turn {turn + 1}: {a.error}"
                        c.failed = [
                            c.turns.pop(),
                            ("assistant", a.completion.text),
                        ]  # the user turn left without an answer
                        continue
                    answer, score = a.value
                    c.turns.append(("assistant", answer))
                    c.supports.append(score)
                    for p in a.item.payload[1]:
                        if p not in c.used:
                            c.used.append(p)
                    answered.append(c)
                turn += 1
                asking = [c for c in answered if turn < self.cfg.turns]
                for c in answered:
                    if turn >= self.cfg.turns:
                        c.ended = f"reached {self.cfg.turns} user turns"
                live = []
                for c, a in zip(asking, ask(self.user, [WorkItem(f"{c.key}:u{turn}", c) for c in asking])):
                    self._spent(c, a)
                    if not a.ok:
                        c.ended = f"user turn {turn + 1}: {a.error}"
                    elif a.value is None:
                        c.goal_met, c.ended = True, "the user said the goal is met"
                    else:
                        c.turns.append(("user", a.value))
                        live.append(c)
            for c in convs:
                if c.goal:
                    made += self._finish(wave, c, keep=made < count)
            yield wave

    @staticmethod
    def _ref(p: Passage) -> SourceRef:
        return SourceRef("chunk", p.chunk_id, p.doc_id, p.start, p.end, p.page)

    def _finish(self, wave: Wave, c: Conversation, keep: bool) -> int:
        """Record a finished conversation (1), or its rejection (0); one past the share (`keep` false) is dropped
        uncounted, so the figures describe the records the stage keeps."""
        source = [self._ref(p) for p in (c.used or [c.passage])]
        n_user = sum(r == "user" for r, _ in c.turns)
        if not any(r == "assistant" for r, _ in c.turns):
            wave.rejected.append(self.records.rejected(c.turns + c.failed, source, f"goal: {c.goal} | {c.ended}"))
            return 0
        if not keep:
            return 0
        self.figures["conversations"] += 1
        self.figures["goal_met"] += int(c.goal_met)
        self.figures["user_turns"][str(n_user)] = self.figures["user_turns"].get(str(n_user), 0) + 1
        s = self.start
        lineage = self.records.lineage()
        lineage.audience = c.audience
        lineage.template, lineage.template_hash = s.template.name, s.template.hash
        lineage.attempts, lineage.prompt_tokens, lineage.completion_tokens = c.tokens[2], c.tokens[0], c.tokens[1]
        record = self.records.record(c.turns, source, lineage)
        # every assistant turn passed its checks; the score is the weakest turn's (support, or the round trip's)
        method = "overlap" if self.assistant.responsiveness is None else "responsiveness"
        record.answer_check = AnswerCheck(
            method, True, min(c.supports), f"goal: {c.goal} | {n_user} user turns; {c.ended}"
        )
        wave.records.append(record)
        return 1


@register
class Dialogue(DriverGenerator):
    """Multi-turn conversations over the documents: a persona with a goal asks, the assistant answers from passages."""

    name = "dialogue"
    Config = DialogueConfig
    config: DialogueConfig
    tasks = {
        "dialogue": "multi-turn conversations grounded in the documents (a user persona with a goal, an "
        "assistant answering from retrieved passages)"
    }
    default_for = ("dialogue",)
    requires = ("documents",)

    @classmethod
    def notes(cls, figures: dict[str, Any]) -> str:
        return (
            f"goal met in {figures.get('goal_met', 0)} of {figures.get('conversations', 0)}; "
            f"user turns {figures.get('user_turns', {})}"
        )

    def driver(self, records: InstructionRecords) -> DialogueDriver:
        task = self.job.task
        return DialogueDriver(
            self.config, task.language, records, task.constraints, self.job.passages(), task.audiences
        )
