"""The retry policy of every task that touches a store: transient errors only."""

from __future__ import annotations

from typing import Any

from prefect.tasks import exponential_backoff

from engine.retry import ATTEMPTS, JITTER, base_delay
from vmig.errors import TransientError


def only_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a failed run only when it raised TransientError; permanent errors fail fast."""
    try:
        state.result()
    except TransientError:
        return True
    except BaseException:  # noqa: BLE001 - any other failure is permanent
        return False
    return False


RETRY_OPTIONS: dict[str, Any] = {
    "retries": ATTEMPTS - 1,
    "retry_delay_seconds": exponential_backoff(backoff_factor=base_delay()),
    "retry_jitter_factor": JITTER,
    "retry_condition_fn": only_transient,
}
