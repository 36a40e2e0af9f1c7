"""A live progress bar on a terminal: count, records/s and ETA, on stderr."""

from __future__ import annotations

from types import TracebackType
from typing import Any


class TerminalProgress:
    """A rich progress bar, only when asked to be shown (a terminal, no --quiet, no --json)."""

    def __init__(self, label: str, shown: bool) -> None:
        self.label = label
        self.shown = shown
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> TerminalProgress:
        if self.shown:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.description}"),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=None, rate="")
        return self

    def __call__(self, done: int, total: int | None) -> None:
        if self._progress is None or self._task is None:
            return
        task = self._progress.tasks[0]
        elapsed = task.elapsed or 0.0
        rate = f"{done / elapsed:,.0f} rec/s" if elapsed > 0 else ""
        self._progress.update(self._task, completed=done, total=total if total else None, rate=rate)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
