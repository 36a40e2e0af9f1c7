"""The pipeline's steps as Prefect tasks, and the runner that calls them.

Each task is a step of `engine.steps` as it is declared there: its function, and the
retry policy of `engine.retry` where the step is retried (transient errors only).
"""

from __future__ import annotations

from typing import Any, ParamSpec, TypeVar

from prefect import Task, task
from prefect.cache_policies import NONE
from prefect.tasks import exponential_backoff

from engine import steps
from engine.retry import ATTEMPTS, JITTER
from engine.steps import Step
from vmig.backoff import base_delay
from vmig.errors import TransientError

P = ParamSpec("P")
R = TypeVar("R")


def only_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a failed run only when it raised TransientError; permanent errors fail fast."""
    try:
        state.result()
    except TransientError:
        return True
    except BaseException:  # noqa: BLE001 - any other failure is permanent
        return False
    return False


def as_task(step: Step[P, R]) -> Task[P, R]:
    """A step as a Prefect task. Steps pass connectors and batches, not values to cache: no result caching."""
    retry: dict[str, Any] = {}
    if step.retried:
        retry = {
            "retries": ATTEMPTS - 1,
            "retry_delay_seconds": exponential_backoff(backoff_factor=base_delay()),
            "retry_jitter_factor": JITTER,
            "retry_condition_fn": only_transient,
        }
    return task(name=step.name, cache_policy=NONE, **retry)(step.fn)


TASKS: dict[str, Task[Any, Any]] = {step.name: as_task(step) for step in steps.STEPS}
"""extract, validate, select-changed, reembed, filter-dimensions, ensure-target, load, record-synced,
mark-present, delete, transfer-part, finish, write-sidecar, record-import, verify: one task run each time a
flow calls the step (a chunk of thousands of records, not a record)."""


class PrefectRunner:
    """Runs each step as a tracked, retried Prefect task run."""

    def run(self, step: Step[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        return TASKS[step.name](*args, **kwargs)  # type: ignore[return-value]

    def run_all(self, step: Step[..., R], calls: list[tuple[Any, ...]]) -> list[R]:
        """Submitted to the flow's task runner at once (Dask workers with `--workers`), results in order."""
        futures = [TASKS[step.name].submit(*args) for args in calls]
        outcomes = [future.result(raise_on_failure=False) for future in futures]
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return outcomes
