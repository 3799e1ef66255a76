"""The run directory: exactly-once shard commits, recovery from torn writes, fingerprints, OS errors."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from sftforge.errors import RunDirError
from sftforge.run import RunDir, ShardLog, _explain_os_error, fingerprint
from sftforge.sample import Lineage, Record, Rejected, SourceRef


def rec(i: int) -> Record:
    return Record(
        id=f"id{i}",
        messages=[{"role": "user", "content": f"q{i}?"}, {"role": "assistant", "content": f"a{i}"}],
        task="qa",
        lang="en",
        source=[SourceRef("chunk", f"c{i}", "doc", 0, 10)],
        lineage=Lineage(generator="g", model="m", seed=i),
        features={"length": float(i)},
    )


def test_commit_and_recover(tmp_path: Path):
    log = ShardLog(tmp_path / "gen", tmp_path / "rej")
    log.commit([rec(1), rec(2)], [Rejected(rec(3), "generate", "g", "bad")], ["k1", "k2", "k3"], {"tokens": 7})
    log.commit([rec(4)], [], ["k4"], {"tokens": 3})
    again = ShardLog(tmp_path / "gen", tmp_path / "rej")
    assert again.done == {"k1", "k2", "k3", "k4"}
    assert again.counts == {"records": 3, "rejected": 1}
    assert again.stats["tokens"] == 10
    again.commit([rec(5)], [], ["k5"])
    assert sorted(p.name for p in (tmp_path / "gen").glob("part-*")) == [
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]


def test_shard_without_ledger_line_is_discarded(tmp_path: Path):
    log = ShardLog(tmp_path / "gen", tmp_path / "rej")
    log.commit([rec(1)], [], ["k1"])
    # a crash after writing shard 1 but before its ledger line
    (tmp_path / "gen" / "part-00001.parquet").write_bytes((tmp_path / "gen" / "part-00000.parquet").read_bytes())
    (tmp_path / "gen" / ".part-00002.parquet.tmp-123").write_bytes(b"half")
    again = ShardLog(tmp_path / "gen", tmp_path / "rej")
    assert again.done == {"k1"}
    assert sorted(p.name for p in (tmp_path / "gen").iterdir()) == ["_ledger.jsonl", "part-00000.parquet"]


def test_torn_ledger_line_is_truncated(tmp_path: Path):
    log = ShardLog(tmp_path / "gen", tmp_path / "rej")
    log.commit([rec(1)], [], ["k1"])
    log.commit([rec(2)], [], ["k2"])
    ledger = tmp_path / "gen" / "_ledger.jsonl"
    data = ledger.read_bytes()
    ledger.write_bytes(data[:-10])  # the second line was cut by a crash mid-write
    again = ShardLog(tmp_path / "gen", tmp_path / "rej")
    assert again.done == {"k1"}
    assert not (tmp_path / "gen" / "part-00001.parquet").exists()
    again.commit([rec(3)], [], ["k3"])
    assert ShardLog(tmp_path / "gen", tmp_path / "rej").done == {"k1", "k3"}


def test_records_round_trip_through_parquet(tmp_path: Path):
    run = RunDir.create(tmp_path / "run", "name: x\n", "x", tmp_path)
    log = run.begin("generate", "fp1")
    log.commit([rec(1), rec(2)], [Rejected(rec(3), "generate", "g", "why")], ["a"])
    assert run.read_records("generate") == [rec(1), rec(2)]
    rejected = run.read_rejected()
    assert rejected.column("reject_reason").to_pylist() == ["why"]


def test_fingerprint_change_discards_stage_output(tmp_path: Path):
    run = RunDir.create(tmp_path / "run", "name: x\n", "x", tmp_path)
    run.begin("generate", "fp1").commit([rec(1)], [], ["a"])
    run.finish("generate", {"records": 1}, 1.0)
    assert run.is_complete("generate", "fp1") and not run.is_complete("generate", "fp2")
    log = run.begin("generate", "fp2")
    assert log.done == set() and run.read_records("generate") == []
    same = run.begin("generate", "fp2")
    assert same.done == set()


def test_fingerprint_is_stable_and_sensitive():
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})


def test_not_a_run_dir(tmp_path: Path):
    with pytest.raises(RunDirError, match="is not a run directory"):
        RunDir.open(tmp_path)
    (tmp_path / "stuff.txt").write_text("x")
    with pytest.raises(RunDirError, match="not empty and is not a sftforge run directory"):
        RunDir.create(tmp_path, "name: x\n", "x", tmp_path)


def test_out_dir_under_a_file(tmp_path: Path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirError, match="is a file, not a directory|cannot write"):
        RunDir.create(tmp_path / "file" / "run", "name: x\n", "x", tmp_path)


@pytest.mark.parametrize(
    "code, text",
    [(errno.ENOSPC, "the disk is full"), (errno.EACCES, "permission denied"), (errno.EROFS, "permission denied")],
)
def test_os_errors_say_what_to_do(code: int, text: str):
    err = _explain_os_error(OSError(code, "x"), Path("/some/where"))
    assert text in str(err) and "/some/where" in str(err)
