"""The figures each stage records in the manifest (`stages.<name>.extra`), as typed models: a stage returns one, the
run directory stores it as JSON, and the summary, the dataset card, the report and the CLI read it back typed
(`read_figures`) instead of through chains of `.get(...)`.

A generator's and an operator's own figures ride along in the models as dicts (`GeneratorFigures.own`,
`CleanFigures.operators`); the parts that wrote them define their types where a reader needs them
(`PiiFigures`, `ContaminationFigures`).
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sftforge.errors import RunDirError
from sftforge.run import RunDir
from sftforge.storage import ArmValue


class Figures(BaseModel):
    """Base of every stage's figures; `stage` names the manifest entry they belong to."""

    model_config = ConfigDict(extra="forbid")
    stage: ClassVar[str]

    def to_manifest(self) -> dict[str, Any]:
        """For the manifest's JSON (NaN kept as NaN, as `json` writes it)."""
        return self.model_dump(exclude_none=True)


class EngineInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    workers: int | None = None
    blocks: int | None = None
    blocks_reused: int | None = None


# -- sources ---------------------------------------------------------------------------------------------------------


class SkippedFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str
    reason: str


class GraphFiles(BaseModel):
    model_config = ConfigDict(extra="forbid")

    files: str
    memory_bytes: int


class DatasetFile(BaseModel):
    """One imported data file: its shape, rows read, imported and skipped."""

    model_config = ConfigDict(extra="forbid")

    path: str
    shape: str | None
    rows: int
    imported: int
    skipped: int


class SkippedRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    where: str  # file and line or row
    reason: str


class DatasetFigures(BaseModel):
    """`sources.datasets`: the files, the rows that did not fit (counted by reason, the first ones named) and
    the data search."""

    model_config = ConfigDict(extra="forbid")

    files: list[DatasetFile]
    skipped_by_reason: dict[str, int] = Field(default_factory=dict)
    skipped_rows: list[SkippedRow] = Field(default_factory=list)  # the first few, by file and line
    search: str = "none"
    query: str | None = None
    kept: int = 0  # examples the search kept (top_k, min_similarity)


class SourcesFigures(Figures):
    stage = "sources"

    skipped: list[SkippedFile] = Field(default_factory=list)
    datasets: DatasetFigures | None = None
    query: str | None = None
    engine: EngineInfo | None = None
    kg: GraphFiles | None = None


# -- generate --------------------------------------------------------------------------------------------------------


class Diversity(BaseModel):
    """distinct-n and mean pairwise ROUGE-L of the first user turns (`lib/diversity.py`)."""

    model_config = ConfigDict(extra="forbid")

    texts: int
    distinct_1: float
    distinct_2: float
    mean_pairwise_rouge_l: float


class AudienceFigures(BaseModel):
    """What was made for one audience (`generate/audiences.audience_figures`): records by genre, the replies'
    diversity, and for an exercise level the Bloom level measured on the questions."""

    model_config = ConfigDict(extra="forbid")

    records: int
    genres: dict[str, int]
    replies: Diversity
    level: int | None = None
    measured_level: float | None = None
    level_agreement: float | None = None


class Usage(BaseModel):
    """LLM requests and the tokens this run paid for (cached answers cost none)."""

    model_config = ConfigDict(extra="forbid")

    requests: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    prompt_tokens_reused: int = 0
    completion_tokens: int = 0


class GeneratorFigures(BaseModel):
    """One generator's part of a generate stage: its share, what it made, how, and its own figures (`own`)."""

    model_config = ConfigDict(extra="allow")

    target: int
    records: int
    sampling: dict[str, Any]
    counts: dict[str, int] = Field(default_factory=dict)
    rejected_by_reason: dict[str, int] = Field(default_factory=dict)
    diversity: Diversity
    tokens_per_record: float | None = None  # prompt and completion tokens per kept record, rejected items' included

    @property
    def own(self) -> dict[str, Any]:
        """The generator's own figures (`Generator.figures`): what its `notes` reads."""
        return dict(self.model_extra or {})


class GenerateFigures(Figures):
    stage = "generate"

    model: str
    usage: Usage
    completion_tokens_per_s: float
    parse_failures: dict[str, int] = Field(default_factory=dict)
    rejected_by_reason: dict[str, int] = Field(default_factory=dict)
    acceptance_rate: float
    diversity: Diversity
    generators: dict[str, GeneratorFigures]
    audiences: dict[str, AudienceFigures] = Field(default_factory=dict)  # with task.audiences or genres


# -- features and clean ----------------------------------------------------------------------------------------------


class FeaturesFigures(Figures):
    stage = "features"

    features: list[str]
    engine: EngineInfo


class PiiFigures(BaseModel):
    """What `pii_redact` found."""

    model_config = ConfigDict(extra="forbid")

    found_by_type: dict[str, int] = Field(default_factory=dict)
    records_changed: int = 0


class ContaminationItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    benchmark: str
    item: str
    records: int


class ContaminationFigures(BaseModel):
    """What `decontaminate` checked and found, per benchmark."""

    model_config = ConfigDict(extra="forbid")

    action: str
    checked: int = 0
    contaminated: int = 0
    contaminated_by_benchmark: dict[str, int] = Field(default_factory=dict)
    items_by_benchmark: dict[str, int] = Field(default_factory=dict)
    top_items: list[ContaminationItem] = Field(default_factory=list)
    too_short_to_check: dict[str, str] = Field(default_factory=dict)  # benchmark -> "N items, e.g. ..."


class ToxicityFigures(BaseModel):
    """What `toxicity` read: records screened, and records per language it has no screen for (not screened)."""

    screened: int = 0
    not_screened: dict[str, int] = Field(default_factory=dict)


class HarmJudgeFigures(BaseModel):
    """What `harm_judge` did: records judged, replies it answered with neither yes nor no, and why it did not run
    when its server could not be reached (`unavailable`)."""

    judge: str = ""
    judged: int = 0
    unjudged: int = 0
    without_logprobs: int = 0
    unavailable: str | None = None


class CleanFigures(Figures):
    stage = "clean"

    removed_by_operator: dict[str, int] = Field(default_factory=dict)
    seen_by_operator: dict[str, int] = Field(default_factory=dict)
    operators: dict[str, dict[str, Any]] = Field(default_factory=dict)  # label -> the operator's own figures
    operator_names: dict[str, str] = Field(default_factory=dict)  # label -> registered operator name
    duplicate_clusters: dict[str, str] = Field(default_factory=dict)  # deduplicator -> its clusters file
    engine: EngineInfo
    seconds: dict[str, float] = Field(default_factory=dict)

    def _own(self, operator: str) -> dict[str, Any] | None:
        label = next((lb for lb, name in self.operator_names.items() if name == operator), None)
        return self.operators.get(label) if label is not None else None

    def pii(self) -> PiiFigures | None:
        own = self._own("pii_redact")
        return PiiFigures.model_validate(own) if own is not None else None

    def contamination(self) -> ContaminationFigures | None:
        own = self._own("decontaminate")
        return ContaminationFigures.model_validate(own) if own is not None else None

    def toxicity(self) -> ToxicityFigures | None:
        own = self._own("toxicity")
        return ToxicityFigures.model_validate(own) if own is not None else None

    def harm_judge(self) -> HarmJudgeFigures | None:
        own = self._own("harm_judge")
        return HarmJudgeFigures.model_validate(own) if own is not None else None


# -- select, train, evaluate, export ---------------------------------------------------------------------------------


class ArmSize(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    records: int


class SelectFigures(Figures):
    stage = "select"

    strategy: str
    splits: dict[str, int]
    arms: list[ArmSize] = Field(default_factory=list)
    selected_tokens: int


class TrainFigures(Figures):
    stage = "train"

    strategy: str
    steps: int
    resumed_from: int | None = None
    eval_curve: list[tuple[int, float]] = Field(default_factory=list)
    train_examples: int
    not_trained_too_long: int
    trainable_parameters: int
    parameters: int
    base_model: str
    weights: str
    arms: list[ArmValue] | None = None
    dropped: int | None = None  # records the bandit stopped drawing (selection.bandit.drop_below)


class EvaluateFigures(Figures):
    stage = "evaluate"

    results: dict[str, dict[str, dict[str, float | None]]]  # set -> base | tuned | delta -> metric -> value


class ExportedFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str
    records: int
    multi_turn_skipped: int | None = None
    datasets: list[str] | None = None  # llamafactory: the names in its dataset_info.json
    left_out: int | None = None  # llamafactory: records its pre-flight left out (LLaMA-Factory would drop them)
    left_out_examples: list[dict[str, str]] | None = None  # the first ones: {id, reason}


class ReviewCounts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rejected: list[str] = Field(default_factory=list)
    restored: list[str] = Field(default_factory=list)


class Coverage(BaseModel):
    """What the exported records cover of the usable passages (`lib/coverage.CoverageCounter.table`): records per
    document (fewest first) and per section, and the sections no record comes from."""

    model_config = ConfigDict(extra="forbid")

    records: int
    documents: int
    documents_covered: int
    passages: int
    passages_used: int
    sections: int
    sections_covered: int
    by_document: list[dict[str, Any]]
    uncovered_sections: list[dict[str, Any]]


class ExportFigures(Figures):
    stage = "export"

    files: dict[str, ExportedFile]
    review: ReviewCounts
    coverage: Coverage | None = None  # with document sources


F = TypeVar("F", bound=Figures)


def read_figures(run: RunDir, model: type[F]) -> F | None:
    """A stage's figures as recorded in the manifest, typed; None when the stage has not completed or recorded
    none. Figures of another shape (a run made by another version of sftforge) are a RunDirError that says how to
    redo the stage."""
    info = run.stage_info(model.stage)
    if info is None or info.status != "complete" or not info.extra:
        return None
    try:
        return model.model_validate(info.extra)
    except ValidationError as exc:
        raise RunDirError(
            f"{run.path / 'manifest.json'}: the {model.stage} stage's figures are not what this version of sftforge "
            f"records ({exc.error_count()} problem(s), e.g. {exc.errors()[0]['loc']}); rerun it: "
            f"`sftforge {model.stage} {run.path} --force`"
        ) from None
