"""Local mode: the pipeline's steps called directly, without a Prefect API.

A 1,000-record job then costs well under a second instead of the seconds a Prefect
API needs to start; `--prefect` (or PREFECT_API_URL) runs the same steps as task runs
(`tasks/`). Nothing here imports Prefect.
"""

from __future__ import annotations

from typing import Any, ParamSpec, TypeVar

from engine.retry import with_retries
from engine.steps import Step

P = ParamSpec("P")
R = TypeVar("R")


class LocalRunner:
    """Calls each step's function, with the retry policy where the step declares it."""

    def run(self, step: Step[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        if step.retried:
            return with_retries(step.fn)(*args, **kwargs)
        return step.fn(*args, **kwargs)

    def run_all(self, step: Step[..., R], calls: list[tuple[Any, ...]]) -> list[R]:
        """One after another: local mode has no workers."""
        return [self.run(step, *args) for args in calls]
