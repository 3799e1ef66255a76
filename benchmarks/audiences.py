"""Do audiences make the data more varied? The same summary recipe, made by the bundled model twice per corpus:
once for nobody in particular, once for three readers (task.audiences), with the same passages, the same
`per_passage` and the same sampling, so the only difference is who each summary is written for.

Corpora: the Python PEPs in examples/data/peps, and XQuAD English paragraphs (Artetxe et al. 2020; CC BY-SA 4.0,
../shared/data/corpus/xquad.en.json; the first `--paragraphs`, at most 3 per article). Every run keeps the
faithfulness check on (every summary sentence supported by its passage) and the record count is equalised: each
pair of runs is compared on its first `min(n_plain, n_audiences)` records.

Figures, per corpus and overall (records pooled by corpus, the overall ratio is the mean of the two):
- distinct-2 of the summaries (`lib/diversity.py`);
- embedding spread: mean pairwise cosine distance (1 - cosine) of the summaries' MiniLM embeddings, and the same
  over pairs of summaries of one passage only (what audiences can add when the passages are the same);
- pass rate: records made over work items finished (records + rejections) in the generate stage.

    python benchmarks/audiences.py [--records 48] [--paragraphs 24]

Each run is a real `sftforge run` (benchmarks/.cache/audiences/), resumable. Last lines:
`audience diversity gain within a passage: W` and `audience diversity gain: G` (embedding spread with audiences
over without, over all pairs and over pairs from one passage, mean over the corpora).
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import yaml

from sftforge.lib.diversity import distinct_n
from sftforge.lib.embed import Embedder

REPO = Path(__file__).resolve().parent.parent
XQUAD = REPO.parent / "shared" / "data" / "corpus" / "xquad.en.json"
CACHE = REPO / "benchmarks" / ".cache" / "audiences"

READERS = [
    {
        "name": "newcomer",
        "description": "a newcomer to the subject",
        "expertise": "beginner",
        "interests": ["what it means", "examples"],
        "length": "short",
    },
    {
        "name": "expert",
        "description": "an expert who wants the details",
        "expertise": "expert",
        "interests": ["numbers", "causes"],
        "length": "detailed",
    },
    {
        "name": "busy",
        "description": "a busy manager",
        "expertise": "intermediate",
        "interests": ["decisions", "consequences"],
        "length": "one_line",
    },
]


def xquad_docs(paragraphs: int) -> Path:
    """The first `paragraphs` XQuAD English paragraphs (at most 3 per article), one file each."""
    data = json.loads(XQUAD.read_text(encoding="utf-8"))
    docs = CACHE / "xquad_docs"
    docs.mkdir(parents=True, exist_ok=True)
    taken = 0
    for a, article in enumerate(data["data"]):
        for p, para in enumerate(article["paragraphs"][:3]):
            if taken == paragraphs:
                return docs
            taken += 1
            doc = docs / f"xquad-{a:02d}-{p}.txt"
            if not doc.exists():
                doc.write_text(para["context"] + "\n", encoding="utf-8")
    return docs


DESCRIPTIONS = {
    "peps": "Python code style, docstrings, the with statement, f-strings and assignment expressions.",
    "xquad": "Summaries of encyclopedia paragraphs for readers of the subject.",
}


def recipe(name: str, docs: Path, records: int, audiences: bool) -> dict:
    corpus = name.split("_")[0]
    task = {
        "type": "summarization",
        "description": DESCRIPTIONS[corpus],
        "language": "en",
        "target_count": records,
        "constraints": {"responsiveness": {"enabled": True}},
    }
    if audiences:
        task["audiences"] = READERS
    return {
        "name": name,
        "task": task,
        "sources": {
            "documents": [{"path": str(docs)}],
            "chunking": {"max_tokens": 160, "overlap_tokens": 16, "min_tokens": 40},
            # PEPs: the passages about the description first; XQuAD: every paragraph in article order
            "retrieval": {"method": "bm25" if corpus == "peps" else "none"},
        },
        "generation": {
            "model": {"path": "bundled", "n_ctx": 1024, "parallel": 8},
            "sampling": {"temperature": 0.5, "max_tokens": 96, "seed": 7},
            "per_passage": 3,
            "max_attempts": 2,
        },
        "cleaning": {"preset": "none", "dedup": []},
    }


def run(name: str, docs: Path, records: int, audiences: bool) -> Path:
    out = CACHE / name
    path = CACHE / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe(name, docs, records, audiences), sort_keys=False), encoding="utf-8")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sftforge.cli", "run", str(path), "--out", str(out)], check=True, cwd=REPO)
    print(f"  {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def made(out: Path) -> tuple[list[tuple[str, str]], float]:
    """(chunk id, summary) of the generate stage's records in order, and its pass rate."""
    rows = []
    for shard in sorted((out / "generate").glob("part-*.parquet")):
        for r in pq.read_table(shard, columns=["messages", "source"]).to_pylist():
            chunk = next(s["id"] for s in r["source"] if s["kind"] == "chunk")
            rows.append((chunk, r["messages"][-1]["content"]))
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    counts = manifest["stages"]["generate"]["counts"]
    return rows, counts["records"] / max(1, counts["records"] + counts["rejected"])


def spread(embedder: Embedder, rows: list[tuple[str, str]]) -> tuple[float, float]:
    """Mean pairwise cosine distance over all pairs, and over pairs from one passage."""
    vecs = embedder.encode([text for _, text in rows])
    vecs = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    dist = 1.0 - vecs @ vecs.T
    pairs = list(itertools.combinations(range(len(rows)), 2))
    same = [(i, j) for i, j in pairs if rows[i][0] == rows[j][0]]
    overall = float(np.mean([dist[i, j] for i, j in pairs]))
    within = float(np.mean([dist[i, j] for i, j in same])) if same else float("nan")
    return overall, within


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=48)
    ap.add_argument("--paragraphs", type=int, default=24)
    args = ap.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    corpora = {"peps": REPO / "examples" / "data" / "peps", "xquad": xquad_docs(args.paragraphs)}
    embedder = Embedder()
    gains, within_gains = [], []
    print("corpus | audiences | records | pass rate | distinct-2 | spread | spread within a passage")
    for corpus, docs in corpora.items():
        plain, plain_rate = made(run(f"{corpus}_plain", docs, args.records, False))
        aud, aud_rate = made(run(f"{corpus}_audiences", docs, args.records, True))
        n = min(len(plain), len(aud))
        figures = {}
        for label, rows, rate in (("no", plain[:n], plain_rate), ("yes", aud[:n], aud_rate)):
            overall, within = spread(embedder, rows)
            d2 = distinct_n([t for _, t in rows], 2)
            figures[label] = (overall, within)
            print(f"{corpus} | {label} | {n} | {rate:.2f} | {d2:.3f} | {overall:.3f} | {within:.3f}", flush=True)
        gains.append(figures["yes"][0] / figures["no"][0])
        within_gains.append(figures["yes"][1] / figures["no"][1])
        print(f"{corpus}: gain {gains[-1]:.2f}, within a passage {within_gains[-1]:.2f}", flush=True)
    print(f"audience diversity gain within a passage: {sum(within_gains) / len(within_gains):.2f}")
    print(f"audience diversity gain: {sum(gains) / len(gains):.2f}")


if __name__ == "__main__":
    main()
