"""Timestamps in and out of the format.

Records carry `created_at` as microseconds since the epoch (UTC) in flight. Files
and stores hand us ISO-8601 strings, epoch seconds or epoch milliseconds; we
write one canonical ISO form so that a round trip through any archive gives the
same bytes.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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
        return _micros_since_epoch(value if value.tzinfo else value.replace(tzinfo=UTC))
    if isinstance(value, str):
        if len(value) in _CANONICAL_LENGTHS and value[-1] == "Z" and value[10] == "T":
            # The form vex writes: Python 3.11 parses its "Z" itself, no string rewriting needed.
            try:
                return _micros_since_epoch(datetime.fromisoformat(value))
            except ValueError:
                pass  # the general path below gives the error
        text = value.strip()
        if not _looks_like_date(text) and _is_number(text):
            return to_micros(float(text) if "." in text or "e" in text.lower() else int(text))
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
        except ValueError as exc:
            raise TimestampError(f"created_at is not ISO-8601: {value!r}") from exc
        return to_micros(parsed)
    raise TimestampError(f"created_at must be a string or number, got {type(value).__name__}")


_CANONICAL_LENGTHS = (24, 27)
"""`2025-01-15T10:23:00.000Z` and `2025-01-15T10:23:00.000001Z`."""


def _micros_since_epoch(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


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
    head = f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}"  # %Y is not zero-padded before year 1000
    if rest % 1000 == 0:
        return f"{head}.{rest // 1000:03d}Z"
    return f"{head}.{rest:06d}Z"


_MIN_MICROS = -62_135_596_800_000_000  # 0001-01-01
_MAX_MICROS = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999


def format_micros_column(values: pa.Array) -> list[str | None]:
    """`format_micros` for a whole column at once (numpy formats the dates; same text)."""
    micros = values.cast(pa.int64())
    numbers = micros.fill_null(0).to_numpy()
    if len(numbers) and (numbers.min() < _MIN_MICROS or numbers.max() > _MAX_MICROS):
        return [None if value is None else format_micros(value) for value in micros.to_pylist()]
    moments = numbers.astype("datetime64[us]")
    texts = np.where(
        numbers % 1000 == 0,
        np.datetime_as_string(moments, unit="ms"),
        np.datetime_as_string(moments, unit="us"),
    )
    formatted = pc.binary_join_element_wise(pa.array(texts, pa.string()), "Z", "")
    return pc.if_else(micros.is_valid(), formatted, pa.scalar(None, pa.string())).to_pylist()


def now_iso() -> str:
    """The current time in the canonical form, for sidecars."""
    return format_micros(to_micros(datetime.now(UTC)) or 0)
