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
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sftforge.run import atomic_write_bytes, writing
from sftforge.sample import RECORD_SCHEMA, Record, records_to_table, turn_problem

SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt"}
LEFT_OUT_NAMED = 10  # records the LLaMA-Factory pre-flight left out, named in the card; the rest are counted


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


def _sharegpt_turns(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{"from": SHAREGPT_ROLES[m["role"]], "value": m["content"]} for m in messages]


def sharegpt_row(r: Record) -> dict:
    return {"conversations": _sharegpt_turns(r.messages)}


def llamafactory_alpaca_row(r: Record) -> dict:
    """The last exchange as instruction/output, the exchanges before it as `history` pairs."""
    body = [m["content"] for m in r.messages if m["role"] != "system"]
    pairs = [[body[i], body[i + 1]] for i in range(0, len(body) - 2, 2)]
    return {"instruction": body[-2], "input": "", "output": body[-1], "system": r.text_of("system"), "history": pairs}


def llamafactory_sharegpt_row(r: Record) -> dict:
    """The conversation without its system turn, which LLaMA-Factory reads from the `system` column."""
    body = [m for m in r.messages if m["role"] != "system"]
    return {"conversations": _sharegpt_turns(body), "system": r.text_of("system")}


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


FEATURE_PAIRS = pa.list_(pa.struct([("name", pa.string()), ("value", pa.float64())]))
HF_SCHEMA = RECORD_SCHEMA.set(RECORD_SCHEMA.get_field_index("features"), pa.field("features", FEATURE_PAIRS))


def hf_table(table: pa.Table) -> pa.Table:
    """`datasets` has no map type: features become a list of {name, value} pairs there."""
    pairs = [[{"name": k, "value": v} for k, v in (row or [])] for row in table.column("features").to_pylist()]
    index = table.schema.get_field_index("features")
    return table.set_column(index, pa.field("features", FEATURE_PAIRS), pa.array(pairs, type=FEATURE_PAIRS))


class _File:
    """One output file written as batches come, under a temporary name, moved into place when complete."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp")
        self.rows = 0

    def finish(self) -> None:
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.tmp.unlink(missing_ok=True)


class _Jsonl(_File):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.fh = open(self.tmp, "wb")  # closed in finish or abort

    def write(self, rows: Iterable[dict]) -> None:
        lines = [json.dumps(row, ensure_ascii=False) + "\n" for row in rows]
        self.fh.write("".join(lines).encode("utf-8"))
        self.rows += len(lines)

    def finish(self) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        super().finish()

    def abort(self) -> None:
        self.fh.close()
        super().abort()


class _Arrow(_File):
    """Parquet (the records) or an Arrow stream (the `datasets` table, memory-mapped by `Dataset.from_file`)."""

    def __init__(self, path: Path, schema: pa.Schema, stream: bool = False) -> None:
        super().__init__(path)
        self.writer: pq.ParquetWriter | pa.ipc.RecordBatchStreamWriter = (
            pa.ipc.new_stream(str(self.tmp), schema)
            if stream
            else pq.ParquetWriter(self.tmp, schema, compression="zstd")
        )

    def write(self, table: pa.Table) -> None:
        self.writer.write_table(table)
        self.rows += table.num_rows

    def finish(self) -> None:
        self.writer.close()
        super().finish()

    def abort(self) -> None:
        self.writer.close()
        super().abort()


class DatasetWriter:
    """Every requested format under `out`, written batch by batch (`add`), so an export of a million records never
    holds them at once; each file appears complete or not at all. `files` says what was written, for the
    manifest and the card. `name` names the LLaMA-Factory datasets."""

    def __init__(
        self, out: Path, formats: Sequence[str], name: str = "sftforge", audience_columns: bool = False
    ) -> None:
        self.out, self.formats, self.name = out, formats, name
        self.audience_columns = audience_columns  # `audience` and `genre` columns in the JSONL formats
        self.records = 0
        self.left_out = 0
        self.left_out_examples: list[dict[str, str]] = []  # the first LEFT_OUT_NAMED
        with writing(out):
            out.mkdir(parents=True, exist_ok=True)
            self.lf = out / ".llamafactory.tmp"
            shutil.rmtree(self.lf, ignore_errors=True)
            if "llamafactory" in formats:
                self.lf.mkdir()
            self.files: dict[str, _Jsonl | _Arrow] = {}
            jsonl = {"openai": "openai.jsonl", "alpaca": "alpaca.jsonl", "sharegpt": "sharegpt.jsonl"}
            for fmt, file in jsonl.items():
                if fmt in formats:
                    self.files[fmt] = _Jsonl(out / file)
            if "llamafactory" in formats:
                self.files["lf_alpaca"] = _Jsonl(self.lf / "alpaca.jsonl")
                self.files["lf_sharegpt"] = _Jsonl(self.lf / "sharegpt.jsonl")
            if "parquet" in formats:
                self.files["parquet"] = _Arrow(out / "data.parquet", RECORD_SCHEMA)
            if "hf" in formats:
                self.files["hf"] = _Arrow(out / "hf.arrow", HF_SCHEMA, stream=True)

    def add(self, records: list[Record]) -> None:
        self.records += len(records)
        makers = {"openai": openai_row, "alpaca": alpaca_row, "sharegpt": sharegpt_row}
        for fmt, make in makers.items():
            if fmt in self.files:
                rows = ((r, make(r)) for r in records)
                self.files[fmt].write(self._tagged(r, row) for r, row in rows if row is not None)
        if "lf_alpaca" in self.files:
            fit = []
            for r in records:  # the pre-flight: what LLaMA-Factory's converters would drop stays out
                problem = turn_problem(r.messages)
                if problem is None:
                    fit.append(r)
                    continue
                self.left_out += 1
                if len(self.left_out_examples) < LEFT_OUT_NAMED:
                    self.left_out_examples.append({"id": r.id, "reason": problem})
            self.files["lf_alpaca"].write(llamafactory_alpaca_row(r) for r in fit)
            self.files["lf_sharegpt"].write(llamafactory_sharegpt_row(r) for r in fit)
        if "parquet" in self.files or "hf" in self.files:
            table = records_to_table(records)
            if "parquet" in self.files:
                self.files["parquet"].write(table)
            if "hf" in self.files:
                self.files["hf"].write(hf_table(table))

    def _tagged(self, r: Record, row: dict) -> dict:
        """The row with the record's audience and genre columns, when asked for (None where it has none)."""
        if not self.audience_columns:
            return row
        lineage = r.lineage
        return row | {"audience": lineage.audience if lineage else None, "genre": lineage.genre if lineage else None}

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        if exc is not None:
            for f in self.files.values():
                f.abort()
            shutil.rmtree(self.lf, ignore_errors=True)
            return
        with writing(self.out):
            for f in self.files.values():
                f.finish()
            if "hf" in self.files:
                self._save_hf()
            if "llamafactory" in self.formats:
                info = json.dumps(dataset_info(self.name), ensure_ascii=False, indent=2) + "\n"
                atomic_write_bytes(self.lf / "dataset_info.json", info.encode("utf-8"))
                shutil.rmtree(self.out / "llamafactory", ignore_errors=True)
                self.lf.rename(self.out / "llamafactory")

    def _save_hf(self) -> None:
        """The `datasets` folder from the Arrow stream (memory-mapped, not loaded), then the stream removed."""
        import datasets

        datasets.disable_progress_bars()
        stream, target, tmp = self.out / "hf.arrow", self.out / "hf", self.out / ".hf.tmp"
        for p in (tmp, target):
            if p.exists():
                shutil.rmtree(p)
        datasets.Dataset.from_file(str(stream)).save_to_disk(str(tmp))
        tmp.rename(target)
        stream.unlink()

    @property
    def written(self) -> dict[str, object]:
        """{format: path and counts} for the manifest."""
        out: dict[str, object] = {}
        for fmt in ("openai", "alpaca", "sharegpt"):
            if fmt in self.files:
                entry: dict[str, object] = {"path": self.files[fmt].path.name, "records": self.files[fmt].rows}
                if fmt == "alpaca":
                    entry["multi_turn_skipped"] = self.records - self.files[fmt].rows
                out[fmt] = entry
        if "parquet" in self.files:
            out["parquet"] = {"path": "data.parquet", "records": self.records}
        if "hf" in self.files:
            out["hf"] = {"path": "hf", "records": self.records}
        if "llamafactory" in self.formats:
            out["llamafactory"] = {
                "path": "llamafactory",
                "records": self.files["lf_alpaca"].rows,
                "datasets": list(dataset_info(self.name)),
                "left_out": self.left_out,
                "left_out_examples": self.left_out_examples,
            }
        return out


def write_all(records: list[Record], out: Path, formats: Sequence[str], name: str = "sftforge") -> dict[str, object]:
    """Write every requested format under `out` at once (see DatasetWriter); {format: path and counts}."""
    with DatasetWriter(out, formats, name) as writer:
        writer.add(records)
    return writer.written
