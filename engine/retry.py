"""One retry policy for both run modes: 3 attempts, exponential backoff with jitter, transient errors only."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from vmig.backoff import base_delay
from vmig.errors import TransientError

ATTEMPTS = 3
JITTER = 0.5

T = TypeVar("T")


def with_retries(fn: Callable[..., T]) -> Callable[..., T]:
    """Wrap a step so that TransientError is retried; anything else fails at once."""
    delay = base_delay()
    return retry(
        retry=retry_if_exception_type(TransientError),
        stop=stop_after_attempt(ATTEMPTS),
        wait=wait_exponential_jitter(multiplier=delay, max=delay * 8, jitter=delay * JITTER),
        reraise=True,
    )(fn)
