"""The one knob for every wait between retries, vex's own and the store clients' it configures."""

from __future__ import annotations

import os


def base_delay() -> float:
    """Seconds before the first retry (1 s); tests shorten every wait at once with VEX_RETRY_DELAY."""
    return float(os.environ.get("VEX_RETRY_DELAY", "1.0"))
