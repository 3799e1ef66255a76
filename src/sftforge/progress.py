"""Progress reporting that stages call without knowing about the terminal.

The CLI passes a rich-backed reporter; library users and tests get the silent one.
"""

from __future__ import annotations

from typing import Any, Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class Reporter(Protocol):
    def task(self, description: str, total: int | None) -> Any: ...
    def advance(self, handle: Any, n: int = 1, **fields: Any) -> None: ...
    def done(self, handle: Any) -> None: ...


class SilentReporter:
    def task(self, description: str, total: int | None) -> None:
        return None

    def advance(self, handle: Any, n: int = 1, **fields: Any) -> None:
        pass

    def done(self, handle: Any) -> None:
        pass


class RichReporter:
    """One progress bar per stage task, with free-form status text (e.g. accepted counts, tokens/s)."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
            console=console,
            transient=False,
        )

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def task(self, description: str, total: int | None) -> Any:
        return self.progress.add_task(description, total=total, status="")

    def advance(self, handle: Any, n: int = 1, **fields: Any) -> None:
        status = "  ".join(f"{k}={v}" for k, v in fields.items())
        self.progress.update(handle, advance=n, status=status)

    def done(self, handle: Any) -> None:
        task = self.progress.tasks[handle]
        if task.total is None:
            self.progress.update(handle, total=task.completed)
