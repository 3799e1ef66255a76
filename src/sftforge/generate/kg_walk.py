"""The knowledge-graph walk generator (task kg_qa): relation paths from random walks become verified questions.

The examples themselves need no LLM: a walk's relation path from its topic entity is verbalised into a question,
and the answer is the full answer set of that path executed over the whole graph (`sftforge.kg.paths`). Paths
that revisit an entity, have too many answers or a shortcut are rejected with their reason. With
`walks.paraphrase` the LLM rewords each derived question; a rewording that is not one question naming the topic
is not used (the derived question is kept), so a paraphrase never costs an example.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from sftforge.generate.base import Generator, Template, WorkItem, chat_from_template, load_template
from sftforge.kg import KnowledgeGraph, PathExample, PathRejection, RelationPath, path_example, paths_from_walks
from sftforge.kg import random_walks, start_nodes, with_paraphrase
from sftforge.recipe import Task, Walks
from sftforge.sample import Record, SourceRef

PATH_KIND = "kg_path"  # SourceRef kind of the relation path a record asks about: "topic<TAB>relation<TAB>..."


@dataclass(frozen=True, slots=True)
class Candidate:
    """One walk's relation path, under a key that is stable across reruns (batch and position in it)."""

    key: str
    path: RelationPath
    duplicate: bool  # an earlier walk gave the same topic and relation path


class KGWalkGenerator(Generator):
    name = "kg_walk"
    stop = ("\n",)

    def __init__(self, task: Task, walks: Walks, graph: KnowledgeGraph) -> None:
        self.task = task
        self.walks = walks
        self.graph = graph
        self.lang = task.language
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
                self.graph, n, by=start.by, types=start.types, type_relation=start.type_relation,
                relations=start.relations, entities=start.entities, seed=rng,
            )
            walks = random_walks(
                self.graph, starts, w.max_hops, w.strategy, seed=rng,
                alpha=w.restart_prob, p=w.p, q=w.q, forward_only=w.forward_only,
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
            self.graph, candidate.path, lang=self.lang, overrides=w.relations, reasoning=w.reasoning,
            max_answers=w.max_answers, min_hops=w.min_hops, max_hops=w.max_hops, answer_noun=w.answer_noun,
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
            id="", task=self.task.type, lang=self.lang,
            messages=[{"role": "user", "content": f"{g.name(path.topic)}: {hops}"}, {"role": "assistant", "content": ""}],
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
