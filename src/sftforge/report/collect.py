"""Everything the report shows, read from a run directory into plain JSON-ready data. No HTML here: render.py
and the page's script draw it; tests compare these figures with the manifest."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sftforge import __version__
from sftforge.errors import ReviewError, RunDirError
from sftforge.figures import (
    CleanFigures,
    ExportFigures,
    GenerateFigures,
    SelectFigures,
    SourcesFigures,
    read_figures,
)
from sftforge.lib.balance import BALANCE_SCORES, BalanceCounter
from sftforge.recipe import Recipe
from sftforge.report.projection import project_2d
from sftforge.review.decisions import Review, load_decisions, reviewable
from sftforge.run import RunDir, shard_schema
from sftforge.sample import reason_kind, text_of
from sftforge.storage import (
    Assignment,
    has_assignments,
    metrics_path,
    read_arms,
    read_assignments,
    read_clusters,
    read_documents,
    read_evaluation,
    read_metrics,
    read_vectors,
)
from sftforge.summary import funnel_rows, operator_rows

log = logging.getLogger(__name__)

# stages whose records (kept and removed) the report reads, in pipeline order: a later stage's view wins
RECORD_STAGES = ("generate", "features", "clean", "select", "train")
EXAMPLES_PER_REASON = 3
BINS = 24
PASSAGE_CONTEXT = 240  # characters shown around a cited passage


@dataclass(frozen=True, slots=True)
class ReportOptions:
    max_records: int = 5000  # records embedded in the browser and the map (a seeded sample beyond that)
    benchmark: Path | None = None  # benchmarks/selection.py's results JSON, for the baseline comparison
    seed: int = 0


@dataclass(slots=True)
class RecordState:
    """A record's latest view: where its row is (`loc`: the source in `Views.sources`, the shard, the row), and
    whether (and where, by whom, why) it was removed. The row itself is read only for the records shown."""

    loc: tuple[int, int, int]
    removed: tuple[str, str, str] | None  # (stage, operator, reason)
    row: dict[str, Any] | None = None


def _finite(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


@dataclass(slots=True)
class Views:
    """The record shards of the stages the report reads, kept and rejected, in pipeline order: (stage, rejected,
    shard paths) per source."""

    sources: list[tuple[str, bool, list[Path]]]

    @classmethod
    def of(cls, run: RunDir) -> Views:
        return cls([(st, rej, run.shards(st, rej)) for st in RECORD_STAGES for rej in (False, True)])

    def tables(self, columns: list[str]) -> Iterator[tuple[int, int, pa.Table]]:
        """(source, shard, table of `columns`) for every shard, in order."""
        for k, (_, rejected, shards) in enumerate(self.sources):
            cols = [c for c in columns if c in shard_schema(rejected, None).names]
            for n, path in enumerate(shards):
                yield k, n, pq.read_table(path, columns=cols, schema=shard_schema(rejected, cols))


def record_states(
    run: RunDir, recipe: Recipe, views: Views
) -> tuple[dict[str, RecordState], dict[str, str], list[str], str | None]:
    """Every record the run made with where its latest version is and whether (and where, by whom, why) it was
    removed; the review decisions in force; the ids in the dataset after review; and why the decisions could not
    be applied (a decision written by hand that export refuses), shown in the report instead of failing it. Reads
    ids and reasons only, so a million records cost a few hundred MB."""
    states: dict[str, RecordState] = {}
    for k, n, table in views.tables(["id", "reject_stage", "reject_operator", "reject_reason"]):
        ids = table.column("id").to_pylist()
        if "reject_stage" in table.column_names:
            why = zip(*(table.column(c).to_pylist() for c in ("reject_stage", "reject_operator", "reject_reason")))
            for i, (rid, removed) in enumerate(zip(ids, why)):
                states[rid] = RecordState((k, n, i), removed)
        else:
            for i, rid in enumerate(ids):
                states[rid] = RecordState((k, n, i), None)
    decisions = load_decisions(run)
    final_stage = recipe.dataset_stage
    dataset: list[str] = []
    error = None
    if run.stage_info(final_stage) is not None:
        ids = run.read_table(final_stage, columns=["id"]).column("id").to_pylist()
        try:
            review = Review(run)
            dataset = review.keep_ids(ids)
            restored = review.restorable_ids()
        except ReviewError as exc:
            log.warning("report: review decisions not applied: %s", exc)
            error, dataset, restored, review = str(exc), ids, [], None
        dataset += restored
        for rid in review.removed if review else []:
            states[rid].removed = ("review", "reviewer", "rejected in review")
        for rid in restored:
            states[rid].removed = None
    return states, decisions, dataset, error


def load_rows(views: Views, states: dict[str, RecordState], ids: list[str]) -> None:
    """Read the rows of the records `ids` (the ones shown) into their states, shard by shard."""
    wanted: dict[tuple[int, int], dict[int, str]] = defaultdict(dict)
    for rid in ids:
        k, n, i = states[rid].loc
        wanted[(k, n)][i] = rid
    for (k, n), rows in wanted.items():
        _, rejected, shards = views.sources[k]
        table = pq.read_table(shards[n], schema=shard_schema(rejected, None))
        order = sorted(rows)
        for i, row in zip(order, table.take(pa.array(order, pa.int64())).to_pylist()):
            states[rows[i]].row = row


def _metrics(row: dict[str, Any]) -> dict[str, float]:
    out = {
        "user characters": float(len(text_of(row["messages"], "user"))),
        "assistant characters": float(len(text_of(row["messages"], "assistant"))),
        "turns": float(sum(1 for m in row["messages"] if m["role"] == "user")),
    }
    for name, value in row.get("features") or []:
        v = _finite(value)
        if v is not None:
            out[name] = v
    return out


def distributions(states: dict[str, RecordState], views: Views) -> dict[str, Any]:
    """Histograms per metric (lengths, turns, each feature), per task and language, kept vs removed; over every
    record's latest view, read shard by shard."""
    values: dict[str, dict[str, dict[str, array[float]]]] = defaultdict(
        lambda: defaultdict(lambda: {"kept": array("d"), "removed": array("d")})
    )
    langs: Counter[tuple[str, str, str]] = Counter()
    checks: Counter[tuple[str, str, str]] = Counter()
    balance = BalanceCounter()  # over the kept records: who the dataset speaks about
    for k, n, table in views.tables(["id", "messages", "task", "lang", "features", "answer_check", "lineage"]):
        for i, row in enumerate(table.to_pylist()):
            st = states.get(row["id"])
            if st is None or st.loc != (k, n, i):
                continue  # a later stage's view of this record counts
            group = f"{row['task']} · {row['lang']}"
            status = "removed" if st.removed else "kept"
            if not st.removed:
                features = dict(row.get("features") or [])
                if balance.score_name is None:
                    balance.score_name = next((f for f in BALANCE_SCORES if f in features), None)
                generator = (row.get("lineage") or {}).get("generator")
                balance.add(
                    text_of(row["messages"], "all"),
                    row["lang"],
                    [f"task {row['task']}"] + ([f"generator {generator}"] if generator else []),
                    features.get(balance.score_name) if balance.score_name else None,
                )
            langs[(row["task"], row["lang"], status)] += 1
            check = row.get("answer_check")
            if check:
                checks[(check["method"], "passed" if check["passed"] else "failed", status)] += 1
            for metric, v in _metrics(row).items():
                values[metric][group][status].append(v)
    hist: dict[str, Any] = {}
    for metric, groups in sorted(values.items()):
        lo = min(min(vs) for g in groups.values() for vs in g.values() if vs)
        hi = max(max(vs) for g in groups.values() for vs in g.values() if vs)
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, BINS + 1)
        hist[metric] = {"edges": [round(float(e), 6) for e in edges], "groups": {}}
        for group, by_status in sorted(groups.items()):
            entry = {}
            for status, vs in by_status.items():
                arr = np.frombuffer(vs, dtype=np.float64) if vs else np.zeros(0)
                counts, _ = np.histogram(arr, bins=edges) if vs else (np.zeros(BINS, dtype=int), None)
                entry[status] = {
                    "counts": [int(c) for c in counts],
                    "n": len(vs),
                    "median": round(float(np.median(arr)), 4) if vs else None,
                }
            hist[metric]["groups"][group] = entry
    return {
        "balance": balance.figures(),
        "histograms": hist,
        "languages": [
            {"task": t, "lang": lang, "status": s, "records": n} for (t, lang, s), n in sorted(langs.items())
        ],
        "answer_checks": [
            {"method": m, "result": r, "status": s, "records": n} for (m, r, s), n in sorted(checks.items())
        ],
    }


def generate_reasons(generate: GenerateFigures | None) -> list[dict[str, Any]]:
    """Per kind of failed check at generation: outputs asked again and work items rejected for good (after their
    last attempt), most frequent first; what the funnel's generate row does not say."""
    if generate is None:
        return []
    rejected: Counter[str] = Counter()
    for reason, n in generate.rejected_by_reason.items():
        rejected[reason_kind(reason.split(" attempts: ", 1)[-1])] += n
    retried = Counter(generate.parse_failures)
    kinds = sorted(set(retried) | set(rejected), key=lambda k: (-retried[k], -rejected[k], k))
    return [{"reason": k, "asked_again": retried[k], "rejected": rejected[k]} for k in kinds]


def reasons(states: dict[str, RecordState]) -> list[dict[str, Any]]:
    """Removed records grouped by stage, operator and reason, most frequent first, with example ids."""
    groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for rid, st in states.items():
        if st.removed:
            stage, operator, reason = st.removed
            groups[(stage, operator, reason_kind(reason))].append(rid)
    rows = [
        {"stage": s, "operator": o, "reason": r, "count": len(ids), "examples": ids[:EXAMPLES_PER_REASON]}
        for (s, o, r), ids in groups.items()
    ]
    return sorted(rows, key=lambda x: (-x["count"], x["stage"], x["reason"]))


def dedup_clusters(run: RunDir, limit: int = 30) -> list[dict[str, Any]]:
    """Per dedup operator: cluster count, records removed, cluster sizes, and the largest clusters."""
    out = []
    clean = read_figures(run, CleanFigures)
    for op, name in (clean.duplicate_clusters if clean else {}).items():
        clusters = read_clusters(run, name)
        if clusters is None:
            continue
        sizes = Counter(c["size"] for c in clusters)
        top = sorted(clusters, key=lambda c: (-c["size"], c["survivor"]))[:limit]
        out.append(
            {
                "operator": op,
                "clusters": len(clusters),
                "removed": sum(c["size"] - 1 for c in clusters),
                "sizes": [{"size": k, "clusters": v} for k, v in sorted(sizes.items())],
                "top": top,
            }
        )
    return out


def _pulls(row: dict[str, Any]) -> list[tuple[int, float]]:
    """The (arm, scaled reward) pairs a train row taught the bandit: one per step (`arm` batches) or per example
    (`mixed`, the row's `pulls`)."""
    if "pulls" in row:
        return [(int(a), float(r)) for a, r in row["pulls"] if _finite(r) is not None]
    if row.get("arm") is not None and _finite(row.get("reward")) is not None:
        return [(int(row["arm"]), float(row["reward"]))]
    return []


def training(run: RunDir) -> dict[str, Any] | None:
    """Training and eval curves, arm probabilities and rewards over steps, and the arms' final values."""
    path = metrics_path(run)
    if not path.exists():
        return None
    rows = read_metrics(path)
    train = [r for r in rows if r.get("kind") == "train"]
    evals = [[r["step"], r["eval_loss"]] for r in rows if r.get("kind") == "eval"]
    selected = read_figures(run, SelectFigures)
    arm_names = [a.name for a in selected.arms] if selected else []
    arms = [a.model_dump() for a in read_arms(run) or []]
    points = [(r["step"], arm, reward) for r in train for arm, reward in _pulls(r)]
    rewards: dict[int, list[float]] = defaultdict(list)
    for _, arm, reward in points:
        rewards[arm].append(reward)
    per_arm = [
        {
            "arm": a,
            "name": arm_names[a] if a < len(arm_names) else str(a),
            "pulls": len(v),
            "mean_reward": round(float(np.mean(v)), 5),
        }
        for a, v in sorted(rewards.items())
    ]
    left_out, total = [], 0
    for r in train:  # examples the bandit took out of their step (drop_below), cumulated over the steps
        if "left_out" in r:
            total += int(r["left_out"])
            left_out.append([r["step"], total])
    return {
        "left_out": left_out,
        "loss": [[r["step"], r["loss"]] for r in train if _finite(r.get("loss")) is not None],
        "eval": evals,
        "probabilities": [[r["step"], r["probabilities"]] for r in train if r.get("probabilities")],
        "rewards": [list(p) for p in points],
        "arm_names": arm_names,
        "arms": arms,
        "per_arm": per_arm,
    }


def evaluation(run: RunDir) -> list[dict[str, Any]]:
    """Base vs fine-tuned metrics per evaluation set."""
    rows: list[dict[str, Any]] = []
    for set_name, entry in (read_evaluation(run) or {}).items():
        for metric, base in entry.get("base", {}).items():
            tuned = entry.get("tuned", {}).get(metric)
            if (
                isinstance(base, (int, float))
                and isinstance(tuned, (int, float))
                and metric not in ("examples", "tokens", "generated")
            ):
                rows.append({"set": set_name, "metric": metric, "base": base, "tuned": tuned, "delta": tuned - base})
    return rows


def benchmark(path: Path | None) -> dict[str, Any] | None:
    """benchmarks/selection.py's curves and steps-to-target per strategy."""
    if path is None:
        return None
    try:
        results = json.loads(path.read_text(encoding="utf-8"))["results"]
        strategies = [
            {
                "name": str(name),
                "curve": [[int(s), float(v)] for s, v in r["curve"]],
                "final": float(r["final"]),
                "steps_to_uniform_final": r.get("steps_to_uniform_final"),
            }
            for name, r in results.items()
        ]
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RunDirError(
            f"{path}: not a benchmarks/selection.py results file ({type(exc).__name__}: {exc}); "
            "pass the JSON that `python benchmarks/selection.py` writes (--json)"
        ) from exc
    return {"path": str(path), "strategies": strategies}


def finite_json(value: Any) -> Any:
    """`value` with every NaN or infinity replaced by None (JSON has no NaN; a diverged loss is still shown)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def _sample_ids(states: dict[str, RecordState], must: list[str], limit: int, seed: int) -> list[str]:
    """At most `limit` ids: the examples other sections link to, then a seeded hash order of the rest."""
    if len(states) <= limit:
        return list(states)
    chosen = list(dict.fromkeys(i for i in must if i in states))[:limit]
    taken = set(chosen)
    rest = sorted((i for i in states if i not in taken), key=lambda i: hashlib.sha1(f"{seed}:{i}".encode()).hexdigest())
    chosen += rest[: limit - len(chosen)]
    order = {rid: n for n, rid in enumerate(states)}
    return sorted(chosen, key=order.__getitem__)


class PassageBook:
    """Cited passages with some context around them, each stored once and referred to by key."""

    def __init__(self, run: RunDir) -> None:
        self._docs = read_documents(run)
        self.passages: dict[str, dict[str, Any]] = {}

    def key(self, doc_id: str | None, start: int | None, end: int | None) -> str | None:
        text = self._docs.get(doc_id or "")
        if text is None or start is None or end is None:
            return None
        key = f"{doc_id}:{start}:{end}"
        if key not in self.passages:
            lo, hi = max(0, start - PASSAGE_CONTEXT), min(len(text), end + PASSAGE_CONTEXT)
            self.passages[key] = {"doc": doc_id, "text": text[lo:hi], "hl": [start - lo, end - lo], "offset": lo}
        return key


def _browser_row(
    rid: str,
    st: RecordState,
    book: PassageBook,
    assign: dict[str, Assignment],
    decisions: dict[str, str],
    restorable: set[str],
) -> dict[str, Any]:
    row = st.row
    if row is None:
        raise RuntimeError(f"report: the row of {rid} was not loaded (load_rows)")
    lin = row.get("lineage") or {}
    a = assign.get(rid)
    return {
        "id": rid,
        "task": row["task"],
        "lang": row["lang"],
        "generator": lin.get("generator") or "-",
        "messages": [[m["role"], m["content"]] for m in row["messages"]],
        "status": "removed" if st.removed else "kept",
        "removed": list(st.removed) if st.removed else None,
        "features": {k: _finite(v) for k, v in (row.get("features") or [])},
        "check": row.get("answer_check"),
        "lineage": {k: v for k, v in lin.items() if v not in (None, [], "")},
        "sources": [
            {
                "kind": s["kind"],
                "id": s["id"],
                "doc": s.get("doc_id"),
                "passage": book.key(s.get("doc_id"), s.get("start"), s.get("end")),
            }
            for s in row.get("source") or []
        ],
        "arm": a.arm if a is not None and a.arm >= 0 else None,  # -1: held out, in no arm
        "split": a.split if a is not None else None,
        "decision": decisions.get(rid),
        "restorable": rid in restorable,
    }


def collect(run: RunDir, recipe: Recipe, options: ReportOptions = ReportOptions()) -> dict[str, Any]:
    """The report's data for one run directory."""
    compared = benchmark(options.benchmark)  # a bad file fails before the slow parts
    stages = run.stages()
    generate = read_figures(run, GenerateFigures)
    clean = read_figures(run, CleanFigures)
    pii = clean.pii() if clean else None
    contaminated = clean.contamination() if clean else None
    views = Views.of(run)
    states, decisions, dataset, review_error = record_states(run, recipe, views)
    why = reasons(states)
    dedup = dedup_clusters(run)
    must = [i for r in why for i in r["examples"]] + [
        i for d in dedup for c in d["top"][:10] for i in [c["survivor"], *(x["id"] for x in c["duplicates"])]
    ]
    ids = _sample_ids(states, must, options.max_records, options.seed)
    load_rows(views, states, ids)
    assign = read_assignments(run) if has_assignments(run) else {}
    allowed = reviewable(run)
    book = PassageBook(run)
    records = [_browser_row(i, states[i], book, assign, decisions, set(allowed.restorable)) for i in ids]
    train = training(run)
    data = {
        "run": {
            "name": run.manifest.get("name"),
            "path": str(run.path),
            "created_at": run.manifest.get("created_at"),
            "sftforge": __version__,
            "model": generate.model if generate else None,
            "description": recipe.task.description,
        },
        "stages": [
            {"name": k, "status": v.status, "seconds": v.seconds, "counts": v.counts} for k, v in stages.items()
        ],
        "funnel": [asdict(row) for row in funnel_rows(run)]
        + (
            [{"stage": "export", "input": None, "kept": len(dataset), "removed": None}]
            if "export" in stages or decisions
            else []
        ),
        "operators": [asdict(row) for row in operator_rows(run)],
        "inputs": skipped_inputs(run),
        "generate_reasons": generate_reasons(generate),
        "warnings": warnings(clean),
        "coverage": coverage.model_dump() if (coverage := _coverage(run)) else None,
        "audiences": {k: v.model_dump() for k, v in generate.audiences.items()} if generate else {},
        "reasons": why,
        "totals": {
            "records": len(states),
            "kept": sum(1 for s in states.values() if not s.removed),
            "removed": sum(1 for s in states.values() if s.removed),
            "dataset": len(dataset),
            "shown": len(records),
        },
        "distributions": distributions(states, views),
        "map": embedding_map(run, ids, options.seed),
        "dedup": dedup,
        "pii": {"by_type": pii.found_by_type if pii else {}, "records_changed": pii.records_changed if pii else None},
        "contamination": contaminated.model_dump() if contaminated else None,
        "training": train,
        "evaluation": evaluation(run),
        "benchmark": compared,
        "records": records,
        "passages": book.passages,
        "review": {"decisions": dict(decisions), "counts": dict(Counter(decisions.values())), "error": review_error},
    }
    return finite_json(data)


def warnings(clean: CleanFigures | None) -> list[str]:
    """What a reviewer must know before trusting the screens: a judge that did not run."""
    judged = clean.harm_judge() if clean else None
    if judged is None or judged.unavailable is None:
        return []
    return [
        f"harm_judge: the judge did not run ({judged.unavailable}). The rule-based screen (refusal) ran; the records "
        "are kept unjudged. Rerun `sftforge clean RUN_DIR --force` once the server is up."
    ]


def _coverage(run: RunDir) -> Any:
    """What the exported records cover of the documents (the export stage's figures), if it ran."""
    export = read_figures(run, ExportFigures)
    return export.coverage if export else None


def skipped_inputs(run: RunDir) -> dict[str, Any]:
    """What the sources stage could not use: files (with the reason) and dataset rows (counted by reason, the
    first ones named by file and line)."""
    sources = read_figures(run, SourcesFigures)
    if sources is None:
        return {"files": [], "rows_by_reason": {}, "rows": []}
    datasets = sources.datasets
    return {
        "files": [f.model_dump() for f in sources.skipped],
        "rows_by_reason": datasets.skipped_by_reason if datasets else {},
        "rows": [r.model_dump() for r in datasets.skipped_rows] if datasets else [],
    }


def embedding_map(run: RunDir, ids: list[str], seed: int) -> dict[str, Any] | None:
    """2-D coordinates of the shown records that have an embedding (features/vectors), by index into `records`."""
    vec_ids, matrix = read_vectors(run, "embedding")
    index = {rid: n for n, rid in enumerate(ids)}
    rows = [(index[rid], n) for n, rid in enumerate(vec_ids) if rid in index]
    if not rows:
        return None
    xy, method = project_2d(matrix[[n for _, n in rows]], seed=seed)
    return {
        "method": method,
        "points": [[i, round(float(x), 4), round(float(y), 4)] for (i, _), (x, y) in zip(rows, xy)],
    }
