"""Knowledge graphs: loaders on every format, answer-set execution, shortcut / revisit / bound rejection, walk
strategies, verbalisation, and the real countries graph end to end (a slow variant paraphrases with the bundled
model)."""

from __future__ import annotations

import gzip
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from sftforge.errors import SourceError
from sftforge.kg import (
    KnowledgeGraph,
    PathExample,
    PathRejection,
    RelationPath,
    check_path,
    detect_format,
    execute,
    find_shortcut,
    has_shortcut,
    load_graph,
    path_example,
    paths_from_walks,
    random_walks,
    read_labels,
    start_nodes,
    statement,
    verbalise,
    with_paraphrase,
    witness_paths,
)
from sftforge.kg.words import split_words
from sftforge.sample import Lineage, Record, record_id, records_to_table, table_to_records

COUNTRIES = Path(__file__).resolve().parents[2] / "shared" / "data" / "kg" / "countries"


def names(g: KnowledgeGraph, ids: np.ndarray) -> set[str]:
    return {g.entity(i) for i in ids}


def run(g: KnowledgeGraph, topic: str, *rels: str) -> set[str]:
    return names(g, execute(g, g.entity_id(topic), [g.relation_id(r) for r in rels]))


def rpath(g: KnowledgeGraph, topic: str, *rels: str, nodes: tuple[str, ...] | None = None) -> RelationPath:
    return RelationPath(
        g.entity_id(topic),
        tuple(g.relation_id(r) for r in rels),
        tuple(g.entity_id(n) for n in nodes) if nodes else None,
    )


# ---------------------------------------------------------------------------------------------- hand-built


@pytest.fixture
def small() -> KnowledgeGraph:
    return KnowledgeGraph.from_triples(
        [
            ("a", "r1", "b"),
            ("a", "r1", "c"),
            ("b", "r2", "d"),
            ("c", "r2", "d"),
            ("c", "r2", "e"),
            ("x", "r1", "b"),
            ("a", "r1", "b"),  # duplicate: dropped
        ]
    )


def test_csr_layout(small):
    g = small
    assert (g.num_entities, g.num_relations, g.num_triples, g.num_edges) == (6, 2, 6, 12)
    assert g.indptr.dtype == np.int64 and g.indices.dtype == np.int32 and g.rels.dtype == np.int32
    for h in range(g.num_entities):  # each row sorted by (relation, tail), forward edges first
        row = list(zip(g.rels[g.indptr[h] : g.indptr[h + 1]], g.indices[g.indptr[h] : g.indptr[h + 1]]))
        assert row == sorted(row)
        assert all(r < g.num_relations for r, _ in row[: g.fwd_end[h] - g.indptr[h]])
        assert all(r >= g.num_relations for r, _ in row[g.fwd_end[h] - g.indptr[h] :])
    assert g.relation_name(g.relation_id("r1^-1")) == "r1^-1" == g.relation_name(g.relation_id("inverse of r1"))
    assert g.triple(g.entity_id("b"), g.relation_id("r1^-1"), g.entity_id("a")) == ("a", "r1", "b")


def test_execute_answer_sets(small):
    g = small
    assert run(g, "a", "r1") == {"b", "c"}  # several answers
    assert run(g, "a", "r1", "r2") == {"d", "e"}  # 2 hops: all of them, not one walk's end
    assert run(g, "b", "r1^-1") == {"a", "x"}  # inverse relation
    assert run(g, "d", "r2^-1", "r1^-1") == {"a", "x"}
    assert run(g, "e", "r2") == set()
    assert run(g, "x", "r1", "r2") == {"d"}


def test_witness_chains_are_graph_edges(small):
    g = small
    a = g.entity_id("a")
    rels = [g.relation_id("r1"), g.relation_id("r2")]
    chains = witness_paths(g, a, rels)
    assert names(g, np.array(list(chains))) == {"d", "e"}
    for answer, chain in chains.items():
        assert chain[0][0] == a and chain[-1][2] == answer and len(chain) == 2
        assert chain[0][2] == chain[1][0]
        assert all(g.has_edge(h, r, t) for h, r, t in chain)


def test_shortcut_loop_rejected(small):
    g = small
    # a -r1-> b -r1^-1-> a -r1-> ...: same answers as the single hop r1
    assert find_shortcut(g, g.entity_id("a"), [g.relation_id(r) for r in ("r1", "r1^-1", "r1")]) == (
        g.relation_id("r1"),
    )
    assert has_shortcut(g, g.entity_id("a"), [g.relation_id(r) for r in ("r1", "r1^-1", "r1")])
    assert not has_shortcut(g, g.entity_id("a"), [g.relation_id(r) for r in ("r1", "r2")])
    reason = check_path(g, rpath(g, "a", "r1", "r1^-1", "r1"))
    assert reason is not None and reason.startswith("shortcut")


def test_two_hop_equal_to_one_hop_is_a_shortcut():
    g = KnowledgeGraph.from_triples(
        [
            ("france", "has_region", "ile_de_france"),
            ("ile_de_france", "contains", "paris"),
            ("france", "capital", "paris"),
            ("spain", "has_region", "madrid_region"),
            ("madrid_region", "contains", "madrid"),
            ("madrid_region", "contains", "alcala"),
        ]
    )
    assert check_path(g, rpath(g, "france", "has_region", "contains")).startswith("shortcut: the shorter path capital")
    # without the direct edge the same shape is a real 2-hop question
    assert check_path(g, rpath(g, "spain", "has_region", "contains")) is None


def test_revisit_topic_and_bound_rejections(small):
    g = small
    walk = rpath(g, "a", "r1", "r1^-1", nodes=("a", "b", "a"))
    assert check_path(g, walk) == "the walk revisits an entity"
    # an answer set holding the topic and more is asked "other than" the topic, which leaves the answers
    assert check_path(g, rpath(g, "a", "r1", "r1^-1")) is None
    other = path_example(g, rpath(g, "a", "r1", "r1^-1"))
    assert (
        other.answers == ["X"]
        and other.question.endswith(", other than A?")
        and "other than" in other.answer_check.detail
    )
    alone = KnowledgeGraph.from_triples([("p", "likes", "z"), ("q", "likes", "y")])
    assert check_path(alone, rpath(alone, "p", "likes", "likes^-1")) == "the answer set is only the topic entity"
    assert check_path(g, rpath(g, "a", "r1"), max_answers=1) == "answer set larger than max_answers (1)"
    assert check_path(g, rpath(g, "a", "r1"), max_answers=2) is None
    assert check_path(g, rpath(g, "e", "r2")) == "empty answer set"
    assert "outside 1-2" in check_path(g, rpath(g, "d", "r2^-1", "r1^-1", "r1"), max_hops=2)
    rejected = path_example(g, walk)
    assert isinstance(rejected, PathRejection) and rejected.reason == "the walk revisits an entity"


def test_path_example_record(small):
    g = small
    ex = path_example(g, rpath(g, "a", "r1", "r2", nodes=("a", "c", "e")), reasoning=True)
    assert isinstance(ex, PathExample)
    assert ex.answers == ["D", "E"] and ex.topic == "A"
    assert ex.answer_check.method == "kg_execution" and ex.answer_check.passed and ex.answer_check.score == 1.0
    assert {s.kind for s in ex.source} == {"triple"}
    triples = {tuple(s.id.split("\t")) for s in ex.source}
    assert triples == set(ex.triples)
    assert ("c", "r2", "e") in triples and ("b", "r2", "d") in triples or ("c", "r2", "d") in triples
    assert ex.response.endswith("So the answer is: D and E.") and len(ex.reasoning) >= 3
    plain = path_example(g, rpath(g, "a", "r1", "r2"))
    assert plain.response == "D and E"
    # the example becomes a Record that survives the Arrow schema
    rec = Record(
        id=record_id(ex.messages(), ex.source, "kg_walk"),
        messages=ex.messages(),
        task="multi_hop_qa",
        lang=ex.lang,
        source=ex.source,
        lineage=Lineage(generator="kg_walk", model="none"),
        answer_check=ex.answer_check,
    )
    assert table_to_records(records_to_table([rec]))[0] == rec


def test_paraphrase_must_keep_topic(small):
    g = small
    ex = path_example(g, rpath(g, "a", "r1"), paraphrase=lambda q: "Which r1s does A have?")
    assert ex.template_question == "What are the r1s of A?"
    assert ex.paraphrased and ex.question == "Which r1s does A have?"
    ex = path_example(g, rpath(g, "a", "r1"))
    assert not with_paraphrase(ex, "What does it point to?") and "dropped the topic" in ex.notes[-1]
    assert not with_paraphrase(ex, "A points to B and C.") and "not a single question" in ex.notes[-1]
    # Drift: a new content word ("mother"), or the relation's word lost.
    assert not with_paraphrase(ex, "What are the r1s of A's mother?") and "changed the wording" in ex.notes[-1]
    assert not with_paraphrase(ex, "What is A?") and "changed the wording" in ex.notes[-1]
    assert ex.question == ex.template_question and not ex.paraphrased


# ---------------------------------------------------------------------------------------------- verbalisation


def test_relation_words():
    assert split_words("locatedin") == ["located", "in"]
    assert split_words("locatedIn") == split_words("located_in") == ["located", "in"]
    assert split_words("http://example.org/ns#bornIn") == ["born", "in"]
    assert split_words("hascapital") == ["has", "capital"]
    assert split_words("isa") == ["is", "a"]
    assert split_words("origin") == ["origin"] and split_words("domain") == ["domain"]


def test_questions_from_relation_names():
    assert verbalise(["locatedin^-1"], "Europe", plural=[True]) == "What is located in Europe?"
    assert verbalise(["locatedin^-1"], "Europe", plural=[True], answer_noun="country") == (
        "Which countries are located in Europe?"
    )
    assert verbalise(["locatedin"], "France", answer_noun="region") == "Which region is France located in?"
    assert verbalise(["neighbor"], "France", plural=[True]) == "What are the neighbors of France?"
    assert verbalise(["capital"], "France") == "What is the capital of France?"
    assert verbalise(["hasCapital^-1"], "Paris") == "What has Paris as its capital?"
    assert verbalise(["directed"], "Nolan", plural=[True]) == "What has Nolan directed?"
    assert verbalise(["rdf:type"], "Paris") == "What type of entity is Paris?"
    assert verbalise(["capitalOf"], "Paris") == "What is Paris the capital of?"
    assert verbalise(["capital_of^-1"], "France") == "What is the capital of France?"
    assert verbalise(["isPartOf^-1"], "Europe", plural=[True]) == "What is part of Europe?"
    assert verbalise(["isPartOf^-1"], "Europe", plural=[True], answer_noun="country") == (
        "Which countries are part of Europe?"
    )
    assert statement("memberOf", "France", "the EU") == "France is a member of the EU."
    # two hops: the first hop becomes a noun phrase inside the second hop's question
    q = verbalise(["locatedin^-1", "neighbor"], "Europe", plural=[True, True])
    assert q == "What are the neighbors of the entities located in Europe?"
    q = verbalise(["neighbor", "locatedin"], "France", plural=[True, True], answer_noun="region")
    assert q == "Which regions are the neighbors of France located in?"


def test_snake_case_movie_relations_read_as_english():
    """The issue's movie graph: the wording a person writes, inflected rather than pasted."""
    assert verbalise(["starred_actors"], "Inception", plural=[True]) == "What are the starred actors of Inception?"
    assert verbalise(["directed_by"], "Inception") == "Who directed Inception?"
    assert verbalise(["written_by"], "Inception") == "Who wrote Inception?"
    assert (
        verbalise(["directed_by^-1"], "Nolan", plural=[True], answer_noun="film")
        == "Which films were directed by Nolan?"
    )
    assert verbalise(["has_genre"], "Inception") == "What is the genre of Inception?"
    assert verbalise(["in_language"], "Inception") == "What is the language of Inception?"
    assert verbalise(["release_year"], "Inception") == "What is the release year of Inception?"
    q = verbalise(["starred_actors^-1", "written_by"], "Tom Hanks", plural=[True, True])
    assert q == "Who wrote the entities that have Tom Hanks as their starred actor?"
    assert (
        statement("starred_actors", "Inception", "Tom Hardy", several=True)
        == "Tom Hardy is a starred actor of Inception."
    )
    assert statement("has_tags", "Inception", "world war ii", several=True) == "world war ii is a tag of Inception."
    # DBpedia's glued and camelCase infobox names
    assert split_words("nationalteam") == ["national", "team"] and split_words("countryofbirth") == [
        "country",
        "of",
        "birth",
    ]
    assert verbalise(["almaMater^-1"], "MIT", plural=[True]) == "What has MIT as its alma mater?"
    assert verbalise(["countryofbirth"], "Pelé") == "What is the country of birth of Pelé?"
    assert verbalise(["youthclubs"], "Messi", plural=[True]) == "What are the youth clubs of Messi?"


def test_overrides_and_chinese():
    over = {"locatedin^-1": {"question": "Which countries are in {x}?", "phrase": "the countries in {x}"}}
    assert verbalise(["locatedin^-1"], "Europe", overrides=over) == "Which countries are in Europe?"
    q = verbalise(["locatedin^-1", "neighbor"], "Europe", overrides=over, plural=[True, True])
    assert q == "What are the neighbors of the countries in Europe?"
    zh = {"locatedin": {"words": "所在地区"}, "neighbor": {"words": "邻国"}}
    assert verbalise(["locatedin"], "法国", lang="zh", overrides=zh) == "法国的所在地区是什么？"
    assert verbalise(["neighbor", "locatedin"], "法国", lang="zh", overrides=zh) == "法国的邻国的所在地区是什么？"
    assert verbalise(["neighbor^-1"], "法国", lang="zh", overrides=zh, plural=[True]) == "哪些实体的邻国是法国？"
    assert statement("locatedin", "France", "Europe") == "France is located in Europe."
    assert statement("neighbor", "France", "Spain", several=True) == "Spain is a neighbor of France."
    assert statement("locatedin", "法国", "欧洲", lang="zh", overrides=zh) == "法国的所在地区是欧洲。"
    # without overrides, English relation names are translated by the dictionary and glossary
    assert verbalise(["locatedin"], "法国", lang="zh") == "法国位于什么？"
    assert verbalise(["birthPlace"], "李白", lang="zh") == "李白的出生地是什么？"
    assert verbalise(["almaMater^-1"], "北京大学", lang="zh", plural=[True]) == "哪些实体的母校是北京大学？"


# ---------------------------------------------------------------------------------------------- loaders


TRIPLES = {("paris", "capital_of", "france"), ("france", "located_in", "europe"), ("berlin", "capital_of", "germany")}


def edge_set(g: KnowledgeGraph) -> set[tuple[str, str, str]]:
    heads = np.repeat(np.arange(g.num_entities), np.diff(g.indptr))
    fwd = g.rels < g.num_relations
    return {g.triple(h, r, t) for h, r, t in zip(heads[fwd], g.rels[fwd], g.indices[fwd])}


def test_load_tab_with_blank_lines_and_duplicates(tmp_path):
    p = tmp_path / "kg.tsv"
    p.write_text(
        "paris\tcapital_of\tfrance\n\nfrance\tlocated_in\teurope \r\nberlin\tcapital_of\tgermany\n"
        "paris\tcapital_of\tfrance\n"
    )
    g = load_graph(p)
    assert edge_set(g) == TRIPLES and g.num_triples == 3
    assert run(g, "france", "capital_of^-1") == {"paris"}


def test_load_csv_pipe_and_gzip(tmp_path):
    csv_path = tmp_path / "kg.csv"
    csv_path.write_text('head,relation,tail\n"Washington, D.C.",capital_of,united_states\nparis,capital_of,france\n')
    g = load_graph(csv_path)
    assert edge_set(g) == {("Washington, D.C.", "capital_of", "united_states"), ("paris", "capital_of", "france")}
    pipe = tmp_path / "kg.txt"
    pipe.write_text("".join(f"{h}|{r}|{t}\n" for h, r, t in sorted(TRIPLES)))
    assert detect_format(pipe) == "pipe" and edge_set(load_graph(pipe)) == TRIPLES
    gz = tmp_path / "kg.tsv.gz"
    gz.write_bytes(gzip.compress("".join(f"{h}\t{r}\t{t}\n" for h, r, t in TRIPLES).encode()))
    assert edge_set(load_graph(gz)) == TRIPLES


def test_load_ntriples_and_turtle(tmp_path):
    ex = "http://example.org/"
    nt = tmp_path / "kg.nt"
    nt.write_text(
        f"<{ex}paris> <{ex}capitalOf> <{ex}france> .\n"
        f"<{ex}france> <{ex}locatedIn> <{ex}europe> .\n"
        f'<{ex}france> <http://www.w3.org/2000/01/rdf-schema#label> "France"@en .\n'
        f'<{ex}france> <http://www.w3.org/2000/01/rdf-schema#label> "Frankreich"@de .\n'
        f'<{ex}france> <{ex}population> "68000000"^^<http://www.w3.org/2001/XMLSchema#integer> .\n'
    )
    g = load_graph(nt)
    assert g.num_triples == 3  # labels are names, not edges
    assert g.name(g.entity_id(f"{ex}france")) == "France" and g.name(g.entity_id(f"{ex}paris")) == "Paris"
    assert run(g, f"{ex}france", "capitalOf^-1") == {f"{ex}paris"}  # relations by their URI's last segment
    ttl = tmp_path / "kg.ttl"
    ttl.write_text(
        "@prefix ex: <http://example.org/> .\n@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"
        'ex:paris ex:capitalOf ex:france ; a ex:City ; rdfs:label "Paris" .\n'
        "ex:lyon a ex:City .\nex:france ex:locatedIn ex:europe .\n"
    )
    g = load_graph(ttl)
    assert g.num_triples == 4 and g.type_relation() is not None
    cities = start_nodes(g, 50, by="type", types=[f"{ex}City"], seed=0)
    assert names(g, np.unique(cities)) == {f"{ex}paris", f"{ex}lyon"}
    with pytest.raises(SourceError, match="bad.ttl: cannot parse as Turtle"):
        (tmp_path / "bad.ttl").write_text("ex:a ex:b .\n")
        load_graph(tmp_path / "bad.ttl")


def test_label_files(tmp_path):
    kg = tmp_path / "train.txt"
    kg.write_text("0\t1\t2\n2\t1\t3\n")
    ents = tmp_path / "entities.dict"
    ents.write_text("0\tnepal\n1\tunused\n2\tasia\n3\tearth\n")
    rels = tmp_path / "relations.dict"
    rels.write_text("1\tlocatedin\n")
    g = load_graph(kg, labels=ents, relation_labels=rels)
    assert g.name(g.entity_id("0")) == "nepal" and g.relation_labels == {0: "locatedin"}
    ex = path_example(g, rpath(g, "2", "1^-1"), overrides={"locatedin^-1": "What lies in {x}?"})
    assert ex.question == "What lies in asia?" and ex.answers == ["nepal"]  # labels, for entities and relations
    assert read_labels(ents)["3"] == "earth"
    ents.write_text("0\tnepal\n1 unused\n")
    with pytest.raises(SourceError, match=r"entities.dict line 2: expected 2 tab-separated fields"):
        read_labels(ents)


def test_malformed_rows_name_file_and_line(tmp_path):
    p = tmp_path / "kg.tsv"
    p.write_text("a\tr\tb\n\nc\td\ne\tr\tf\n")
    with pytest.raises(
        SourceError, match=r"kg.tsv line 3: expected 3 tab-separated fields \(head, relation, tail\), found 2"
    ):
        load_graph(p)
    p.write_text("a\tr\tb\nc\tr\t\n")
    with pytest.raises(SourceError, match=r"kg.tsv line 2: the tail field is empty"):
        load_graph(p)
    c = tmp_path / "kg.csv"
    c.write_text("a,r,b\na,r,b,extra\n")
    with pytest.raises(SourceError, match=r"kg.csv line 2: expected 3 comma-separated fields"):
        load_graph(c)
    with pytest.raises(SourceError, match="not found"):
        load_graph(tmp_path / "missing.tsv")
    odd = tmp_path / "kg.dat"
    odd.write_text("just words\n")
    with pytest.raises(SourceError, match="cannot tell the triple format"):
        load_graph(odd)


# ---------------------------------------------------------------------------------------------- walks


def grid(n: int) -> KnowledgeGraph:
    triples = [(f"{i},{j}", "right", f"{i},{j + 1}") for i in range(n) for j in range(n - 1)]
    triples += [(f"{i},{j}", "down", f"{i + 1},{j}") for i in range(n - 1) for j in range(n)]
    return KnowledgeGraph.from_triples(triples)


def assert_valid_walks(g: KnowledgeGraph, walks) -> None:
    for i in range(len(walks)):
        for j in range(walks.rels.shape[1]):
            r = int(walks.rels[i, j])
            if r >= 0:
                assert g.has_edge(int(walks.nodes[i, j]), r, int(walks.nodes[i, j + 1]))


@pytest.mark.parametrize("strategy", ["uniform", "restart", "node2vec", "inverse_degree"])
def test_walks_reproducible_and_follow_edges(strategy):
    g = grid(8)
    starts = start_nodes(g, 64, seed=1)
    a = random_walks(g, starts, 10, strategy, seed=7, p=0.5, q=2.0)
    b = random_walks(g, starts, 10, strategy, seed=7, p=0.5, q=2.0)
    c = random_walks(g, starts, 10, strategy, seed=8, p=0.5, q=2.0)
    assert np.array_equal(a.nodes, b.nodes) and np.array_equal(a.rels, b.rels)
    assert not np.array_equal(a.nodes, c.nodes)
    assert (a.nodes[:, 0] == starts).all() and (a.nodes >= 0).all()
    assert_valid_walks(g, a)


def test_restart_returns_to_start():
    g = KnowledgeGraph.from_triples([(f"n{i}", "next", f"n{i + 1}") for i in range(200)])
    starts = np.full(500, g.entity_id("n100"))
    w = random_walks(g, starts, 30, "restart", alpha=0.3, seed=0)
    jumps = w.rels == -1
    assert 0.25 < jumps.mean() < 0.35
    assert (w.nodes[:, 1:][jumps] == starts[0]).all()  # every jump lands on the start
    u = random_walks(g, starts, 30, "uniform", seed=0)
    spread = lambda x: np.abs(x.nodes[:, -1].astype(int) - starts[0]).mean()  # noqa: E731  (ids follow n-order)
    assert spread(w) < spread(u) / 1.5


def test_inverse_degree_avoids_hubs():
    leaves = 60
    triples = [("hub", "link", f"leaf{i}") for i in range(leaves)]
    triples += [(f"leaf{i}", "ring", f"leaf{(i + 1) % leaves}") for i in range(leaves)]
    g = KnowledgeGraph.from_triples(triples)
    starts = start_nodes(g, 400, by="list", entities=[f"leaf{i}" for i in range(leaves)], seed=3)
    hub = g.entity_id("hub")
    uni = (random_walks(g, starts, 20, "uniform", seed=4).nodes == hub).mean()
    inv = (random_walks(g, starts, 20, "inverse_degree", seed=4).nodes == hub).mean()
    assert uni > 0.15 and inv < uni / 4, (uni, inv)


def test_node2vec_small_q_explores_further():
    # a triangulated grid: a node's neighbours are partly adjacent to the previous node (weight 1) and partly
    # not (weight 1/q), so q decides between staying local (BFS-like) and moving outward (DFS-like)
    n = 31
    triples = [(f"{i},{j}", "right", f"{i},{j + 1}") for i in range(n) for j in range(n - 1)]
    triples += [(f"{i},{j}", "down", f"{i + 1},{j}") for i in range(n - 1) for j in range(n)]
    triples += [(f"{i},{j}", "diag", f"{i + 1},{j + 1}") for i in range(n - 1) for j in range(n - 1)]
    g = KnowledgeGraph.from_triples(triples)
    centre = g.entity_id(f"{n // 2},{n // 2}")
    dist = np.full(g.num_entities, -1)
    dist[centre], frontier, d = 0, [centre], 0
    while frontier:  # BFS hop distances from the centre
        d += 1
        nxt = {int(v) for u in frontier for v in g.indices[g.indptr[u] : g.indptr[u + 1]] if dist[v] < 0}
        dist[list(nxt)] = d
        frontier = list(nxt)
    starts = np.full(400, centre)

    def mean_distance(strategy: str, q: float) -> float:
        return float(dist[random_walks(g, starts, 10, strategy, p=1.0, q=q, seed=5).nodes[:, -1]].mean())

    far, mid, near = mean_distance("node2vec", 0.25), mean_distance("node2vec", 1.0), mean_distance("node2vec", 4.0)
    assert far > mid > near and far > 1.5 * near, (far, mid, near)
    assert abs(mid - mean_distance("uniform", 1.0)) < 0.5  # p = q = 1 is the uniform walk


def test_inverse_degree_and_node2vec_transition_probabilities():
    # from c: a has degree 1, b degree 2, d degree 4, so inverse-degree picks them 4/7, 2/7, 1/7
    g = KnowledgeGraph.from_triples(
        [("c", "r", "a"), ("c", "r", "b"), ("b", "r", "x"), ("c", "r", "d")] + [("d", "r", f"y{i}") for i in range(3)]
    )
    w = random_walks(g, np.full(20000, g.entity_id("c")), 1, "inverse_degree", seed=9)
    freq = [np.mean(w.nodes[:, 1] == g.entity_id(x)) for x in "abd"]
    assert np.allclose(freq, [4 / 7, 2 / 7, 1 / 7], atol=0.015), freq
    # node2vec after u -> c: back to u weighs 1/p, a (a neighbour of u) 1, b (not) 1/q
    g = KnowledgeGraph.from_triples([("u", "r", "c"), ("c", "r", "a"), ("c", "r", "b"), ("u", "r", "a")])
    w = random_walks(g, np.full(40000, g.entity_id("u")), 2, "node2vec", p=2.0, q=0.5, seed=9)
    via_c = w.nodes[w.nodes[:, 1] == g.entity_id("c"), 2]
    freq = [np.mean(via_c == g.entity_id(x)) for x in "uab"]
    assert len(via_c) > 15000 and np.allclose(freq, [0.5 / 3.5, 1 / 3.5, 2 / 3.5], atol=0.015), freq


def test_forward_only_and_dead_ends():
    g = KnowledgeGraph.from_triples([("a", "r", "b"), ("b", "r", "c")])
    w = random_walks(g, [g.entity_id("a")] * 5, 4, forward_only=True, seed=0)
    assert names(g, w.nodes[0, :3]) == {"a", "b", "c"} and (w.nodes[:, 3:] == -1).all()
    assert (w.rels[:, :2] == g.relation_id("r")).all() and (w.rels[:, 2:] == -1).all()
    assert [g.entity(x) for x in w.walk(0)[0]] == ["a", "b", "c"]


def test_start_distributions(small):
    g = small
    heads = start_nodes(g, 200, by="relation", relations=["r1"], seed=0)
    assert names(g, np.unique(heads)) == {"a", "x"}
    tails = start_nodes(g, 200, by="relation", relations=["r2^-1"], seed=0)
    assert names(g, np.unique(tails)) == {"d", "e"}
    assert names(g, start_nodes(g, 20, by="list", entities=["c"], seed=0)) == {"c"}
    assert len(np.unique(start_nodes(g, 500, seed=0))) == g.num_entities
    with pytest.raises(SourceError, match="'nope'"):
        start_nodes(g, 5, by="list", entities=["c", "nope"])
    with pytest.raises(SourceError, match="no type relation"):
        start_nodes(g, 5, by="type", types=["c"])


# ---------------------------------------------------------------------------------------------- countries


@pytest.fixture(scope="module")
def countries() -> KnowledgeGraph:
    if not (COUNTRIES / "train.txt").exists():
        pytest.skip(f"the countries graph is not at {COUNTRIES}")
    return load_graph(
        [COUNTRIES / f for f in ("train.txt", "valid.txt", "test.txt")], labels=COUNTRIES / "entities.dict"
    )


def raw_triples() -> set[tuple[str, str, str]]:
    out = set()
    for f in ("train.txt", "valid.txt", "test.txt"):
        for line in (COUNTRIES / f).read_text().splitlines():
            if line.strip():
                out.add(tuple(line.split("\t")))
    return out


def naive_execute(triples: set[tuple[str, str, str]], topic: str, rels: list[str]) -> set[str]:
    """A set-based reference executor, independent of the CSR code."""
    fwd, inv = defaultdict(set), defaultdict(set)
    for h, r, t in triples:
        fwd[h, r].add(t)
        inv[t, r].add(h)
    frontier = {topic}
    for r in rels:
        table, base = (inv, r[:-3]) if r.endswith("^-1") else (fwd, r)
        frontier = set().union(*(table[e, base] for e in frontier)) if frontier else set()
    return frontier


def test_countries_known_facts(countries):
    g = countries
    assert g.relations == ["locatedin", "neighbor"] and g.num_entities == 271
    assert g.num_triples == len(raw_triples())
    assert {"france", "germany", "belgium", "netherlands"} <= run(g, "western_europe", "locatedin^-1")
    assert run(g, "france", "locatedin") == {"western_europe", "europe"}
    assert {"spain", "germany", "italy"} <= run(g, "france", "neighbor") and "japan" not in run(g, "france", "neighbor")
    assert {"northern_africa", "western_africa"} <= run(g, "africa", "locatedin^-1")
    assert run(g, "portugal", "neighbor") == {"spain"}
    assert g.name(g.entity_id("united_states")) == "United States"
    q = path_example(g, rpath(g, "portugal", "neighbor", "neighbor", nodes=("portugal", "spain", "france")))
    # Spain's neighbours include Portugal itself: asked "other than Portugal", and Portugal is not an answer
    assert q.question == "What are the neighbors of the neighbor of Portugal, other than Portugal?"
    assert "Portugal" not in q.answers and {"France", "Andorra"} <= set(q.answers)


def test_countries_end_to_end(countries):
    g = countries
    triples = raw_triples()
    starts = start_nodes(g, 600, seed=11)
    walks = random_walks(g, starts, 3, "node2vec", p=2.0, q=0.5, seed=12)
    made, reasons = [], defaultdict(int)
    for path in paths_from_walks(walks, min_hops=1, max_hops=3, seed=13):
        out = path_example(g, path, reasoning=True, max_answers=12)
        if isinstance(out, PathRejection):
            reasons[out.reason.split(":")[0].split(" of ")[0]] += 1
        else:
            made.append(out)
    assert len(made) > 100 and reasons["the walk revisits an entity"] > 0 and reasons["shortcut"] > 0
    assert {len(e.relations) for e in made} == {1, 2, 3}
    for e in made:
        ids = [g.entity(a) for a in e.answer_ids]
        topic = g.entity(e.topic_id)
        assert set(ids) == naive_execute(triples, topic, e.relations) - {topic}
        assert (topic in naive_execute(triples, topic, e.relations)) == ("other than" in e.question)
        assert 0 < len(ids) <= 12 and topic not in ids
        assert all(tuple(s.id.split("\t")) in triples for s in e.source)
        assert e.question.endswith("?") and e.response.endswith(".")


@pytest.mark.slow
def test_countries_paraphrased_by_bundled_model(countries, llm):
    from sftforge.llm.base import ChatRequest, SamplingParams

    g = countries
    walks = random_walks(g, start_nodes(g, 60, seed=21), 2, seed=22)
    examples = [
        e
        for p in paths_from_walks(walks, min_hops=1, max_hops=2, seed=23)
        if isinstance(e := path_example(g, p), PathExample)
    ][:4]
    assert examples
    prompt = "Rewrite this question in different words. Keep every name. Reply with the question only.\n\n{q}"
    requests = [
        ChatRequest.of(
            str(i),
            [{"role": "user", "content": prompt.format(q=e.question)}],
            SamplingParams(temperature=0.0, max_tokens=40),
        )
        for i, e in enumerate(examples)
    ]
    for e, c in zip(examples, llm.generate(requests)):
        answers = list(e.answers)
        used = with_paraphrase(e, c.text)
        assert e.answers == answers and e.answer_check.passed  # a paraphrase never changes the verified answer
        assert (e.question != e.template_question) == used
        assert e.topic.lower() in e.question.lower() and e.question.endswith("?")
