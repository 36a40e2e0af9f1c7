"""What a person sees: a live progress bar on a terminal, then the seed's summary block."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any, TextIO

from engine.summary import RunSummary

_WIDTH = 44


class TerminalProgress:
    """A rich progress bar (count, records/s, ETA) on stderr, only when stderr is a terminal."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> TerminalProgress:
        if self.enabled:
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


def summary_block(summary: RunSummary) -> str:
    """The seed README's box, extended with skips by reason, failures and rate."""
    title = f"┌─ {summary.target} summary "
    lines = [title + "─" * max(4, _WIDTH - len(title))]
    width = max(len(label) for label, _ in summary.rows())
    lines += [f"│ {label:<{width}} : {value}" for label, value in summary.rows()]
    for record_id, reason in summary.failed_sample:
        lines.append(f"│ failed {record_id}: {reason}")
    if summary.rejects_path is not None:
        lines.append(f"│ rejects file  : {summary.rejects_path}")
    if summary.output_checksum:
        lines.append(f"│ checksum      : {summary.output_checksum}")
    lines.append("└" + "─" * (_WIDTH - 1))
    return "\n".join(lines)


def print_summary(summary: RunSummary, stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    for warning in summary.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for line, reason in summary.reject_sample[:5]:
        where = f"line {line}" if line is not None else "record"
        print(f"damaged: {where}: {reason}", file=sys.stderr)
    print(summary_block(summary), file=out)
