"""Write records as OpenAI `messages` JSONL, Alpaca JSONL, ShareGPT JSONL, Parquet, and a `datasets` folder.

OpenAI and ShareGPT keep whole conversations. Alpaca has one instruction and one output, so only single-turn
records (an optional system message, one user, one assistant) are written there; the others are counted and
named in the card rather than squeezed into a shape that misrepresents them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa

from sftforge.run import atomic_write_bytes, atomic_write_table, writing
from sftforge.sample import Record, records_to_table

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


def _jsonl(rows: Iterable[dict]) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")


def hf_table(table: pa.Table) -> pa.Table:
    """`datasets` has no map type: features become a list of {name, value} pairs there."""
    feature_type = pa.list_(pa.struct([("name", pa.string()), ("value", pa.float64())]))
    pairs = [[{"name": k, "value": v} for k, v in (row or [])] for row in table.column("features").to_pylist()]
    index = table.schema.get_field_index("features")
    return table.set_column(index, pa.field("features", feature_type), pa.array(pairs, type=feature_type))


def write_all(records: list[Record], out: Path, formats: Sequence[str]) -> dict[str, object]:
    """Write every requested format under `out`; return {format: path or counts} for the manifest."""
    written: dict[str, object] = {}
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
            import shutil

            for p in (tmp, target):
                if p.exists():
                    shutil.rmtree(p)
            datasets.Dataset(hf_table(table)).save_to_disk(str(tmp))
            tmp.rename(target)
        written["hf"] = {"path": "hf", "records": len(records)}
    return written
