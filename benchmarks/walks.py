"""Knowledge-graph walks: sftforge's CSR arrays and vectorised walkers against networkx, same graph, same starts.

Graph (fixed seed): a synthetic power-law graph with `--edges` triples (default 1,000,000), Chung-Lu style:
heads and tails drawn with probability proportional to rank^-0.75 over edges/5 entities (degree exponent
about 2.3, a few hubs with thousands of edges), 4 relation types; self-loops and repeated entity pairs (either
direction) are dropped, so "an edge chosen uniformly" and "a neighbour chosen uniformly" are the same walk in
both implementations. Written once as a TSV file that both implementations load.

Each implementation runs in its own subprocess (clean memory numbers): build from the TSV file (sftforge:
`load_graph`, CSR with inverse edges; networkx: a DiGraph with both directions and the relation as an edge
attribute, the usual way), then walks of `--length` steps from the same `--walks` start entities, for the
strategies uniform, restart (alpha 0.15), node2vec (p 0.5, q 2) and inverse-degree. The networkx walks are
written the straightforward way: neighbours via G[u], random.choice, random.choices with node2vec's bias
computed per neighbour (1/p back, 1 if adjacent to the previous node, 1/q otherwise) and 1/degree weights.
Walks/s is the median over `--reps` (at least 11 for sftforge, whose runs take milliseconds). Memory: resident
memory the built graph adds over the process after imports, and the peak during the build. The "mean degree
visited" rows check that both implementations walk the same way (equal up to sampling noise).

Last line: `walks speedup vs networkx: R`, R the median over the strategies of sftforge walks/s divided by
networkx walks/s on the same starts.

    python benchmarks/walks.py [--edges 1000000] [--walks 1000] [--length 10] [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

STRATEGIES = ("uniform", "restart", "node2vec", "inverse_degree")
ALPHA, P, Q = 0.15, 0.5, 2.0


def rss_kib(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


# ---------------------------------------------------------------------------------------------------- graph


def make_graph(edges: int, seed: int, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Write a power-law graph of `edges` triples as TSV; returns its entities' names and degrees."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    n = max(edges // 5, 10)
    weights = np.arange(1, n + 1, dtype=np.float64) ** -0.75
    cdf = np.cumsum(weights / weights.sum())
    keep_h = np.empty(0, np.int64)
    keep_t = np.empty(0, np.int64)
    while len(keep_h) < edges:
        m = int((edges - len(keep_h)) * 1.3) + 1000
        h = np.minimum(np.searchsorted(cdf, rng.random(m)), n - 1)
        t = np.minimum(np.searchsorted(cdf, rng.random(m)), n - 1)
        h, t = np.concatenate([keep_h, h]), np.concatenate([keep_t, t])
        ok = h != t
        h, t = h[ok], t[ok]
        pair = np.minimum(h, t) * n + np.maximum(h, t)  # one edge per entity pair, either direction
        _, first = np.unique(pair, return_index=True)
        first.sort()
        keep_h, keep_t = h[first], t[first]
    keep_h, keep_t = keep_h[:edges], keep_t[:edges]
    perm = rng.permutation(n)  # hubs get scattered ids, not 0, 1, 2, ...
    rel = rng.integers(0, 4, size=edges)
    names = np.char.add("e", perm.astype(str))
    table = pa.table(
        {
            "h": pa.array(names[keep_h]),
            "r": pa.array(np.char.add("rel_", rel.astype(str))),
            "t": pa.array(names[keep_t]),
        }
    )
    pacsv.write_csv(table, path, pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none"))
    present, degree = np.unique(np.concatenate([keep_h, keep_t]), return_counts=True)
    return names[present], degree


# ---------------------------------------------------------------------------------------------------- workers


def worker_sftforge(args: argparse.Namespace) -> dict:
    import pyarrow as pa

    from sftforge.kg import load_graph, random_walks

    warm = Path(args.file).with_name("warm.tsv")  # load a tiny graph first: lazy imports are not graph memory
    warm.write_text("a\tr\tb\n")
    random_walks(load_graph(warm), [0], 2, "node2vec")
    base = rss_kib()
    t0 = time.perf_counter()
    g = load_graph(args.file)
    g.adjacency_keys()  # node2vec's and inverse-degree's lookup arrays are part of the built graph
    g.cumulative_inverse_degree()
    build = time.perf_counter() - t0
    pa.default_memory_pool().release_unused()  # Arrow's allocator keeps freed read buffers cached
    mem = rss_kib() - base
    peak = rss_kib("VmHWM") - base
    starts = g.entity_ids(Path(args.starts).read_text().split())
    assert (starts >= 0).all()
    degree = g.degree()
    out = {"build_s": build, "mem_mib": mem / 1024, "peak_mib": peak / 1024, "nbytes_mib": g.nbytes() / 2**20}
    for strategy in STRATEGIES:
        times, visited = [], 0.0
        for rep in range(max(args.reps, 11)):  # milliseconds each: more reps steady the median on a busy machine
            t0 = time.perf_counter()
            w = random_walks(g, starts, args.length, strategy, seed=rep, alpha=ALPHA, p=P, q=Q)
            times.append(time.perf_counter() - t0)
            visited = float(degree[w.nodes[:, 1:]].mean())
        out[strategy] = {"walks_s": len(starts) / statistics.median(times), "mean_degree": visited}
    big = np.resize(starts, 100_000)  # throughput when the batch is large enough to amortise numpy's overhead
    t0 = time.perf_counter()
    random_walks(g, big, args.length, "node2vec", seed=0, p=P, q=Q)
    out["node2vec_100k_walks_s"] = len(big) / (time.perf_counter() - t0)
    return out


def worker_networkx(args: argparse.Namespace) -> dict:
    import random

    import networkx as nx

    base = rss_kib()
    t0 = time.perf_counter()
    G = nx.DiGraph()
    with open(args.file, encoding="utf-8") as f:
        for line in f:
            h, r, t = line.rstrip("\n").split("\t")
            G.add_edge(h, t, rel=r)
            G.add_edge(t, h, rel=r + "^-1")
    build = time.perf_counter() - t0
    mem = rss_kib() - base
    peak = rss_kib("VmHWM") - base
    starts = Path(args.starts).read_text().split()

    def walk(rng: random.Random, start: str, strategy: str) -> list[str]:
        nodes, prev = [start], None
        cur = start
        for _ in range(args.length):
            if strategy == "restart" and rng.random() < ALPHA:
                cur, prev = start, None
                nodes.append(cur)
                continue
            nbrs = list(G[cur])
            if not nbrs:
                break
            if strategy == "node2vec" and prev is not None:
                prev_nbrs = G[prev]
                weights = [1 / P if x == prev else 1.0 if x in prev_nbrs else 1 / Q for x in nbrs]
                nxt = rng.choices(nbrs, weights)[0]
            elif strategy == "inverse_degree":
                nxt = rng.choices(nbrs, [1 / G.out_degree(x) for x in nbrs])[0]
            else:
                nxt = rng.choice(nbrs)
            _ = G[cur][nxt]["rel"]  # the relation taken, as sftforge records it
            prev, cur = cur, nxt
            nodes.append(cur)
        return nodes

    out = {"build_s": build, "mem_mib": mem / 1024, "peak_mib": peak / 1024}
    for strategy in STRATEGIES:
        times, visited = [], 0.0
        for rep in range(args.reps):
            rng = random.Random(rep)
            t0 = time.perf_counter()
            walks = [walk(rng, s, strategy) for s in starts]
            times.append(time.perf_counter() - t0)
            visited = statistics.fmean(G.out_degree(x) for w in walks for x in w[1:])
        out[strategy] = {"walks_s": len(starts) / statistics.median(times), "mean_degree": visited}
    return out


# ---------------------------------------------------------------------------------------------------- main


def run_worker(kind: str, args: argparse.Namespace, file: Path, starts: Path) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        kind,
        "--file",
        str(file),
        "--starts",
        str(starts),
        "--length",
        str(args.length),
        "--reps",
        str(args.reps),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"{kind} worker failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edges", type=int, default=1_000_000)
    ap.add_argument("--walks", type=int, default=1000, help="start entities (the same for both)")
    ap.add_argument("--length", type=int, default=10)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--worker", choices=["sftforge", "networkx"], help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    ap.add_argument("--starts", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        result = worker_sftforge(args) if args.worker == "sftforge" else worker_networkx(args)
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory() as tmp:
        file, starts_file = Path(tmp) / "graph.tsv", Path(tmp) / "starts.txt"
        t0 = time.perf_counter()
        entities, degree = make_graph(args.edges, args.seed, file)
        rng = np.random.default_rng(args.seed + 1)
        starts_file.write_text("\n".join(entities[rng.integers(0, len(entities), size=args.walks)]))
        print(
            f"graph: {args.edges:,} triples, {len(entities):,} entities, max degree {degree.max():,}, "
            f"median degree {int(np.median(degree))} (made in {time.perf_counter() - t0:.1f}s); "
            f"{args.walks:,} walks of {args.length} steps from the same starts, median of {args.reps} reps"
        )
        del entities, degree
        sft = run_worker("sftforge", args, file, starts_file)
        nx_ = run_worker("networkx", args, file, starts_file)

    print()
    print(f"{'':26}{'sftforge':>14}{'networkx':>14}{'ratio':>9}")
    print(
        f"{'build from TSV (s)':26}{sft['build_s']:14.2f}{nx_['build_s']:14.2f}{nx_['build_s'] / sft['build_s']:8.1f}x"
    )
    print(
        f"{'graph memory (MiB)':26}{sft['mem_mib']:14.0f}{nx_['mem_mib']:14.0f}"
        f"{nx_['mem_mib'] / max(sft['mem_mib'], 1):8.1f}x"
    )
    print(
        f"{'peak during build (MiB)':26}{sft['peak_mib']:14.0f}{nx_['peak_mib']:14.0f}"
        f"{nx_['peak_mib'] / max(sft['peak_mib'], 1):8.1f}x"
    )
    print(f"{'  sftforge arrays (MiB)':26}{sft['nbytes_mib']:14.0f}")
    ratios = []
    for strategy in STRATEGIES:
        a, b = sft[strategy]["walks_s"], nx_[strategy]["walks_s"]
        ratios.append(a / b)
        print(f"{strategy + ' walks/s':26}{a:14,.0f}{b:14,.1f}{a / b:8.1f}x")
    for strategy in STRATEGIES:
        print(
            f"{'  mean degree visited, ' + strategy[:8]:26}{sft[strategy]['mean_degree']:14.1f}"
            f"{nx_[strategy]['mean_degree']:14.1f}"
        )
    print(f"{'node2vec, 100k walks/s':26}{sft['node2vec_100k_walks_s']:14,.0f}")
    print()
    print(f"walks speedup vs networkx: {statistics.median(ratios):.1f}")


if __name__ == "__main__":
    main()
