"""The recipe's building blocks: the pydantic models of its sections, which the parts (generators, sources, LLM
backends, selection, training) read. `recipe.py` assembles the whole recipe from these and from the registries
(operators, generators, sources), so no part imports the recipe and every part's config stays with the part.

Validation is pydantic v2 with `extra="forbid"` everywhere, so a typo is an error, not a silently ignored field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StringConstraints, Tag, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Responsiveness(Strict):
    """The round-trip check that a grounded answer answers its question (`sftforge.lib.responsiveness`): the
    passage's sentences are ranked as answers to the question, and the answer's sentence must lead the next best
    one; summaries instead need every sentence supported by the passage."""

    enabled: bool = Field(
        False,
        description="Check grounded answers (QA extractive and open, exercises, dialogue turns, multi_doc_qa; "
        "summaries' faithfulness): a pair that fails is retried, then rejected.",
    )
    min_margin: float = Field(
        0.75,
        description="How far (in z-score units of the combined signals) the answer's sentence must lead the "
        "passage's next best sentence; 0 accepts a tie for first, negative values accept runners-up. The default "
        "keeps precision >= 0.90 on XQuAD (benchmarks/answer_check.py).",
    )
    candidates: int = Field(
        4,
        ge=1,
        le=10,
        description="Questions asked per chosen answer (best of n): with the check on, an item is tried up to "
        "max(this, generation.max_attempts) times until a question passes.",
    )
    embedder: str | None = Field(
        None,
        description="Sentence-transformers directory whose token vectors give the English paraphrase signal "
        "(maxsim); default: the packaged all-MiniLM-L6-v2.",
    )


class Constraints(Strict):
    """Bounds on what the generator may output; outputs outside them are retried, then rejected."""

    min_question_chars: int = Field(4, ge=1, description="Shortest acceptable question.")
    max_question_chars: int = Field(400, ge=1, description="Longest acceptable question.")
    min_answer_chars: int = Field(1, ge=1, description="Shortest acceptable answer or summary.")
    max_answer_chars: int = Field(1500, ge=1, description="Longest acceptable answer or summary.")
    num_options: int = Field(4, ge=2, le=6, description="Exercise: number of multiple-choice options.")
    max_summary_ratio: float = Field(0.9, gt=0, description="Summarization: summary length over passage length.")
    min_support: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Minimum share of answer content tokens found in the passage (or, for an "
        "extractive answer that is not an exact span, in the passage sentence it is snapped to).",
    )
    min_question_support: float = Field(
        0.4, ge=0, le=1, description="QA: minimum share of question content tokens found in the passage."
    )
    responsiveness: Responsiveness = Field(default_factory=Responsiveness)


BLOOM_LEVELS = ("remember", "understand", "apply", "analyse", "evaluate", "create")  # Anderson & Krathwohl 2001


class Audience(Strict):
    """A reader the data is written for (`task.audiences`): who they are, how deep they go, what they care about.
    Grounded generators cross audiences with `task.genres` and give each passage's items different pairs."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Short id, kept in lineage and export.")
    description: str = Field(
        min_length=3, description='Who they are, as the prompt names them: "a first-year student new to Python".'
    )
    expertise: Literal["beginner", "intermediate", "expert"] | None = Field(
        None, description="How deep answers and summaries go: plain words and steps, or terse and technical."
    )
    interests: list[str] = Field(
        default_factory=list, description="What summaries and questions should favour for this reader."
    )
    level: int | None = Field(
        None,
        ge=1,
        le=6,
        description="Exercises: the Bloom level asked for (1 remember, 2 understand, 3 apply, 4 analyse, "
        "5 evaluate, 6 create); the level of each exercise made is measured (`bloom_level`) and reported.",
    )
    length: Literal["one_line", "short", "detailed"] | None = Field(
        None, description="Length of answers and summaries for this reader."
    )


class Genre(Strict):
    """A style of record (`task.genres`), e.g. a step-by-step answer or a one-line answer, crossed with audiences."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Short id, kept in lineage and export.")
    instruction: str = Field(min_length=3, description='How to write it, as the prompt says it: "Answer step by step."')


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


class DataSearch(Strict):
    """Data search over imported datasets: rank each example by relevance to the task (its first user turn against
    the query), keep the best. `hybrid` fuses BM25's ranking with the MiniLM embedder's by reciprocal rank fusion
    (Cormack et al., 2009): each ranks what the other misses (rare exact terms; paraphrases)."""

    method: Literal["hybrid", "bm25", "dense", "none"] = Field(
        "hybrid", description="hybrid: BM25 and MiniLM ranks fused; bm25 or dense alone; none keeps file order."
    )
    query: str | None = Field(None, description="What examples are ranked against; default: the task description.")
    top_k: int | None = Field(None, ge=1, description="Keep at most this many examples (most relevant first).")
    min_similarity: float | None = Field(
        None, ge=-1, le=1, description="hybrid/dense: drop examples whose MiniLM cosine to the query is below this."
    )
    embedder: str | None = Field(None, description="A sentence-transformers folder; default: the packaged MiniLM.")


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
    base_url: HttpURL | list[HttpURL] = Field(
        description="Server URL up to /v1, e.g. http://127.0.0.1:8000/v1; or a list of servers of the same model, "
        "balanced (each request to the least busy, a failed one retried on another)."
    )
    model: str = Field(description="Model name the server expects.")
    api_key_env: str | None = Field(
        None, description="Name of the environment variable holding the API key (the key is never written)."
    )
    concurrency: int = Field(8, ge=1, le=1024, description="Requests in flight at once.")
    timeout: float = Field(120.0, gt=0, description="Seconds before a request is abandoned and retried.")
    max_retries: int = Field(
        6, ge=0, le=50, description="Retries of a failed request (429, 5xx, timeouts, bad bodies)."
    )


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
    Annotated[LlamaCppModel, Tag("llamacpp")]
    | Annotated[OpenAIModel, Tag("openai")]
    | Annotated[TransformersModel, Tag("transformers")],
    Discriminator(
        _backend_of,
        custom_error_type="backend",
        custom_error_message="backend must be 'llamacpp', 'openai' or 'transformers'",
    ),
]
BACKENDS: dict[str, type[Strict]] = {
    "llamacpp": LlamaCppModel,
    "openai": OpenAIModel,
    "transformers": TransformersModel,
}


class Sampling(Strict):
    temperature: float = Field(0.7, ge=0, le=2, description="0 is greedy; higher is more diverse, less coherent.")
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int = Field(256, ge=1, description="Most tokens generated per request.")
    seed: int = Field(0, ge=0, description="Base seed; each request's seed derives from it.")


class Generation(Strict):
    model: ModelSpec = Field(default_factory=LlamaCppModel)
    sampling: Sampling = Field(default_factory=Sampling)
    per_passage: int = Field(1, ge=1, le=32, description="Examples requested per passage.")
    min_per_doc: int = Field(
        0,
        ge=0,
        description="Coverage: each document's best passages, this many, are worked on before any document's "
        "further passages (grounded and dialogue generators), so no document is left out for lack of rank.",
    )
    per_1k_tokens: float = Field(
        0.0,
        ge=0,
        description="Coverage: passages per 1,000 tokens of each document worked on before the rest of the "
        "ranking (a long manual gets its share); 0: rank alone decides after min_per_doc.",
    )
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


class GeneratorConfig(Strict):
    """Base of every generator's recipe entry (under `generators`): its name, its share of the target and its
    sampling. Each generator's own config adds its settings and makes `name` a literal (generate/base.py)."""

    name: str
    share: float = Field(1.0, gt=0, description="This generator's share of task.target_count (shares are normalised).")
    sampling: SamplingOverride = Field(
        default_factory=SamplingOverride, description="Overrides of generation.sampling."
    )


class PoolConfig(GeneratorConfig):
    """An instruction generator that starts from a pool of tasks: the seed tasks, or examples found in the
    datasets you have (`sources.datasets`, most relevant first), which it then evolves or learns from."""

    pool: Literal["seeds", "datasets"] = Field(
        "seeds", description="seeds: sources.seeds; datasets: the most relevant examples of sources.datasets."
    )
    pool_size: int = Field(200, ge=1, description="datasets: how many of the most relevant examples form the pool.")


class WalkStart(Strict):
    """Where KG walks start (drawn with replacement)."""

    by: Literal["uniform", "type", "relation", "list"] = Field(
        "uniform",
        description="uniform: any entity with an edge; type: entities of `types`; relation: heads of "
        "`relations` (`name^-1` for tails); list: the named `entities`.",
    )
    types: list[str] = Field(default_factory=list, description="by type: type entities (ids as in the graph).")
    type_relation: str | None = Field(None, description='by type: the "is a" relation; default: rdf:type, isa, P31...')
    relations: list[str] = Field(default_factory=list, description="by relation: relation names.")
    entities: list[str] = Field(default_factory=list, description="by list: entity ids.")


Verbalisation = str | dict[str, str]


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
    answer_noun: str | None = Field(
        None,
        description='kg_qa: what answers are ("country"); default: from the graph (types, people, relation '
        "signatures).",
    )
    propose_lexicon: bool = Field(
        False,
        description="kg_qa: the LLM words the most used relations once each from a few triples (checked: "
        "placeholders, language, the statement reads back as the triple); accepted wordings are used for one-hop "
        "questions and statements, and land in kg_lexicon.yaml with origin llm.",
    )
    propose_relations: int = Field(30, ge=1, le=2000, description="kg_qa: how many relations propose_lexicon words.")
    lexicon_model: ModelSpec | None = Field(
        None, description="kg_qa: the model for propose_lexicon (e.g. a bigger one); default: generation.model."
    )
    lexicon: str | None = Field(
        None,
        description="kg_qa: a relation lexicon YAML (the run writes its own as kg_lexicon.yaml: edit it and name it "
        "here); its wordings replace the derived ones, `relations` overrides apply on top.",
    )
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
        "per-example reward: prediction_gain or gradient_alignment, or odm; each example's alignment is read off "
        "the batch's own backward pass).",
    )
    within_arm: Literal["shuffled", "score", "deita"] = Field(
        "shuffled",
        description="Which of an arm's records a step draws: shuffled epochs (the paper), or best `selection.score` "
        "first every epoch, the order the export budget takes them in, so training sees first what would be "
        "exported; records without a valid score (e.g. IFD >= 1) are not drawn, unless their arm has no other; "
        "deita: as score, and a record as similar as `selection.diversity_threshold` (cosine of the embeddings) to "
        "a better-scored one is not drawn either (DEITA's walk).",
    )
    prior: Literal["uniform", "size", "score"] = Field(
        "uniform",
        description="exp3s: where the policy starts and what it explores from: uniform, each arm alike (Graves et "
        "al.); size, each arm's share of the records, so the untrained policy samples like a random batch and small "
        "odd arms are not over-sampled before the rewards speak; score, each arm's count of records with a valid "
        "`selection.score` (for IFD: below 1), so the bandit starts where the static score filter would.",
    )
    drop_below: float | None = Field(
        None,
        description="mixed batches: an example whose raw reward is at or below this is not drawn again, and comes "
        "last in the budgeted choice. For gradient_alignment the reward is the cosine between the example's gradient "
        "and the probe set's: 0 drops the examples whose step would raise the probe loss (to first order).",
    )
    eta: float = Field(
        0.3,
        gt=0,
        description="Exp3.S step size; the paper's 1e-3 is for 10^5+ steps, a fine-tuning run of tens to hundreds of steps needs ~0.3.",
    )
    epsilon: float = Field(0.05, ge=0, lt=1, description="Exp3.S share of uniform exploration.")
    alpha: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="Exp3.S weight sharing (lets the policy switch arms); default 1/t, the paper's schedule.",
    )
    window: int = Field(50, ge=10, description="Recent rewards whose 20th/80th percentiles rescale to [-1, 1].")
    detrend: int = Field(
        5,
        ge=0,
        description="Rank each gain against the mean of this many gains before it (0: raw gains, as the "
        "paper); short runs need it, since gains shrink as the loss flattens.",
    )
    probe_every: int = Field(
        10,
        ge=1,
        description="gradient_alignment: steps between recomputations of the probe set's gradient that each step's "
        "gradients are compared with (1: every step, one backward pass over the probe set per step).",
    )
    smoothing: float = Field(0.9, ge=0, lt=1, description="odm: smoothing of each arm's loss estimate.")
    temperature: float = Field(1.0, gt=0, description="Budget shares are softmax(arm values / temperature).")

    @model_validator(mode="after")
    def _drop_needs_mixed_batches(self) -> BanditSettings:
        if self.drop_below is not None and self.batches != "mixed":
            raise ValueError("drop_below judges each example by its own reward: it needs batches: mixed")
        return self

    @model_validator(mode="after")
    def _mixed_needs_a_per_example_reward(self) -> BanditSettings:
        if self.batches == "mixed" and self.reward == "target_prediction_gain":
            raise ValueError(
                "batches: mixed rewards each example by its own signal, and the probe loss's drop is the "
                "whole batch's: use reward prediction_gain or gradient_alignment, or batches: arm"
            )
        return self


BANDIT_STRATEGIES = ("exp3s", "odm")  # selection strategies that learn while fine-tuning


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
    max_end_loss: float | None = Field(
        None,
        gt=0,
        description="Records whose `end_loss` feature is above this (answers cut off mid-sentence) are unscored: "
        "ifd_topk, deita and the bandit's ranked queues pass over them. With the bundled model: 8 for English, 20 "
        "for Chinese (its scale differs there); default: no such gate.",
    )
    diversity_threshold: float = Field(
        0.9, gt=0, le=1, description="deita: skip records this similar (cosine) to one kept."
    )
    eval_fraction: float = Field(
        0.1, ge=0, lt=0.5, description="Share of records held out for evaluation (never trained on)."
    )
    probe_size: int = Field(
        16, ge=1, description="Held-out records whose loss rewards the bandit (taken from the eval split)."
    )
    seed: int = Field(0, ge=0)


class LoRA(Strict):
    rank: int = Field(16, ge=1, le=1024)
    alpha: float = Field(32, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear", description="Module names to adapt, or all-linear (every linear layer but the output head)."
    )
    top_layers: int | None = Field(
        None,
        ge=1,
        description="Adapt only the last N transformer layers (default: all). Backpropagation then stops at the "
        "lowest adapted layer, so a step costs less; the adapter can change less.",
    )


class Training(Strict):
    """Supervised fine-tuning on the selected records: loss on assistant tokens only, the model's chat template."""

    model: str = Field(
        "bundled", description="'bundled', a .gguf file (converted once) or a transformers model directory."
    )
    method: Literal["lora", "full"] = Field("lora")
    lora: LoRA = Field(default_factory=LoRA)
    steps: int = Field(200, ge=1, description="Optimizer steps.")
    batch_size: int = Field(4, ge=1, description="Examples per forward pass.")
    grad_accum: int = Field(1, ge=1, description="Forward passes per optimizer step.")
    learning_rate: float = Field(2e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup_steps: int = Field(10, ge=0)
    schedule: Literal["constant", "linear", "cosine"] = Field(
        "constant", description="Learning-rate schedule after warm-up."
    )
    max_seq_len: int = Field(
        512, ge=16, description="Tokens per example; longer ones are cut (assistant tokens past it are not learnt)."
    )
    eval_every: int = Field(20, ge=1, description="Steps between held-out loss measurements.")
    save_every: int = Field(50, ge=1, description="Steps between checkpoints (the resume points).")
    dtype: Literal["auto", "float32", "bfloat16", "mixed"] = Field(
        "float32",
        description="auto: bf16 only where this CPU runs it faster; mixed: fp32 weights and updates, bf16 matrix "
        "products (torch.autocast), faster where the CPU has bf16 and closer to fp32 than bf16 weights.",
    )
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


ExportFormat = Literal["openai", "alpaca", "sharegpt", "parquet", "hf", "llamafactory"]


def _all_formats() -> list[ExportFormat]:
    return ["openai", "alpaca", "sharegpt", "parquet", "hf", "llamafactory"]


class Output(Strict):
    formats: list[ExportFormat] = Field(
        default_factory=_all_formats,
        description="openai (OpenAI/TRL messages), alpaca, sharegpt: JSONL; parquet: full records; hf: "
        "datasets.save_to_disk; llamafactory: a folder with dataset_info.json for LLaMA-Factory's dataset_dir.",
    )
    license: str | None = Field(None, description="License named in the dataset card.")
    audience_columns: bool = Field(
        False,
        description="Add `audience` and `genre` columns (from lineage) to the JSONL formats; the record's system "
        "message names them anyway when task.audience_prompt is system.",
    )


class RayConfig(Strict):
    """A Ray cluster for engine: ray. The run directory must be on storage every node sees."""

    address: str | None = Field(
        None,
        description="The cluster (`auto`, `ray://head:10001`, `head:6379`); default: RAY_ADDRESS, else a local Ray.",
    )
    num_cpus: int | None = Field(None, ge=1, description="CPUs of a local Ray (no address); default: all.")
    workers: int | None = Field(
        None,
        ge=1,
        description="Operator actors, one CPU each; each loads the operators' models once. Default: one per CPU.",
    )
