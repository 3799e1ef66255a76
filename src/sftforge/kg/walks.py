"""Random walks over a `KnowledgeGraph`: uniform, with restart, node2vec (p, q) and inverse-degree.

All walkers advance together, one numpy step at a time, so a million walks cost a few dozen array operations
per step instead of a Python loop per walker. A walk is reproducible: the same graph, starts, parameters and
seed give the same walks. Walks follow edges in both directions (every triple has an inverse edge) unless
`forward_only`; each step picks one edge of the current node, so the relation taken is known.

- uniform: every edge of the current node equally likely.
- restart: with probability `alpha` jump back to the walk's start (a jump takes no edge: relation -1); a dead
  end also jumps back.
- node2vec: second order, biased by the previous node: weight 1/p to go back to it, 1 to a node adjacent to it,
  1/q to a node further away (Grover & Leskovec 2016). Sampled by rejection, as in KnightKing: propose a
  uniform edge, accept with probability weight / max weight; adjacency is a search in sorted edge keys.
- inverse_degree: the next node with probability proportional to 1/degree(next), so hubs do not dominate.
  Sampled exactly by a search in the row's slice of the running sum of 1/degree.

Start distributions: `start_nodes` draws starts uniformly over entities, over entities of given types, over
entities having given relations, or over an explicit list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sftforge.errors import SourceError
from sftforge.kg.graph import TYPE_RELATIONS, KnowledgeGraph, search_sorted

STRATEGIES = ("uniform", "restart", "node2vec", "inverse_degree")
START_BY = ("uniform", "type", "relation", "list")


@dataclass(frozen=True, slots=True)
class Walks:
    """`nodes[i, j]` is walk i's j-th entity (-1 after a dead end); `rels[i, j]` the relation id of the edge
    from nodes[i, j] to nodes[i, j+1] (-1 for a restart jump or after a dead end)."""

    nodes: np.ndarray  # (walks, length + 1) int32
    rels: np.ndarray  # (walks, length) int32

    def __len__(self) -> int:
        return len(self.nodes)

    def walk(self, i: int) -> tuple[list[int], list[int]]:
        """Walk i as (entities, relations), cut at its first dead end."""
        nodes = [int(x) for x in self.nodes[i] if x >= 0]
        return nodes, [int(r) for r in self.rels[i, : max(len(nodes) - 1, 0)]]


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _uniform_edges(graph: KnowledgeGraph, cur: np.ndarray, rng: np.random.Generator, forward_only: bool) -> np.ndarray:
    """One uniformly chosen edge position per current node (which must have degree > 0)."""
    lo = graph.indptr[cur]
    deg = graph.row_end(forward_only)[cur] - lo
    return lo + np.minimum((rng.random(len(cur)) * deg).astype(np.int64), deg - 1)


def _inverse_degree_edges(
    graph: KnowledgeGraph, cur: np.ndarray, rng: np.random.Generator, forward_only: bool
) -> np.ndarray:
    cum = graph.cumulative_inverse_degree()
    lo = graph.indptr[cur]
    hi = graph.row_end(forward_only)[cur]
    before = np.where(lo > 0, cum[np.maximum(lo - 1, 0)], 0.0)
    target = before + rng.random(len(cur)) * (cum[hi - 1] - before)
    return np.clip(search_sorted(cum, target, side="right"), lo, hi - 1)


def _node2vec_edges(
    graph: KnowledgeGraph,
    prev: np.ndarray,
    cur: np.ndarray,
    rng: np.random.Generator,
    p: float,
    q: float,
    forward_only: bool,
) -> np.ndarray:
    """Second-order step by rejection sampling: uniform proposals accepted with probability bias / max bias.
    Each round draws several proposals per pending walker (twice as many each round, as the walkers left are
    the ones with low acceptance) and keeps the first accepted: exactly sequential rejection sampling, in a
    few numpy rounds."""
    chosen = np.empty(len(cur), dtype=np.int64)
    pending = np.arange(len(cur))
    top = max(1.0 / p, 1.0, 1.0 / q)
    proposals = 1
    while len(pending):
        proposals = min(proposals * 2, 32)
        m = len(pending)
        c = np.repeat(cur[pending], proposals)
        before = np.repeat(prev[pending], proposals)
        e = _uniform_edges(graph, c, rng, forward_only)
        nxt = graph.indices[e]
        back = nxt == before
        bias = np.where(back, 1.0 / p, 1.0 / q)
        bias[~back & graph.adjacent(before, nxt, forward_only)] = 1.0
        accept = (rng.random(m * proposals) * top < bias).reshape(m, proposals)
        hit = accept.any(axis=1)
        first = accept.argmax(axis=1)
        chosen[pending[hit]] = e.reshape(m, proposals)[hit, first[hit]]
        pending = pending[~hit]
    return chosen


def random_walks(
    graph: KnowledgeGraph,
    starts: np.ndarray | Sequence[int],
    length: int,
    strategy: str = "uniform",
    *,
    seed: int | np.random.Generator | None = None,
    alpha: float = 0.15,
    p: float = 1.0,
    q: float = 1.0,
    forward_only: bool = False,
) -> Walks:
    """One walk of `length` steps from each start. `alpha`: restart probability; `p`, `q`: node2vec's return
    and in-out parameters (q < 1 explores outward, q > 1 stays local)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown walk strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    if length < 0:
        raise ValueError("walk length must be >= 0")
    if strategy == "restart" and not 0.0 <= alpha <= 1.0:
        raise ValueError("restart probability alpha must be in [0, 1]")
    if strategy == "node2vec" and (p <= 0 or q <= 0):
        raise ValueError("node2vec p and q must be > 0")
    rng = _rng(seed)
    starts = np.asarray(starts, dtype=np.int64)
    if len(starts) and (starts.min() < 0 or starts.max() >= graph.num_entities):
        raise ValueError("start entity id out of range")
    n = len(starts)
    nodes = np.full((n, length + 1), -1, dtype=np.int32)
    rels = np.full((n, length), -1, dtype=np.int32)
    nodes[:, 0] = starts
    cur = starts.copy()
    prev = np.full(n, -1, dtype=np.int64)
    alive = np.ones(n, dtype=bool)
    row_end = graph.row_end(forward_only)
    for step in range(length):
        act = np.flatnonzero(alive)
        if not len(act):
            break
        deg = row_end[cur[act]] - graph.indptr[cur[act]]
        if strategy == "restart":
            jump = (rng.random(len(act)) < alpha) | (deg == 0)
            walk_idx = act[~jump]
            back = act[jump]
            cur[back] = starts[back]
            nodes[back, step + 1] = starts[back]
        else:
            dead = act[deg == 0]
            alive[dead] = False
            walk_idx = act[deg > 0]
        if not len(walk_idx):
            continue
        c = cur[walk_idx]
        if strategy == "inverse_degree":
            e = _inverse_degree_edges(graph, c, rng, forward_only)
        elif strategy == "node2vec" and step > 0:
            e = _node2vec_edges(graph, prev[walk_idx], c, rng, p, q, forward_only)
        else:
            e = _uniform_edges(graph, c, rng, forward_only)
        nxt = graph.indices[e].astype(np.int64)
        prev[walk_idx] = c
        cur[walk_idx] = nxt
        nodes[walk_idx, step + 1] = nxt
        rels[walk_idx, step] = graph.rels[e]
    return Walks(nodes, rels)


# ---------------------------------------------------------------------------------------------------- starts


def entities_of_type(graph: KnowledgeGraph, types: Sequence[str], type_relation: str | None = None) -> np.ndarray:
    """Entities with an "is a" edge (`type_relation`, by default rdf:type, isa, P31, ...) to any of `types`."""
    r = graph.relation_id(type_relation) if type_relation else graph.type_relation(TYPE_RELATIONS)
    if r is None:
        raise SourceError(
            f"the knowledge graph has no type relation ({', '.join(TYPE_RELATIONS)}); name one with type_relation"
        )
    found = [graph.tails(graph.entity_id(t), graph.inverse(r)) for t in types]
    return np.unique(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)


def start_nodes(
    graph: KnowledgeGraph,
    n: int,
    *,
    by: str = "uniform",
    types: Sequence[str] = (),
    type_relation: str | None = None,
    relations: Sequence[str] = (),
    entities: Sequence[str] = (),
    seed: int | np.random.Generator | None = None,
) -> np.ndarray:
    """`n` start entities drawn with replacement: uniformly over all entities with an edge (`by="uniform"`),
    over entities of `types` ("type"), over heads of any of `relations` ("relation", `name^-1` for tails),
    or over the named `entities` ("list")."""
    rng = _rng(seed)
    if by == "uniform":
        pool = np.flatnonzero(graph.degree() > 0)
    elif by == "type":
        if not types:
            raise SourceError("start distribution by type needs at least one type")
        pool = entities_of_type(graph, types, type_relation)
    elif by == "relation":
        if not relations:
            raise SourceError("start distribution by relation needs at least one relation")
        pool = np.unique(np.concatenate([graph.heads_with(graph.relation_id(r)) for r in relations]))
    elif by == "list":
        ids = graph.entity_ids(list(entities))
        missing = [name for name, i in zip(entities, ids) if i < 0]
        if missing:
            raise SourceError(f"start entities not in the knowledge graph: {', '.join(map(repr, missing[:10]))}")
        pool = ids
    else:
        raise SourceError(f"unknown start distribution {by!r}; use one of {', '.join(START_BY)}")
    if not len(pool):
        raise SourceError(f"no start entities for start distribution {by!r}")
    return pool[rng.integers(0, len(pool), size=n)].astype(np.int64)
