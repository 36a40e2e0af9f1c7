"""What a run leaves in place if it is stopped now, for the one line the CLI prints on Ctrl-C or SIGTERM.

"Nothing partial was left in place" was printed even after an export's data file had been
renamed into place without its sidecar; the jobs now say, step by step, what a stop at that
moment leaves, and the CLI prints exactly that.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_left = "nothing was written"


def left_in_place(text: str) -> None:
    """What stopping the run now would leave (replaces the previous state)."""
    global _left
    with _lock:
        _left = text


def what_is_left() -> str:
    with _lock:
        return _left
