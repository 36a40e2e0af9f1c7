"""Ctrl-C and SIGTERM: a run ends through its cleanup, and the few steps that must not be cut in half are not.

Making an export visible is two renames, its sidecar then its data file; a signal between
them would leave one without the other. `held_signals` makes SIGINT and SIGTERM wait until
such a block is done, then acts on them as it would have.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

_HELD: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def held_signals() -> Iterator[None]:
    """SIGINT and SIGTERM arriving during the block take effect right after it (from the main thread, where
    Python runs signal handlers; elsewhere the block just runs)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[tuple[int, FrameType | None]] = []
    previous: dict[int, Any] = {number: signal.getsignal(number) for number in _HELD}

    def hold(number: int, frame: FrameType | None) -> None:
        caught.append((number, frame))

    for number in _HELD:
        signal.signal(number, hold)
    try:
        yield
    finally:
        for held, handler in previous.items():
            signal.signal(held, handler)
        if caught:
            first, frame = caught[0]
            handler = previous[first]
            if callable(handler):
                handler(first, frame)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(first)


@contextmanager
def interrupts_ignored_by_new_processes() -> Iterator[None]:
    """Processes started in the block begin with SIGINT ignored (an ignored signal stays ignored across exec).

    This process ignores SIGINT meanwhile too, with it blocked in this thread: on Linux a blocked signal
    stays pending although ignored, and reaches the handler put back at the end. (A Ctrl-C that another
    thread of this process takes during these few milliseconds is lost.) Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def ignore_interrupts() -> None:
    """In a worker process: Ctrl-C reaches every process of the terminal's group, but only the run itself
    should act on it (and stop its workers), so a worker neither prints a traceback nor stops half-way."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
