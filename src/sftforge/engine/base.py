"""What an engine is: a runner that maps a worker class over blocks (`map`) and may resolve deduplicators its
own way (`dedup_resolver`). `open_runner` gives the recipe's engine: local (engine/local.py) or Ray
(engine/ray_engine.py, imported only when asked for)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from sftforge.lib.duplicates import Duplicates

Resolver = Callable[[Any, np.ndarray], Duplicates]  # (deduplicator, its keys over the whole stream) -> decision


class Runner(Protocol):
    """Runs a worker class over blocks; `info` describes it for the manifest."""

    info: dict[str, Any]

    def map(self, worker_cls: Any, init_args: tuple[Any, ...], blocks: Sequence[str]) -> Iterator[Any]: ...

    def dedup_resolver(self, scratch: Path) -> Resolver | None:
        """How this engine resolves a deduplicator over the whole stream's keys (None: `Deduplicator.resolve` in
        this process); `scratch` is a folder it may use."""
        ...


@dataclass(frozen=True, slots=True)
class RaySettings:
    """Where to run: a cluster's address (None: RAY_ADDRESS, else a local Ray), CPUs of a local Ray, actors."""

    address: str | None = None
    num_cpus: int | None = None
    workers: int | None = None


def settings_of(config: Any) -> RaySettings:
    """RaySettings from a recipe's `ray` section (None: the defaults)."""
    return RaySettings(config.address, config.num_cpus, config.workers) if config is not None else RaySettings()


@contextlib.contextmanager
def open_runner(engine: str, settings: Any = None) -> Iterator[Runner]:
    """The recipe's engine: `local`, or `ray` (connects to the cluster for the duration)."""
    if engine != "ray":
        from sftforge.engine.local import LocalRunner

        yield LocalRunner()
        return
    from sftforge.engine.ray_engine import RayRunner, ray_session

    with ray_session(settings) as ray:
        yield RayRunner(ray, settings)
