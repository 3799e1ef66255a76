"""The local engine: blocks run one after another in this process, by one worker built on the first block."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sftforge.engine.base import Resolver


class LocalRunner:
    """One worker in this process, built on the first block."""

    info: dict[str, Any] = {"name": "local"}

    def map(self, worker_cls: Any, init_args: tuple[Any, ...], blocks: Sequence[str]) -> Iterator[Any]:
        if not blocks:
            return
        worker = worker_cls(*init_args)
        for block in blocks:
            yield worker.process(block)

    def dedup_resolver(self, scratch: Path) -> Resolver | None:
        return None  # Deduplicator.resolve in this process
