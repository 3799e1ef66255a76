"""`kg_walk` (task kg_qa): relation paths from random walks over a knowledge graph become verified questions.

The examples themselves need no LLM: a walk's relation path from its topic entity is verbalised into a question,
and the answer is the full answer set of that path executed over the whole graph (`sftforge.kg.paths`). Paths
that revisit an entity, have too many answers or a shortcut are rejected with their reason. With
`walks.paraphrase` the LLM rewords each derived question; a rewording that is not one question naming the topic
is not used (the derived question is kept), so a paraphrase never costs an example.

Resumable like every generator: walks are drawn in seeded batches in the same order on every run, each path's key
goes into the ledger once its example or rejection is committed, and a rerun skips committed keys.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from sftforge.config import GeneratorConfig, Walks
from sftforge.generate.base import (
    Generator,
    RecordStep,
    Session,
    Template,
    Wave,
    WorkItem,
    chat_from_template,
    load_template,
    register,
)
from sftforge.generate.kg_lexicon import propose
from sftforge.kg import (
    KnowledgeGraph,
    PathExample,
    PathRejection,
    RelationPath,
    path_example,
    paths_from_walks,
    random_walks,
    start_nodes,
    with_paraphrase,
)
from sftforge.kg.classes import ClassNamer
from sftforge.kg.lexicon import Lexicon, LexiconError
from sftforge.llm import open_llm
from sftforge.sample import Lineage, Record, Rejected, SourceRef, record_id

if TYPE_CHECKING:
    from sftforge.recipe import Recipe, Task

log = logging.getLogger(__name__)
LEXICON_FILE = "kg_lexicon.yaml"  # the relation lexicon a run used, in its directory
PATH_KIND = "kg_path"  # SourceRef kind of the relation path a record asks about: "topic<TAB>relation<TAB>..."


@dataclass(frozen=True, slots=True)
class Candidate:
    """One walk's relation path, under a key that is stable across reruns (batch and position in it)."""

    key: str
    path: RelationPath
    duplicate: bool  # an earlier walk gave the same topic and relation path


class KGWalkStep(RecordStep):
    """Walks into candidate relation paths, paths into examples (no LLM), and the optional paraphrase step."""

    name = "kg_walk"
    stop = ("\n",)

    def __init__(self, task: Task, walks: Walks, graph: KnowledgeGraph, lexicon: Lexicon | None = None) -> None:
        self.task = task
        self.walks = walks
        self.graph = graph
        self.lang = task.language
        self.lexicon = (
            lexicon if lexicon is not None else Lexicon.for_graph(graph, task.language, overrides=walks.relations)
        )
        self.classes = ClassNamer(graph, self.lexicon, walks.answer_noun)
        self._template = load_template(self.lang, "kg_paraphrase")

    @property
    def template(self) -> Template:
        return self._template

    # -- candidates ---------------------------------------------------------------------------------------------

    def candidates(self, seed: int, max_walks: int) -> Iterator[Candidate]:
        """Relation paths of seeded walks, batch by batch, in the same order on every run (so a rerun can skip
        the keys it has committed and still know which paths were seen)."""
        w = self.walks
        seen: set[tuple[int, tuple[int, ...]]] = set()
        start = w.start
        for b in range(-(-max_walks // w.batch)):
            rng = np.random.default_rng([seed, b])
            n = min(w.batch, max_walks - b * w.batch)
            starts = start_nodes(
                self.graph,
                n,
                by=start.by,
                types=start.types,
                type_relation=start.type_relation,
                relations=start.relations,
                entities=start.entities,
                seed=rng,
            )
            walks = random_walks(
                self.graph,
                starts,
                w.max_hops,
                w.strategy,
                seed=rng,
                alpha=w.restart_prob,
                p=w.p,
                q=w.q,
                forward_only=w.forward_only,
            )
            for i, path in enumerate(paths_from_walks(walks, min_hops=w.min_hops, max_hops=w.max_hops, seed=rng)):
                ident = (path.topic, path.relations)
                yield Candidate(f"walk-{b}-{i}", path, ident in seen)
                seen.add(ident)

    def example(self, candidate: Candidate) -> PathExample | PathRejection:
        if candidate.duplicate:
            return PathRejection(candidate.path, "duplicate: an earlier walk gave the same topic and relation path")
        w = self.walks
        return path_example(
            self.graph,
            candidate.path,
            lang=self.lang,
            lexicon=self.lexicon,
            classes=self.classes,
            reasoning=w.reasoning,
            max_answers=w.max_answers,
            min_hops=w.min_hops,
            max_hops=w.max_hops,
            answer_noun=w.answer_noun,
        )

    # -- records ------------------------------------------------------------------------------------------------

    def record(self, example: PathExample) -> Record:
        messages = [{"role": "system", "content": self.task.system_prompt}] if self.task.system_prompt else []
        messages += example.messages()
        check = example.answer_check
        notes = (["question reworded by the LLM"] if example.paraphrased else []) + example.notes
        if notes:
            check = replace(check, detail=f"{check.detail}; {'; '.join(notes)}")
        source = [SourceRef(PATH_KIND, example.path_key)] + list(example.source)
        return Record(id="", messages=messages, task=self.task.type, lang=self.lang, source=source, answer_check=check)

    def rejected_record(self, rejection: PathRejection) -> Record:
        """A rejected path as a record for `rejected/`: the path spelled out, no answer."""
        g, path = self.graph, rejection.path
        hops = " -> ".join(g.relation_label(r) for r in path.relations)
        walk = "\t".join([g.entity(path.topic)] + [g.relation_name(r) for r in path.relations])
        return Record(
            id="",
            task=self.task.type,
            lang=self.lang,
            messages=[
                {"role": "user", "content": f"{g.name(path.topic)}: {hops}"},
                {"role": "assistant", "content": ""},
            ],
            source=[SourceRef(PATH_KIND, walk)],
        )

    # -- the optional paraphrase (the Generator contract) --------------------------------------------------------

    def prompt(self, item: WorkItem) -> list[dict[str, str]]:
        example: PathExample = item.payload
        return chat_from_template(self._template, question=example.question, topic=example.topic)

    def parse(self, item: WorkItem, output: str) -> Record:
        """Never fails: a rewording that does not qualify leaves the derived question (the note says why)."""
        example: PathExample = item.payload
        with_paraphrase(example, output)
        return self.record(example)

    def failed_record(self, item: WorkItem, output: str) -> Record:
        return self.record(item.payload)


class KGWalkConfig(GeneratorConfig):
    name: Literal["kg_walk"] = "kg_walk"


@register
class KGWalk(Generator):
    """Examples from walks until the target is met, `walks.max_walks` are drawn, or the walks keep finding only
    paths already seen (a small graph's paths are used up)."""

    name = "kg_walk"
    Config = KGWalkConfig
    tasks = {"kg_qa": "multi-hop questions from relation paths of `sources.kg`, answers executed on the graph"}
    default_for = ("kg_qa",)
    requires = ("kg",)
    sections = ("walks",)
    replays = False
    progress_label = "generate: KG walks"
    templated = True

    def __init__(self, config: GeneratorConfig, job: Any) -> None:
        super().__init__(config, job)
        self.paths = 0
        self.lexicon_counts: dict[str, int] = {}  # the LLM's relation wordings: accepted, rejected, cached

    @classmethod
    def uses_llm(cls, config: GeneratorConfig, recipe: Recipe) -> bool:
        walks = recipe.walks
        return walks.paraphrase or (walks.propose_lexicon and walks.lexicon_model is None)

    @classmethod
    def inputs(cls, config: GeneratorConfig, recipe: Recipe) -> list[Path]:
        return [recipe.resolve(recipe.walks.lexicon)] if recipe.walks.lexicon else []

    @classmethod
    def notes(cls, figures: dict[str, Any]) -> str:
        hops = ", ".join(f"{k} hops: {v}" for k, v in figures.get("hops", {}).items())
        lexicon = figures.get("lexicon") or {}
        worded = (
            f"; relations worded by the LLM: {lexicon.get('accepted', 0)} accepted, {lexicon.get('rejected', 0)} "
            "rejected by the check"
            if lexicon
            else ""
        )
        return f"{figures.get('graph', '')}; {hops}; {figures.get('paraphrased', 0)} reworded by the LLM{worded}"

    def _finish(self, record: Record, key: str, seed: int) -> Record:
        record.lineage = Lineage(generator=self.name, model="none", seed=seed, round=1)
        record.id = record_id(record.messages, record.source, f"{self.name}|{key}")
        return record

    def run(self, session: Session) -> Iterator[Wave]:
        walks, seed = self.job.recipe.walks, session.sampling.seed
        graph = self.job.graph()
        step = KGWalkStep(self.job.task, walks, graph, self._lexicon(graph, session))
        max_walks = walks.max_walks or 200 * self.job.task.target_count
        accepted = session.committed
        items: list[WorkItem] = []
        rejected: list[Rejected] = []
        keys: list[str] = []
        duplicates_in_a_row = 0
        exhausted = False
        for cand in step.candidates(seed, max_walks):
            if accepted + len(items) >= session.count:
                break
            self.paths += 1
            duplicates_in_a_row = duplicates_in_a_row + 1 if cand.duplicate else 0
            if duplicates_in_a_row >= max(walks.batch, 1000):
                exhausted = True
                break
            if cand.key in session.done:
                continue
            result = step.example(cand)
            if isinstance(result, PathRejection):
                failed = self._finish(step.rejected_record(result), cand.key, seed)
                rejected.append(Rejected(failed, "generate", self.name, result.reason))
                keys.append(cand.key)
            else:
                items.append(WorkItem(cand.key, result))
            if (
                len(items) >= min(session.generation.shard_size, session.count - accepted)
                or len(rejected) >= 50 * session.generation.shard_size
            ):
                yield from self._flush(session, step, items, rejected, keys, seed)
                accepted += len(items)
                items, rejected, keys = [], [], []
        yield from self._flush(session, step, items, rejected, keys, seed)
        accepted += len(items)
        self.figures = self._figures(graph, exhausted, max_walks, accepted, session)

    def _lexicon(self, graph: KnowledgeGraph, session: Session) -> Lexicon:
        """The relation lexicon (the recipe's file, if named, over the rules; with `walks.propose_lexicon`, the
        model's checked wordings; `walks.relations` on top), written to the run directory for the user to read and
        edit. A graph none of whose relations can be worded stops here, with what to do."""
        recipe, walks = self.job.recipe, self.job.recipe.walks
        path = recipe.resolve(walks.lexicon) if walks.lexicon else None
        lexicon = Lexicon.for_graph(graph, self.job.task.language, path=path)
        if walks.propose_lexicon:
            self.lexicon_counts = self._propose(lexicon, graph, session)
        lexicon.apply(walks.relations)
        lexicon.write(self.job.run.path / LEXICON_FILE)
        names = [graph.relation_label(r) for r in range(graph.num_relations)]
        if all(lexicon.get(n).skip for n in names):
            raise LexiconError(
                f"no relation of {graph.source or 'the knowledge graph'} can be worded (e.g. {names[0]!r}: "
                f"{lexicon.get(names[0]).skip}); give relations readable names (sources.kg.relation_labels) or "
                f"write their wording in {self.job.run.path / LEXICON_FILE} and name it as walks.lexicon"
            )
        skipped = sum(lexicon.get(n).skip is not None for n in names)
        if skipped:
            log.info(
                "generate: %d of %d relations have no wording and are not asked about (see %s)",
                skipped,
                len(names),
                LEXICON_FILE,
            )
        return lexicon

    def _propose(self, lexicon: Lexicon, graph: KnowledgeGraph, session: Session) -> dict[str, int]:
        """The model's wordings of the most used relations (`walks.lexicon_model` if named, else the session's)."""
        walks, gen = self.job.recipe.walks, self.job.recipe.generation
        if walks.lexicon_model is None:
            return dict(
                propose(
                    lexicon, graph, session.model, gen, session.sampling, walks.propose_relations, self.job.run.path
                )
            )
        with open_llm(walks.lexicon_model, self.job.recipe.resolve("."), None) as llm:
            return dict(propose(lexicon, graph, llm, gen, session.sampling, walks.propose_relations, self.job.run.path))

    def _flush(
        self,
        session: Session,
        step: KGWalkStep,
        items: list[WorkItem],
        rejected: list[Rejected],
        keys: list[str],
        seed: int,
    ) -> Iterator[Wave]:
        """The rejections, then the examples: as they are, or reworded by the LLM."""
        if rejected:
            yield Wave(keys, [], rejected)
        if items and self.job.recipe.walks.paraphrase:
            yield from session.stream(step, items, lambda: True)
        elif items:
            yield Wave([it.key for it in items], [self._finish(step.record(it.payload), it.key, seed) for it in items])

    def _figures(
        self, graph: KnowledgeGraph, exhausted: bool, max_walks: int, accepted: int, session: Session
    ) -> dict[str, Any]:
        if accepted < session.count:
            why = (
                "the walks kept finding paths already seen: the graph's distinct paths from these starts are used up"
                if exhausted
                else f"walks.max_walks ({max_walks}) were drawn"
            )
            log.warning(
                "generate: %d kg_qa records accepted, fewer than target_count %d: %s; widen walks.start, raise "
                "walks.max_hops or walks.max_answers",
                accepted,
                session.count,
                why,
            )
        records = self.job.run.read_table("generate")
        details = [c["detail"] for c in records.column("answer_check").to_pylist() if c]
        hops = Counter(src[0]["id"].count("\t") for src in records.column("source").to_pylist() if src)
        return {
            "lexicon": self.lexicon_counts,
            "graph": repr(graph),
            "hops": {str(k): hops[k] for k in sorted(hops)},
            "paraphrased": sum("reworded by the LLM" in d for d in details),
        }

    def counts(self, session: Session) -> dict[str, int]:
        return {"paths": self.paths}
