"""The generator contract. A generator (registered by name, like an operator) declares its recipe config, the task
types it makes and what it needs from the sources, and `run` yields waves of records and rejections. Its LLM calls
are steps (after distilabel's tasks): format a prompt for a work item from a Jinja2 template of the task's language
(`templates/<lang>/`, hashed into lineage), parse the model's output. The generate stage gives each generator a
`Job` (the recipe and the sources' outputs) and a `Session` (its share of the target, its sampling, the LLM, the
ledger), and commits the waves.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import jinja2

from sftforge.config import Generation, GeneratorConfig, PoolConfig, Sampling
from sftforge.generate.audiences import Pair
from sftforge.lib.coverage import coverage_order
from sftforge.lib.draws import weighted_order
from sftforge.llm.base import LLM, Completion
from sftforge.sample import Lineage, Record, Rejected, SourceRef
from sftforge.sources.chunking import Passage

if TYPE_CHECKING:
    from sftforge.kg import KnowledgeGraph
    from sftforge.recipe import Recipe, Task
    from sftforge.run import RunDir
    from sftforge.sources.seeds import SeedTask
    from sftforge.storage import RoundPlan

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


@cache
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
    attempts: int | None = None  # tries per item when a step needs more than generation.max_attempts (best of n)

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

    def pair_of(self, item: WorkItem) -> Pair | None:
        """The audience-genre pair the item is written for (lineage), if the step draws them."""
        return None


class TemplateStep(Step):
    """A step whose prompt is one template of the task's language (multi-step generators have several)."""

    def __init__(self, name: str, lang: str, template: str) -> None:
        self.name = name
        self.lang = lang
        self._template = load_template(lang, template)

    @property
    def template(self) -> Template:
        return self._template


class RecordStep(Step):
    """A step whose parsed output is a record (one-step generators: grounded QA, corpus walks, KG paraphrases)."""

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
    pair = step.pair_of(a.item)
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
        audience=pair.audience_name if pair else None,
        genre=pair.genre_name if pair else None,
    )


# -- waves, the registered generator, and what the generate stage gives it --------------------------------------------


@dataclass
class Wave:
    """One committed unit of a generator's work: its records and rejections under the ledger keys of the work it
    finished, with the token usage of that work (`stats`). A wave whose keys are all in the ledger is not
    committed again (a replayed wave of a resumed run)."""

    keys: list[str]
    records: list[Record] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)


@dataclass
class Job:
    """What generators read from the run: the recipe and the sources' outputs, loaded on first use. Shared by the
    recipe's generators, in order: `at_hand` holds the instructions at hand (the seed tasks, then the first user
    paragraph of every record made so far), for generators that learn from them."""

    recipe: Recipe
    run: RunDir
    plan: RoundPlan | None = None
    at_hand: dict[str, SourceRef] = field(default_factory=dict)
    _passages: list[Passage] | None = None
    _graph: KnowledgeGraph | None = None
    _seeds: list[SeedTask] | None = None

    @property
    def task(self) -> Task:
        return self.recipe.task

    def passages(self) -> list[Passage]:
        """The usable passages in work order: rank order with each document's coverage quota first
        (generation.min_per_doc, per_1k_tokens); in a later round of the closed loop, the plan's weighted order."""
        if self._passages is None:
            from sftforge.storage import read_passages

            ranked = read_passages(self.run) if self.recipe.sources.documents else []
            gen = self.recipe.generation
            if self.plan is not None:
                by_id = {p.chunk_id: p for p in ranked}
                seed = gen.sampling.seed + self.plan.round
                ranked = [by_id[c] for c in weighted_order(list(by_id), self.plan.weights, seed)]
            else:
                ranked = coverage_order(ranked, gen.min_per_doc, gen.per_1k_tokens)
            self._passages = ranked
        return self._passages

    def graph(self) -> KnowledgeGraph:
        if self._graph is None:
            from sftforge.sources.kinds.kg import load_kg

            self._graph = load_kg(self.recipe)
        return self._graph

    def pool(self, source: str, size: int) -> list[SeedTask]:
        """What an instruction generator starts from: the seed tasks, or (`datasets`) the `size` most relevant
        imported examples as single-instance tasks whose id is the imported record's, so records made from them
        name it as their parent."""
        if source == "seeds":
            return self.seeds()
        from sftforge.sample import table_to_records
        from sftforge.sources.seeds import SeedTask
        from sftforge.storage import imported_batches, read_ranking

        rows = read_ranking(self.run)[:size]
        found = [r for table in imported_batches(self.run, rows, max(1, len(rows))) for r in table_to_records(table)]
        tasks = []
        for r in found:
            turns = [m for m in r.messages if m["role"] != "system"]  # the first exchange
            tasks.append(SeedTask(r.id, turns[0]["content"], (("", turns[1]["content"]),), False, "record"))
        return tasks

    def seeds(self) -> list[SeedTask]:
        if self._seeds is None:
            from sftforge.sources.seeds import load_seeds

            seeds = self.recipe.sources.seeds
            self._seeds = load_seeds(self.recipe.resolve(seeds.path)) if seeds is not None else []
        return self._seeds


@dataclass
class Session:
    """One generator's run: how many records it is to make, its sampling, the LLM (None for a generator that
    needs none), and what an interrupted attempt committed: its ledger keys (`done`) and its records
    (`committed`)."""

    llm: LLM | None
    generation: Generation
    sampling: Sampling
    count: int
    done: set[str]
    committed: int = 0
    round: int = 1
    stats: Counter[str] = field(default_factory=Counter)  # usage of `ask` since the last wave; committed with it

    @property
    def model(self) -> LLM:
        if self.llm is None:
            raise RuntimeError("this generator said it uses no LLM (uses_llm), then asked one")
        return self.llm

    def ask(self, step: Step, items: list[WorkItem]) -> list[Answer]:
        """Run one step over items and wait for all of them: answers in item order, each retried up to
        generation.max_attempts with a new seed; token usage goes to `stats`."""
        from sftforge.generate.runner import ask

        return ask(self.model, step, items, self.generation, self.sampling, self.stats)

    def stream(self, step: RecordStep, items: Iterable[WorkItem], want_more: Callable[[], bool]) -> Iterator[Wave]:
        """A one-step generator's waves: items not in the ledger, kept in flight while `want_more()`, parsed into
        records (or rejections, after max_attempts) as they finish, in waves of generation.shard_size items."""
        from sftforge.generate.runner import LLMRunner

        runner = LLMRunner(self.model, step, self.generation, items, self.done, self.round, self.sampling)
        for records, rejected, keys, stats in runner.batches(want_more, self.generation.shard_size):
            yield Wave(keys, records, rejected, stats)


class Generator(ABC):
    """A generator a recipe can name (registered with `@register`, found in `sftforge/generate/generators/`).

    It declares its recipe entry (`Config`, whose `name` is a literal), the task types it makes (`tasks`, with the
    description the recipe's schema shows), the task types it makes when a recipe lists no generator
    (`default_for`), what the sources must provide (`requires`: documents, kg, seeds, datasets) and the recipe sections its
    output depends on besides `task` and `generation` (`sections`). `run` yields waves; the stage commits them.

    Resume: a generator either skips the work in `session.done` (`replays = False`: grounded and walk generators,
    whose work items are independent) or is deterministic given its seed and the LLM's answers and is run again
    from the start (`replays = True`), its committed waves answered by the response cache and not committed twice.
    """

    name: ClassVar[str]
    Config: ClassVar[type[GeneratorConfig]]
    tasks: ClassVar[dict[str, str]]
    any_task: ClassVar[bool] = False  # makes whatever task.type says (imports existing examples)
    default_for: ClassVar[tuple[str, ...]] = ()
    requires: ClassVar[tuple[str, ...]] = ()
    sections: ClassVar[tuple[str, ...]] = ()
    replays: ClassVar[bool] = True
    rounds: ClassVar[bool] = False  # plans later rounds of the closed loop (it works on single ranked passages)
    progress_label: ClassVar[str | None] = None  # the progress bar's title; default "generate: <name>"
    # The records' text comes from templates, not from a model (KG walks): the `auto` cleaning preset then checks
    # only format and length, since repetition filters would judge the template.
    templated: ClassVar[bool] = False
    reads_at_hand: ClassVar[bool] = False  # learns from the instructions made before it (`Job.at_hand`)

    def __init__(self, config: GeneratorConfig, job: Job) -> None:
        self.config = config
        self.job = job
        self.figures: dict[str, Any] = {}  # the generator's own figures for the manifest (filled by `run`)

    @classmethod
    def check(cls, config: GeneratorConfig, recipe: Recipe) -> str | None:
        """A reason the recipe cannot run this generator, beyond `requires` (e.g. a backend it cannot use)."""
        return None

    @classmethod
    def needs(cls, config: GeneratorConfig) -> tuple[str, ...]:
        """The source kinds this entry needs: `requires`, unless its config picks another input (an instruction
        generator whose pool is the imported examples)."""
        if isinstance(config, PoolConfig) and config.pool == "datasets":
            return ("datasets",)
        return cls.requires

    @classmethod
    def uses_llm(cls, config: GeneratorConfig, recipe: Recipe) -> bool:
        """Whether a run asks the LLM (KG walks do only when they paraphrase)."""
        return True

    @classmethod
    def inputs(cls, config: GeneratorConfig, recipe: Recipe) -> list[Path]:
        """Files the generator reads besides the sources (a user-edited lexicon): their contents are part of the
        generate stage's fingerprint, so editing one reruns generation."""
        return []

    @classmethod
    def notes(cls, figures: dict[str, Any]) -> str:
        """One line about the generator's own figures, for the dataset card's table."""
        return ""

    @abstractmethod
    def run(self, session: Session) -> Iterator[Wave]:
        """Waves until `session.count` records are made or the work is used up."""

    def counts(self, session: Session) -> dict[str, int]:
        """Counts for the manifest beyond records and rejections (e.g. work items, walks drawn)."""
        return {}


Ask = Callable[[Step, list[WorkItem]], list[Answer]]  # `Session.ask`: one step over items, answers in item order

CARRIED_KEY = "carried"  # the ledger key of the earlier rounds' records that join a later round's pool

GENERATORS: dict[str, type[Generator]] = {}


def register(cls: type[Generator]) -> type[Generator]:
    """Class decorator: make a generator nameable from recipes."""
    literal_args = getattr(cls.Config.model_fields["name"].annotation, "__args__", ())
    if literal_args != (cls.name,):
        raise TypeError(f"{cls.__name__}.Config.name must be Literal[{cls.name!r}]")
    if cls.name in GENERATORS:
        raise TypeError(f"generator {cls.name!r} registered twice")
    unknown = set(cls.requires) - {"documents", "kg", "seeds", "datasets"}
    if unknown:
        raise TypeError(f"{cls.__name__}.requires names unknown inputs {sorted(unknown)}")
    GENERATORS[cls.name] = cls
    return cls


def trim(count: int, waves: Iterable[Wave]) -> Iterator[Wave]:
    """The waves with the records past `count` cut off (a wave may overshoot the share; its choices stand)."""
    made = 0
    for wave in waves:
        del wave.records[count - made :]
        made += len(wave.records)
        yield wave
