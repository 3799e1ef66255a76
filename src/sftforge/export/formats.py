"""Write records as OpenAI `messages` JSONL (what TRL's SFTTrainer reads as conversational data), Alpaca JSONL,
ShareGPT JSONL, Parquet, a `datasets` folder, and a LLaMA-Factory dataset folder.

OpenAI and ShareGPT keep whole conversations. Alpaca has one instruction and one output, so only single-turn
records (an optional system message, one user, one assistant) are written there; the others are counted and
named in the card rather than squeezed into a shape that misrepresents them.

The LLaMA-Factory folder holds `alpaca.jsonl` (earlier turns in `history`, so every conversation fits),
`sharegpt.jsonl` (`conversations` of from/value turns, the system prompt in its own column) and the
`dataset_info.json` that names their columns and tags, so `dataset_dir` pointing at the folder and `dataset:
<name>_alpaca` (or `_sharegpt`) train at once. A pre-flight (`sample.turn_problem`, the rules LLaMA-Factory's
converters apply) leaves out and counts any record those converters would drop, so a run never ends in "Cannot
find valid samples".
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa

from sftforge.run import atomic_folder, atomic_write_bytes, atomic_write_table, writing
from sftforge.sample import Record, records_to_table, turn_problem

SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt"}


def openai_row(r: Record) -> dict:
    return {"messages": r.messages}


def alpaca_row(r: Record) -> dict | None:
    body = [m for m in r.messages if m["role"] != "system"]
    if len(body) != 2 or body[0]["role"] != "user" or body[1]["role"] != "assistant":
        return None
    row = {"instruction": body[0]["content"], "input": "", "output": body[1]["content"]}
    system = r.text_of("system")
    if system:
        row["system"] = system
    return row


def sharegpt_row(r: Record) -> dict:
    return {"conversations": [{"from": SHAREGPT_ROLES[m["role"]], "value": m["content"]} for m in r.messages]}


def llamafactory_alpaca_row(r: Record) -> dict:
    """The last exchange as instruction/output, the exchanges before it as `history` pairs."""
    body = [m["content"] for m in r.messages if m["role"] != "system"]
    pairs = [[body[i], body[i + 1]] for i in range(0, len(body) - 2, 2)]
    return {"instruction": body[-2], "input": "", "output": body[-1], "system": r.text_of("system"), "history": pairs}


def llamafactory_sharegpt_row(r: Record) -> dict:
    turns = [{"from": SHAREGPT_ROLES[m["role"]], "value": m["content"]} for m in r.messages if m["role"] != "system"]
    return {"conversations": turns, "system": r.text_of("system")}


def dataset_name(recipe_name: str) -> str:
    """A recipe's name as a dataset name: letters, digits and underscores."""
    return re.sub(r"[^0-9A-Za-z_]+", "_", recipe_name).strip("_").lower() or "sftforge"


def dataset_info(name: str) -> dict[str, dict]:
    """LLaMA-Factory's `dataset_info.json` for the two files (see its data/README.md)."""
    return {
        f"{name}_alpaca": {
            "file_name": "alpaca.jsonl",
            "formatting": "alpaca",
            "columns": {
                "prompt": "instruction",
                "query": "input",
                "response": "output",
                "system": "system",
                "history": "history",
            },
        },
        f"{name}_sharegpt": {
            "file_name": "sharegpt.jsonl",
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "system": "system"},
            "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"},
        },
    }


def write_llamafactory(records: list[Record], folder: Path, name: str) -> dict[str, object]:
    """The LLaMA-Factory folder, after the pre-flight; what it wrote and what it left out (first ids named)."""
    kept, left_out = [], []
    for r in records:
        problem = turn_problem(r.messages)
        if problem is None:
            kept.append(r)
        else:
            left_out.append({"id": r.id, "reason": problem})
    with writing(folder):
        shutil.rmtree(folder, ignore_errors=True)
    with atomic_folder(folder) as tmp:
        atomic_write_bytes(tmp / "alpaca.jsonl", _jsonl(llamafactory_alpaca_row(r) for r in kept))
        atomic_write_bytes(tmp / "sharegpt.jsonl", _jsonl(llamafactory_sharegpt_row(r) for r in kept))
        info = json.dumps(dataset_info(name), ensure_ascii=False, indent=2) + "\n"
        atomic_write_bytes(tmp / "dataset_info.json", info.encode("utf-8"))
    return {
        "path": folder.name,
        "records": len(kept),
        "datasets": list(dataset_info(name)),
        "left_out": len(left_out),
        "left_out_examples": left_out[:10],
    }


def _jsonl(rows: Iterable[dict]) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")


def hf_table(table: pa.Table) -> pa.Table:
    """`datasets` has no map type: features become a list of {name, value} pairs there."""
    feature_type = pa.list_(pa.struct([("name", pa.string()), ("value", pa.float64())]))
    pairs = [[{"name": k, "value": v} for k, v in (row or [])] for row in table.column("features").to_pylist()]
    index = table.schema.get_field_index("features")
    return table.set_column(index, pa.field("features", feature_type), pa.array(pairs, type=feature_type))


def write_all(records: list[Record], out: Path, formats: Sequence[str], name: str = "sftforge") -> dict[str, object]:
    """Write every requested format under `out`; return {format: path or counts} for the manifest. `name` names
    the LLaMA-Factory datasets."""
    written: dict[str, object] = {}
    if "llamafactory" in formats:
        written["llamafactory"] = write_llamafactory(records, out / "llamafactory", name)
    if "openai" in formats:
        atomic_write_bytes(out / "openai.jsonl", _jsonl(openai_row(r) for r in records))
        written["openai"] = {"path": "openai.jsonl", "records": len(records)}
    if "alpaca" in formats:
        rows = [alpaca_row(r) for r in records]
        kept = [row for row in rows if row is not None]
        atomic_write_bytes(out / "alpaca.jsonl", _jsonl(kept))
        written["alpaca"] = {"path": "alpaca.jsonl", "records": len(kept), "multi_turn_skipped": len(rows) - len(kept)}
    if "sharegpt" in formats:
        atomic_write_bytes(out / "sharegpt.jsonl", _jsonl(sharegpt_row(r) for r in records))
        written["sharegpt"] = {"path": "sharegpt.jsonl", "records": len(records)}
    table = records_to_table(records)
    if "parquet" in formats:
        atomic_write_table(out / "data.parquet", table)
        written["parquet"] = {"path": "data.parquet", "records": len(records)}
    if "hf" in formats:
        import datasets

        datasets.disable_progress_bars()

        target = out / "hf"
        tmp = out / ".hf.tmp"
        with writing(target):
            for p in (tmp, target):
                if p.exists():
                    shutil.rmtree(p)
            datasets.Dataset(hf_table(table)).save_to_disk(str(tmp))
            tmp.rename(target)
        written["hf"] = {"path": "hf", "records": len(records)}
    return written
