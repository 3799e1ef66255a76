"""Seed tasks for the instruction generators: JSON Lines in the Self-Instruct format ({id, instruction, instances:
[{input, output}], is_classification}) or flat rows ({instruction, input?, output?, is_classification?})."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sftforge.errors import SourceError
from sftforge.rows import read_rows


@dataclass(frozen=True, slots=True)
class SeedTask:
    id: str
    instruction: str
    instances: tuple[tuple[str, str], ...]  # (input, output)
    is_classification: bool
    kind: str = "seed"  # the SourceRef kind of where it came from: a seed task, or an imported record ("record")


def _text(row: dict, key: str, where: str) -> str:
    value = row.get(key, "")
    if not isinstance(value, str):
        raise SourceError(f"{where}: '{key}' must be a string, got {type(value).__name__}")
    return value.strip()


def load_seeds(path: Path) -> list[SeedTask]:
    """Every seed task of a file; a bad line raises SourceError naming the file, the line and what to fix."""
    if not path.is_file():
        raise SourceError(f"sources.seeds: {path} is not a file")
    seeds: list[SeedTask] = []
    ids: set[str] = set()
    for line in read_rows(path, on_bad="raise", error=SourceError):
        where, n, row = line.where, line.number, line.data
        instruction = _text(row, "instruction", where)
        if not instruction:
            raise SourceError(f"{where}: the seed task has no 'instruction'")
        if "instances" in row:
            if not isinstance(row["instances"], list):
                raise SourceError(f"{where}: 'instances' must be a list of {{input, output}} objects")
            for k, inst in enumerate(row["instances"]):
                if not isinstance(inst, dict):
                    raise SourceError(f"{where}: instances[{k}] must be an object {{input, output}}")
            instances = tuple((_text(i, "input", where), _text(i, "output", where)) for i in row["instances"])
        else:
            instances = ((_text(row, "input", where), _text(row, "output", where)),)
        if any(not out for _, out in instances) and "instances" in row:
            raise SourceError(f"{where}: an instance has no 'output'; give every instance an output")
        instances = tuple(i for i in instances if i[1])  # a flat row may be an instruction alone
        is_cls = row.get("is_classification", False)
        if not isinstance(is_cls, bool):
            raise SourceError(f"{where}: 'is_classification' must be true or false, got {is_cls!r}")
        seed_id = str(row.get("id") or f"line{n}")
        if seed_id in ids:
            raise SourceError(f"{where}: seed id {seed_id!r} is used twice; ids must be unique")
        ids.add(seed_id)
        seeds.append(SeedTask(seed_id, instruction, instances, is_cls))
    if not seeds:
        raise SourceError(f"sources.seeds: {path} holds no seed tasks")
    return seeds
