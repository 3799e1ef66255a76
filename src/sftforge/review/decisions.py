"""Review decisions: an append-only log in RUN_DIR/review/decisions.jsonl, the last line per record wins.

`reject` takes a record out of the exported dataset. `accept` keeps it, and brings back a record the pipeline
removed after generation (a filter, dedup or the selection budget). It refuses records held out for evaluation or
as the probe set, and records that contain benchmark text (decontamination): training on those would make an
evaluation meaningless. Records that failed during generation are not complete records and cannot be accepted.
`clear` withdraws an earlier decision.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from sftforge.errors import ReviewError, RunDirError
from sftforge.rows import read_rows
from sftforge.run import RunDir, writing
from sftforge.sample import Record, table_to_records
from sftforge.storage import has_assignments, read_assignments

Decision = Literal["accept", "reject", "clear"]
DECISIONS: tuple[str, ...] = ("accept", "reject", "clear")
# stages whose rejected records are complete and may be brought back by a person
RESTORABLE_STAGES = ("clean", "select", "train")
CONTAMINATED = "contaminated"  # the decontamination filter's name in rejects


def decisions_path(run: RunDir) -> Path:
    return run.path / "review" / "decisions.jsonl"


def load_decisions(run: RunDir) -> dict[str, str]:
    """The decision in force per record id (`clear` removes one). A bad line names the file and the line."""
    path = decisions_path(run)
    out: dict[str, str] = {}
    if not path.exists():
        return out
    for row in read_rows(path, on_bad="raise", error=RunDirError):
        try:
            rid, decision = row.data["id"], row.data["decision"]
        except KeyError as exc:
            raise RunDirError(f"{row.where}: not a review decision (no {exc}); fix or delete the line") from exc
        if decision not in DECISIONS:
            raise RunDirError(f"{row.where}: decision {decision!r} is not one of {', '.join(DECISIONS)}")
        if decision == "clear":
            out.pop(rid, None)
        else:
            out[rid] = decision
    return out


def decisions_digest(run: RunDir) -> str | None:
    """A hash of the decisions in force: part of the export stage's fingerprint, so new decisions re-export."""
    decisions = load_decisions(run)
    if not decisions:
        return None
    return hashlib.sha256(json.dumps(sorted(decisions.items())).encode()).hexdigest()[:16]


def append_decision(run: RunDir, record_id: str, decision: str, note: str = "") -> None:
    """Append one decision and fsync it: a decision the page reported as saved survives a crash."""
    if decision not in DECISIONS:
        raise ReviewError(f"decision {decision!r} is not one of {', '.join(DECISIONS)}")
    path = decisions_path(run)
    line = json.dumps(
        {
            "id": record_id,
            "decision": decision,
            "note": note,
            "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
        ensure_ascii=False,
    )
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())


@dataclass(frozen=True, slots=True)
class Reviewable:
    """Which records a decision may name, and which of them `accept` can bring back."""

    known: frozenset[str]
    restorable: dict[str, tuple[str, str]]  # id -> (stage, reason) of a record the pipeline removed after generation
    held_out: frozenset[str]
    contaminated: frozenset[str]
    unfinished: frozenset[str]  # rejected during generation

    def check(self, record_id: str, decision: str) -> None:
        """Raise ReviewError if `decision` cannot be taken on `record_id`, saying why."""
        if decision not in DECISIONS:
            raise ReviewError(f"decision {decision!r} is not one of {', '.join(DECISIONS)}")
        if record_id not in self.known:
            raise ReviewError(f"no record {record_id!r} in this run")
        if decision != "accept":
            return
        if record_id in self.held_out:
            raise ReviewError(
                f"record {record_id} is held out for evaluation or as the probe set; "
                "accepting it into the training data would leak the evaluation"
            )
        if record_id in self.contaminated:
            raise ReviewError(
                f"record {record_id} contains benchmark text (decontamination); accepting it would "
                "leak that benchmark into the training data"
            )
        if record_id in self.unfinished:
            raise ReviewError(f"record {record_id} was rejected during generation and is not a complete record")


def reviewable(run: RunDir) -> Reviewable:
    """Every record id of the run; removed-after-generation ones can be restored, held-out ones cannot."""
    known: set[str] = set()
    for stage in ("generate", "features", "clean", "select", "train"):
        known.update(run.read_table(stage, columns=["id"]).column("id").to_pylist())
        known.update(run.read_table(stage, rejected=True, columns=["id"]).column("id").to_pylist())
    held_out: set[str] = set()
    if has_assignments(run):
        held_out = {rid for rid, a in read_assignments(run).items() if a.split != "train"}
    restorable: dict[str, tuple[str, str]] = {}
    contaminated: set[str] = set()
    for stage in RESTORABLE_STAGES:
        table = run.read_table(stage, rejected=True, columns=["id", "reject_operator", "reject_reason"])
        rows = zip(
            table.column("id").to_pylist(),
            table.column("reject_operator").to_pylist(),
            table.column("reject_reason").to_pylist(),
        )
        for rid, operator, reason in rows:
            if operator == CONTAMINATED:
                contaminated.add(rid)
            elif rid not in held_out:
                restorable[rid] = (stage, reason)
    unfinished = set(run.read_table("generate", rejected=True, columns=["id"]).column("id").to_pylist())
    return Reviewable(frozenset(known), restorable, frozenset(held_out), frozenset(contaminated), frozenset(unfinished))


@dataclass(slots=True)
class Applied:
    records: list[Record]
    removed: list[str]
    restored: list[str]


class Review:
    """The review decisions in force, applied to the dataset batch by batch (`keep`), then the records accepted
    back (`restored`), so export streams. Decisions on held-out or unknown records are refused loudly, before
    anything is written."""

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self.decisions = load_decisions(run)
        self.allowed = reviewable(run) if self.decisions else None
        for rid, decision in self.decisions.items():
            try:
                self.allowed.check(rid, decision)  # type: ignore[union-attr]
            except ReviewError as exc:
                raise ReviewError(f"{decisions_path(run)}: {exc}; clear that decision to export") from exc
        self.removed: list[str] = []
        self.present: set[str] = set()  # accepted ids seen in the dataset (nothing to restore for them)

    def keep_ids(self, ids: list[str]) -> list[str]:
        """The ids of a batch the reviewer did not reject."""
        if not self.decisions:
            return ids
        out = []
        for rid in ids:
            decision = self.decisions.get(rid)
            if decision == "reject":
                self.removed.append(rid)
                continue
            if decision == "accept":
                self.present.add(rid)
            out.append(rid)
        return out

    def keep(self, records: list[Record]) -> list[Record]:
        """The records of a batch the reviewer did not reject."""
        kept = set(self.keep_ids([r.id for r in records]))
        return [r for r in records if r.id in kept]

    def restorable_ids(self) -> list[str]:
        """The ids `restored` would bring back, in the same order, from the id columns alone."""
        wanted = {rid for rid, d in self.decisions.items() if d == "accept" and rid not in self.present}
        out: list[str] = []
        for stage in RESTORABLE_STAGES:
            for rid in self.run.read_table(stage, rejected=True, columns=["id"]).column("id").to_pylist():
                if rid in wanted and self.allowed is not None and rid in self.allowed.restorable:
                    out.append(rid)
                    wanted.discard(rid)
        return out

    def restored(self) -> list[Record]:
        """Accepted records that an operator had removed, in the order they were first removed."""
        wanted = {rid for rid, d in self.decisions.items() if d == "accept" and rid not in self.present}
        out: list[Record] = []
        for stage in RESTORABLE_STAGES:
            if not wanted:
                break
            for table in self.run.iter_tables(stage, rejected=True):
                for rec in table_to_records(table):
                    if rec.id in wanted and self.allowed is not None and rec.id in self.allowed.restorable:
                        out.append(rec)
                        wanted.discard(rec.id)
        return out


def apply_decisions(run: RunDir, records: list[Record]) -> Applied:
    """The exported records after review (see Review), for records already in memory."""
    review = Review(run)
    kept = review.keep(records)
    restored = review.restored()
    return Applied(kept + restored, review.removed, [r.id for r in restored])
