"""The dataset card (README.md): what the data is, how it was made, and what was removed on the way."""

from __future__ import annotations

from array import array
from collections import Counter
from typing import Any

import jinja2

from sftforge.figures import (
    CleanFigures,
    Coverage,
    EvaluateFigures,
    GenerateFigures,
    ReviewCounts,
    SelectFigures,
    SourcesFigures,
    TrainFigures,
    read_figures,
)
from sftforge.generate.base import GENERATORS
from sftforge.lib.balance import BALANCE_SCORES, BalanceCounter
from sftforge.ops.model_features import BUNDLED_PREFERENCE_AUC
from sftforge.ops.pii import PiiRedactConfig
from sftforge.recipe import Recipe
from sftforge.run import RunDir
from sftforge.sample import Record
from sftforge.summary import contamination as contamination_figures
from sftforge.summary import funnel_rows, operator_rows, pii_by_type

_CARD = jinja2.Template(
    """---
language:
{%- for lang in languages %}
- {{ lang }}
{%- endfor %}
{%- if license %}
license: {{ license }}
{%- endif %}
task_categories:
- text-generation
{%- if has_qa %}
- question-answering
{%- endif %}
{%- if has_summary %}
- summarization
{%- endif %}
tags:
- synthetic
- sftforge
size_categories:
- {{ size_category }}
---

# {{ name }}

{{ description }}

Made by sftforge {{ version }} from the recipe `recipe.yaml` stored next to
this card. Every record points back to what it was made from (`source`: document id, chunk id and character
offsets of its passage, or the knowledge-graph path and triples behind its answer) and says how it was made
(`lineage`).

## Contents

| | |
|---|---|
| records | {{ n }} |
| tasks | {{ tasks }} |
| languages | {{ langs }} |
| answers verified against their source | {{ checked }} ({{ methods }}) |
| mean user / assistant length (characters) | {{ user_len }} / {{ assistant_len }} |

## Files

| format | file | records |
|---|---|---|
{%- for fmt, info in files.items() %}
| {{ fmt }} | `{{ info.path }}` | {{ info.records }}{% if info.multi_turn_skipped %} ({{ info.multi_turn_skipped }} multi-turn records not representable){% endif %}{% if info.datasets %} (LLaMA-Factory: `dataset_dir: {{ info.path }}`, `dataset: {{ info.datasets | join(", ") }}`){% endif %}{% if info.left_out %}; {{ info.left_out }} left out by the pre-flight, e.g. `{{ info.left_out_examples[0].id }}`: {{ info.left_out_examples[0].reason }}{% endif %} |
{%- endfor %}

## How it was made

- **Generator**: {{ generators }}
- **Model**: `{{ model }}`
- **Sampling**: temperature {{ sampling.temperature }}, top_p {{ sampling.top_p }}, max_tokens {{ sampling.max_tokens }}, seed {{ sampling.seed }}
- **Prompt templates**: {{ templates }}
- **Attempts per accepted record**: mean {{ attempts }}
{%- if kg %}
- **Knowledge graph**: {{ kg.entities }} entities, {{ kg.relations }} relations, {{ kg.triples }} triples, from {{ kg.files }}
- **Walks**: {{ kg.walks }}; paths by hops: {{ kg.hops }}
{%- endif %}
{%- if seeds %}
- **Seed tasks**: {{ seeds.count }} from `{{ seeds.path }}`
{%- endif %}
{%- if generator_rows %}
- **Generators** (tokens per record: prompt and completion tokens of every attempt, rejected items included, per kept record; diversity of the user turns: distinct-2, higher is more varied; mean pairwise ROUGE-L, lower is more varied):

| generator | records / target | tokens per record | temperature, top_p | distinct-2 | mean ROUGE-L | notes |
|---|---|---|---|---|---|---|
{%- for g in generator_rows %}
| {{ g.name }} | {{ g.records }} / {{ g.target }} | {{ g.tokens_per_record }} | {{ g.temperature }}, {{ g.top_p }} | {{ g.distinct_2 }} | {{ g.rouge_l }} | {{ g.notes }} |
{%- endfor %}
{%- endif %}
{%- if n_docs %}
- **Sources**: {{ n_docs }} documents, {{ n_chunks }} passages ({{ used_chunks }} usable), ranked by {{ retrieval }}{% if query %} for "{{ query }}"{% endif %}
{%- for src in source_paths %}
  - `{{ src }}`
{%- endfor %}
- **Most used documents**: {{ top_docs }}
{%- endif %}

## What was removed

| stage | records in | kept | removed |
|---|---|---|---|
{%- for row in funnel %}
| {{ row.stage }} | {{ row.input }} | {{ row.kept }} | {{ row.removed }} |
{%- endfor %}

{% if reasons %}Top reasons:

| stage | operator | reason | records |
|---|---|---|---|
{%- for r in reasons %}
| {{ r.stage }} | {{ r.operator }} | {{ r.reason }} | {{ r.count }} |
{%- endfor %}
{%- endif %}

{% if by_operator %}Cleaning, per operator (in the order they ran):

| operator | records seen | removed |
|---|---|---|
{%- for op in by_operator %}
| {{ op.name }} | {{ op.seen }} | {{ op.removed }} |
{%- endfor %}
{%- endif %}
{% if pii %}
- **Personal data redacted** (`pii_redact`, {{ pii_mode }}): {{ pii }}
{%- endif %}
{%- if contamination is not none %}
- **Benchmark contamination** (`decontaminate`, {{ contamination_action }}): {{ contamination or "none found" }}
{%- if contamination_unchecked %}; too short to check: {{ contamination_unchecked }}{% endif %}
{%- endif %}
{%- for name, file in clusters.items() %}
- **{{ name }}**: duplicate clusters in `clean/{{ file }}` of the run directory
{%- endfor %}
{%- if review %}
- **Human review** (`review/decisions.jsonl`): {{ review.rejected | length }} record(s) rejected by a reviewer, {{ review.restored | length }} removed record(s) brought back
{%- endif %}

Removed records are kept, with their reason, in the run directory's `rejected/` folder.
{% if selection %}
## Selection and fine-tuning

- **Strategy**: `{{ selection.strategy }}`{% if selection.budget %}, budget {{ selection.budget }}{% endif %}; held out: {{ selection.splits }}
{%- if training %}
- **Fine-tuning**: {{ training.method }} on `{{ training.model }}`, {{ training.steps }} steps of {{ training.batch }} examples, learning rate {{ training.lr }}; held-out loss {{ training.curve }}
{%- if training.dropped is not none %}
- **Dropped by the bandit**: {{ training.dropped }} record(s) whose gradient pointed away from the probe set's (reward at or below `drop_below`); they come last in the budgeted choice
{%- endif %}
{%- endif %}
{% if arms %}
| arm | records | chosen | learnt value | final probability |
|---|---|---|---|---|
{%- for a in arms %}
| {{ a.name }} | {{ a.records }} | {{ a.chosen }} | {{ "%.3f"|format(a.value) }} | {{ "%.3f"|format(a.probability) if a.probability is not none else "-" }} |
{%- endfor %}
{% endif %}
{%- if evaluation %}
Evaluation, base model vs fine-tuned:

| set | metric | base | fine-tuned |
|---|---|---|---|
{%- for row in evaluation %}
| {{ row.set }} | {{ row.metric }} | {{ row.base }} | {{ row.tuned }} |
{%- endfor %}
{% endif %}
{%- endif %}
{% if features %}
## Features

Computed per record (`features` in `data.parquet`), over the records in this dataset:

| feature | mean | median | min | max |
|---|---|---|---|---|
{%- for f in features %}
| {{ f.name }} | {{ f.mean }} | {{ f.median }} | {{ f.min }} | {{ f.max }} |
{%- endfor %}
{% endif %}
{% if toxicity %}
**Offensive language** (`toxicity`, in cleaning): {{ toxicity.screened }} records screened{% if toxicity.not_screened %}; **not screened** (no screen for the language; kept, not known to be safe): {% for lang, k in toxicity.not_screened.items() %}{{ lang }} {{ k }}{% if not loop.last %}, {% endif %}{% endfor %}{% endif %}.
{% endif %}
{% if refusals is not none %}
**Replies that refuse** (`refusal`, stock refusals such as "I'm sorry, but I can't..." or "作为一个人工智能..."):
{{ refusals }} of {{ n }} records{% if n %} ({{ "%.1f%%"|format(100 * refusals / n) }}){% endif %}{% if over_refusals is not none %}; of
which refusing a request the rules find harmless (over-refusal, `over_refusal`): {{ over_refusals }}{% endif %}{% if harmful_compliance is not none %}.
Replies that go along with a plain request for serious harm (`harmful_compliance`): {{ harmful_compliance }}{% endif %}.
The rules see stock wording only; a recipe that needs more names a judge model. Bound a feature (`max: 0`) to remove
such records.
{% endif %}
{% if harm_judge %}
**Harmful compliance, judged** (`harm_judge`, judge `{{ harm_judge.judge }}`): {% if harm_judge.unavailable %}**the judge did not run** ({{ harm_judge.unavailable }}). The records were screened by the rules only (`refusal`); rerun `sftforge clean RUN_DIR --force` once the server is up.{% else %}{{ harm_judge.judged }} records judged{% if harm_judge.unjudged %}; {{ harm_judge.unjudged }} replies the judge answered with neither yes nor no (kept, unjudged){% endif %}.{% endif %}
{% endif %}
{% if balance %}
## Who the data speaks about

Mentions of demographic groups (gender, religion, age, nationality; term lists in `sftforge/lib/balance.py`, after
Bolukbasi et al. 2016, Dixon et al. 2018 and HolisticBias) in the {{ balance.records }} records. A mention says a
group is named, not how it is treated{% if balance.score %}; the mean `{{ balance.score }}` of the records naming a
group says more{% endif %}.

| group | records naming it | share | mentions |{% if balance.score %} mean {{ balance.score }} |{% endif %}
|---|---|---|---|{% if balance.score %}---|{% endif %}
{%- for name, g in balance.groups.items() %}
| {{ name }} | {{ g.records }} | {{ "%.1f%%"|format(100 * g.share) }} | {{ g.mentions }} |{% if balance.score %} {{ g.mean_score if g.mean_score is not none else "-" }} |{% endif %}
{%- endfor %}

Skew between paired groups, log2 of (mentions + 1) of the first over the second (0 is balance, +1 twice as many):
{%- for p in balance.pairs %}
- **{{ p.pair }}**: {{ p.a }} / {{ p.b }}, skew {{ p.skew if p.skew is not none else "-" }}
{%- for s, v in p.slices.items() %}; {{ s }} {{ v.skew }}{% endfor %}
{%- endfor %}
{% endif %}
{% if audiences %}
**Written for** (`task.audiences` x `task.genres`, from lineage): {{ audiences }}.
{% endif %}
{% if coverage %}
## Coverage

The records come from {{ coverage.documents_covered }} of {{ coverage.documents }} documents,
{{ coverage.passages_used }} of {{ coverage.passages }} usable passages and {{ coverage.sections_covered }} of
{{ coverage.sections }} sections (Markdown and reStructuredText headings). Documents with the fewest records:

| document | records | passages used | usable passages | tokens |
|---|---|---|---|---|
{%- for d in coverage.by_document[:10] %}
| `{{ d.doc_id }}` | {{ d.records }} | {{ d.passages_used }} | {{ d.passages }} | {{ d.tokens }} |
{%- endfor %}
{% if coverage.uncovered_sections %}
Sections no record comes from (what the dataset does not teach; `generation.min_per_doc` and `per_1k_tokens`
spread the budget): {% for u in coverage.uncovered_sections[:12] %}`{{ u.doc_id }}` "{{ u.section }}"{% if not loop.last %}, {% endif %}{% endfor %}{% if coverage.uncovered_sections | length > 12 %} and {{ coverage.uncovered_sections | length - 12 }} more (manifest, export figures){% endif %}.
{% endif %}
{% endif %}
## Limitations

Generated by a language model: answers can be wrong even when they are grounded in a passage. `answer_check`
records whether each answer was verified (span match for extractive QA, token overlap otherwise, and where the
responsiveness check ran, whether the answer's sentence is the passage's best answer to the question); review a
sample before training on it.
{%- if weak_scores %}

Scored by the bundled 135M model, which barely agrees with human preference (AUC of the preferred reply scoring
better, 0.5 is chance, on 500 HH-RLHF helpful pairs, `benchmarks/scorers.py`): {{ weak_scores }}. Read these
features as rough signals, not as quality; name a bigger `model` (or, for `llm_judge`, a `server`) where they
decide what is kept.
{%- endif %}
"""
)


def _size_category(n: int) -> str:
    for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < bound:
            return label
    return "n>1M"


def _mix(counter: Counter[str]) -> str:
    total = sum(counter.values()) or 1
    return ", ".join(f"{k} {v} ({v / total:.0%})" for k, v in counter.most_common())


def _kg_summary(recipe: Recipe, run: RunDir, generate: GenerateFigures | None) -> dict[str, Any] | None:
    """The knowledge graph and walk settings behind kg_qa records, for the card."""
    src = run.stage_info("sources")
    counts = src.counts if src else {}
    if "kg_entities" not in counts:
        return None
    w = recipe.walks
    walks = f"{w.strategy}, {w.min_hops}-{w.max_hops} hops, at most {w.max_answers} answers"
    if w.paraphrase:
        walks += ", questions reworded by the LLM"
    hops: dict[str, int] = {}
    for g in generate.generators.values() if generate else []:
        hops |= g.own.get("hops", {})
    return {
        "entities": counts["kg_entities"],
        "relations": counts["kg_relations"],
        "triples": counts["kg_triples"],
        "files": ", ".join(f"`{p}`" for p in recipe.sources.kg.paths) if recipe.sources.kg else "-",
        "walks": walks,
        "hops": ", ".join(f"{k}: {v}" for k, v in hops.items()) or "-",
    }


def _generator_rows(generate: GenerateFigures | None) -> list[dict[str, Any]]:
    """One row per generator: its output, sampling, diversity and what it reports about itself (`notes`)."""
    rows = []
    for name, g in generate.generators.items() if generate else []:
        cls = GENERATORS.get(name)
        rows.append(
            {
                "name": name,
                "records": g.records,
                "target": g.target,
                "tokens_per_record": g.tokens_per_record if g.tokens_per_record is not None else "-",
                "temperature": g.sampling.get("temperature", "-"),
                "top_p": g.sampling.get("top_p", "-"),
                "distinct_2": g.diversity.distinct_2,
                "rouge_l": g.diversity.mean_pairwise_rouge_l,
                "notes": cls.notes(g.own) if cls else "",
            }
        )
    return rows


class CardStats:
    """What the card says about the exported records, gathered batch by batch (`add`) as export writes them."""

    def __init__(self) -> None:
        self.n = 0
        self.checked = 0
        self.methods: Counter[str] = Counter()
        self.tasks: Counter[str] = Counter()
        self.langs: Counter[str] = Counter()
        self.user_chars = 0
        self.assistant_chars = 0
        self.generators: set[str] = set()
        self.templates: set[str] = set()
        self.attempts = 0
        self.with_lineage = 0
        self.docs: Counter[str] = Counter()
        self.features: dict[str, array[float]] = {}
        self.balance = BalanceCounter()
        self.audiences: Counter[str] = Counter()  # records per audience/genre pair, from lineage

    @classmethod
    def of(cls, records: list[Record]) -> CardStats:
        stats = cls()
        stats.add(records)
        return stats

    def add(self, records: list[Record]) -> None:
        for r in records:
            self.n += 1
            if r.answer_check:
                self.methods[r.answer_check.method] += 1
                self.checked += r.answer_check.passed
            self.tasks[r.task] += 1
            self.langs[r.lang] += 1
            self.user_chars += len(r.text_of("user"))
            self.assistant_chars += len(r.text_of("assistant"))
            if r.lineage:
                self.with_lineage += 1
                self.attempts += r.lineage.attempts
                self.generators.add(r.lineage.generator)
                if r.lineage.audience or r.lineage.genre:
                    self.audiences["/".join(x for x in (r.lineage.audience, r.lineage.genre) if x)] += 1
                if r.lineage.template:
                    self.templates.add(f"`{r.lineage.template}` ({r.lineage.template_hash})")
            self.docs.update(s.doc_id for s in r.source if s.kind == "chunk" and s.doc_id)
            for name, value in r.features.items():
                self.features.setdefault(name, array("d")).append(value)
            self._balance(r)

    def _balance(self, r: Record) -> None:
        """Group mentions of the whole conversation, sliced by task and generator, with the first score of
        BALANCE_SCORES the records carry."""
        b = self.balance
        if b.score_name is None:
            b.score_name = next((n for n in BALANCE_SCORES if n in r.features), None)
        slices = [f"task {r.task}"] + ([f"generator {r.lineage.generator}"] if r.lineage else [])
        if r.lineage and r.lineage.audience:
            slices.append(f"audience {r.lineage.audience}")
        score = r.features.get(b.score_name) if b.score_name else None
        b.add(r.text_of("all"), r.lang, slices, score)


def render_card(
    recipe: Recipe,
    stats: CardStats,
    run: RunDir,
    files: dict[str, Any],
    reasons: list[dict[str, Any]],
    version: str,
    review: ReviewCounts | None = None,
    coverage: Coverage | None = None,
) -> str:
    """The card; `review` holds the ids a reviewer rejected and brought back (sftforge/review); `coverage` what
    the records cover of the documents."""
    src = run.stage_info("sources")
    src_counts = src.counts if src else {}
    sources = read_figures(run, SourcesFigures)
    generate = read_figures(run, GenerateFigures)
    clean = read_figures(run, CleanFigures)
    n = stats.n
    pii = pii_by_type(run)
    contamination = contamination_figures(run)
    return _CARD.render(
        name=recipe.name,
        description=recipe.task.description,
        version=version,
        languages=sorted(set(stats.langs) or {recipe.task.language}),
        license=recipe.output.license,
        has_qa=bool(stats.tasks["qa"] or stats.tasks["exercise"]),
        has_summary=bool(stats.tasks["summarization"]),
        size_category=_size_category(n),
        n=n,
        tasks=_mix(stats.tasks) or "-",
        langs=_mix(stats.langs) or "-",
        checked=f"{stats.checked} of {n} ({stats.checked / n:.0%})" if n else "0",
        methods=_mix(stats.methods) or "none",
        user_len=round(stats.user_chars / n) if n else 0,
        assistant_len=round(stats.assistant_chars / n) if n else 0,
        files=files,
        generators=", ".join(sorted(stats.generators)) or "-",
        model=generate.model if generate else "-",
        sampling=recipe.generation.sampling,
        templates=", ".join(sorted(stats.templates)) or "-",
        kg=_kg_summary(recipe, run, generate),
        generator_rows=_generator_rows(generate),
        seeds={"count": src_counts.get("seed_tasks", 0), "path": recipe.sources.seeds.path}
        if recipe.sources.seeds
        else None,
        attempts=round(stats.attempts / stats.with_lineage, 2) if stats.with_lineage else "-",
        n_docs=src_counts.get("documents", 0),
        n_chunks=src_counts.get("chunks", 0),
        used_chunks=src_counts.get("used_chunks", 0),
        retrieval=recipe.sources.retrieval.method,
        query=sources.query if sources else None,
        source_paths=[d.path for d in recipe.sources.documents],
        top_docs=", ".join(f"`{d}` ({k})" for d, k in stats.docs.most_common(5)) or "-",
        funnel=funnel_rows(run),
        review=review if review and (review.rejected or review.restored) else None,
        reasons=reasons,
        by_operator=operator_rows(run),
        pii=", ".join(f"{t} {k}" for t, k in sorted(pii.items(), key=lambda kv: -kv[1])),
        pii_mode=next((m.mode for m in recipe.cleaning.mappers if isinstance(m, PiiRedactConfig)), ""),
        contamination=None
        if contamination is None
        else ", ".join(f"{b} {k}" for b, k in contamination.contaminated_by_benchmark.items()),
        contamination_action=None if contamination is None else contamination.action,
        contamination_unchecked=None
        if contamination is None
        else "; ".join(f"{b} {v}" for b, v in contamination.too_short_to_check.items()),
        clusters=clean.duplicate_clusters if clean else {},
        features=_feature_summary(stats.features),
        balance=stats.balance.figures() if stats.balance.mentions else None,
        audiences=", ".join(f"{a} {k}" for a, k in sorted(stats.audiences.items())),
        coverage=coverage,
        refusals=int(sum(stats.features["refusal"])) if "refusal" in stats.features else None,
        over_refusals=int(sum(stats.features["over_refusal"])) if "over_refusal" in stats.features else None,
        harmful_compliance=int(sum(stats.features["harmful_compliance"]))
        if "harmful_compliance" in stats.features
        else None,
        toxicity=clean.toxicity() if clean else None,
        harm_judge=clean.harm_judge() if clean else None,
        weak_scores=", ".join(
            f"`{name}` {auc:.2f}" for name, auc in BUNDLED_PREFERENCE_AUC.items() if name in stats.features
        ),
        **_selection(recipe, run),
    )


def _selection(recipe: Recipe, run: RunDir) -> dict[str, Any]:
    """What the card says about selection, training and evaluation (nothing when the recipe has none)."""
    sel = recipe.selection_in_force
    select = read_figures(run, SelectFigures)
    if sel is None or select is None:
        return {"selection": None, "training": None, "arms": [], "evaluation": []}
    budget = sel.budget
    info = {
        "strategy": sel.strategy,
        "budget": f"{budget.records} records"
        if budget.records
        else (f"{budget.tokens} tokens" if budget.tokens else ""),
        "splits": ", ".join(f"{k} {v}" for k, v in select.splits.items()),
    }
    train = read_figures(run, TrainFigures)
    cfg = recipe.training
    training = None
    if cfg is not None and train is not None:
        curve = train.eval_curve
        training = {
            "method": cfg.method,
            "model": cfg.model,
            "steps": train.steps,
            "batch": cfg.batch_size * cfg.grad_accum,
            "lr": cfg.learning_rate,
            "curve": " -> ".join(f"{v:.3f} (step {s})" for s, v in (curve[:1] + curve[-1:]) if v is not None) or "-",
            "dropped": train.dropped,
        }
    rows = []
    evaluated = read_figures(run, EvaluateFigures)
    for set_name, entry in evaluated.results.items() if evaluated else []:
        for metric, base in entry.get("base", {}).items():
            tuned = entry.get("tuned", {}).get(metric)
            if isinstance(base, float) and isinstance(tuned, float):
                rows.append({"set": set_name, "metric": metric, "base": f"{base:.4g}", "tuned": f"{tuned:.4g}"})
    return {"selection": info, "training": training, "arms": train.arms or [] if train else [], "evaluation": rows}


def _feature_summary(features: dict[str, array[float]]) -> list[dict[str, Any]]:
    import numpy as np

    rows = []
    for name in sorted(features):
        values = np.frombuffer(features[name], dtype=np.float64)
        values = values[np.isfinite(values)]
        if len(values):
            stats = (values.mean(), np.median(values), values.min(), values.max())
            rows.append(dict(zip(("mean", "median", "min", "max"), (f"{v:.3g}" for v in stats)), name=name))
    return rows
