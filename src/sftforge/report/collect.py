"""Everything the report shows, read from a run directory into plain JSON-ready data. No HTML here: render.py
and the page's script draw it; tests compare these figures with the manifest."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sftforge import __version__
from sftforge.errors import ReviewError, RunDirError
from sftforge.figures import CleanFigures, GenerateFigures, SelectFigures, read_figures
from sftforge.recipe import Recipe
from sftforge.report.projection import project_2d
from sftforge.review.decisions import Applied, apply_decisions, load_decisions, reviewable
from sftforge.run import RunDir
from sftforge.sample import text_of
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
    row: dict[str, Any]
    removed: tuple[str, str, str] | None  # (stage, operator, reason)


def _finite(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


def record_states(run: RunDir, recipe: Recipe) -> tuple[dict[str, RecordState], dict[str, str], list[str], str | None]:
    """Every record the run made with its latest version and whether (and where, by whom, why) it was removed;
    the review decisions in force; the ids in the dataset after review; and why the decisions could not be applied
    (a decision written by hand that export refuses), shown in the report instead of failing it."""
    states: dict[str, RecordState] = {}
    for stage in RECORD_STAGES:
        for row in run.read_table(stage).to_pylist():
            states[row["id"]] = RecordState(row, None)
        for row in run.read_table(stage, rejected=True).to_pylist():
            states[row["id"]] = RecordState(row, (row["reject_stage"], row["reject_operator"], row["reject_reason"]))
    decisions = load_decisions(run)
    final_stage = recipe.dataset_stage
    dataset: list[str] = []
    error = None
    if run.stage_info(final_stage) is not None:
        records = run.read_records(final_stage)
        try:
            applied = apply_decisions(run, records)
        except ReviewError as exc:
            log.warning("report: review decisions not applied: %s", exc)
            error, applied = str(exc), Applied(records, [], [])
        dataset = [r.id for r in applied.records]
        for rid in applied.removed:
            states[rid].removed = ("review", "reviewer", "rejected in review")
        for rid in applied.restored:
            states[rid].removed = None
    return states, decisions, dataset, error


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


def distributions(states: dict[str, RecordState]) -> dict[str, Any]:
    """Histograms per metric (lengths, turns, each feature), per task and language, kept vs removed."""
    values: dict[str, dict[str, dict[str, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: {"kept": [], "removed": []})
    )
    langs: Counter[tuple[str, str, str]] = Counter()
    checks: Counter[tuple[str, str, str]] = Counter()
    for st in states.values():
        row = st.row
        group = f"{row['task']} · {row['lang']}"
        status = "removed" if st.removed else "kept"
        langs[(row["task"], row["lang"], status)] += 1
        check = row.get("answer_check")
        if check:
            checks[(check["method"], "passed" if check["passed"] else "failed", status)] += 1
        for metric, v in _metrics(row).items():
            values[metric][group][status].append(v)
    hist: dict[str, Any] = {}
    for metric, groups in sorted(values.items()):
        allv = np.array([v for g in groups.values() for s in g.values() for v in s])
        lo, hi = float(allv.min()), float(allv.max())
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, BINS + 1)
        hist[metric] = {"edges": [round(float(e), 6) for e in edges], "groups": {}}
        for group, by_status in sorted(groups.items()):
            entry = {}
            for status, vs in by_status.items():
                counts, _ = np.histogram(np.array(vs), bins=edges) if vs else (np.zeros(BINS, dtype=int), None)
                entry[status] = {
                    "counts": [int(c) for c in counts],
                    "n": len(vs),
                    "median": round(float(np.median(vs)), 4) if vs else None,
                }
            hist[metric]["groups"][group] = entry
    return {
        "histograms": hist,
        "languages": [
            {"task": t, "lang": lang, "status": s, "records": n} for (t, lang, s), n in sorted(langs.items())
        ],
        "answer_checks": [
            {"method": m, "result": r, "status": s, "records": n} for (m, r, s), n in sorted(checks.items())
        ],
    }


def reasons(states: dict[str, RecordState]) -> list[dict[str, Any]]:
    """Removed records grouped by stage, operator and reason, most frequent first, with example ids."""
    groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for rid, st in states.items():
        if st.removed:
            groups[st.removed].append(rid)
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
    return {
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
    states, decisions, dataset, review_error = record_states(run, recipe)
    why = reasons(states)
    dedup = dedup_clusters(run)
    must = [i for r in why for i in r["examples"]] + [
        i for d in dedup for c in d["top"][:10] for i in [c["survivor"], *(x["id"] for x in c["duplicates"])]
    ]
    ids = _sample_ids(states, must, options.max_records, options.seed)
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
        "generate_reasons": generate.rejected_by_reason if generate else {},
        "reasons": why,
        "totals": {
            "records": len(states),
            "kept": sum(1 for s in states.values() if not s.removed),
            "removed": sum(1 for s in states.values() if s.removed),
            "dataset": len(dataset),
            "shown": len(records),
        },
        "distributions": distributions(states),
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
