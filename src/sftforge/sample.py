"""The record every stage passes on, and its Arrow schema.

One `Record` is one training example. Stages read and write records as Parquet shards with `RECORD_SCHEMA`, so
the columns are the same in every stage and every engine. Rejected records keep the same columns plus the stage,
operator and reason that removed them (`REJECT_SCHEMA`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

ROLES = ("system", "user", "assistant")


def text_of(messages: list[dict[str, str]], role: str) -> str:
    """The contents of the messages with `role` (system, user, assistant; `all` for every message), joined by
    newlines: what an operator reads when a recipe names a role."""
    return "\n".join(m["content"] for m in messages if role == "all" or m["role"] == role)


def turn_pairs(messages: list[dict[str, str]]) -> list[tuple[str, str]]:
    """(user message, the assistant reply right after it) for each reply, in order; system messages skipped."""
    return [
        (prev["content"], cur["content"])
        for prev, cur in zip(messages, messages[1:])
        if prev["role"] == "user" and cur["role"] == "assistant"
    ]


def turn_problem(messages: list[dict[str, str]]) -> str | None:
    """Why a conversation is not one a trainer takes, or None: an optional system turn first, then user and
    assistant turns alternating from the user's, ending with the assistant's, every content a non-empty string
    (LLaMA-Factory's converters drop a row that breaks this; its run fails when none is left)."""
    body = messages[1:] if messages and messages[0].get("role") == "system" else messages
    if not body:
        return "no user or assistant turn"
    for k, turn in enumerate(body):
        want = "user" if k % 2 == 0 else "assistant"
        if turn.get("role") != want:
            return f"turn {k + 1} is {turn.get('role')}, expected {want} (turns must alternate from the user's)"
        content = turn.get("content")
        if not isinstance(content, str):
            return f"turn {k + 1} ({want}) is a {type(content).__name__}, expected a string"
        if not content.strip():
            return f"turn {k + 1} ({want}) is empty"
    if body[-1]["role"] != "assistant":
        return "ends with a user turn: there is no answer to train on"
    return None


@dataclass(slots=True)
class SourceRef:
    """Where a record's knowledge came from: a chunk of a document, a KG triple, a seed task, a parent record."""

    kind: str  # chunk | triple | seed | record
    id: str
    doc_id: str | None = None
    start: int | None = None  # character offsets into the document text
    end: int | None = None
    page: int | None = None  # a PDF's page (1-based) where the chunk starts
    row: int | None = None  # an imported dataset's line (JSON Lines, CSV) or row (Parquet, `datasets`), 1-based


@dataclass(slots=True)
class Lineage:
    """How a record was made, enough to reproduce or audit it."""

    generator: str
    model: str
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    template: str | None = None
    template_hash: str | None = None
    parents: list[str] = field(default_factory=list)
    round: int = 0
    attempts: int = 1
    prompt_tokens: int = 0
    completion_tokens: int = 0
    audience: str | None = None  # the task.audiences name it was written for
    genre: str | None = None  # the task.genres name


@dataclass(slots=True)
class AnswerCheck:
    """Whether the generator could verify the answer, how, and the result."""

    method: str  # span | overlap | kg_execution | ... | none
    passed: bool
    score: float
    detail: str = ""
    expected: list[str] = field(default_factory=list)  # the verified answer set, where the check found one


@dataclass(slots=True)
class Record:
    """One training example (DESIGN.md, "The record")."""

    id: str
    messages: list[dict[str, str]]
    task: str
    lang: str
    source: list[SourceRef] = field(default_factory=list)
    lineage: Lineage | None = None
    features: dict[str, float] = field(default_factory=dict)
    answer_check: AnswerCheck | None = None

    def text_of(self, role: str) -> str:
        """The contents of every message with `role` joined by newlines; `all`: of every message."""
        return text_of(self.messages, role)

    def to_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["features"] = list(self.features.items())
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Record:
        lineage = row.get("lineage")
        check = row.get("answer_check")
        features = row.get("features") or []
        return cls(
            id=row["id"],
            messages=[{"role": m["role"], "content": m["content"]} for m in row["messages"]],
            task=row["task"],
            lang=row["lang"],
            source=[SourceRef(**s) for s in (row.get("source") or [])],
            lineage=Lineage(**lineage) if lineage else None,
            features=dict(features),
            answer_check=AnswerCheck(**(check | {"expected": check.get("expected") or []})) if check else None,
        )


def record_id(messages: list[dict[str, str]], source: list[SourceRef], generator: str) -> str:
    """Stable id: a hash of the content and its lineage, so the same example made the same way has the same id."""
    payload = json.dumps(
        {"m": messages, "s": [asdict(s) for s in source], "g": generator},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:24]


MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.string())])
SOURCE_TYPE = pa.struct(
    [
        ("kind", pa.string()),
        ("id", pa.string()),
        ("doc_id", pa.string()),
        ("start", pa.int64()),
        ("end", pa.int64()),
        ("page", pa.int32()),
        ("row", pa.int64()),
    ]
)
LINEAGE_TYPE = pa.struct(
    [
        ("generator", pa.string()),
        ("model", pa.string()),
        ("temperature", pa.float64()),
        ("top_p", pa.float64()),
        ("max_tokens", pa.int64()),
        ("seed", pa.int64()),
        ("template", pa.string()),
        ("template_hash", pa.string()),
        ("parents", pa.list_(pa.string())),
        ("round", pa.int32()),
        ("attempts", pa.int32()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("audience", pa.string()),
        ("genre", pa.string()),
    ]
)
ANSWER_CHECK_TYPE = pa.struct(
    [
        ("method", pa.string()),
        ("passed", pa.bool_()),
        ("score", pa.float64()),
        ("detail", pa.string()),
        ("expected", pa.list_(pa.string())),
    ]
)

RECORD_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("messages", pa.list_(MESSAGE_TYPE)),
        ("task", pa.string()),
        ("lang", pa.string()),
        ("source", pa.list_(SOURCE_TYPE)),
        ("lineage", LINEAGE_TYPE),
        ("features", pa.map_(pa.string(), pa.float64())),
        ("answer_check", ANSWER_CHECK_TYPE),
    ]
)

REJECT_SCHEMA = (
    RECORD_SCHEMA.append(pa.field("reject_stage", pa.string()))
    .append(pa.field("reject_operator", pa.string()))
    .append(pa.field("reject_reason", pa.string()))
)


def reason_kind(reason: str) -> str:
    """A rejection reason without its specifics (the quoted text, the scores, the evidence, the path), for
    counting: reasons are written as "what went wrong (why): evidence", and the same kind of failure is counted
    once however its specifics differ."""
    for cut in (" against ", " (", ": '", ' ("', ": *"):
        if cut in reason:
            reason = reason.split(cut)[0]
    return reason


@dataclass(slots=True)
class Rejected:
    """A record a stage removed, with who removed it and why. Nothing is dropped silently."""

    record: Record
    stage: str
    operator: str
    reason: str

    def to_row(self) -> dict[str, Any]:
        row = self.record.to_row()
        row.update(reject_stage=self.stage, reject_operator=self.operator, reject_reason=self.reason)
        return row


def records_to_table(records: list[Record]) -> pa.Table:
    return pa.Table.from_pylist([r.to_row() for r in records], schema=RECORD_SCHEMA)


def rejected_to_table(rejected: list[Rejected]) -> pa.Table:
    return pa.Table.from_pylist([r.to_row() for r in rejected], schema=REJECT_SCHEMA)


def table_to_records(table: pa.Table) -> list[Record]:
    return [Record.from_row(row) for row in table.select(RECORD_SCHEMA.names).to_pylist()]
