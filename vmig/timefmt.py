"""Timestamps in and out of the format.

Records carry `created_at` as microseconds since the epoch (UTC) in flight. Files
and stores hand us ISO-8601 strings, epoch seconds or epoch milliseconds; we
write one canonical ISO form so that a round trip through any archive gives the
same bytes.
"""

from __future__ import annotations

from datetime import UTC, datetime

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Epoch numbers above this are milliseconds (year 2286 in seconds), the
# heuristic other vex versions rely on too.
_MS_THRESHOLD = 10_000_000_000
_US_THRESHOLD = 10_000_000_000_000


class TimestampError(ValueError):
    """A created_at value that is neither ISO-8601 nor an epoch number."""


def to_micros(value: object) -> int | None:
    """Convert an ISO-8601 string, epoch seconds/ms/us or datetime to epoch µs."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TimestampError(f"created_at must be a time, got {value!r}")
    if isinstance(value, (int, float)):
        number = float(value)
        if number != number or number in (float("inf"), float("-inf")):
            raise TimestampError(f"created_at is not finite: {value!r}")
        magnitude = abs(number)
        if magnitude >= _US_THRESHOLD:
            return int(value)
        if magnitude >= _MS_THRESHOLD:
            return round(number * 1000)
        return round(number * 1_000_000)
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        delta = moment - _EPOCH
        return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(value, str):
        text = value.strip()
        if not _looks_like_date(text) and _is_number(text):
            return to_micros(float(text) if "." in text or "e" in text.lower() else int(text))
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
        except ValueError as exc:
            raise TimestampError(f"created_at is not ISO-8601: {value!r}") from exc
        return to_micros(parsed)
    raise TimestampError(f"created_at must be a string or number, got {type(value).__name__}")


def _looks_like_date(text: str) -> bool:
    """ISO dates have a dash after the year: skip the (slow, failing) number parse for them."""
    return len(text) > 4 and text[4] == "-"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def format_micros(micros: int) -> str:
    """Canonical ISO form: milliseconds when exact (as the seed writes), else µs."""
    seconds, rest = divmod(micros, 1_000_000)
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    head = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if rest % 1000 == 0:
        return f"{head}.{rest // 1000:03d}Z"
    return f"{head}.{rest:06d}Z"


def now_iso() -> str:
    """The current time in the canonical form, for sidecars."""
    return format_micros(to_micros(datetime.now(UTC)) or 0)
