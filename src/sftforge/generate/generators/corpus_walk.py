"""`corpus_walk` (task multi_doc_qa): walks over the passage graph assemble 2-4 linked passages, and the LLM writes
a question that needs more than one of them.

A walk step along a shared named entity makes a bridge question ("both texts mention X: ask something that needs
a fact from each"); a step between merely similar passages makes a comparison question. The output is checked:
the answer's content words must occur in the passages (`min_support`), and the question and answer together must
draw on at least two passages, each contributing a content word that the other passages of the set lack. That is
the cheap, verifiable part of "answerable only from the set"; a question that one passage answers is rejected.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from sftforge.config import GeneratorConfig, Walks
from sftforge.generate.answer_check import ResponsivenessCheck
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
from sftforge.generate.parsing import (
    ParseError,
    check_language,
    first_paragraph,
    parse_fields,
    question_text,
    strip_quotes,
)
from sftforge.kg import random_walks
from sftforge.lib.grounding import content_stems, support
from sftforge.sample import AnswerCheck, Record, SourceRef
from sftforge.sources.chunking import Passage
from sftforge.sources.passage_graph import PassageGraph, build_passage_graph

if TYPE_CHECKING:
    from sftforge.recipe import Task

BRIDGE, COMPARISON = "bridge", "comparison"


@dataclass(frozen=True, slots=True)
class PassageSet:
    """The passages of one corpus walk, in walk order, and the entity that links them (bridge) if any."""

    passages: tuple[Passage, ...]
    entity: str | None

    @property
    def kind(self) -> str:
        return BRIDGE if self.entity else COMPARISON


class CorpusWalkStep(RecordStep):
    """Walks into passage sets (`work_items`), and the one LLM call per set: a question and answer that need more
    than one of its passages."""

    name = "corpus_walk"

    def __init__(self, task: Task, walks: Walks) -> None:
        self.task = task
        self.walks = walks
        self.lang = task.language
        self._template = load_template(self.lang, "multi_doc")
        self._prefill = self._template.render_block("prefill")
        self.stop = (f"\n{self._prefill}", f"\n\n{self._prefill}")
        checked = task.constraints.responsiveness
        # With the check on, the sentences the answer joins (each passage's best support of it) must outrank the
        # set's other sentences as answers to the question (`ResponsivenessCheck.check_joined`).
        self.responsiveness = ResponsivenessCheck(checked, self.lang) if checked.enabled else None
        if self.responsiveness is not None:
            self.attempts = checked.candidates

    @property
    def template(self) -> Template:
        return self._template

    # -- work items ---------------------------------------------------------------------------------------------

    def work_items(
        self, pgraph: PassageGraph, passages: Sequence[Passage], seed: int, max_walks: int
    ) -> Iterator[WorkItem]:
        """Passage sets from seeded walks that start at `passages` (the usable ones), batch by batch, each set
        once. Keys are stable across reruns (batch and position)."""
        w = self.walks
        graph = pgraph.graph
        index = {int(graph.entity(e)): e for e in range(graph.num_entities)}  # passage index -> graph entity
        starts = np.array([index[i] for i in range(len(passages)) if i in index], dtype=np.int64)
        if not len(starts):
            return
        seen: set[frozenset[int]] = set()
        for b in range(-(-max_walks // w.batch)):
            rng = np.random.default_rng([seed, b])
            n = min(w.batch, max_walks - b * w.batch)
            walks = random_walks(
                graph,
                starts[rng.integers(0, len(starts), size=n)],
                2 * w.max_passages,
                w.strategy,
                seed=rng,
                alpha=w.restart_prob,
                p=w.p,
                q=w.q,
            )
            sizes = rng.integers(w.min_passages, w.max_passages + 1, size=n)
            for i in range(n):
                order: list[int] = []
                for node in walks.nodes[i]:
                    if node < 0:
                        break
                    p = int(graph.entity(int(node)))
                    if p not in order:
                        order.append(p)
                    if len(order) == sizes[i]:
                        break
                if len(order) < w.min_passages or frozenset(order) in seen:
                    continue
                seen.add(frozenset(order))
                entity = next((e for a, b in zip(order, order[1:]) if (e := pgraph.entity_between(a, b))), None)
                yield WorkItem(f"mdwalk-{b}-{i}", PassageSet(tuple(passages[p] for p in order), entity))

    # -- prompt and parse ---------------------------------------------------------------------------------------

    def prompt(self, item: WorkItem) -> list[dict[str, str]]:
        ps: PassageSet = item.payload
        return chat_from_template(
            self._template,
            passages=[p.text for p in ps.passages],
            entity=ps.entity,
            kind=ps.kind,
        )

    def parse(self, item: WorkItem, output: str) -> Record:
        ps: PassageSet = item.payload
        fields = parse_fields(self._prefill + output)
        question = strip_quotes(question_text(fields.get("question", "")))
        answer = strip_quotes(first_paragraph(fields.get("answer", "")))
        c = self.task.constraints
        if not question:
            raise ParseError("no 'Question:' in the output")
        if not answer:
            raise ParseError("no 'Answer:' in the output")
        for what, value, lo, hi in (
            ("question", question, c.min_question_chars, c.max_question_chars),
            ("answer", answer, c.min_answer_chars, c.max_answer_chars),
        ):
            if not lo <= len(value) <= hi:
                raise ParseError(f"{what} length outside {lo}-{hi} characters")
            check_language(value, self.lang)
        if not question.endswith(("?", "？")) and "?" not in question and "？" not in question:
            raise ParseError("question is not phrased as a question")
        if answer.strip().lower() == question.strip().lower():
            raise ParseError("answer repeats the question")
        texts = [p.text for p in ps.passages]
        if support("\n".join(texts), question) < c.min_question_support:
            raise ParseError("question is not about the passages (too few of its words occur there)")
        answer_support = support("\n".join(texts), answer)
        if answer_support < c.min_support:
            raise ParseError(
                f"answer is not supported by the passages (under {c.min_support:.0%} of its words occur there)"
            )
        used = drawn_from(texts, f"{question}\n{answer}")
        if len(used) < 2:
            raise ParseError("question and answer draw on only one passage")
        check = AnswerCheck(
            "multi_passage",
            True,
            len(used) / len(texts),
            f"{ps.kind}{f' via {ps.entity!r}' if ps.entity else ''}: question and answer draw on passages "
            f"{', '.join(str(i + 1) for i in used)} of {len(texts)}; {answer_support:.0%} of the answer's content "
            "words occur in them",
        )
        if self.responsiveness is not None:
            answered = self.responsiveness.check_joined(texts, used, question, answer)
            check = AnswerCheck(
                answered.method, True, min(answered.score, check.score), f"{answered.detail} | {check.detail}"
            )
        return self._record(ps, question, answer, check)

    # -- records ------------------------------------------------------------------------------------------------

    def _record(self, ps: PassageSet, question: str, answer: str, check: AnswerCheck | None) -> Record:
        if self.task.include_context:
            user = load_template(self.lang, "record_multi_doc").render(
                passages=[p.text for p in ps.passages], question=question
            )
        else:
            user = question
        messages = [{"role": "system", "content": self.task.system_prompt}] if self.task.system_prompt else []
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
        source = [SourceRef("chunk", p.chunk_id, p.doc_id, p.start, p.end, p.page) for p in ps.passages]
        return Record(id="", messages=messages, task=self.task.type, lang=self.lang, source=source, answer_check=check)

    def failed_record(self, item: WorkItem, output: str) -> Record:
        ps: PassageSet = item.payload
        messages = self.prompt(item)[:-1] + [{"role": "assistant", "content": self._prefill + output}]
        source = [SourceRef("chunk", p.chunk_id, p.doc_id, p.start, p.end, p.page) for p in ps.passages]
        return Record(id="", messages=messages, task=self.task.type, lang=self.lang, source=source)


def drawn_from(texts: Sequence[str], qa: str) -> list[int]:
    """Indices of the passages that contribute to `qa`: a content word of it that occurs in that passage and in
    no other passage of the set."""
    stems = [content_stems(t) for t in texts]
    want = content_stems(qa)
    used = []
    for i, own in enumerate(stems):
        others = set().union(*(s for j, s in enumerate(stems) if j != i))
        if want & (own - others):
            used.append(i)
    return used


class CorpusWalkConfig(GeneratorConfig):
    name: Literal["corpus_walk"] = "corpus_walk"


@register
class CorpusWalk(Generator):
    """Seeded walks over the passage graph (BM25 neighbours and shared entities, `walks`), one question per set."""

    name = "corpus_walk"
    Config = CorpusWalkConfig
    tasks = {"multi_doc_qa": "bridge and comparison questions over 2-4 linked passages of different documents"}
    default_for = ("multi_doc_qa",)
    requires = ("documents",)
    sections = ("walks",)
    replays = False
    progress_label = "generate"

    def run(self, session: Session) -> Iterator[Wave]:
        recipe, w = self.job.recipe, self.job.recipe.walks
        ranked = self.job.passages()
        pgraph = build_passage_graph(
            [p.text for p in ranked],
            [p.doc_id for p in ranked],
            recipe.task.language,
            neighbours=w.neighbours,
            link_entities=w.link_entities,
            cross_document=w.cross_document,
        )
        self.figures = {
            "passage_graph": {
                "usable_passages": len(ranked),
                "linked_passages": pgraph.graph.num_entities,
                "similar_links": pgraph.similar_links,
                "entity_links": pgraph.entity_links,
            }
        }
        step = CorpusWalkStep(recipe.task, w)
        items = step.work_items(
            pgraph, ranked, recipe.generation.sampling.seed, w.max_walks or 200 * recipe.task.target_count
        )
        made = session.committed

        def want_more() -> bool:  # reads `made` as the loop below raises it
            return made < session.count

        for wave in session.stream(step, items, want_more):
            made += len(wave.records)
            yield wave

    def counts(self, session: Session) -> dict[str, int]:
        return {"work_items": len(session.done)}
