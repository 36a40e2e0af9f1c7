"""What a flow run shows in the Prefect UI: a progress artifact while it runs, a summary table at the end."""

from __future__ import annotations

from typing import TypeVar
from uuid import UUID

from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.client.schemas.objects import State
from prefect.states import Failed

from engine.summary import RunSummary

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


def final_state(result: R, problems: list[str]) -> R | State:
    """The flow's return: its result, or a Failed state carrying it when something went wrong.

    A run that lost records must not show as Completed in the UI (a scheduled sync that
    fails every night would look healthy); the summary still travels with the state, so
    `engine.commandline.run_tracked` hands it to the command line as in local mode, with its exit code.
    """
    if not problems:
        return result
    return Failed(message="; ".join(problems), data=result)
