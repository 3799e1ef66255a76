"""The run directory: stage outputs as Parquet shards, a manifest, fingerprints, exactly-once resume.

Layout of a run directory::

    manifest.json            stages with fingerprint, status, counts, timings
    recipe.yaml              the recipe this run was made from
    <stage>/part-00000.parquet ...
    <stage>/_ledger.jsonl    one line per committed shard: the work items it completed
    rejected/<stage>/part-00000.parquet   records the stage removed, with operator and reason
    cache/llm.sqlite         LLM responses (see llm/cache.py)

A shard is written to a temporary file and renamed, then its ledger line is appended and fsynced: the ledger line
is the commit point. On resume, shards without a ledger line (a crash between the two) are deleted and their work
items are redone, so no record is lost or duplicated even after `kill -9`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sftforge import __version__
from sftforge.errors import RunDirError
from sftforge.sample import (
    RECORD_SCHEMA,
    REJECT_SCHEMA,
    Record,
    Rejected,
    records_to_table,
    rejected_to_table,
    table_to_records,
)

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
RECIPE_COPY = "recipe.yaml"


def fingerprint(*parts: Any) -> str:
    """A stable hash of JSON-serialisable parts (a stage's config and its inputs' fingerprints)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def _explain_os_error(exc: OSError, path: Path) -> RunDirError:
    if exc.errno == errno.ENOSPC:
        hint = "the disk is full: free some space and rerun; completed work is kept"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "permission denied: choose a writable --out directory or fix its permissions"
    elif exc.errno == errno.ENOTDIR:
        hint = "a path component is a file, not a directory: choose another --out directory"
    else:
        hint = exc.strerror or str(exc)
    return RunDirError(f"cannot write {path}: {hint}")


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn OS errors while writing `path` into a RunDirError that says what to do."""
    try:
        yield
    except OSError as exc:
        raise _explain_os_error(exc, path) from exc


@contextlib.contextmanager
def atomic_folder(folder: Path) -> Iterator[Path]:
    """A folder written whole or not at all: filled under a temporary name (the yielded path), renamed into place
    when the block ends without an error, so a reader (or a resumed run) sees it complete or not at all."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    with writing(tmp):
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        yield tmp
        tmp.rename(folder)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old or the new content, never a torn one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()


def atomic_write_table(path: Path, table: pa.Table) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            pq.write_table(table, tmp, compression="zstd")
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class StageInfo:
    """A stage's entry in the manifest."""

    fingerprint: str
    status: str = "running"  # running | complete
    counts: dict[str, int] = field(default_factory=dict)
    started_at: str = ""
    finished_at: str = ""
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class ShardLog:
    """Exactly-once, resumable shard output of one stage (records and rejects), committed through a ledger."""

    def __init__(self, stage_dir: Path, rejected_dir: Path) -> None:
        self.stage_dir = stage_dir
        self.rejected_dir = rejected_dir
        self.ledger = stage_dir / "_ledger.jsonl"
        self.done: set[str] = set()
        self.counts = {"records": 0, "rejected": 0}
        self.stats: Counter[str] = Counter()  # free-form counters summed over committed shards (e.g. tokens)
        self._next_part = 0
        self._recover()

    def _recover(self) -> None:
        committed: set[str] = set()
        if self.ledger.exists():
            with open(self.ledger, "rb") as fh:
                data = fh.read()
            good = 0
            for raw in data.splitlines(keepends=True):
                if not raw.endswith(b"\n"):
                    break  # a torn last line: its shard was never committed
                try:
                    entry = json.loads(raw)
                except json.JSONDecodeError:
                    break
                good += len(raw)
                committed.add(entry["part"])
                self.done.update(entry["keys"])
                self.counts["records"] += entry["records"]
                self.counts["rejected"] += entry["rejected"]
                self.stats.update(entry.get("stats", {}))
                self._next_part = max(self._next_part, int(entry["part"].split("-")[1]) + 1)
            if good < len(data):
                with writing(self.ledger), open(self.ledger, "r+b") as fh:
                    fh.truncate(good)
        for folder in (self.stage_dir, self.rejected_dir):
            for path in folder.glob("part-*.parquet") if folder.exists() else []:
                if path.stem not in committed:
                    log.info("removing uncommitted shard %s", path)
                    path.unlink()
            for path in folder.glob(".part-*.tmp-*") if folder.exists() else []:
                path.unlink()

    def commit(
        self, records: list[Record], rejected: list[Rejected], keys: list[str], stats: dict[str, int] | None = None
    ) -> None:
        """Write one shard of records and rejects and mark `keys` (work items) done, atomically. `stats` are
        counters for the work in this shard; they survive interruptions with it."""
        part = f"part-{self._next_part:05d}"
        if records:
            atomic_write_table(self.stage_dir / f"{part}.parquet", records_to_table(records))
        if rejected:
            atomic_write_table(self.rejected_dir / f"{part}.parquet", rejected_to_table(rejected))
        line = json.dumps(
            {"part": part, "keys": keys, "records": len(records), "rejected": len(rejected), "stats": stats or {}},
            ensure_ascii=False,
        )
        with writing(self.ledger):
            self.stage_dir.mkdir(parents=True, exist_ok=True)
            with open(self.ledger, "ab") as fh:
                fh.write(line.encode("utf-8") + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
        self._next_part += 1
        self.done.update(keys)
        self.counts["records"] += len(records)
        self.counts["rejected"] += len(rejected)
        self.stats.update(stats or {})


def shard_schema(rejected: bool, columns: list[str] | None) -> pa.Schema:
    """The schema of a stage's records (or rejections), or of the chosen columns of them."""
    schema = REJECT_SCHEMA if rejected else RECORD_SCHEMA
    return schema if columns is None else pa.schema([schema.field(c) for c in columns])


class RunDir:
    """A run directory: the manifest, the recipe copy, every stage's shards."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.manifest: dict[str, Any] = {}

    @classmethod
    def create(cls, path: Path, recipe_text: str, name: str, recipe_dir: Path) -> RunDir:
        """Open `path` as a run directory, creating it if needed, and store the recipe in it.

        `recipe_dir` is where the recipe file lives: its relative source paths resolve from there, also when a
        single stage is rerun later from the run directory's copy of the recipe.
        """
        run = cls(path)
        with writing(run.path):
            run.path.mkdir(parents=True, exist_ok=True)
        if (run.path / MANIFEST).exists():
            run._load()
        else:
            if any(run.path.iterdir()):
                raise RunDirError(
                    f"{run.path} exists, is not empty and is not a sftforge run directory (no {MANIFEST}): "
                    "choose another --out directory"
                )
            run.manifest = {"name": name, "sftforge": __version__, "created_at": now_iso(), "stages": {}}
        run.manifest["recipe_dir"] = str(Path(recipe_dir).resolve())
        run._save()
        atomic_write_bytes(run.path / RECIPE_COPY, recipe_text.encode("utf-8"))
        return run

    @classmethod
    def open(cls, path: Path) -> RunDir:
        run = cls(path)
        if not (run.path / MANIFEST).exists():
            raise RunDirError(
                f"{run.path} is not a run directory (no {MANIFEST}); create one with `sftforge run RECIPE --out DIR`"
            )
        run._load()
        return run

    def _load(self) -> None:
        try:
            self.manifest = json.loads((self.path / MANIFEST).read_text("utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RunDirError(f"cannot read {self.path / MANIFEST}: {exc}") from exc

    def _save(self) -> None:
        data = json.dumps(self.manifest, indent=2, ensure_ascii=False).encode("utf-8")
        atomic_write_bytes(self.path / MANIFEST, data)

    @property
    def recipe_path(self) -> Path:
        return self.path / RECIPE_COPY

    def stage_dir(self, stage: str) -> Path:
        return self.path / stage

    def rejected_dir(self, stage: str) -> Path:
        return self.path / "rejected" / stage

    def stage_info(self, stage: str) -> StageInfo | None:
        raw = self.manifest.get("stages", {}).get(stage)
        return StageInfo(**raw) if raw else None

    def stages(self) -> dict[str, StageInfo]:
        """Every stage's manifest entry, in the order the stages first ran."""
        return {name: StageInfo(**raw) for name, raw in self.manifest.get("stages", {}).items()}

    def is_complete(self, stage: str, fp: str) -> bool:
        info = self.stage_info(stage)
        return info is not None and info.status == "complete" and info.fingerprint == fp

    def begin(self, stage: str, fp: str) -> ShardLog:
        """Start or resume `stage`. Output made under a different fingerprint (a changed recipe) is discarded."""
        info = self.stage_info(stage)
        if info is None or info.fingerprint != fp:
            if info is not None:
                log.info("stage %s: recipe or inputs changed, discarding its previous output", stage)
            self.reset(stage)
            info = StageInfo(fingerprint=fp, started_at=now_iso())
        else:
            info.status = "running"
        self.manifest.setdefault("stages", {})[stage] = info.__dict__
        self._save()
        return ShardLog(self.stage_dir(stage), self.rejected_dir(stage))

    def finish(self, stage: str, counts: dict[str, int], seconds: float, extra: dict[str, Any] | None = None) -> None:
        info = self.stage_info(stage)
        if info is None:
            raise RunDirError(f"stage {stage} finished in {self.path} without having begun (begin() first)")
        info.status = "complete"
        info.counts = counts
        info.finished_at = now_iso()
        info.seconds = round(info.seconds + seconds, 3)
        info.extra = extra or {}
        self.manifest["stages"][stage] = info.__dict__
        self._save()

    def add_seconds(self, stage: str, seconds: float) -> None:
        """Account time spent in an interrupted attempt, so the manifest's timing covers all attempts."""
        info = self.stage_info(stage)
        if info is not None:
            info.seconds = round(info.seconds + seconds, 3)
            self.manifest["stages"][stage] = info.__dict__
            self._save()

    def reset(self, stage: str) -> None:
        with writing(self.stage_dir(stage)):
            for folder in (self.stage_dir(stage), self.rejected_dir(stage)):
                if folder.exists():
                    shutil.rmtree(folder)
        self.manifest.setdefault("stages", {}).pop(stage, None)

    # -- reading -----------------------------------------------------------------------------------------------

    def shards(self, stage: str, rejected: bool = False) -> list[Path]:
        """A stage's record shards (or its rejections'), in commit order."""
        folder = self.rejected_dir(stage) if rejected else self.stage_dir(stage)
        return sorted(folder.glob("part-*.parquet")) if folder.exists() else []

    def read_table(self, stage: str, rejected: bool = False, columns: list[str] | None = None) -> pa.Table:
        """A stage's records (or rejections) as one table; `columns`: only these (a million rows' ids and lineage
        are cheap, their messages are not)."""
        schema = shard_schema(rejected, columns)
        parts = self.shards(stage, rejected)
        if not parts:
            return schema.empty_table()
        return pa.concat_tables([pq.read_table(p, schema=schema, columns=columns) for p in parts])

    def iter_tables(self, stage: str, rejected: bool = False, columns: list[str] | None = None) -> Iterator[pa.Table]:
        """A stage's records (or rejections) shard by shard, for readers that stream."""
        schema = shard_schema(rejected, columns)
        for part in self.shards(stage, rejected):
            yield pq.read_table(part, schema=schema, columns=columns)

    def read_records(self, stage: str) -> list[Record]:
        return table_to_records(self.read_table(stage))

    def read_rejected(self, columns: list[str] | None = None) -> pa.Table:
        """Every rejected record of every stage (only `columns`, if given)."""
        root = self.path / "rejected"
        stages = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else []
        tables = [self.read_table(s, rejected=True, columns=columns) for s in stages]
        return pa.concat_tables(tables) if tables else shard_schema(True, columns).empty_table()


class Timer:
    """Wall time of a stage attempt."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start
