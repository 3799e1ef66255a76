"""The generator contract (after distilabel's tasks): format a prompt for a work item, parse the model's output
into a record. Prompts are Jinja2 templates per language, loaded from `templates/<lang>/`, hashed into lineage.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from sftforge.llm.base import Completion
from sftforge.sample import Lineage, Record

TEMPLATE_DIR = Path(__file__).parent / "templates"


@dataclass(frozen=True, slots=True)
class Template:
    name: str  # e.g. "en/qa_extractive"
    source: str
    hash: str
    compiled: jinja2.Template

    def render(self, **values: Any) -> str:
        return self.compiled.render(**values).strip()

    def has_block(self, name: str) -> bool:
        return name in self.compiled.blocks

    def render_block(self, name: str, **values: Any) -> str:
        """Render one `{% block %}` of a prompt template (system, example_user, user, prefill, ...)."""
        block = self.compiled.blocks[name]
        return "".join(block(self.compiled.new_context(dict(values)))).strip()


_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=False,
    autoescape=False,
)
_ENV.filters["zip"] = lambda a, b: list(zip(a, b))


@lru_cache(maxsize=None)
def load_template(lang: str, name: str) -> Template:
    rel = f"{lang}/{name}.j2"
    source = (TEMPLATE_DIR / rel).read_text("utf-8")
    return Template(
        name=f"{lang}/{name}",
        source=source,
        hash=hashlib.sha256(source.encode("utf-8")).hexdigest()[:12],
        compiled=_ENV.get_template(rel),
    )


def templates_hash(lang: str) -> str:
    """Hash of every template of a language: prompts and record layouts both shape a stage's output."""
    h = hashlib.sha256()
    for path in sorted((TEMPLATE_DIR / lang).glob("*.j2")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


@dataclass(slots=True)
class WorkItem:
    """One example to make: a stable key (for resume and seeds) and whatever the generator needs."""

    key: str
    payload: Any


def chat_from_template(template: Template, **values: Any) -> list[dict[str, str]]:
    """Chat messages from a prompt template's blocks: an optional system message, an optional worked example
    (a user/assistant pair), the user message, and an optional assistant prefill that the model continues.
    Small models follow a format far better when the reply is started for them and one example is shown."""
    messages = []
    if template.has_block("system"):
        messages.append({"role": "system", "content": template.render_block("system", **values)})
    if template.has_block("example_user"):
        messages.append({"role": "user", "content": template.render_block("example_user", **values)})
        messages.append({"role": "assistant", "content": template.render_block("example_assistant", **values)})
    messages.append({"role": "user", "content": template.render_block("user", **values)})
    if template.has_block("prefill"):
        messages.append({"role": "assistant", "content": template.render_block("prefill", **values)})
    return messages


def prefill_of(messages: list[dict[str, str]]) -> str:
    """The assistant prefill of a prompt (empty if the prompt does not end with one)."""
    return messages[-1]["content"] if messages and messages[-1]["role"] == "assistant" else ""


class Step(ABC):
    """One LLM call of a generator: format the prompt for a work item, parse the output (into a record, or into
    whatever the generator's next step needs)."""

    name: str  # the generator's name (lineage, rejections)
    stop: tuple[str, ...] = ()  # stop strings for this step's requests
    max_tokens: int | None = None  # a cap below the recipe's max_tokens, for steps with short answers

    @abstractmethod
    def prompt(self, item: WorkItem) -> list[dict[str, str]]:
        """Chat messages asking the model for this item."""

    @abstractmethod
    def parse(self, item: WorkItem, output: str) -> Any:
        """The parsed output; raise ParseError (the rejection reason) if it has the wrong form."""

    @property
    @abstractmethod
    def template(self) -> Template:
        """The prompt template (its name and hash go into lineage)."""


class TemplateStep(Step):
    """A step whose prompt is one template of the task's language (multi-step generators have several)."""

    def __init__(self, name: str, lang: str, template: str) -> None:
        self.name = name
        self.lang = lang
        self._template = load_template(lang, template)

    @property
    def template(self) -> Template:
        return self._template


class Generator(Step):
    """A one-step generator: parses outputs into records."""

    @abstractmethod
    def parse(self, item: WorkItem, output: str) -> Record:
        """Turn a model output into a record; raise ParseError (the rejection reason) if it has the wrong form."""

    @abstractmethod
    def failed_record(self, item: WorkItem, output: str) -> Record:
        """A record for an item that never parsed, holding the prompt and the last output, for `rejected/`."""


@dataclass(slots=True)
class Answer:
    """A finished work item: the parsed value of its last output, or the reason it never parsed."""

    item: WorkItem
    attempt: int  # of the last output (0-based)
    completion: Completion  # the last output
    value: Any = None
    error: str | None = None
    prompt_tokens: int = 0  # summed over attempts, cached or not
    completion_tokens: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None


def lineage_of(a: Answer, step: Step, model_id: str, round_: int = 1, parents: list[str] | None = None) -> Lineage:
    """How an answer was made: the step's generator and template, the sampling of its last attempt, its tokens."""
    s = a.completion.request.sampling
    return Lineage(
        generator=step.name,
        model=model_id,
        temperature=s.temperature,
        top_p=s.top_p,
        max_tokens=s.max_tokens,
        seed=s.seed,
        template=step.template.name,
        template_hash=step.template.hash,
        parents=parents or [],
        round=round_,
        attempts=a.attempt + 1,
        prompt_tokens=a.prompt_tokens,
        completion_tokens=a.completion_tokens,
    )
