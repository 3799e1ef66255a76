"""The recipe: one YAML file that says what data to make, from what, with which model, and how to clean it.

Validation is pydantic v2 with `extra="forbid"` everywhere, so a typo is an error, not a silently ignored field.
`load_recipe` turns every validation problem into one `RecipeError` that names the field, its line in the YAML
file and the allowed values or fields.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    StringConstraints,
    Tag,
    ValidationError,
    model_validator,
)

from sftforge.errors import RecipeError
from sftforge.ops import base as ops_base
from sftforge.ops import OPERATORS  # noqa: F401  (imports register the operators before the unions are built)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Constraints(Strict):
    """Bounds on what the generator may output; outputs outside them are retried, then rejected."""

    min_question_chars: int = Field(4, ge=1, description="Shortest acceptable question.")
    max_question_chars: int = Field(400, ge=1, description="Longest acceptable question.")
    min_answer_chars: int = Field(1, ge=1, description="Shortest acceptable answer or summary.")
    max_answer_chars: int = Field(1500, ge=1, description="Longest acceptable answer or summary.")
    num_options: int = Field(4, ge=2, le=6, description="Exercise: number of multiple-choice options.")
    max_summary_ratio: float = Field(0.9, gt=0, description="Summarization: summary length over passage length.")
    min_support: float = Field(
        0.5, ge=0, le=1, description="Minimum share of answer content tokens found in the passage (or, for an "
        "extractive answer that is not an exact span, in the passage sentence it is snapped to).",
    )
    min_question_support: float = Field(
        0.4, ge=0, le=1, description="QA: minimum share of question content tokens found in the passage."
    )


class Task(Strict):
    """What the data is for (the brief's "requirement definition")."""

    type: Literal["qa", "summarization", "exercise", "kg_qa", "multi_doc_qa", "instruction", "dialogue"] = Field(
        description="Kind of example to make. qa, summarization, exercise: from one passage of the documents; "
        "kg_qa: multi-hop questions from relation paths over `sources.kg` (answers verified on the graph); "
        "multi_doc_qa: bridge and comparison questions over 2-4 linked passages (corpus walks); "
        "instruction: general instructions made by the `generators` (Self-Instruct, Evol-Instruct, Magpie, "
        "sentence VAE) from `sources.seeds` or from nothing; dialogue: multi-turn conversations grounded in the "
        "documents (a user persona with a goal, an assistant answering from retrieved passages)."
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

    @property
    def include_context(self) -> bool:
        if self.context_in_prompt is not None:
            return self.context_in_prompt
        return not (self.type == "qa" and self.qa_mode == "open")


class DocumentSource(Strict):
    """A file, folder or glob of documents."""

    path: str = Field(description="File, folder (searched recursively) or glob, relative to the recipe file.")
    text_field: str = Field("text", description=".jsonl/.parquet: the field that holds the text.")
    id_field: str | None = Field(None, description=".jsonl/.parquet: a field to use as the document id.")


class Chunking(Strict):
    tokenizer: str | None = Field(
        None,
        description="GGUF file whose tokenizer counts chunk tokens; default: the llamacpp model's, or the bundled "
        "model's for server backends.",
    )
    max_tokens: int = Field(256, ge=16, description="Chunk size in model tokens.")
    overlap_tokens: int = Field(32, ge=0, description="Tokens shared by consecutive chunks.")
    min_tokens: int = Field(24, ge=1, description="Chunks shorter than this are not used for generation.")

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Chunking:
        if self.overlap_tokens >= self.max_tokens:
            raise ValueError(f"overlap_tokens ({self.overlap_tokens}) must be less than max_tokens ({self.max_tokens})")
        return self


class Retrieval(Strict):
    method: Literal["bm25", "none"] = Field("bm25", description="bm25 ranks passages by the query; none keeps order.")
    query: str | None = Field(None, description="Search query; default: the task description.")
    top_k: int | None = Field(None, ge=1, description="Use at most this many passages (best first).")
    min_score: float = Field(0.0, ge=0, description="bm25: passages scoring at or below this are not used.")


class KGSource(Strict):
    """A knowledge graph: triple files, and optional files that name its entities and relations."""

    path: str | list[str] = Field(
        description="Triple file(s), relative to the recipe: TSV `head<TAB>relation<TAB>tail`, CSV, pipe-separated "
        "`head|relation|tail`, N-Triples (.nt) or Turtle (.ttl); several files (e.g. splits) make one graph."
    )
    format: Literal["auto", "tsv", "csv", "pipe", "nt", "ttl"] = Field(
        "auto", description="auto: from each file's extension and first line."
    )
    header: bool | None = Field(None, description="Delimited files: whether line 1 is a header; default: detected.")
    labels: list[str] = Field(
        default_factory=list, description="Label files `id<TAB>name` giving entities display names (later files win)."
    )
    relation_labels: str | None = Field(None, description="A label file `id<TAB>name` for relations.")
    label_lang: str | None = Field("en", description="RDF: the rdfs:label language to use (None: any).")

    @property
    def paths(self) -> list[str]:
        return [self.path] if isinstance(self.path, str) else list(self.path)


class SeedSource(Strict):
    """Seed tasks: JSON Lines in the Self-Instruct format ({instruction, instances: [{input, output}],
    is_classification}) or flat rows ({instruction, input?, output?})."""

    path: str = Field(description="A .jsonl file of seed tasks, relative to the recipe file.")


class Sources(Strict):
    documents: list[DocumentSource] = Field(
        default_factory=list, description="Document files; needed by every task but kg_qa."
    )
    kg: KGSource | None = Field(None, description="A knowledge graph; needed by kg_qa.")
    seeds: SeedSource | None = Field(
        None, description="Seed tasks for instruction generators (self_instruct, evol_instruct, vae)."
    )
    chunking: Chunking = Field(default_factory=Chunking)
    retrieval: Retrieval = Field(default_factory=Retrieval)


class LlamaCppModel(Strict):
    """A GGUF model run in-process by llama.cpp."""

    backend: Literal["llamacpp"] = Field("llamacpp", description="llamacpp: a GGUF model run in-process.")
    path: str = Field("bundled", description="'bundled' (SmolLM2-135M-Instruct) or a .gguf file path.")
    n_ctx: int = Field(2048, ge=256, description="Context length per sequence (prompt plus output).")
    parallel: int = Field(8, ge=1, le=256, description="Sequences decoded at once (continuous batching).")
    n_batch: int = Field(512, ge=32, description="Tokens per llama_decode call.")
    threads: int | None = Field(None, ge=1, description="CPU threads; default: all cores.")


HttpURL = Annotated[str, StringConstraints(pattern=r"^https?://")]


class OpenAIModel(Strict):
    """Any OpenAI-compatible chat completions server: vLLM, SGLang, TGI, llama.cpp server, Ollama, OpenAI."""

    backend: Literal["openai"] = Field(description="openai: an OpenAI-compatible /v1/chat/completions server.")
    base_url: Union[HttpURL, list[HttpURL]] = Field(
        description="Server URL up to /v1, e.g. http://127.0.0.1:8000/v1; or a list of servers of the same model, "
        "balanced (each request to the least busy, a failed one retried on another)."
    )
    model: str = Field(description="Model name the server expects.")
    api_key_env: str | None = Field(
        None, description="Name of the environment variable holding the API key (the key is never written)."
    )
    concurrency: int = Field(8, ge=1, le=1024, description="Requests in flight at once.")
    timeout: float = Field(120.0, gt=0, description="Seconds before a request is abandoned and retried.")
    max_retries: int = Field(6, ge=0, le=50, description="Retries of a failed request (429, 5xx, timeouts, bad bodies).")


class TransformersModel(Strict):
    """Any causal LM run in-process by transformers (a model directory, a GGUF file, or the bundled model)."""

    backend: Literal["transformers"] = Field(description="transformers: a causal LM run in-process by PyTorch.")
    path: str = Field("bundled", description="'bundled', a .gguf file (converted once) or a model directory.")
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="auto: bf16 where this CPU runs it faster than fp32 (measured), else fp32."
    )
    batch_size: int = Field(8, ge=1, le=512, description="Requests generated together (left-padded).")


def _backend_of(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("backend", "llamacpp"))
    return str(getattr(value, "backend", "llamacpp"))


ModelSpec = Annotated[
    Union[
        Annotated[LlamaCppModel, Tag("llamacpp")],
        Annotated[OpenAIModel, Tag("openai")],
        Annotated[TransformersModel, Tag("transformers")],
    ],
    Discriminator(
        _backend_of,
        custom_error_type="backend",
        custom_error_message="backend must be 'llamacpp', 'openai' or 'transformers'",
    ),
]
BACKENDS = {"llamacpp": LlamaCppModel, "openai": OpenAIModel, "transformers": TransformersModel}


class Sampling(Strict):
    temperature: float = Field(0.7, ge=0, le=2, description="0 is greedy; higher is more diverse, less coherent.")
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int = Field(256, ge=1, description="Most tokens generated per request.")
    seed: int = Field(0, ge=0, description="Base seed; each request's seed derives from it.")


class Generation(Strict):
    model: ModelSpec = Field(default_factory=LlamaCppModel)  # type: ignore[valid-type]
    sampling: Sampling = Field(default_factory=Sampling)
    per_passage: int = Field(1, ge=1, le=32, description="Examples requested per passage.")
    max_attempts: int = Field(3, ge=1, le=10, description="Tries per example before it is rejected.")
    cache: bool = Field(True, description="Keep LLM responses in RUN_DIR/cache so reruns pay for nothing twice.")
    shard_size: int = Field(16, ge=1, description="Work items per committed shard (the resume granularity).")


class SamplingOverride(Strict):
    """One generator's sampling, field by field over `generation.sampling` (trade diversity for coherence)."""

    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    seed: int | None = Field(None, ge=0)

    def over(self, base: Sampling) -> Sampling:
        return base.model_copy(update={k: v for k, v in self.model_dump().items() if v is not None})


class GeneratorBase(Strict):
    share: float = Field(1.0, gt=0, description="This generator's share of task.target_count (shares are normalised).")
    sampling: SamplingOverride = Field(default_factory=SamplingOverride, description="Overrides of generation.sampling.")


class SelfInstructGen(GeneratorBase):
    """Self-Instruct (Wang et al. 2022): bootstrap new instructions from the seed tasks, then their instances."""

    name: Literal["self_instruct"]
    in_context: int = Field(8, ge=2, le=16, description="Instructions shown per prompt.")
    from_seeds: int = Field(6, ge=1, le=16, description="How many of them are seed tasks (the rest machine-made, once any are).")
    rouge_threshold: float = Field(0.7, gt=0, le=1, description="A new instruction whose ROUGE-L F against any in the pool is above this is rejected.")
    min_words: int = Field(4, ge=1, description="Shorter instructions are rejected (Chinese: characters / 2).")
    max_words: int = Field(150, ge=1, description="Longer instructions are rejected (Chinese: characters / 2).")
    instances: int = Field(1, ge=1, le=5, description="Instances (input, output) kept per instruction.")
    batch: int = Field(8, ge=1, le=256, description="Instruction prompts per wave (the pool grows between waves).")

    @model_validator(mode="after")
    def _counts(self) -> SelfInstructGen:
        if self.from_seeds > self.in_context:
            raise ValueError(f"from_seeds ({self.from_seeds}) is above in_context ({self.in_context})")
        if self.min_words > self.max_words:
            raise ValueError(f"min_words ({self.min_words}) is above max_words ({self.max_words})")
        return self


EVOL_OPERATIONS = ("add_constraints", "deepening", "concretizing", "increase_reasoning", "complicate_input", "breadth")


class EvolInstructGen(GeneratorBase):
    """Evol-Instruct (Xu et al. 2023): rewrite instructions in depth and in breadth over epochs, then answer them."""

    name: Literal["evol_instruct"]
    epochs: int = Field(2, ge=1, le=10, description="Evolution rounds over the pool (the paper ran 4).")
    operations: list[Literal[EVOL_OPERATIONS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(EVOL_OPERATIONS), min_length=1,
        description="Evolutions drawn from, uniformly: the five in-depth ones and in-breadth mutation.",
    )


class MagpieGen(GeneratorBase):
    """Magpie (Xu et al. 2024): the chat model writes a user query from the pre-query template alone, then answers it."""

    name: Literal["magpie"]
    system_prompt: str | None = Field(None, description="A system message before the pre-query template; default: the template's own.")
    rouge_threshold: float = Field(0.7, gt=0, le=1, description="Queries this similar (ROUGE-L F) to an earlier one are rejected.")
    batch: int = Field(16, ge=1, le=256, description="Queries per wave.")


class VAEGen(GeneratorBase):
    """A sentence VAE (Bowman et al. 2016) trained on the instructions at hand proposes new ones; the LLM answers."""

    name: Literal["vae"]
    epochs: int = Field(60, ge=1, le=1000, description="VAE training epochs.")
    latent_dim: int = Field(32, ge=2, le=512)
    word_dropout: float = Field(0.3, ge=0, lt=1, description="Decoder input words replaced by <unk> (keeps z informative).")
    sigma: float = Field(0.5, ge=0, description="Noise around an instruction's posterior mean for \"near\" proposals.")
    near_fraction: float = Field(0.5, ge=0, le=1, description="Share of proposals near one instruction; the rest between two.")
    rouge_threshold: float = Field(0.7, gt=0, le=1, description="Proposals this similar to a training instruction are rejected.")


class DialogueGen(GeneratorBase):
    """Multi-turn conversations over the documents: a persona with a goal asks, the assistant answers from passages."""

    name: Literal["dialogue"]
    turns: int = Field(3, ge=1, le=12, description="Most user turns; a conversation stops earlier when the goal is met.")
    personas: list[str] = Field(
        default_factory=lambda: [
            "a new customer who has just bought the product",
            "an experienced user who wants to solve a specific problem",
            "a busy manager deciding whether the product fits their team",
        ],
        min_length=1,
        description="User personas, drawn in turn (seeded).",
    )
    retrieve: int = Field(2, ge=1, le=8, description="Passages retrieved (BM25) for each assistant turn.")


GeneratorEntry = Annotated[
    Union[SelfInstructGen, EvolInstructGen, MagpieGen, VAEGen, DialogueGen], Field(discriminator="name")
]
GENERATORS = {"self_instruct": SelfInstructGen, "evol_instruct": EvolInstructGen, "magpie": MagpieGen, "vae": VAEGen,
              "dialogue": DialogueGen}
INSTRUCTION_GENERATORS = ("self_instruct", "evol_instruct", "magpie", "vae")
SEEDED_GENERATORS = ("self_instruct", "evol_instruct", "vae")


class WalkStart(Strict):
    """Where KG walks start (drawn with replacement)."""

    by: Literal["uniform", "type", "relation", "list"] = Field(
        "uniform", description="uniform: any entity with an edge; type: entities of `types`; relation: heads of "
        "`relations` (`name^-1` for tails); list: the named `entities`.",
    )
    types: list[str] = Field(default_factory=list, description="by type: type entities (ids as in the graph).")
    type_relation: str | None = Field(None, description="by type: the \"is a\" relation; default: rdf:type, isa, P31...")
    relations: list[str] = Field(default_factory=list, description="by relation: relation names.")
    entities: list[str] = Field(default_factory=list, description="by list: entity ids.")


Verbalisation = Union[str, dict[str, str]]


class Walks(Strict):
    """Random walks: over the knowledge graph (kg_qa) or over the passage graph of the documents (multi_doc_qa)."""

    strategy: Literal["uniform", "restart", "node2vec", "inverse_degree"] = Field(
        "inverse_degree",
        description="uniform: a random edge; restart: uniform, jumping back to the start with `restart_prob`; "
        "node2vec: biased by `p` (return) and `q` (in-out); inverse_degree: prefers low-degree neighbours, so hubs "
        "do not dominate.",
    )
    restart_prob: float = Field(0.15, ge=0, le=1, description="restart: probability of jumping back each step.")
    p: float = Field(1.0, gt=0, description="node2vec return parameter (high: rarely step back).")
    q: float = Field(1.0, gt=0, description="node2vec in-out parameter (below 1: explore outward).")
    batch: int = Field(512, ge=1, le=1_000_000, description="Walks drawn at a time.")
    max_walks: int | None = Field(
        None, ge=1, description="Stop after this many walks even below target_count; default: 200 x target_count."
    )
    # kg_qa
    start: WalkStart = Field(default_factory=WalkStart, description="kg_qa: start entity distribution.")
    min_hops: int = Field(1, ge=1, le=4, description="kg_qa: fewest relations in a question's path.")
    max_hops: int = Field(3, ge=1, le=4, description="kg_qa: most relations in a question's path.")
    max_answers: int = Field(10, ge=1, description="kg_qa: paths whose answer set is larger are rejected.")
    forward_only: bool = Field(False, description="kg_qa: walk only along triples' direction (no inverse edges).")
    reasoning: bool = Field(False, description="kg_qa: the response states the triples hop by hop before the answer.")
    paraphrase: bool = Field(
        False, description="kg_qa: the LLM rewords each derived question (kept only if it still names the topic)."
    )
    relations: dict[str, Verbalisation] = Field(
        default_factory=dict,
        description="kg_qa: verbalisation overrides per relation (`name^-1` for the inverse): a question template "
        "with {x}, or {question, phrase, statement, words}.",
    )
    answer_noun: str | None = Field(None, description="kg_qa: what answers are (\"country\"); default: their common type.")
    # multi_doc_qa
    min_passages: int = Field(2, ge=2, le=4, description="multi_doc_qa: fewest passages per question.")
    max_passages: int = Field(3, ge=2, le=4, description="multi_doc_qa: most passages per question.")
    neighbours: int = Field(4, ge=1, le=50, description="multi_doc_qa: BM25 nearest passages linked to each passage.")
    link_entities: bool = Field(True, description="multi_doc_qa: also link passages that share a named entity.")
    cross_document: bool = Field(True, description="multi_doc_qa: link only passages of different documents.")

    @model_validator(mode="after")
    def _ranges(self) -> Walks:
        if self.min_hops > self.max_hops:
            raise ValueError(f"min_hops ({self.min_hops}) is above max_hops ({self.max_hops})")
        if self.min_passages > self.max_passages:
            raise ValueError(f"min_passages ({self.min_passages}) is above max_passages ({self.max_passages})")
        return self


def _none_registered(entry: Any) -> Any:
    raise ValueError(f"no operator of this kind is registered (got {entry.name!r})")


def _op_entry(*kinds: type[ops_base.Operator]) -> Any:
    """The recipe type of one operator entry: the union of the registered configs of `kinds`, tagged by name."""
    types = tuple(t for kind in kinds for t in ops_base.config_types(kind))
    if not types:
        return Annotated[ops_base.OpConfig, AfterValidator(_none_registered)]
    if len(types) == 1:
        return types[0]
    return Annotated[Union[types], Field(discriminator="name")]  # type: ignore[valid-type]


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


Features = Annotated[list[FeatureEntry], AfterValidator(_check_unbounded)]  # type: ignore[valid-type]


class Cleaning(Strict):
    """Run in this order: mappers (PII redaction), the preset's filters then `filters`, then each `dedup` in turn."""

    preset: Literal["auto", "en", "zh", "none"] = Field(
        "auto",
        description="Language preset of filters (ops/presets.py): auto = the task's language (for kg_qa, whose text "
        "is templated, only format and length); none = only `filters`. An entry in `filters` with the same feature "
        "replaces the preset's.",
    )
    mappers: list[MapperEntry] = Field(default_factory=list, description="Rewriting operators, e.g. pii_redact.")  # type: ignore[valid-type]
    filters: list[FilterEntry] = Field(  # type: ignore[valid-type]
        default_factory=list, description="Any feature with min/max bounds; records outside are rejected."
    )
    dedup: list[DedupEntry] = Field(  # type: ignore[valid-type]
        default_factory=lambda: [ops_base.OPERATORS["exact_dedup"].Config()],
        description="exact_dedup, minhash_dedup, semantic_dedup; each runs over the survivors of the one before.",
    )


class Arms(Strict):
    """How the candidate pool is split into the bandit's arms."""

    by: Literal["cluster", "generator", "task", "source", "difficulty"] = Field(
        "cluster",
        description="cluster: k-means on the `embedding` feature's vectors; generator/task/source: the record's "
        "lineage generator, task or first source document; difficulty: quantile bins of `feature`.",
    )
    k: int = Field(8, ge=2, le=256, description="cluster: number of clusters; difficulty: number of bins.")
    feature: str = Field("ifd", description="difficulty: the feature binned (it must be in `features`).")
    vectors: str = Field("embedding", description="cluster: the vector feature clustered (it must be in `features`).")


class Budget(Strict):
    """Size of the exported subset: records or tokens (model tokens of the whole conversation), not both."""

    records: int | None = Field(None, ge=1, description="Keep at most this many records.")
    tokens: int | None = Field(None, ge=1, description="Keep records until their tokens reach this many.")

    @model_validator(mode="after")
    def _one(self) -> Budget:
        if self.records is not None and self.tokens is not None:
            raise ValueError("give `records` or `tokens`, not both")
        return self


class BanditSettings(Strict):
    """Exp3.S (Graves et al. 2017) and Online Data Mixing (Albalak et al. 2023) settings."""

    reward: Literal["target_prediction_gain", "prediction_gain", "gradient_alignment"] = Field(
        "target_prediction_gain",
        description="exp3s reward: loss drop on the probe set (target) or on the step's own batch, by the update; or "
        "the cosine between the batch's and the probe set's gradients (the first-order target prediction gain, "
        "less noisy; one extra backward pass over the probe set per step).",
    )
    batches: Literal["arm", "mixed"] = Field(
        "arm",
        description="arm: each step trains on a batch from one arm and its reward is about that arm (Graves et al.); "
        "mixed: each example of a batch comes from its own draw of an arm and its own signal rewards that arm "
        "(batches span topics like random ones, and the bandit learns batch_size rewards per step; needs a "
        "per-example reward: prediction_gain or gradient_alignment, or odm; gradients are taken one example at a time).",
    )
    within_arm: Literal["shuffled", "score"] = Field(
        "shuffled",
        description="Which of an arm's records a step draws: shuffled epochs (the paper), or best `selection.score` "
        "first every epoch (records without a valid score, e.g. IFD >= 1, last), the order the export budget takes "
        "them in, so training sees first what would be exported.",
    )
    prior: Literal["uniform", "size"] = Field(
        "uniform",
        description="exp3s: where the policy starts and what it explores from: uniform, each arm alike (Graves et "
        "al.); size, each arm's share of the records, so the untrained policy samples like a random batch and small "
        "odd arms are not over-sampled before the rewards speak.",
    )
    eta: float = Field(0.3, gt=0, description="Exp3.S step size; the paper's 1e-3 is for 10^5+ steps, a fine-tuning run of tens to hundreds of steps needs ~0.3.")
    epsilon: float = Field(0.05, ge=0, lt=1, description="Exp3.S share of uniform exploration.")
    alpha: float | None = Field(None, ge=0, lt=1, description="Exp3.S weight sharing (lets the policy switch arms); default 1/t, the paper's schedule.")
    window: int = Field(50, ge=10, description="Recent rewards whose 20th/80th percentiles rescale to [-1, 1].")
    detrend: int = Field(
        5, ge=0, description="Rank each gain against the mean of this many gains before it (0: raw gains, as the "
        "paper); short runs need it, since gains shrink as the loss flattens.",
    )
    smoothing: float = Field(0.9, ge=0, lt=1, description="odm: smoothing of each arm's loss estimate.")
    temperature: float = Field(1.0, gt=0, description="Budget shares are softmax(arm values / temperature).")

    @model_validator(mode="after")
    def _mixed_needs_a_per_example_reward(self) -> BanditSettings:
        if self.batches == "mixed" and self.reward == "target_prediction_gain":
            raise ValueError("batches: mixed rewards each example by its own signal, and the probe loss's drop is the "
                             "whole batch's: use reward prediction_gain or gradient_alignment, or batches: arm")
        return self


class Selection(Strict):
    """Which records to train on and export: a static strategy, or a bandit learnt while fine-tuning."""

    strategy: Literal["all", "uniform", "ifd_topk", "deita", "kcenter", "exp3s", "odm"] = Field(
        "exp3s",
        description="all: every record; uniform: a random subset; ifd_topk: highest IFD below 1 (needs the ifd "
        "feature); deita: quality score x diversity (needs `score` and the embedding vectors); kcenter: k-center "
        "greedy on embeddings; exp3s/odm: bandit over `arms` while training (needs `training`).",
    )
    budget: Budget = Field(default_factory=Budget, description="Size of the selected subset; default: all records.")
    arms: Arms = Field(default_factory=Arms)
    bandit: BanditSettings = Field(default_factory=BanditSettings)
    score: str = Field("ifd", description="deita and the bandit's within-arm order: the feature that ranks records.")
    score_higher_is_better: bool = Field(True, description="Direction of `score`.")
    diversity_threshold: float = Field(0.9, gt=0, le=1, description="deita: skip records this similar (cosine) to one kept.")
    eval_fraction: float = Field(0.1, ge=0, lt=0.5, description="Share of records held out for evaluation (never trained on).")
    probe_size: int = Field(16, ge=1, description="Held-out records whose loss rewards the bandit (taken from the eval split).")
    seed: int = Field(0, ge=0)


class LoRA(Strict):
    rank: int = Field(16, ge=1, le=1024)
    alpha: float = Field(32, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear", description="Module names to adapt, or all-linear (every linear layer but the output head)."
    )


class Training(Strict):
    """Supervised fine-tuning on the selected records: loss on assistant tokens only, the model's chat template."""

    model: str = Field("bundled", description="'bundled', a .gguf file (converted once) or a transformers model directory.")
    method: Literal["lora", "full"] = Field("lora")
    lora: LoRA = Field(default_factory=LoRA)
    steps: int = Field(200, ge=1, description="Optimizer steps.")
    batch_size: int = Field(4, ge=1, description="Examples per forward pass.")
    grad_accum: int = Field(1, ge=1, description="Forward passes per optimizer step.")
    learning_rate: float = Field(2e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup_steps: int = Field(10, ge=0)
    schedule: Literal["constant", "linear", "cosine"] = Field("constant", description="Learning-rate schedule after warm-up.")
    max_seq_len: int = Field(512, ge=16, description="Tokens per example; longer ones are cut (assistant tokens past it are not learnt).")
    eval_every: int = Field(20, ge=1, description="Steps between held-out loss measurements.")
    save_every: int = Field(50, ge=1, description="Steps between checkpoints (the resume points).")
    dtype: Literal["auto", "float32", "bfloat16"] = Field("float32", description="auto: bf16 only where this CPU runs it faster.")
    threads: int | None = Field(None, ge=1, description="CPU threads for torch; default: all cores.")
    merge: bool = Field(False, description="lora: also save the base model with the adapter merged in.")
    seed: int = Field(0, ge=0)


class Evaluation(Strict):
    """Held-out loss and perplexity, and generation metrics, for the base and the fine-tuned model side by side."""

    files: list[str] = Field(
        default_factory=list, description="Extra evaluation sets: .jsonl of records or of {messages: [...]} rows."
    )
    generate: bool = Field(True, description="Also generate answers and score them (exact match, F1, ROUGE-L...).")
    max_examples: int = Field(64, ge=1, description="At most this many examples per set for the generation metrics.")
    max_new_tokens: int = Field(128, ge=1)


ExportFormat = Literal["openai", "alpaca", "sharegpt", "parquet", "hf"]


class Output(Strict):
    formats: list[ExportFormat] = Field(
        default_factory=lambda: ["openai", "alpaca", "sharegpt", "parquet", "hf"],
        description="openai/alpaca/sharegpt: JSONL; parquet: full records; hf: datasets.save_to_disk.",
    )
    license: str | None = Field(None, description="License named in the dataset card.")


class RayConfig(Strict):
    """A Ray cluster for engine: ray. The run directory must be on storage every node sees."""

    address: str | None = Field(
        None, description="The cluster (`auto`, `ray://head:10001`, `head:6379`); default: RAY_ADDRESS, else a local Ray."
    )
    num_cpus: int | None = Field(None, ge=1, description="CPUs of a local Ray (no address); default: all.")
    workers: int | None = Field(
        None, ge=1, description="Operator actors, one CPU each; each loads the operators' models once. Default: one per CPU."
    )


class Recipe(Strict):
    """A whole sftforge recipe."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Run name; default run dir is runs/NAME.")
    task: Task
    sources: Sources
    generation: Generation = Field(default_factory=Generation)
    walks: Walks = Field(default_factory=Walks, description="Random walks for kg_qa and multi_doc_qa.")
    generators: list[GeneratorEntry] = Field(  # type: ignore[valid-type]
        default_factory=list,
        description="instruction and dialogue tasks: the generators, each with its share of target_count.",
    )
    features: Features = Field(  # type: ignore[valid-type]
        default_factory=list,
        description="Feature operators computed once into `features` (and vectors) by the features stage, for "
        "filters, selection and the report; filters compute any feature missing here on the fly.",
    )
    cleaning: Cleaning = Field(default_factory=Cleaning)
    selection: Selection | None = Field(None, description="Data selection; absent: every cleaned record is exported.")
    training: Training | None = Field(None, description="Fine-tuning; absent: no train and evaluate stages.")
    evaluation: Evaluation = Field(default_factory=Evaluation)
    rounds: int = Field(
        1, ge=1, le=20,
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
    def _sources_for_task(self) -> Recipe:
        kind = self.task.type
        if kind == "kg_qa" and self.sources.kg is None:
            raise ValueError("task.type kg_qa makes questions from a knowledge graph: add sources.kg with its triple file(s)")
        if kind not in ("kg_qa", "instruction") and not self.sources.documents:
            raise ValueError(f"task.type {kind} makes examples from documents: add sources.documents")
        if kind in ("kg_qa", "multi_doc_qa") and self.rounds > 1:
            raise ValueError(f"rounds > 1 plans the next round's single passages; {kind} walks a graph instead: use rounds: 1")
        return self

    @model_validator(mode="after")
    def _generators_for_task(self) -> Recipe:
        kind = self.task.type
        names = [g.name for g in self.generators]
        if kind == "dialogue" and not self.generators:
            self.generators = [DialogueGen(name="dialogue")]
        elif kind == "instruction":
            if not names:
                raise ValueError("task.type instruction needs generators: list one or more of " + ", ".join(INSTRUCTION_GENERATORS))
            if "dialogue" in names:
                raise ValueError("generator dialogue makes task.type dialogue; use it in a dialogue recipe")
            if self.task.target_count < len(names):
                raise ValueError(f"task.target_count ({self.task.target_count}) is below the number of generators ({len(names)}): each makes at least one record")
            if "magpie" in names and self.generation.model.backend == "openai":
                raise ValueError("generator magpie needs the model's chat template (its pre-query form), which a chat server does not expose: use the llamacpp or transformers backend")
            seeded = [n for n in names if n in SEEDED_GENERATORS]
            if seeded and self.sources.seeds is None:
                raise ValueError(f"generators {', '.join(seeded)} start from seed tasks: add sources.seeds (a .jsonl of seed tasks)")
            if self.rounds > 1:
                raise ValueError("rounds > 1 plans the next round's passages; instruction generators have none: use rounds: 1")
        elif kind == "dialogue":
            if names != ["dialogue"]:
                raise ValueError(f"task.type dialogue takes one generator, dialogue (got {', '.join(names)})")
            if self.rounds > 1:
                raise ValueError("rounds > 1 is not supported for dialogue yet: use rounds: 1")
        elif names:
            raise ValueError(f"generators are for task.type instruction or dialogue; {kind} has its own generator: remove `generators`")
        if len(set(names)) != len(names):
            raise ValueError("each generator may be listed once; raise its share instead")
        return self

    @model_validator(mode="after")
    def _selection_needs(self) -> Recipe:
        sel = self.selection
        if sel is not None and sel.strategy in ("exp3s", "odm") and self.training is None:
            raise ValueError(f"selection.strategy {sel.strategy} learns while fine-tuning: add a `training` section, or use a static strategy (all, uniform, ifd_topk, deita, kcenter)")
        if self.rounds > 1:
            if sel is None or sel.strategy not in ("exp3s", "odm"):
                raise ValueError("rounds > 1 feeds the bandit's arm values into the next round: set selection.strategy to exp3s or odm (with a `training` section)")
            if sel.arms.by not in ("cluster", "source"):
                raise ValueError(f"rounds > 1 needs arms that map onto passages: selection.arms.by cluster or source, not {sel.arms.by}")
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


def _is_tag(part: Any) -> bool:
    """Union tags pydantic puts into error locations (operator names, backends): not part of the YAML path."""
    return isinstance(part, str) and (part in ops_base.OPERATORS or part in BACKENDS or part in GENERATORS)


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class whose field set applies at `loc` (for listing allowed fields)."""
    model: Any = Recipe
    for part in loc:
        if isinstance(part, int):
            continue
        if isinstance(part, str) and part in ops_base.OPERATORS:
            model = ops_base.OPERATORS[part].Config
            continue
        if isinstance(part, str) and part in BACKENDS:
            model = BACKENDS[part]
            continue
        if isinstance(part, str) and part in GENERATORS:
            model = GENERATORS[part]
            continue
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            return None
        ann = fields[part].annotation
        model = _unwrap_model(ann)
        if model is None:
            return None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap_model(ann: Any) -> Any:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in getattr(ann, "__args__", ()) or ():
        found = _unwrap_model(arg)
        if found is not None:
            return found
    return None


def _describe_error(err: dict[str, Any], root: yaml.Node, source: str) -> str:
    loc = tuple(err["loc"])
    field = ".".join(str(p) for p in loc if not _is_tag(p)) or "(top level)"
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
            desc = model.model_fields[str(loc[-1])].description if model and str(loc[-1]) in model.model_fields else None
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
