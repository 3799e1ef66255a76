"""Do the questions made from knowledge-graph paths read as a person would write them? Measured on real graphs
nobody here wrote, in English and Chinese, with the rules alone (no LLM step).

Graphs (../shared/data/kg, see SOURCES.md):
- countries (DeepGraphLearning, MIT): `neighbor` and `locatedin` over 271 countries and regions; asked in English
  and in Chinese (its names are English, so Chinese questions keep them as written);
- DBP15K ZH-EN (DBpedia infoboxes, CC BY-SA 3.0): the English side (95,142 triples, 1,323 camelCase properties)
  asked in English, the Chinese side (70,414 triples, 1,701 properties, most in English camelCase, 513 in
  Chinese) asked in Chinese. Ids map to labels through `ent_ids_*` / `rel_ids_*` (URI tails).

For each graph and language, seeded random walks give relation paths of 1 to 3 hops; every path that becomes an
example (answer set verified on the graph) gives one question. Each question goes through
`sftforge.kg.wording.problems`, a check that knows nothing of the templates (a dictionary other than the one the
verbaliser uses, agreement and article rules, placeholders, the neutral noun repeated, untranslated relation
names in Chinese). Printed: the share of questions without a problem, the number of distinct templates (the
question with the topic's name masked), the most common problems, and 20 questions per language drawn at random
for a person to read.

    python benchmarks/kg_wording.py [--walks 1500] [--seed 0]

Last line: `kg wording: en E zh Z` (shares in 0..1; goal >= 0.95 on both).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

import numpy as np

from sftforge.kg import KnowledgeGraph, load_graph, path_example, paths_from_walks, random_walks, start_nodes
from sftforge.kg.classes import ClassNamer
from sftforge.kg.lexicon import Lexicon
from sftforge.kg.paths import PathExample
from sftforge.kg.wording import problems

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kg"


def _uri_tails(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, uri = line.split("\t")
        out[key] = uri.rsplit("/", 1)[1].replace("_", " ")
    return out


def graphs() -> list[tuple[str, KnowledgeGraph, str]]:
    countries = load_graph([DATA / "countries" / f for f in ("train.txt", "valid.txt", "test.txt")])
    dbp = DATA / "dbp15k_zh_en"
    sides = []
    for side, lang in (("2", "en"), ("1", "zh")):
        g = load_graph(dbp / f"triples_{side}", fmt="tsv")
        g.set_labels(_uri_tails(dbp / f"ent_ids_{side}"))
        g.set_labels(_uri_tails(dbp / f"rel_ids_{side}"), relations=True)
        sides.append((f"dbp15k {'English' if lang == 'en' else 'Chinese'} side", g, lang))
    return [("countries", countries, "en"), ("countries", countries, "zh"), *sides]


def questions(graph: KnowledgeGraph, lang: str, walks: int, seed: int) -> tuple[list[tuple[str, str]], float]:
    """(question, topic) for every accepted path of `walks` seeded walks, and the seconds it took."""
    t0 = time.perf_counter()
    lexicon = Lexicon.for_graph(graph, lang)
    namer = ClassNamer(graph, lexicon)
    rng = np.random.default_rng(seed)
    starts = start_nodes(graph, walks, seed=rng)
    found = random_walks(graph, starts, 3, "uniform", seed=rng)
    out = []
    for path in paths_from_walks(found, min_hops=1, max_hops=3, seed=rng):
        ex = path_example(graph, path, lang=lang, lexicon=lexicon, classes=namer)
        if isinstance(ex, PathExample):
            out.append((ex.question, ex.topic))
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--walks", type=int, default=1500, help="walks per graph and language")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    by_lang: dict[str, list[tuple[str, str, list[str]]]] = {"en": [], "zh": []}
    print(f"{'graph':<22} {'lang':<5} {'questions':>9} {'grammatical':>11} {'templates':>9} {'seconds':>8}")
    for name, graph, lang in graphs():
        qs, secs = questions(graph, lang, args.walks, args.seed)
        judged = [(q, topic, problems(q, [topic], lang)) for q, topic in qs]
        by_lang[lang] += judged
        ok = sum(not p for _, _, p in judged) / max(len(judged), 1)
        templates = len({q.replace(topic, "{x}") for q, topic, _ in judged})
        print(f"{name:<22} {lang:<5} {len(judged):>9} {ok:>11.3f} {templates:>9} {secs:>8.1f}")
    rng = np.random.default_rng(args.seed)
    shares = {}
    for lang, judged in by_lang.items():
        shares[lang] = sum(not p for _, _, p in judged) / max(len(judged), 1)
        counts = Counter(x.split(":")[0] for _, _, p in judged for x in p)
        print(f"\n{lang}: most common problems: {dict(counts.most_common(6)) or 'none'}")
        bad = [(q, p) for q, _, p in judged if p]
        for q, p in bad[:8]:
            print(f"  FLAGGED {q}  <- {'; '.join(p)}")
        print(f"{lang}: 20 questions drawn at random, for a person to read:")
        for i in rng.choice(len(judged), size=min(20, len(judged)), replace=False):
            q, _, p = judged[int(i)]
            print(f"  {'  ' if not p else '! '}{q}")
    print(f"\nkg wording: en {shares['en']:.3f} zh {shares['zh']:.3f}")


if __name__ == "__main__":
    main()
