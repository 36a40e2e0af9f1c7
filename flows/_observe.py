"""What a flow run shows in the Prefect UI: a progress artifact while it runs, a summary table at the end."""

from __future__ import annotations

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


class ProgressArtifact:
    """A progress bar in the UI, updated at most every few percent."""

    def __init__(self, action: str) -> None:
        self.key = f"vex-{action}-progress"
        self.artifact_id: UUID | None = None
        self.last = -_UPDATE_EVERY

    def __call__(self, done: int, total: int | None) -> None:
        if not total:
            return
        percent = min(100.0, 100.0 * done / total)
        if percent - self.last < _UPDATE_EVERY and percent < 100.0:
            return
        self.last = percent
        description = f"{done:,} of {total:,} records"
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
