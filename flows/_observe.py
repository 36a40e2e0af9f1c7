"""What a flow run shows in the Prefect UI: a progress artifact while it runs, a summary table at the end."""

from __future__ import annotations

import contextvars
import threading
from typing import TypeVar
from uuid import UUID

from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.client.schemas.objects import State
from prefect.logging import get_run_logger
from prefect.states import Failed

from engine.summary import RunEndedBadly, RunSummary
from engine.verify import VerifyReport

R = TypeVar("R")

_UPDATE_EVERY = 2.0
"""Percent of progress between artifact updates: each update is an API call."""
_CLOSE_WAIT = 10.0
"""Seconds the end of a run waits for the last progress update."""


class ProgressArtifact:
    """A progress bar in the UI, updated at most every few percent, by a thread of its own.

    Each update is an API call of 40 ms or so (a new client each time): made by the run itself they were 0.4 s of
    a 100,000-record export. The thread sends the latest figure when it is free (figures that arrived while it
    was sending are replaced by the newer one), and `close` waits for the last. Used as a context manager
    around the job."""

    def __init__(self, action: str) -> None:
        self.key = f"vex-{action}-progress"
        self.artifact_id: UUID | None = None
        self.last = -_UPDATE_EVERY
        self._latest: tuple[float, str] | None = None
        self._closing = False
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ProgressArtifact:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, done: int, total: int | None) -> None:
        if not total:
            return
        percent = min(100.0, 100.0 * done / total)
        if percent - self.last < _UPDATE_EVERY and percent < 100.0:
            return
        self.last = percent
        with self._lock:
            self._latest = (percent, f"{done:,} of {total:,} records")
        if self._thread is None:
            # The run's context (its flow run id) goes with the thread, as the artifact functions read it there.
            self._thread = threading.Thread(
                target=contextvars.copy_context().run, args=(self._send_when_woken,), daemon=True
            )
            self._thread.start()
        self._wake.set()

    def close(self) -> None:
        """Wait until the latest figure is sent (a UI that is unreachable does not hold the run up longer)."""
        self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=_CLOSE_WAIT)

    def _send_when_woken(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                latest, self._latest = self._latest, None
            if latest is not None:
                try:
                    self._send(*latest)
                except Exception as exc:  # noqa: BLE001 - a progress bar must not end the run
                    get_run_logger().warning(f"the progress artifact could not be updated: {exc}")
            if self._closing and self._latest is None:
                return

    def _send(self, percent: float, description: str) -> None:
        if self.artifact_id is None:
            created = create_progress_artifact(percent, key=self.key, description=description)
            self.artifact_id = created if isinstance(created, UUID) else None
        else:
            update_progress_artifact(self.artifact_id, percent, description=description)


def publish_summary(summary: RunSummary) -> None:
    """The summary block as a table artifact (no secrets: labels never carry them)."""
    rows = [{"measure": label.strip(), "value": value} for label, value in summary.rows()]
    rows.append({"measure": "exit code", "value": str(summary.exit_code())})
    create_table_artifact(
        table=rows,
        key=f"vex-{summary.action}-summary",
        description=f"{summary.action}: {summary.source} -> {summary.target}",
    )


def publish_verify(report: VerifyReport) -> None:
    """The comparison as a table artifact and a log line, so a deployment run's verify is seen where the person
    looks: the counts, the result, and the first ids of each difference."""
    rows = [{"measure": label, "value": value} for label, value in report.rows()]
    rows.append({"measure": "result", "value": "match" if report.ok else "MISMATCH"})
    for kind, ids in report.first_ids().items():
        if ids:
            rows.append({"measure": f"first {kind} ids", "value": ", ".join(ids)})
    create_table_artifact(
        table=rows, key="vex-verify-report", description=f"verify: {report.source} -> {report.target}"
    )
    outcome = "the stores match" if report.ok else "the stores differ"
    get_run_logger().info(f"verify: {report.matched} matched, {report.difference()}: {outcome}")


def final_state(result: R, problems: list[str]) -> R | State:
    """The flow's return: its result, or a Failed state whose message gives the counts when something went wrong.

    A run that lost records must not show as Completed in the UI (a scheduled sync that fails every night
    would look healthy). The result travels in the state's exception (`RunEndedBadly`), so
    `engine.commandline.run_tracked` hands it to the command line as in local mode, with its exit code."""
    if not problems:
        return result
    message = "; ".join(problems)
    return Failed(message=message, data=RunEndedBadly(message, result))
