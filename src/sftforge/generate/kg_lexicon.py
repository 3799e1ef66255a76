"""The LLM step of the relation lexicon (`walks.propose_lexicon`): the model words the graph's most used relations
once each, from a few of their triples; `kg.lexicon.check_proposal` accepts or rejects every proposal, and the
accepted ones become the relations' `question_one` and statement.

Proposals are cached in the run directory (`kg_lexicon_proposals.json`, keyed by model and prompt template), so a
rerun asks only for relations it has not asked about; the resulting lexicon is in `kg_lexicon.yaml` with
`origin: llm`, where the user reviews it like the rest.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sftforge.generate.base import TemplateStep, WorkItem, chat_from_template, prefill_of
from sftforge.generate.parsing import ParseError
from sftforge.kg.graph import KnowledgeGraph
from sftforge.kg.lexicon import Lexicon, Proposal, adopt, check_proposal, parse_proposal
from sftforge.llm import LLM
from sftforge.run import atomic_write_bytes

log = logging.getLogger(__name__)
PROPOSALS_FILE = "kg_lexicon_proposals.json"
EXAMPLES = 3  # triples shown per relation


@dataclass(frozen=True, slots=True)
class RelationAsk:
    relation: str  # the relation's label, as the lexicon keys it
    examples: list[tuple[str, str]]  # (head name, tail name)


class LexiconStep(TemplateStep):
    """Ask for one relation's wording; parse and check it (a rejected proposal is retried, then left out)."""

    max_tokens = 120

    def __init__(self, lang: str) -> None:
        super().__init__("kg_walk", lang, "kg_lexicon")

    def prompt(self, item: WorkItem) -> list[dict[str, str]]:
        ask: RelationAsk = item.payload
        return chat_from_template(self.template, relation=ask.relation, examples=ask.examples)

    def parse(self, item: WorkItem, output: str) -> Proposal:
        ask: RelationAsk = item.payload
        try:
            proposal = parse_proposal(prefill_of(self.prompt(item)) + output)
        except ValueError as e:
            raise ParseError(str(e)) from e
        reason = check_proposal(proposal, self.lang, ask.examples)
        if reason:
            raise ParseError(reason)
        return proposal


def most_used(graph: KnowledgeGraph, lexicon: Lexicon, count: int) -> list[int]:
    """The `count` relations with the most triples that the rules can read (ids)."""
    forward = graph.rels[graph.rels < graph.num_relations]
    triples = np.bincount(forward, minlength=graph.num_relations)
    order = np.argsort(-triples, kind="stable")
    out = [int(r) for r in order if triples[r] and not lexicon.get(graph.relation_label(int(r))).skip]
    return out[:count]


def examples_of(graph: KnowledgeGraph, r: int, k: int = EXAMPLES) -> list[tuple[str, str]]:
    """Up to `k` triples of relation `r`, spread over its heads, as (head name, tail name)."""
    heads = np.repeat(np.arange(graph.num_entities), np.diff(graph.indptr))
    positions = np.flatnonzero(graph.rels == r)
    picks = positions[np.linspace(0, len(positions) - 1, num=min(k, len(positions))).astype(int)]
    return [(graph.name(int(heads[p])), graph.name(int(graph.indices[p]))) for p in picks]


def propose(
    lexicon: Lexicon,
    graph: KnowledgeGraph,
    llm: LLM,
    generation: Any,
    sampling: Any,
    relations: int,
    run_dir: Path,
) -> Counter[str]:
    """Ask the model to word the `relations` most used relations, adopt what passes the check, cache every
    answer in the run directory. Returns counts: accepted, rejected, cached."""
    from sftforge.generate.runner import ask

    step = LexiconStep(lexicon.lang)
    key = {"model": llm.model_id, "template": step.template.hash, "language": lexicon.lang}
    path = run_dir / PROPOSALS_FILE
    cache: dict[str, Any] = {}
    if path.is_file():
        stored = json.loads(path.read_text(encoding="utf-8"))
        if {k: stored.get(k) for k in key} == key:
            cache = stored.get("relations", {})
    wanted = [graph.relation_label(r) for r in most_used(graph, lexicon, relations)]
    todo = [name for name in wanted if name not in cache]
    ids = {graph.relation_label(r): r for r in range(graph.num_relations)}
    items = [WorkItem(f"lexicon-{name}", RelationAsk(name, examples_of(graph, ids[name]))) for name in todo]
    counts: Counter[str] = Counter(cached=len(wanted) - len(todo))
    if items:
        log.info("generate: asking the model to word %d relations (walks.propose_lexicon)", len(items))
        for item, answer in zip(items, ask(llm, step, items, generation, sampling, Counter())):
            name = item.payload.relation
            cache[name] = asdict(answer.value) if answer.ok else {"rejected": answer.error}
    for name in wanted:
        got = cache[name]
        if "rejected" in got:
            counts["rejected"] += 1
            log.info("generate: the model's wording of %s was not used: %s", name, got["rejected"])
        else:
            adopt(lexicon.get(name), Proposal(**got))
            counts["accepted"] += 1
    atomic_write_bytes(path, json.dumps(key | {"relations": cache}, ensure_ascii=False, indent=1).encode("utf-8"))
    return counts
