"""A knowledge graph held as CSR arrays, with an inverse edge for every triple.

Millions of edges must fit in memory and be walked fast, so the graph is three flat numpy arrays rather than
Python objects per edge: `indptr` (int64, one row per entity), `indices` (int32, the tail of each edge) and
`rels` (int32, its relation id). Every triple (h, r, t) is stored twice: forward in h's row with id r, and
inverse in t's row with id r + R (R = number of relations), so walks and relation paths can go both ways.
Rows are sorted by (relation, tail): the tails of (h, r) are one contiguous slice found by binary search, and
forward edges (ids < R) come before inverse ones in every row.

Entity and relation names are strings (ids in the source file, URIs in RDF); display names come from label
files or, failing that, from the name itself (`western_africa` -> "Western Africa").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sftforge.errors import SourceError

INVERSE_SUFFIX = "^-1"
INVERSE_PREFIX = "inverse of "
# Relation names (or their last URI segment) that say "head is an instance of tail": used for start
# distributions by type and for the answer noun of questions ("Which countries ...").
TYPE_RELATIONS = ("isa", "is_a", "isA", "type", "rdf:type", "instance_of", "instanceOf", "P31")

_SMALL_WORDS = frozenset("a an and as at but by for in nor of on or the to".split())


def local_name(name: str) -> str:
    """The last segment of a URI or CURIE (`http://x.org/ns#locatedIn` -> `locatedIn`); other names unchanged."""
    name = name.strip("<>")
    for sep in ("#", "/", ":"):
        if sep in name:
            tail = name.rsplit(sep, 1)[1]
            if tail:
                return tail
    return name


def humanise(name: str, titlecase: bool = True) -> str:
    """A readable display name for an entity id: URI tail, underscores to spaces, and, with `titlecase`, title
    case when the id is all lowercase (`united_states` -> "United States"). Whether to title-case is the graph's
    call (`KnowledgeGraph.lowercase_ids`): in a graph of lowercase ids it restores names, in a graph whose names
    carry their own casing a lowercase one ("world war ii", "r") is written that way on purpose."""
    text = local_name(name) if (name.startswith(("http://", "https://", "<")) or re.match(r"^\w+:\w", name)) else name
    text = text.replace("_", " ").strip()
    if titlecase and text and text == text.lower() and re.search(r"[a-z]", text):
        words = text.split(" ")
        text = " ".join(
            w if (i and w in _SMALL_WORDS) else "-".join(p[:1].upper() + p[1:] for p in w.split("-"))
            for i, w in enumerate(words)
        )
    return text


def segment_search(
    values: np.ndarray, lo: np.ndarray, hi: np.ndarray, x: np.ndarray | int | float, strict: bool = False
) -> np.ndarray:
    """First position in each sorted segment values[lo:hi] whose value is >= x (> x if `strict`; hi if none): a
    binary search over many segments at once, so frontier expansion and neighbour tests stay vectorised."""
    lo = np.array(lo, dtype=np.int64, copy=True)
    hi = np.array(hi, dtype=np.int64, copy=True)
    x = np.broadcast_to(x, lo.shape)
    last = max(len(values) - 1, 0)
    active = lo < hi
    while active.any():
        mid = (lo + hi) >> 1
        probe = values[np.minimum(mid, last)]
        right = active & ((probe <= x) if strict else (probe < x))
        lo = np.where(right, mid + 1, lo)
        hi = np.where(active & ~right, mid, hi)
        active = lo < hi
    return lo


def search_sorted(values: np.ndarray, needles: np.ndarray, side: str = "left") -> np.ndarray:
    """np.searchsorted, with many needles searched in sorted order: on arrays far larger than the CPU cache,
    sorted needles touch memory in order (several times faster for a million-edge graph)."""
    if len(needles) < 4096:
        return np.searchsorted(values, needles, side=side)  # type: ignore[call-overload]
    order = np.argsort(needles)
    out = np.empty(len(needles), dtype=np.int64)
    out[order] = np.searchsorted(values, needles[order], side=side)  # type: ignore[call-overload]
    return out


def gather_ranges(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All positions in the ranges [starts[i], ends[i]), concatenated, and for each the index i of its range."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.maximum(np.asarray(ends, dtype=np.int64) - starts, 0)
    total = int(lengths.sum())
    owner = np.repeat(np.arange(len(starts), dtype=np.int64), lengths)
    if total == 0:
        return np.empty(0, dtype=np.int64), owner
    offsets = np.cumsum(lengths) - lengths
    positions = np.arange(total, dtype=np.int64) - np.repeat(offsets, lengths) + np.repeat(starts, lengths)
    return positions, owner


class KnowledgeGraph:
    """Entities, relations and CSR adjacency with inverse edges. Build with `from_ids`, `from_triples`, or
    `sftforge.kg.load_graph`."""

    def __init__(
        self,
        entities: pa.Array,
        relations: Sequence[str],
        indptr: np.ndarray,
        indices: np.ndarray,
        rels: np.ndarray,
        *,
        labels: Mapping[int, str] | None = None,
        relation_labels: Mapping[int, str] | None = None,
        source: str = "",
    ) -> None:
        self.entities = entities  # Arrow strings: compact for millions of names, no Python object per entity
        self.relations = list(relations)
        self.indptr = indptr
        self.indices = indices
        self.rels = rels
        self.labels: dict[int, str] = dict(labels or {})
        self.relation_labels: dict[int, str] = dict(relation_labels or {})
        self.source = source
        self._adjacency: dict[bool, np.ndarray] = {}

    # ------------------------------------------------------------------------------------------ building

    @classmethod
    def from_ids(
        cls,
        heads: np.ndarray,
        rels: np.ndarray,
        tails: np.ndarray,
        entities: pa.Array | Sequence[str],
        relations: Sequence[str],
        **kwargs: object,
    ) -> KnowledgeGraph:
        """CSR from triples given as integer ids into `entities` and `relations`. Duplicate triples are dropped;
        every triple gets its inverse edge."""
        n, r_count = len(entities), len(relations)
        if not isinstance(entities, pa.Array):
            entities = pa.array(list(entities), type=pa.string())
        heads = np.asarray(heads, dtype=np.int64)
        rels = np.asarray(rels, dtype=np.int64)
        tails = np.asarray(tails, dtype=np.int64)
        all_h = np.concatenate([heads, tails])
        all_r = np.concatenate([rels, rels + r_count])
        all_t = np.concatenate([tails, heads])
        width = 2 * max(r_count, 1)
        if n == 0:
            h_sorted = r_sorted = t_sorted = np.empty(0, dtype=np.int64)
        elif n * width < (2**62) // n:
            # One int64 key per edge: sorting it sorts by (head, relation, tail); equal neighbours are duplicates.
            key = (all_h * width + all_r) * n + all_t
            key.sort()
            if len(key):
                key = key[np.concatenate(([True], key[1:] != key[:-1]))]
            h_sorted, rest = np.divmod(key, width * n)
            r_sorted, t_sorted = np.divmod(rest, n)
        else:  # too many names for a packed key: sort on three columns
            order = np.lexsort((all_t, all_r, all_h))
            h_sorted, r_sorted, t_sorted = all_h[order], all_r[order], all_t[order]
            keep = np.ones(len(order), dtype=bool)
            keep[1:] = (np.diff(h_sorted) != 0) | (np.diff(r_sorted) != 0) | (np.diff(t_sorted) != 0)
            h_sorted, r_sorted, t_sorted = h_sorted[keep], r_sorted[keep], t_sorted[keep]
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(h_sorted, minlength=n), out=indptr[1:])
        return cls(
            entities,
            relations,
            indptr,
            t_sorted.astype(np.int32),
            r_sorted.astype(np.int32),
            **kwargs,  # type: ignore[arg-type]
        )

    @classmethod
    def from_triples(
        cls, triples: Iterable[tuple[str, str, str]], *, labels: Mapping[str, str] | None = None, source: str = ""
    ) -> KnowledgeGraph:
        """A graph from (head, relation, tail) name triples: for small hand-built graphs and tests."""
        ent: dict[str, int] = {}
        rel: dict[str, int] = {}
        h, r, t = [], [], []
        for a, b, c in triples:
            h.append(ent.setdefault(a, len(ent)))
            r.append(rel.setdefault(b, len(rel)))
            t.append(ent.setdefault(c, len(ent)))
        graph = cls.from_ids(np.array(h), np.array(r), np.array(t), list(ent), list(rel), source=source)
        if labels:
            graph.set_labels(labels)
        return graph

    def set_labels(self, labels: Mapping[str, str], *, relations: bool = False) -> int:
        """Display names from an {id: name} mapping (a label file); ids not in the graph are ignored.
        Returns how many matched."""
        keys = list(labels)
        if not keys:
            return 0
        if relations:
            index = {name: i for i, name in enumerate(self.relations)}
            hits = {index[k]: labels[k] for k in keys if k in index}
            self.relation_labels.update(hits)
            return len(hits)
        pos = self.entity_ids(keys)
        hits = {int(p): labels[k] for k, p in zip(keys, pos) if p >= 0}
        self.labels.update(hits)
        return len(hits)

    # ------------------------------------------------------------------------------------------ sizes and names

    @property
    def num_entities(self) -> int:
        return len(self.indptr) - 1

    @property
    def num_relations(self) -> int:
        """Forward relations; ids R..2R-1 are their inverses."""
        return len(self.relations)

    @property
    def num_edges(self) -> int:
        """Stored edges, inverse ones included (twice the distinct triples)."""
        return len(self.indices)

    @property
    def num_triples(self) -> int:
        return len(self.indices) // 2

    def __repr__(self) -> str:
        return (
            f"KnowledgeGraph({self.num_entities} entities, {self.num_relations} relations, "
            f"{self.num_triples} triples{', ' + self.source if self.source else ''})"
        )

    def entity(self, e: int) -> str:
        """The entity's id as written in the source (name, URI, ...)."""
        return self.entities[int(e)].as_py()

    def name(self, e: int) -> str:
        """The entity's display name: its label, or a readable form of its id."""
        e = int(e)
        label = self.labels.get(e)
        if label is None:
            return humanise(self.entity(e), titlecase=self.lowercase_ids)
        # a label file of URIs (DBP15K's `id<TAB>http://dbpedia.org/resource/Kim_Dae-jung`) names by the URI's tail
        return humanise(label, titlecase=False) if label.startswith(("http://", "https://")) else label

    @cached_property
    def lowercase_ids(self) -> bool:
        """Whether the graph writes its entity ids in lowercase only (`united_states`), so display names are
        title-cased; a graph with capitals in more than 2% of its (sampled) ids keeps every name as written."""
        step = max(1, self.num_entities // 20_000)
        ids = [local_name(x) for x in self.entities.take(np.arange(0, self.num_entities, step)).to_pylist()]
        latin = [x for x in ids if re.search(r"[A-Za-z]", x)]
        return bool(latin) and sum(x != x.lower() for x in latin) <= 0.02 * len(latin)

    def entity_ids(self, names: Sequence[str]) -> np.ndarray:
        """Ids of entities by their source id (exact), -1 where unknown."""
        pos = pc.index_in(pa.array(list(names), type=self.entities.type), value_set=self.entities)
        return pos.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)

    def entity_id(self, name: str) -> int:
        """Id of an entity by its source id; a SourceError naming it if the graph has no such entity."""
        e = int(self.entity_ids([name])[0])
        if e < 0:
            raise SourceError(
                f"entity {name!r} is not in the knowledge graph{' ' + self.source if self.source else ''}"
            )
        return e

    def relation_name(self, r: int) -> str:
        """`locatedin` for a forward id, `locatedin^-1` for its inverse."""
        r = int(r)
        if r >= self.num_relations:
            return self.relations[r - self.num_relations] + INVERSE_SUFFIX
        return self.relations[r]

    def relation_label(self, r: int) -> str:
        """The name questions are derived from: the relation's label (a relation label file) or its name, with
        `^-1` for the inverse."""
        r = int(r)
        base = r - self.num_relations if r >= self.num_relations else r
        name = self.relation_labels.get(base, self.relations[base])
        return name + INVERSE_SUFFIX if r >= self.num_relations else name

    def relation_id(self, name: str) -> int:
        """Id of a relation by its name, `name^-1` or `inverse of name` for the inverse; a URI's last segment
        works when it is unambiguous."""
        inverse = False
        if name.endswith(INVERSE_SUFFIX):
            name, inverse = name[: -len(INVERSE_SUFFIX)], True
        elif name.startswith(INVERSE_PREFIX):
            name, inverse = name[len(INVERSE_PREFIX) :], True
        if name in self.relations:
            r = self.relations.index(name)
        else:
            matches = [i for i, rel in enumerate(self.relations) if local_name(rel) == name]
            if len(matches) != 1:
                known = ", ".join(self.relations[:20])
                raise SourceError(f"relation {name!r} is not in the knowledge graph (relations: {known})")
            r = matches[0]
        return r + self.num_relations if inverse else r

    def inverse(self, r: int) -> int:
        r_count = self.num_relations
        return r - r_count if r >= r_count else r + r_count

    def type_relation(self, names: Sequence[str] = TYPE_RELATIONS) -> int | None:
        """Id of the graph's "is a" relation (rdf:type, isa, P31, ...), or None."""
        for i, rel in enumerate(self.relations):
            if rel in names or local_name(rel) in names:
                return i
        return None

    def triple(self, h: int, r: int, t: int) -> tuple[str, str, str]:
        """The source triple behind an edge, in its forward direction, as source ids."""
        if r >= self.num_relations:
            h, r, t = t, r - self.num_relations, h
        return self.entity(h), self.relations[int(r)], self.entity(t)

    # ------------------------------------------------------------------------------------------ adjacency

    @cached_property
    def fwd_end(self) -> np.ndarray:
        """End of each row's forward edges: edges[indptr[h]:fwd_end[h]] are h's forward edges."""
        n = self.num_entities
        heads = np.repeat(np.arange(n, dtype=np.int64), np.diff(self.indptr))
        counts = np.bincount(heads[self.rels < self.num_relations], minlength=n)
        return self.indptr[:-1] + counts

    def row_end(self, forward_only: bool = False) -> np.ndarray:
        return self.fwd_end if forward_only else self.indptr[1:]

    def degree(self, forward_only: bool = False) -> np.ndarray:
        """Edges per entity (with inverse edges unless forward_only)."""
        return self.row_end(forward_only) - self.indptr[:-1]

    def relation_range(self, heads: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
        """For each head, the slice [start, end) of its edges with relation r."""
        heads = np.asarray(heads, dtype=np.int64)
        lo, hi = self.indptr[heads], self.indptr[heads + 1]
        if len(heads) <= 16:  # a few rows: numpy's own search per row beats the vectorised bisection's rounds
            start, end = lo.copy(), hi.copy()
            for i, (a, b) in enumerate(zip(lo.tolist(), hi.tolist())):
                row = self.rels[a:b]
                start[i] = a + np.searchsorted(row, r, side="left")
                end[i] = a + np.searchsorted(row, r, side="right")
            return start, end
        return segment_search(self.rels, lo, hi, r), segment_search(self.rels, lo, hi, r, strict=True)

    def edges_from(self, heads: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
        """Edges with relation r out of `heads`: (edge positions, the head of each)."""
        heads = np.asarray(heads, dtype=np.int64)
        start, end = self.relation_range(heads, r)
        positions, owner = gather_ranges(start, end)
        return positions, heads[owner]

    def tails(self, h: int, r: int) -> np.ndarray:
        """Tails of (h, r), sorted."""
        start, end = self.relation_range(np.array([h]), r)
        return self.indices[int(start[0]) : int(end[0])].astype(np.int64)

    def has_edge(self, h: int, r: int, t: int) -> bool:
        tails = self.tails(h, r)
        i = int(np.searchsorted(tails, t))
        return i < len(tails) and int(tails[i]) == int(t)

    def heads_with(self, r: int) -> np.ndarray:
        """Entities that have at least one edge with relation r."""
        heads = np.repeat(np.arange(self.num_entities, dtype=np.int64), np.diff(self.indptr))
        return np.unique(heads[self.rels == r])

    def adjacency_keys(self, forward_only: bool = False) -> np.ndarray:
        """Sorted int64 keys head * N + tail of every edge (forward edges only if forward_only): "is b a
        neighbour of a" for many pairs at once is one np.searchsorted (node2vec's second-order bias)."""
        keys = self._adjacency.get(forward_only)
        if keys is None:
            n = self.num_entities
            heads = np.repeat(np.arange(n, dtype=np.int64), np.diff(self.indptr))
            mask = self.rels < self.num_relations if forward_only else slice(None)
            keys = heads[mask] * n + self.indices[mask]
            keys.sort()
            self._adjacency[forward_only] = keys
        return keys

    def adjacent(self, a: np.ndarray, b: np.ndarray, forward_only: bool = False) -> np.ndarray:
        """Whether each b[i] is a neighbour of a[i] (an edge a -> b, or either way unless forward_only)."""
        keys = self.adjacency_keys(forward_only)
        want = np.asarray(a, dtype=np.int64) * self.num_entities + np.asarray(b, dtype=np.int64)
        if not len(keys):
            return np.zeros(len(want), dtype=bool)
        pos = np.minimum(search_sorted(keys, want), len(keys) - 1)
        return keys[pos] == want

    def cumulative_inverse_degree(self) -> np.ndarray:
        """Running sum over all edges of 1/degree(tail): increasing, so sampling the next node with probability
        proportional to 1/degree is one np.searchsorted into a row's slice of it."""
        return self._cum_inverse_degree

    @cached_property
    def _cum_inverse_degree(self) -> np.ndarray:
        deg = np.maximum(self.degree(), 1).astype(np.float64)
        return np.cumsum(1.0 / deg[self.indices])

    def nbytes(self) -> int:
        """Bytes held by the adjacency arrays (and the walk lookup arrays built so far) and entity names."""
        extra = sum(k.nbytes for k in self._adjacency.values())
        if "_cum_inverse_degree" in self.__dict__:
            extra += self._cum_inverse_degree.nbytes
        return int(self.indptr.nbytes + self.indices.nbytes + self.rels.nbytes + self.entities.nbytes + extra)
