"""Ctrl-C and SIGTERM on the command line: stop once, clean up, say what was left.

The first SIGINT or SIGTERM raises KeyboardInterrupt in the main thread, so the run goes
through its cleanup (temporary files removed, workers stopped, checkpoint kept). Signals
that follow while it cleans up are not allowed to cut that cleanup short: the first of them
says so, and only a third makes vex quit at once. Without a handler, SIGTERM killed the
process outright and left a hidden `.partial` of hundreds of MB behind.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

_HANDLED: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)
FORCE_AFTER = 3
"""Signals it takes to quit without cleaning up."""


class _Stop:
    signal: int | None = None
    count = 0
    said = False
    """The run's last line is out: later signals, during the exit, pass in silence."""


def _on_signal(number: int, frame: FrameType | None) -> None:
    _Stop.count += 1
    if _Stop.signal is None:
        _Stop.signal = number
        raise KeyboardInterrupt
    if _Stop.said:
        return
    if _Stop.count == 2:
        print(f"vex: stopping: cleaning up first ({FORCE_AFTER - 2} more to quit at once)", file=sys.stderr)
    elif _Stop.count >= FORCE_AFTER:
        os._exit(128 + number)


@contextmanager
def stop_cleanly(restore: bool = True) -> Iterator[None]:
    """Handle SIGINT and SIGTERM as above for the duration of a command (main thread only). A process that
    only runs the command keeps the handlers (`restore=False`): a Ctrl-C during its exit is then no
    traceback either."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _Stop.signal, _Stop.count, _Stop.said = None, 0, False
    previous: dict[int, Any] = {number: signal.signal(number, _on_signal) for number in _HANDLED}
    try:
        yield
    finally:
        if restore:
            for number, handler in previous.items():
                signal.signal(number, handler)
        elif _Stop.signal is not None:
            # The run is over and said so; Python puts its own handlers back to the default while it shuts
            # down, and a Ctrl-C then would end the process by the signal instead of its exit code.
            for number in _HANDLED:
                signal.signal(number, signal.SIG_IGN)


def stopped_by() -> int:
    """The signal that stopped the run (SIGINT when it was a KeyboardInterrupt from elsewhere); the caller
    prints the run's last line next, and later signals pass in silence."""
    _Stop.said = True
    return _Stop.signal or signal.SIGINT
