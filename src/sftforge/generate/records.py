"""What the instruction and dialogue generators share: the step that answers an instruction, the answer rules
every generated answer must pass, the record layout (`InstructionRecords`, which makes records and rejections with
the generator's lineage), and `DriverGenerator`: a generator whose algorithm is a driver object, testable with a
scripted `ask`."""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from sftforge.config import Sampling
from sftforge.generate.base import Ask, Generator, Session, TemplateStep, Wave, WorkItem, chat_from_template, trim
from sftforge.generate.parsing import ParseError, check_language
from sftforge.lib.text import tokens
from sftforge.sample import Lineage, Record, Rejected, SourceRef, record_id

if TYPE_CHECKING:
    from sftforge.recipe import Task

INSTRUCTION_TASK = (
    "general instructions made by the instruction generators (Self-Instruct, Evol-Instruct, Magpie, "
    "sentence VAE) from `sources.seeds` or from nothing"
)

# Evol-Instruct's elimination rules 2 and 3 hold for every generated answer: a short apology is not an answer, and
# neither is text of punctuation and stop words only.
_SORRY = re.compile(r"\b(sorry|apologi[sz]e|as an ai)\b|抱歉|对不起|很遗憾|作为一个?人工智能", re.IGNORECASE)
STOP_WORDS = frozenset(
    "a an the and or but if of to in on at by for with from as is are was were be been being it its this that these "
    "those i you he she we they me him her us them my your our their what which who whom how when where why not no "
    "yes so do does did have has had can could will would shall should may might must there here all any some".split()
) | frozenset("的了是在和与或就都而及着也很这那我你他她它们吗呢吧啊一个不有")


def answer_problem(answer: str, max_chars: int) -> str | None:
    """Why an answer is not usable, or None."""
    words = tokens(answer)
    if not words:
        return "the answer is empty or only punctuation"
    if all(w in STOP_WORDS for w in words):
        return "the answer holds only punctuation and stop words"
    if _SORRY.search(answer) and len(words) < 80:
        return "the answer is a short apology (the model could not answer)"
    if len(answer) > max_chars:
        return f"the answer is longer than {max_chars} characters"
    return None


class AnswerStep(TemplateStep):
    """Ask the model to answer an instruction (plain chat, under the record's system message if it has one);
    parse checks the answer with `answer_problem`."""

    def __init__(self, name: str, lang: str, max_chars: int, system_prompt: str | None = None) -> None:
        super().__init__(name, lang, "answer")
        self.max_chars = max_chars
        self.system_prompt = system_prompt

    def prompt(self, item: WorkItem) -> list[dict[str, str]]:
        messages = chat_from_template(self._template, instruction=item.payload)  # the instruction's user message
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        return messages

    def parse(self, item: WorkItem, output: str) -> str:
        answer = output.strip()
        problem = answer_problem(answer, self.max_chars)
        if problem:
            raise ParseError(problem)
        check_language(answer, self.lang)
        return answer


class InstructionRecords:
    """Makes the records and rejections of one generator, with its lineage."""

    def __init__(
        self, generator: str, task: str, lang: str, model_id: str, system_prompt: str | None, sampling: Sampling
    ) -> None:
        self.generator = generator
        self.sampling = sampling
        self.task = task
        self.lang = lang
        self.model_id = model_id
        self.system_prompt = system_prompt

    @classmethod
    def of(cls, generator: str, task: Task, session: Session) -> InstructionRecords:
        """The records of `generator` in a session: the task's type, language and system prompt, the model, the
        generator's sampling."""
        return cls(generator, task.type, task.language, session.model.model_id, task.system_prompt, session.sampling)

    def lineage(self, parents: list[str] | None = None) -> Lineage:
        """Lineage for what no single LLM answer made (rejections, whole conversations): the generator's sampling."""
        s = self.sampling
        return Lineage(
            generator=self.generator,
            model=self.model_id,
            temperature=s.temperature,
            top_p=s.top_p,
            max_tokens=s.max_tokens,
            seed=s.seed,
            parents=parents or [],
            round=1,
        )

    def _messages(self, turns: list[tuple[str, str]]) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return messages + [{"role": role, "content": text} for role, text in turns]

    def record(self, turns: list[tuple[str, str]], source: list[SourceRef], lineage: Lineage) -> Record:
        messages = self._messages(turns)
        rid = record_id(messages, source, f"{self.generator}|{lineage.seed}")
        return Record(rid, messages, self.task, self.lang, source, lineage)

    def rejected(
        self, turns: list[tuple[str, str]], source: list[SourceRef], reason: str, parents: list[str] | None = None
    ) -> Rejected:
        return Rejected(self.record(turns, source, self.lineage(parents)), "generate", self.generator, reason)


def instruction_text(instruction: str, input_: str) -> str:
    """The user message of an instruction and its input (Self-Instruct's instances): the input after a blank line."""
    return f"{instruction}\n\n{input_}" if input_ else instruction


class Driver(Protocol):
    """A generator's algorithm: waves in a fixed order from its seed and the answers `ask` returns, and its figures."""

    figures: dict[str, Any]

    def run(self, ask: Ask, count: int, seed: int) -> Iterator[Wave]: ...


class DriverGenerator(Generator):
    """A generator whose work a driver does (`driver`): the driver asks through the session, its waves are cut to
    the generator's share, and its figures go to the manifest. It is replayed on resume (drivers are deterministic
    given their seed and the LLM's answers)."""

    @abstractmethod
    def driver(self, records: InstructionRecords) -> Driver:
        """The driver, making records with `records` (the generator's lineage)."""

    def run(self, session: Session) -> Iterator[Wave]:
        driver = self.driver(InstructionRecords.of(self.name, self.job.task, session))
        yield from trim(session.count, driver.run(session.ask, session.count, session.sampling.seed))
        self.figures = driver.figures
