"""Existing instruction datasets as a source: rows of the common shapes turned into chat messages.

Shapes (LLaMA-Factory's names, which most users know):

- `alpaca`: `instruction`, optional `input`, `output`, optional `system` and `history` (a list of
  [question, answer] pairs before the instruction). The user turn is the instruction, then the input on a new line,
  as LLaMA-Factory's converter joins them.
- `sharegpt`: `conversations`, a list of `{from, value}` turns (human/user, gpt/assistant, system), optional
  `system`.
- `messages`: OpenAI chat, a list of `{role, content}`; a content that is a list of text parts is joined.

`columns` maps these field names to the file's own (`{instruction: question, output: answer}`), so any table of
questions and answers reads as `alpaca`. With `format: auto` the shape is decided by the first row that has one and
holds for the whole file: a row of another shape is named, not guessed at.

A row that does not fit (a list where a string belongs, turns that do not alternate, no answer to train on) raises
`RowProblem` with the reason; the caller counts and names it. Nothing here does I/O beyond reading the rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sftforge.errors import SourceError
from sftforge.rows import SUFFIXES, Row, missing_field, read_rows
from sftforge.sample import turn_problem

Shape = Literal["alpaca", "sharegpt", "messages"]
FIELDS = ("instruction", "input", "output", "system", "history", "conversations", "messages", "id")
ID_FIELDS = ("id", "idx", "uid", "conversation_id")
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "bot": "assistant",
    "chatgpt": "assistant",
    "model": "assistant",
    "system": "system",
}
TOOL_ROLES = ("function_call", "observation", "tool", "function")


class RowProblem(ValueError):
    """Why a row cannot be an example (the message is the reason, for the manifest)."""


@dataclass(frozen=True, slots=True)
class Example:
    """One imported example: its messages and its id in the dataset it came from (None if it had none)."""

    messages: list[dict[str, str]]
    original_id: str | None


@dataclass(slots=True)
class Layout:
    """How a file's rows are read: its shape and the column behind each field."""

    shape: Shape | None  # None: decided by the first row (format: auto)
    columns: dict[str, str]

    def col(self, name: str) -> str:
        return self.columns.get(name, name)


def _text(value: Any, what: str) -> str:
    """A string field's text; a list of text parts is joined; anything else is the row's problem."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in value):
        return "".join(str(p.get("text", "")) for p in value)
    kind = "null" if value is None else type(value).__name__
    raise RowProblem(f"{what} is a {kind}, expected a string")


def detect(row: dict[str, Any], layout: Layout) -> Shape | None:
    """The shape a row has, by which fields it holds (messages, then conversations, then instruction + output)."""
    if layout.col("messages") in row:
        return "messages"
    if layout.col("conversations") in row:
        return "sharegpt"
    if layout.col("instruction") in row and layout.col("output") in row:
        return "alpaca"
    return None


def _alpaca(row: dict[str, Any], layout: Layout) -> list[dict[str, str]]:
    turns: list[dict[str, str]] = []
    history = row.get(layout.col("history")) or []
    if not isinstance(history, list):
        raise RowProblem(f"'{layout.col('history')}' is a {type(history).__name__}, expected a list of pairs")
    for k, pair in enumerate(history):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise RowProblem(f"'{layout.col('history')}'[{k}] is not a [question, answer] pair")
        turns += [
            {"role": "user", "content": _text(pair[0], f"'{layout.col('history')}'[{k}][0]")},
            {"role": "assistant", "content": _text(pair[1], f"'{layout.col('history')}'[{k}][1]")},
        ]
    instruction = _text(row.get(layout.col("instruction")), f"'{layout.col('instruction')}'").strip()
    extra = row.get(layout.col("input"))
    extra = _text(extra, f"'{layout.col('input')}'").strip() if extra is not None else ""
    user = "\n".join(part for part in (instruction, extra) if part)
    output = _text(row.get(layout.col("output")), f"'{layout.col('output')}'")
    return [*turns, {"role": "user", "content": user}, {"role": "assistant", "content": output}]


def _turns(value: Any, field: str, role_key: str, content_key: str, roles: dict[str, str] | None) -> list[dict]:
    if not isinstance(value, list):
        raise RowProblem(f"'{field}' is a {type(value).__name__}, expected a list of turns")
    out = []
    for k, turn in enumerate(value):
        if not isinstance(turn, dict):
            raise RowProblem(f"'{field}'[{k}] is a {type(turn).__name__}, expected an object")
        if role_key not in turn and "role" in turn:  # ShareGPT files written with OpenAI keys
            role_key, content_key = "role", "content"
        tag = turn.get(role_key)
        if tag in TOOL_ROLES:
            raise RowProblem(f"'{field}'[{k}] is a tool turn ({tag}); tool calls are not imported")
        role = (roles or {}).get(tag, tag) if isinstance(tag, str) else None
        if role not in ("system", "user", "assistant"):
            raise RowProblem(f"'{field}'[{k}] has {role_key} {tag!r}; expected user/assistant/system")
        out.append({"role": role, "content": _text(turn.get(content_key), f"'{field}'[{k}].{content_key}")})
    return out


def _conversation(row: dict[str, Any], layout: Layout, shape: Shape) -> list[dict[str, str]]:
    if shape == "alpaca":
        turns = _alpaca(row, layout)
    elif shape == "sharegpt":
        turns = _turns(row[layout.col("conversations")], layout.col("conversations"), "from", "value", SHAREGPT_ROLES)
    else:
        turns = _turns(row[layout.col("messages")], layout.col("messages"), "role", "content", None)
    system = row.get(layout.col("system"))
    if system is not None and shape != "messages":
        text = _text(system, f"'{layout.col('system')}'").strip()
        if text and not (turns and turns[0]["role"] == "system"):
            turns.insert(0, {"role": "system", "content": text})
    return turns


def check_turns(turns: list[dict[str, str]]) -> None:
    problem = turn_problem(turns)
    if problem is not None:
        raise RowProblem(problem)


def original_id(row: dict[str, Any], layout: Layout) -> str | None:
    for name in [layout.columns["id"]] if "id" in layout.columns else ID_FIELDS:
        value = row.get(name)
        if value is not None and not isinstance(value, (list, dict)):
            return str(value)
    return None


def to_example(row: dict[str, Any], layout: Layout, decided_at: str) -> Example:
    """One row as an example, in the file's shape (`layout.shape`, set from the first row under `auto`)."""
    shape = detect(row, layout)
    if layout.shape is not None and shape not in (layout.shape, None) and not _has_shape(row, layout, layout.shape):
        raise RowProblem(
            f"a row shaped as {shape} in a file of {layout.shape} rows (the shape was taken from {decided_at}); "
            "split the file by shape, or set its format"
        )
    shape = layout.shape or shape
    if shape is None:
        raise RowProblem(f"fits no shape: fields {', '.join(map(str, row)) or '(none)'}; {what_fits(layout)}")
    if not _has_shape(row, layout, shape):
        raise RowProblem(f"lacks {', '.join(repr(c) for c in _required(layout, shape))} for the {shape} shape")
    turns = _conversation(row, layout, shape)
    check_turns(turns)
    return Example(turns, original_id(row, layout))


def _required(layout: Layout, shape: Shape) -> list[str]:
    names = {"alpaca": ["instruction", "output"], "sharegpt": ["conversations"], "messages": ["messages"]}[shape]
    return [layout.col(n) for n in names]


def _has_shape(row: dict[str, Any], layout: Layout, shape: Shape) -> bool:
    return all(c in row for c in _required(layout, shape))


def what_fits(layout: Layout) -> str:
    return (
        f"expected '{layout.col('messages')}' (OpenAI messages), '{layout.col('conversations')}' (ShareGPT) or "
        f"'{layout.col('instruction')}' and '{layout.col('output')}' (Alpaca); map other names with `columns`"
    )


# -- files --------------------------------------------------------------------------------------------------------


def is_hf_folder(path: Path) -> bool:
    """A `datasets` save_to_disk folder (a Dataset or a DatasetDict)."""
    return path.is_dir() and any((path / n).is_file() for n in ("state.json", "dataset_dict.json"))


def dataset_files(pattern: str, base: Path) -> list[Path]:
    """The data files (or `datasets` folders) one `sources.datasets` entry names: a file, a `datasets` folder, a
    folder of data files (searched recursively) or a glob."""
    path = (base / pattern) if not Path(pattern).is_absolute() else Path(pattern)
    if is_hf_folder(path) or path.is_file():
        return [path]
    if path.is_dir():
        folders = sorted({p.parent for n in ("state.json", "dataset_dict.json") for p in path.rglob(n)})
        folders = [f for f in folders if not any(f != g and g in f.parents for g in folders)]  # a dict's splits
        found = [
            p
            for p in sorted(path.rglob("*"))
            if p.is_file() and p.suffix.lower() in SUFFIXES and not any(f in p.parents for f in folders)
        ]
        return folders + found
    matches = sorted(base.glob(pattern))
    found = [p for p in matches if is_hf_folder(p) or (p.is_file() and p.suffix.lower() in SUFFIXES)]
    if not found:
        raise SourceError(
            f"sources.datasets path '{pattern}' matches no data file (looked in {base}); give a "
            f"{', '.join(SUFFIXES)} file, a folder of them, or a `datasets` save_to_disk folder"
        )
    return found


def hf_rows(path: Path, split: str | None) -> Iterator[Row]:
    """The rows of a `datasets` save_to_disk folder, in batches (the Arrow files are memory-mapped)."""
    import datasets

    datasets.disable_progress_bars()
    try:
        data = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise SourceError(f"{path}: not a readable `datasets` folder ({exc})") from None
    if isinstance(data, datasets.DatasetDict):
        names = list(data)
        chosen = split or ("train" if "train" in names else names[0] if len(names) == 1 else None)
        if chosen not in names:
            raise SourceError(
                f"{path}: a DatasetDict with splits {', '.join(names)}; name one with `split`"
                + (f" ({split!r} is not among them)" if split else "")
            )
        data = data[chosen]
    number = 0
    for batch in data.iter(batch_size=1000):
        keys = list(batch)
        for values in zip(*(batch[k] for k in keys)):
            number += 1
            yield Row(f"{path}, row {number}", number, dict(zip(keys, values)))


def file_rows(path: Path, split: str | None, skipped: list[tuple[str, str]]) -> Iterator[Row]:
    """The rows of one dataset file or folder; unreadable lines go to `skipped` with their reason."""
    if path.is_dir():
        yield from hf_rows(path, split)
    else:
        yield from read_rows(path, on_bad="skip", skipped=skipped, error=SourceError)


def check_columns(first: Row, layout: Layout, field: str) -> None:
    """A recipe mistake stops early: every column the mapping names must be in the file (checked on its first
    row), with the closest name offered."""
    for name, column in layout.columns.items():
        if column not in first.data:
            raise SourceError(
                f"{field}.columns.{name}: " + missing_field(column, first.where, list(first.data), role="columns")
            )
