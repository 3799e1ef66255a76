"""The recipe: one YAML file that says what data to make, from what, with which model, and how to clean it.

The section models are in `config.py`; the parts that can be named are registered and the recipe's unions are
built from their registries: operators (`ops`), generators and the task types they make (`generate/registry.py`)
and source kinds (`sources/kinds`). So the JSON Schema and the error messages always list what is registered.
Validation is pydantic v2 with `extra="forbid"` everywhere, so a typo is an error, not a silently ignored field.
`load_recipe` turns every validation problem into one `RecipeError` that names the field, its line in the YAML
file and the allowed values or fields.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

import yaml
from pydantic import AfterValidator, BaseModel, Field, PrivateAttr, ValidationError, create_model, model_validator
from pydantic_core import ErrorDetails

from sftforge.config import (
    BACKENDS,
    BANDIT_STRATEGIES,
    Audience,
    Chunking,
    Constraints,
    DataSearch,
    Evaluation,
    Generation,
    GeneratorConfig,
    Genre,
    Output,
    RayConfig,
    Retrieval,
    Selection,
    Strict,
    Training,
    Walks,
)
from sftforge.errors import RecipeError
from sftforge.generate import registry as generator_registry
from sftforge.ops import base as ops_base
from sftforge.ops import registry as operator_registry
from sftforge.sources.kinds import base as source_kinds

if TYPE_CHECKING:
    from sftforge.sources.kinds.datasets import DatasetSource
    from sftforge.sources.kinds.documents import DocumentSource
    from sftforge.sources.kinds.kg import KGSource
    from sftforge.sources.kinds.seeds import SeedSource

operator_registry.load()  # the operators' configs, before the unions below are built
GENERATORS = generator_registry.load()
TASK_TYPES = generator_registry.task_types()
TaskType = Literal[tuple(TASK_TYPES)]  # type: ignore[valid-type]
SOURCES = source_kinds.load()


class Task(Strict):
    """What the data is for (the brief's "requirement definition")."""

    type: TaskType = Field(  # type: ignore[valid-type]
        description="Kind of example to make (the generators that make each are listed under `generators`). "
        + "; ".join(f"{name}: {text}" for name, text in TASK_TYPES.items())
        + "."
    )
    qa_mode: Literal["extractive", "open"] = Field(
        "extractive", description="qa only: extractive answers are spans of the passage; open answers are free text."
    )
    qa_strategy: Literal["answer_first", "question_first"] = Field(
        "answer_first",
        description="Extractive QA: answer_first picks a passage sentence as the answer and asks the model for its "
        "question (reliable with small models); question_first asks for question and answer, then checks the "
        "answer is a span (or snaps a paraphrase to the sentence that supports it).",
    )
    description: str = Field(
        min_length=3, description="What the dataset is for; also the query that ranks passages (data search)."
    )
    language: Literal["en", "zh"] = Field("en", description="Language of prompts and outputs.")
    target_count: int = Field(100, ge=1, description="Generation stops once this many records are accepted.")
    context_in_prompt: bool | None = Field(
        None,
        description="Put the source passage in the user message. Default: yes for extractive QA, summarization "
        "and exercises; no for open QA (closed-book).",
    )
    system_prompt: str | None = Field(None, description="A system message put at the start of every record.")
    constraints: Constraints = Field(default_factory=Constraints)
    audiences: list[Audience] = Field(
        default_factory=list,
        description="Readers to write for: grounded records (qa, summarization, exercise) and dialogue personas "
        "draw audience-genre pairs in turn, so each passage's items (generation.per_passage) differ; empty: "
        "nobody in particular.",
    )
    genres: list[Genre] = Field(default_factory=list, description="Styles crossed with the audiences.")
    audience_prompt: Literal["system", "none"] = Field(
        "system",
        description="system: each grounded record's system message names its audience and genre (so the tuned model "
        "follows one given at inference); none: only lineage (and output.audience_columns) keeps them.",
    )

    @model_validator(mode="after")
    def _audience_names_unique(self) -> Task:
        for what, items in (("audiences", self.audiences), ("genres", self.genres)):
            names = [a.name for a in items]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"task.{what}: the name {dup[0]!r} is used twice; names must be unique")
        return self

    @property
    def answer_mode(self) -> str | None:
        """How a QA record's answer relates to its passage (extractive spans, open text); None for other tasks."""
        return self.qa_mode if self.type == "qa" else None

    @property
    def include_context(self) -> bool:
        if self.context_in_prompt is not None:
            return self.context_in_prompt
        return not (self.type == "qa" and self.qa_mode == "open")


def _source_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for kind in SOURCES.values():
        if kind.many:
            fields[kind.name] = (list[kind.Config], Field(default_factory=list, description=kind.description))  # type: ignore[name-defined]
        else:
            fields[kind.name] = (kind.Config | None, Field(None, description=kind.description))
    for kind in SOURCES.values():
        fields |= kind.settings
    return fields


if TYPE_CHECKING:
    # What type checkers see; at run time the section is built from the registries below (a test checks that the
    # two agree).
    class Sources(Strict):
        datasets: list[DatasetSource]
        documents: list[DocumentSource]
        kg: KGSource | None
        seeds: SeedSource | None
        search: DataSearch
        chunking: Chunking
        retrieval: Retrieval

    GeneratorEntry = GeneratorConfig
else:
    Sources = create_model(
        "Sources", __base__=Strict, __doc__="What the data is made from: one field per source kind.", **_source_fields()
    )
    GeneratorEntry = Annotated[Union[tuple(cls.Config for cls in GENERATORS.values())], Field(discriminator="name")]  # type: ignore[valid-type]  # noqa: UP007 (a union of a run-time tuple: `|` has no such form)


def _none_registered(entry: Any) -> Any:
    raise ValueError(f"no operator of this kind is registered (got {entry.name!r})")


def _op_entry(*kinds: type[ops_base.Operator]) -> Any:
    """The recipe type of one operator entry: the union of the registered configs of `kinds`, tagged by name."""
    types = tuple(t for kind in kinds for t in ops_base.config_types(kind))
    if not types:
        return Annotated[ops_base.OpConfig, AfterValidator(_none_registered)]
    if len(types) == 1:
        return types[0]
    return Annotated[Union[types], Field(discriminator="name")]  # noqa: UP007 (a union of a run-time tuple: `|` has no such form)


if TYPE_CHECKING:
    FeatureEntry = ops_base.BoundsConfig
    FilterEntry = ops_base.BoundsConfig
    MapperEntry = ops_base.OpConfig
    DedupEntry = ops_base.OpConfig
else:
    FeatureEntry = _op_entry(ops_base.Feature, ops_base.VectorFeature)
    FilterEntry = _op_entry(ops_base.Feature)
    MapperEntry = _op_entry(ops_base.Mapper)
    DedupEntry = _op_entry(ops_base.Deduplicator)


def _check_unbounded(entries: list[Any]) -> list[Any]:
    for i, entry in enumerate(entries):
        if {"min", "max"} & entry.model_fields_set:
            raise ValueError(
                f"entry {i} ({entry.name}) has min/max bounds: features only compute; "
                "put bounds on the same entry under cleaning.filters"
            )
    return entries


Features = Annotated[list[FeatureEntry], AfterValidator(_check_unbounded)]


class Cleaning(Strict):
    """Run in this order: mappers (PII redaction), the preset's filters then `filters`, then each `dedup` in turn."""

    preset: Literal["auto", "en", "zh", "none"] = Field(
        "auto",
        description="Language preset of filters (ops/presets.py): auto = the task's language (for kg_qa, whose text "
        "is templated, only format and length); none = only `filters`. An entry in `filters` with the same feature "
        "replaces the preset's.",
    )
    mappers: list[MapperEntry] = Field(default_factory=list, description="Rewriting operators, e.g. pii_redact.")
    filters: list[FilterEntry] = Field(
        default_factory=list, description="Any feature with min/max bounds; records outside are rejected."
    )
    dedup: list[DedupEntry] = Field(
        default_factory=lambda: [ops_base.OPERATORS["exact_dedup"].Config.model_validate({})],
        description="exact_dedup, minhash_dedup, semantic_dedup; each runs over the survivors of the one before.",
    )


class Recipe(Strict):
    """A whole sftforge recipe."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Run name; default run dir is runs/NAME.")
    task: Task
    sources: Sources
    generation: Generation = Field(default_factory=Generation)
    walks: Walks = Field(default_factory=Walks, description="Random walks for kg_qa and multi_doc_qa.")
    generators: list[GeneratorEntry] = Field(
        default_factory=list,
        description="The generators that make the task, each with its share of target_count; default: the task "
        "type's own ("
        + ", ".join(
            f"{t}: {', '.join(g.name for g in generator_registry.defaults(t))}"
            for t in TASK_TYPES
            if generator_registry.defaults(t)
        )
        + "). "
        + "; ".join(
            f"{name}: makes {'any task.type' if cls.any_task else ', '.join(cls.tasks)}"
            for name, cls in GENERATORS.items()
        )
        + ".",
    )
    features: Features = Field(
        default_factory=list,
        description="Feature operators computed once into `features` (and vectors) by the features stage, for "
        "filters, selection and the report; filters compute any feature missing here on the fly.",
    )
    cleaning: Cleaning = Field(default_factory=Cleaning)
    selection: Selection | None = Field(None, description="Data selection; absent: every cleaned record is exported.")
    training: Training | None = Field(None, description="Fine-tuning; absent: no train and evaluate stages.")
    evaluation: Evaluation = Field(default_factory=Evaluation)
    rounds: int = Field(
        1,
        ge=1,
        le=20,
        description="Closed loop: after each round's training, the bandit's arm values set each topic's share of the "
        "next round's generation budget (target_count new records per round); needs a bandit with arms by cluster "
        "or source.",
    )
    output: Output = Field(default_factory=Output)
    engine: Literal["local", "ray"] = Field(
        "local",
        description="Executor of the sources (reading, chunking, BM25 terms), features and clean stages: local runs "
        "blocks in this process; "
        "ray runs the same code on a Ray cluster (see `ray`) with the same result.",
    )
    ray: RayConfig | None = Field(None, description="Where engine: ray runs; absent: RAY_ADDRESS, else a local Ray.")

    @model_validator(mode="after")
    def _ray_settings_need_the_ray_engine(self) -> Recipe:
        if self.ray is not None and self.engine != "ray":
            raise ValueError("`ray` settings are for engine: ray; set engine: ray or remove the ray section")
        return self

    @model_validator(mode="after")
    def _generators_for_task(self) -> Recipe:
        """The generators in force (the task type's default when none are listed) can make the task from the
        recipe's sources."""
        if not self.generators:
            self.generators = generator_registry.defaults(self.task.type)
            if not self.generators:
                makers = ", ".join(generator_registry.makers(self.task.type))
                raise ValueError(f"task.type {self.task.type} needs generators: list one or more of {makers}")
        problems = generator_registry.problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _selection_needs(self) -> Recipe:
        sel = self.selection
        if sel is not None and sel.strategy in BANDIT_STRATEGIES and self.training is None:
            raise ValueError(
                f"selection.strategy {sel.strategy} learns while fine-tuning: add a `training` section, or use a static strategy (all, uniform, ifd_topk, deita, kcenter)"
            )
        if sel is not None and sel.max_end_loss is not None:
            computed = {e.name for e in self.features} | {e.name for e in self.cleaning.filters}
            if "end_loss" not in computed:  # without the feature the gate would silently pass every record
                raise ValueError(
                    "selection.max_end_loss reads the end_loss feature, which this recipe does not compute: add "
                    "`- name: end_loss` to `features`, or remove max_end_loss"
                )
        if self.rounds > 1:
            if sel is None or sel.strategy not in BANDIT_STRATEGIES:
                raise ValueError(
                    "rounds > 1 feeds the bandit's arm values into the next round: set selection.strategy to exp3s or odm (with a `training` section)"
                )
            if sel.arms.by not in ("cluster", "source"):
                raise ValueError(
                    f"rounds > 1 needs arms that map onto passages: selection.arms.by cluster or source, not {sel.arms.by}"
                )
        return self

    # Set by load_recipe: relative source paths resolve against the recipe's folder.
    _base_dir: Path = PrivateAttr(default_factory=lambda: Path("."))

    @property
    def base_dir(self) -> Path:
        """The recipe's folder: relative paths in the recipe resolve against it."""
        return self._base_dir

    @property
    def selection_in_force(self) -> Selection | None:
        """The recipe's selection, or every record with the default held-out split when only `training` is given."""
        if self.selection is None and self.training is not None:
            return Selection(strategy="all")
        return self.selection

    @property
    def dataset_stage(self) -> str:
        """The stage whose records are the dataset: the bandit's budgeted choice (train), a static selection
        (select), or every cleaned record (clean)."""
        sel = self.selection_in_force
        if sel is None:
            return "clean"
        return "train" if sel.strategy in BANDIT_STRATEGIES else "select"

    def resolve(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self._base_dir / p)


# -- loading with line numbers ----------------------------------------------------------------------------------


def _node_at(node: yaml.Node, loc: tuple[Any, ...]) -> tuple[yaml.Node, list[str]]:
    """Follow a pydantic error location into the YAML node tree; return the deepest node and the path walked.

    Pydantic inserts union tags (e.g. the operator name) into locations; parts that match no key are skipped.
    """
    path: list[str] = []
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    node = value
                    path.append(str(part))
                    break
            else:
                continue
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            path.append(str(part))
    return node, path


def _key_node(root: yaml.Node, loc: tuple[Any, ...]) -> yaml.Node | None:
    """For an unknown field, the node of its key (so the line points at the key itself)."""
    parent, _ = _node_at(root, loc[:-1])
    if isinstance(parent, yaml.MappingNode):
        for key, _value in parent.value:
            if key.value == loc[-1]:
                return key
    return None


def _tag_model(part: Any) -> type[BaseModel] | None:
    """The config behind a union tag pydantic puts into error locations (an operator, backend or generator name)."""
    if not isinstance(part, str):
        return None
    if part in ops_base.OPERATORS:
        return ops_base.OPERATORS[part].Config
    if part in BACKENDS:
        return BACKENDS[part]
    if part in GENERATORS:
        return GENERATORS[part].Config
    return None


def _models_in(ann: Any) -> list[type[BaseModel]]:
    """The models an annotation holds (one for a model, an Optional or a list of it; several for a union)."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [ann]
    return [m for arg in getattr(ann, "__args__", ()) or () for m in _models_in(arg)]


def _walk(loc: tuple[Any, ...]) -> tuple[type[BaseModel] | None, set[int]]:
    """Follow an error location through the recipe's models: the model whose fields apply at its end (None where
    it leaves them) and the positions that are union tags, not YAML keys. A part is a field where the model at
    that point has it (a `format` option is a field, though `format` also names an operator), a tag otherwise."""
    model: type[BaseModel] | None = Recipe
    tags: set[int] = set()
    for i, part in enumerate(loc):
        if isinstance(part, int):
            continue
        fields = model.model_fields if model is not None else {}
        if part in fields:
            found = _models_in(fields[part].annotation)
            model = found[0] if len(found) == 1 else None  # a union: the next part is its tag
            continue
        tagged = _tag_model(part)
        if tagged is not None:
            tags.add(i)
        model = tagged
    return model, tags


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class whose field set applies at `loc` (for listing allowed fields)."""
    return _walk(loc)[0]


def _describe_error(err: ErrorDetails, root: yaml.Node, source: str) -> str:
    loc = tuple(err["loc"])
    tags = _walk(loc)[1]
    field = ".".join(str(p) for i, p in enumerate(loc) if i not in tags) or "(top level)"
    if err["type"] == "extra_forbidden":
        key = _key_node(root, loc)
        line = key.start_mark.line + 1 if key else None
        model = _model_at(loc[:-1])
        allowed = sorted(model.model_fields) if model else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        msg = f"unknown field '{loc[-1]}'{hint}; allowed fields: {', '.join(allowed)}"
    else:
        node, _ = _node_at(root, loc)
        line = node.start_mark.line + 1
        msg = err["msg"]
        if err["type"] == "union_tag_invalid" and loc and loc[0] == "generators":
            msg = f"unknown generator {err['input'].get('name')!r}; generators: {', '.join(GENERATORS)}"
        elif err["type"] == "union_tag_invalid":
            names = ", ".join(sorted(ops_base.OPERATORS))
            msg = f"unknown operator {err['input'].get('name')!r}; registered operators: {names}"
        elif err["type"] == "missing":
            model = _model_at(loc[:-1])
            desc = (
                model.model_fields[str(loc[-1])].description if model and str(loc[-1]) in model.model_fields else None
            )
            msg = "required field is missing" + (f" ({desc})" if desc else "")
        elif "input" in err and err["type"] not in ("model_type",):
            shown = repr(err["input"])
            msg = f"{msg} (got {shown[:80]})"
    where = f"{source}, line {line}" if line else source
    return f"{where}: {field}: {msg}"


def load_recipe_text(text: str, source: str = "<recipe>", base_dir: Path | None = None) -> Recipe:
    """Parse and validate recipe YAML; raise RecipeError naming each bad field, its line and the allowed values."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}, line {mark.line + 1}, column {mark.column + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise RecipeError(f"{where}: malformed YAML: {problem}") from None
    if not isinstance(data, dict) or root is None:
        raise RecipeError(f"{source}: a recipe is a YAML mapping with at least 'name', 'task' and 'sources'")
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        lines = [_describe_error(e, root, source) for e in exc.errors()]
        count = f"{len(lines)} problem{'s' if len(lines) > 1 else ''}"
        raise RecipeError(f"invalid recipe ({count}):\n  " + "\n  ".join(lines)) from None
    recipe._base_dir = base_dir or Path(".")
    return recipe


def load_recipe(path: Path) -> tuple[Recipe, str]:
    """Load a recipe file; return the recipe and its text (stored in the run directory)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"recipe file not found: {path}") from None
    except IsADirectoryError:
        raise RecipeError(f"{path} is a directory; pass a recipe .yaml file") from None
    except UnicodeDecodeError:
        raise RecipeError(f"{path} is not UTF-8 text; a recipe is a YAML file") from None
    except OSError as exc:
        raise RecipeError(f"cannot read recipe {path}: {exc.strerror}") from None
    return load_recipe_text(text, source=str(path), base_dir=path.resolve().parent), text


def json_schema() -> dict[str, Any]:
    schema = Recipe.model_json_schema()
    schema["title"] = "sftforge recipe"
    return schema
