"""Relation paths to verified question-answer examples.

A walk from a topic entity gives a relation path (r1, ..., rk). The question asks for everything that path
reaches, so the answer is the full answer set of executing the path from the topic over the whole graph, not
the walk's end node: "Which countries are located in Europe?" has every European country as its answer, and
a model trained on a single one of them would learn a wrong fact about the question.

A path is rejected, with a reason, when
- the walk revisits an entity, or the answer set is the topic alone: such questions are trivial or circular.
  An answer set that holds the topic and more is asked "other than" the topic ("What are the neighbors of the
  neighbors of France, other than France?") and the topic leaves the answer set, since that is the question
  people ask ("Which other films did the director of X direct?");
- its answer set is empty or larger than `max_answers` (unanswerable in a sentence);
- it has a shortcut: a strictly shorter relation path from the topic gives the same answer set, so the extra
  hops add words but no reasoning (A -r-> B -r^-1-> ... loops, or a 2-hop path equal to a direct relation);
- it has fewer than `min_hops` or more than `max_hops` relations.

The triples along one witness path per answer go to the record's `source`; executing the path is the answer
check, so every example's answer is verified against the graph.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from sftforge.kg.classes import ClassNamer
from sftforge.kg.graph import KnowledgeGraph, gather_ranges
from sftforge.kg.lexicon import Lexicon
from sftforge.kg.verbalise import Hop, Override, join_names, make_lexicon, statement
from sftforge.kg.verbalise import question as ask
from sftforge.kg.walks import Walks
from sftforge.lib.grounding import support
from sftforge.lib.text import tokens
from sftforge.sample import AnswerCheck, SourceRef

SOURCE_KIND = "triple"  # SourceRef.kind for a KG triple (sample.py: chunk | triple | seed | record)


@dataclass(frozen=True, slots=True)
class RelationPath:
    """Relations followed from a topic entity; `nodes` is the walk that found it (topic first), if any."""

    topic: int
    relations: tuple[int, ...]
    nodes: tuple[int, ...] | None = None

    def __len__(self) -> int:
        return len(self.relations)


class ShortcutBudgetExceeded(RuntimeError):
    """The shortcut search would touch more edges than its budget: the path cannot be shown shortcut-free."""


def hop_frontiers(graph: KnowledgeGraph, topic: int, relations: Sequence[int]) -> list[np.ndarray]:
    """The sets of entities reached after each hop (sorted ids); the last is the answer set."""
    frontier = np.array([topic], dtype=np.int64)
    out = []
    for r in relations:
        positions, _ = graph.edges_from(frontier, int(r))
        frontier = np.unique(graph.indices[positions]).astype(np.int64)
        out.append(frontier)
    return out


def execute(graph: KnowledgeGraph, topic: int, relations: Sequence[int]) -> np.ndarray:
    """The answer set of a relation path: every entity reached from `topic` by following `relations` in order,
    over the whole graph (sorted ids)."""
    if not relations:
        return np.array([topic], dtype=np.int64)
    return hop_frontiers(graph, topic, relations)[-1]


def witness_paths(graph: KnowledgeGraph, topic: int, relations: Sequence[int]) -> dict[int, list[tuple[int, int, int]]]:
    """For each answer, one chain of edges (h, r, t) from the topic that reaches it: the first edge found at
    each hop, traced back from the answer."""
    frontier = np.array([topic], dtype=np.int64)
    hops: list[tuple[np.ndarray, np.ndarray]] = []  # (reached entities, the entity each was reached from)
    for r in relations:
        positions, heads = graph.edges_from(frontier, int(r))
        tails = graph.indices[positions].astype(np.int64)
        reached, first = np.unique(tails, return_index=True)
        hops.append((reached, heads[first]))
        frontier = reached
    chains: dict[int, list[tuple[int, int, int]]] = {}
    for answer in frontier.tolist():
        node, chain = answer, []
        for (reached, parent), r in zip(reversed(hops), reversed(relations)):
            h = int(parent[np.searchsorted(reached, node)])
            chain.append((h, int(r), node))
            node = h
        chains[answer] = chain[::-1]
    return chains


def find_shortcut(
    graph: KnowledgeGraph,
    topic: int,
    relations: Sequence[int],
    *,
    answers: np.ndarray | None = None,
    budget: int = 2_000_000,
) -> tuple[int, ...] | None:
    """A strictly shorter relation path (1 to k-1 hops, either direction) from `topic` with the same answer
    set as `relations`, or None. Breadth-first over relation paths; paths that reach the same entity set are
    expanded once. Raises ShortcutBudgetExceeded past `budget` edges scanned."""
    target = execute(graph, topic, relations) if answers is None else np.asarray(answers, dtype=np.int64)
    k = len(relations)
    level: list[tuple[tuple[int, ...], np.ndarray]] = [((), np.array([topic], dtype=np.int64))]
    seen: set[bytes] = set()
    scanned = 0
    n = graph.num_entities
    for _ in range(k - 1):
        nxt: list[tuple[tuple[int, ...], np.ndarray]] = []
        for path, frontier in level:
            positions, _ = gather_ranges(graph.indptr[frontier], graph.indptr[frontier + 1])
            scanned += len(positions)
            if scanned > budget:
                raise ShortcutBudgetExceeded(f"shortcut search scanned over {budget} edges")
            keys = np.unique(graph.rels[positions].astype(np.int64) * n + graph.indices[positions])
            rel_of = keys // n
            cuts = np.flatnonzero(np.diff(rel_of)) + 1
            for group in np.split(keys, cuts):
                if not len(group):
                    continue
                r = int(group[0] // n)
                reached = group % n  # sorted, distinct
                candidate = path + (r,)
                if len(reached) == len(target) and np.array_equal(reached, target):
                    return candidate
                fingerprint = reached.tobytes()
                if fingerprint not in seen:
                    seen.add(fingerprint)
                    nxt.append((candidate, reached))
        level = nxt
    return None


def has_shortcut(graph: KnowledgeGraph, topic: int, relations: Sequence[int], *, budget: int = 2_000_000) -> bool:
    """Whether a strictly shorter relation path from `topic` gives the same answer set. A search over budget
    counts as a shortcut: the path cannot be shown to need all its hops."""
    try:
        return find_shortcut(graph, topic, relations, budget=budget) is not None
    except ShortcutBudgetExceeded:
        return True


def check_path(
    graph: KnowledgeGraph,
    path: RelationPath,
    *,
    max_answers: int = 10,
    min_hops: int = 1,
    max_hops: int = 3,
    answers: np.ndarray | None = None,
    shortcut_budget: int = 2_000_000,
) -> str | None:
    """Why `path` cannot become an example, or None if it can."""
    k = len(path.relations)
    if not min_hops <= k <= max_hops:
        return f"path has {k} hops, outside {min_hops}-{max_hops}"
    if path.nodes is not None and len(set(path.nodes)) != len(path.nodes):
        return "the walk revisits an entity"
    answers = execute(graph, path.topic, path.relations) if answers is None else answers
    if not len(answers):
        return "empty answer set"
    if len(answers) > max_answers:
        return f"answer set larger than max_answers ({max_answers})"
    if len(answers) == 1 and int(answers[0]) == path.topic:
        return "the answer set is only the topic entity"
    answers = np.setdiff1d(answers, [path.topic])  # the rest is asked "other than" the topic
    try:
        shorter = find_shortcut(graph, path.topic, path.relations, answers=answers, budget=shortcut_budget)
    except ShortcutBudgetExceeded:
        return "shortcut check over budget: cannot show every hop is needed"
    if shorter is not None:
        names = " -> ".join(graph.relation_name(r) for r in shorter)
        return f"shortcut: the shorter path {names} gives the same answer set"
    return None


def paths_from_walks(
    walks: Walks,
    *,
    min_hops: int = 1,
    max_hops: int = 3,
    seed: int | np.random.Generator | None = None,
) -> Iterator[RelationPath]:
    """One relation path per walk: its first k steps, k drawn uniformly from min_hops..max_hops (cut short at a
    dead end or restart jump; walks shorter than min_hops give nothing)."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    hops = rng.integers(min_hops, max_hops + 1, size=len(walks))
    for i in range(len(walks)):
        rels = walks.rels[i, : hops[i]]
        stop = np.flatnonzero(rels < 0)
        k = int(stop[0]) if len(stop) else len(rels)
        if k < min_hops:
            continue
        yield RelationPath(
            int(walks.nodes[i, 0]),
            tuple(int(r) for r in rels[:k]),
            tuple(int(x) for x in walks.nodes[i, : k + 1]),
        )


# ---------------------------------------------------------------------------------------------------- examples


@dataclass(slots=True)
class PathRejection:
    """A path that did not become an example, and why (nothing is dropped silently)."""

    path: RelationPath
    reason: str


@dataclass(slots=True)
class PathExample:
    """A verified question-answer pair from a relation path, with what a Record needs."""

    topic: str  # display name
    topic_id: int
    relations: list[str]  # as verbalised: relation labels, `name^-1` for inverses
    question: str
    template_question: str  # the derived question, before any paraphrase
    answers: list[str]
    answer_ids: list[int]
    response: str
    reasoning: list[str]  # the statements of the witness triples, hop by hop
    triples: list[tuple[str, str, str]]  # the witness triples, forward, as source ids
    source: list[SourceRef]
    answer_check: AnswerCheck
    lang: str = "en"
    path_key: str = ""  # topic id and relation names, tab-separated: the path the question asks about
    paraphrased: bool = False
    notes: list[str] = field(default_factory=list)

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "user", "content": self.question}, {"role": "assistant", "content": self.response}]


def path_example(
    graph: KnowledgeGraph,
    path: RelationPath,
    *,
    lang: str = "en",
    overrides: Mapping[str, Override] | None = None,
    reasoning: bool = False,
    max_answers: int = 10,
    min_hops: int = 1,
    max_hops: int = 3,
    paraphrase: Callable[[str], str] | None = None,
    answer_noun: str | None = None,
    shortcut_budget: int = 2_000_000,
    lexicon: Lexicon | None = None,
    classes: ClassNamer | None = None,
) -> PathExample | PathRejection:
    """The example for `path`, or why there is none. `reasoning`: the response walks through the witness
    triples before the answer. `paraphrase`: rewrites the derived question (an LLM call); a paraphrase that
    drops the topic's name is not used. `lexicon`: the relations' wordings (default: derived by the rules, with
    `overrides` applied); `classes`: names what each hop reaches (default: from the graph's types and relation
    signatures, or `answer_noun` for the answers)."""
    lexicon = lexicon if lexicon is not None else make_lexicon(lang, overrides)
    rel_names = [graph.relation_label(r) for r in path.relations]
    for name in rel_names:
        entry = lexicon.get(name)
        if entry.skip:
            return PathRejection(path, f"relation {entry.relation} has no wording ({entry.skip})")
    full = execute(graph, path.topic, path.relations)
    reason = check_path(
        graph,
        path,
        max_answers=max_answers,
        min_hops=min_hops,
        max_hops=max_hops,
        answers=full,
        shortcut_budget=shortcut_budget,
    )
    if reason:
        return PathRejection(path, reason)
    answers = np.setdiff1d(full, [path.topic])
    other_than = len(answers) < len(full)
    frontiers = hop_frontiers(graph, path.topic, path.relations)
    chains = witness_paths(graph, path.topic, path.relations)
    # The answer check: every witness edge is a triple of the graph and ends in the answer set it explains.
    for answer, chain in chains.items():
        if chain[-1][2] != answer or not all(graph.has_edge(h, r, t) for h, r, t in chain):
            return PathRejection(path, "answer check failed: a witness chain is not in the graph")
    if set(chains) != set(full.tolist()):
        return PathRejection(path, "answer check failed: witness chains do not cover the answer set")
    chains.pop(path.topic, None)

    topic = graph.name(path.topic)
    namer = classes if classes is not None else ClassNamer(graph, lexicon, answer_noun)
    reached = frontiers[:-1] + [answers]
    hops = [Hop(rel, len(f) > 1, namer.of(f)) for rel, f in zip(rel_names, reached)]
    question = ask(hops, topic, lexicon, other_than=topic if other_than else None)
    template_question = question

    order = sorted(answers.tolist(), key=graph.name)
    names = [graph.name(a) for a in order]
    edges: dict[tuple[int, int, int], None] = {}  # forward triples, hop by hop, so the reasoning reads in order
    for hop in range(len(path.relations)):
        for a in order:
            h, r, t = chains[a][hop]
            edges[(t, graph.inverse(r), h) if r >= graph.num_relations else (h, r, t)] = None
    steps = [
        statement(
            graph.relation_label(r),
            graph.name(h),
            graph.name(t),
            lexicon=lexicon,
            several=len(graph.tails(h, r)) > 1,
        )
        for h, r, t in edges
    ]
    answer_text = join_names(names, lang)
    if reasoning:
        final = f"所以答案是：{answer_text}。" if lang.split("-")[0] == "zh" else f"So the answer is: {answer_text}."
        response = "\n".join(steps + [final])
    else:
        response = answer_text
    triples = [graph.triple(h, r, t) for h, r, t in edges]
    source = [SourceRef(SOURCE_KIND, "\t".join(t), graph.source or None) for t in triples]
    detail = (
        f"executed {' -> '.join(rel_names)} from {graph.entity(path.topic)} over the whole graph: "
        f"{len(answers)} answer(s){' other than the topic' if other_than else ''}, each with a witness chain of "
        f"graph triples; no shorter relation path gives the same answer set"
    )
    example = PathExample(
        path_key="\t".join([graph.entity(path.topic)] + [graph.relation_name(r) for r in path.relations]),
        topic=topic,
        topic_id=path.topic,
        relations=rel_names,
        question=question,
        template_question=template_question,
        answers=names,
        answer_ids=[int(a) for a in order],
        response=response,
        reasoning=steps,
        triples=triples,
        source=source,
        answer_check=AnswerCheck("kg_execution", True, 1.0, detail, expected=names),
        lang=lang,
    )
    if paraphrase is not None:
        with_paraphrase(example, paraphrase(question))
    return example


PARAPHRASE_MIN_OVERLAP = 0.75


def _mentions(text: str, name: str) -> bool:
    """Whether `text` contains `name` as whole words (CJK: as characters), case-insensitively."""
    want, have = tokens(name), tokens(text)
    return bool(want) and any(have[i : i + len(want)] == want for i in range(len(have) - len(want) + 1))


def with_paraphrase(example: PathExample, text: str | None, min_overlap: float = PARAPHRASE_MIN_OVERLAP) -> bool:
    """Use `text` (an LLM's rewording of the derived question) as the example's question if it is one question
    that still names the topic entity and says the same thing in about the same words: it may reorder, inflect
    and drop words, but brings in no content word (stem; CJK character) the derived question lacks, and keeps at
    least `min_overlap` of the derived question's. Small models answer instead of rewording, or drift ("the
    neighbors of Bulgaria's mother"); then the derived question is kept and `notes` say why. Returns whether it was used. Separate from `path_example` so a caller can
    paraphrase many questions in one batch."""
    text = (text or "").strip().strip("\"'“”")
    if not text.endswith(("?", "？")) or "\n" in text:
        example.notes.append("paraphrase is not a single question; kept the derived question")
        return False
    if text == example.template_question:
        return False  # nothing reworded
    if not _mentions(text, example.topic):
        example.notes.append("paraphrase dropped the topic entity; kept the derived question")
        return False
    added, kept = support(example.template_question, text), support(text, example.template_question)
    if added < 1.0 or kept < min_overlap:
        example.notes.append(
            f"paraphrase changed the wording too much ({added:.0%} of its words in the question, {kept:.0%} of the "
            "question's words in it); kept the derived question"
        )
        return False
    example.question, example.paraphrased = text, True
    return True
