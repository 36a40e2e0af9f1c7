"""Reversible flattening of metadata.

The format (and stores such as Pinecone or Chroma) demand flat metadata: every
value a scalar or null. Sources hold nested objects and lists. We keep those as
JSON text and record which keys were encoded, so our own import restores them
exactly while every other reader still sees valid flat metadata.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

JSON_KEYS_FIELD = "metadata_json_keys"
"""Top-level record key listing metadata keys whose values are JSON text."""

Scalar = str | int | float | bool | None


def is_scalar(value: object) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def encode_nested(metadata: dict[str, Any]) -> tuple[dict[str, Scalar], list[str]]:
    """Flatten: nested values become JSON text; returns the flat dict and the keys encoded."""
    flat: dict[str, Scalar] = {}
    encoded: list[str] = []
    for key, value in metadata.items():
        if is_scalar(value):
            flat[key] = value
        else:
            flat[key] = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
            encoded.append(key)
    return flat, encoded


def decode_nested(flat: dict[str, Any], encoded: list[str] | None) -> dict[str, Any]:
    """Undo `encode_nested`; keys not listed stay exactly as they are."""
    if not encoded:
        return flat
    restored = dict(flat)
    for key in encoded:
        value = restored.get(key)
        if isinstance(value, str):
            restored[key] = orjson.loads(value)
    return restored


def dumps(metadata: dict[str, Any] | None) -> str | None:
    """Metadata as the in-flight JSON text (keys keep their order); `WideIntegerError` for an integer
    no 64-bit type holds (orjson refuses it, and a float would change it)."""
    if metadata is None:
        return None
    try:
        return orjson.dumps(metadata).decode()
    except orjson.JSONEncodeError:
        number = wide_integer(metadata)
        if number is None:
            raise
        raise WideIntegerError(number) from None


_SMALLEST, _BEYOND = -(2**63), 2**64
"""orjson reads and writes the integers in this range (int64 and uint64) exactly; it reads a longer one
as the nearest float, silently, and refuses to write one."""


class WideIntegerError(ValueError):
    """A value holds an integer beyond 64 bits. vex's JSON handling would change its digits, so the record
    is refused (a reject saying which number) instead of being carried with another value."""

    def __init__(self, number: int) -> None:
        super().__init__(f"holds the integer {number}, beyond 64 bits, which vex would change: store it as a string")
        self.number = number


def may_hold_wide_integer(value: Any) -> bool:
    """Whether orjson's reading of `value` may have turned an integer beyond 64 bits into a float: it holds a
    float out of that range. Cheap, for every record; `exact_wide_integer` then tells for sure."""
    for item in value.values() if type(value) is dict else value:
        kind = type(item)
        if kind is float:
            if not _SMALLEST < item < _BEYOND:  # -2**63 - 1 reads as the float -2**63
                return True
        elif (kind is dict or kind is list) and may_hold_wide_integer(item):
            return True
    return False


def wide_integer(value: Any) -> int | None:
    """The first integer beyond 64 bits in a value read exactly (Python's own json, a store's client)."""
    if type(value) is int:
        return value if not _SMALLEST <= value < _BEYOND else None
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for item in items:
        found = wide_integer(item)
        if found is not None:
            return found
    return None


def exact_json(text: str | bytes) -> Any:
    """JSON text read by Python's json, which keeps every digit of an integer (orjson keeps 64 bits);
    None where it is not JSON. Slow: for suspects only."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        return json.loads(text.lstrip("\ufeff"))
    except ValueError:
        return None


def exact_wide_integer(text: str | bytes) -> int | None:
    """`wide_integer` of JSON text, read by `exact_json`."""
    return wide_integer(exact_json(text))


def loads(text: str | None) -> dict[str, Any]:
    """In-flight JSON text back to a dict; null metadata reads as empty."""
    if not text:
        return {}
    value = orjson.loads(text)
    return value if isinstance(value, dict) else {}


def wide_integer_rows(texts: pa.Array) -> dict[int, int]:
    """The rows of a column of JSON texts that hold an integer beyond 64 bits, each with the integer: for
    JSON a store hands over as text, which orjson would read with that integer turned into a float. A run
    of 20 digits is looked for in C over the whole column; Python's json confirms the few rows found."""
    if not len(texts):
        return {}
    hits = pc.match_substring_regex(texts, r"[0-9]{20}").fill_null(False)
    found: dict[int, int] = {}
    for row in np.flatnonzero(hits.to_numpy(zero_copy_only=False)):
        number = exact_wide_integer(texts[int(row)].as_py())
        if number is not None:
            found[int(row)] = number
    return found


RESERVED_PREFIX = "_vex"
"""Stores that keep vex's own fields inside a record's metadata name them with this prefix."""
ESCAPE_PREFIX = "_vex_user:"
"""A user's key that starts with `RESERVED_PREFIX` is stored behind this prefix, so no user key is ever
mistaken for (and dropped as) one of vex's own; the escape itself starts with the reserved prefix, so a
user key that looks like an escaped one is escaped again and the mapping stays one-to-one."""


def needs_escape(metadata: dict[str, Any]) -> bool:
    return any(key.startswith(RESERVED_PREFIX) for key in metadata)


def escape_reserved(metadata: dict[str, Any]) -> dict[str, Any]:
    """User keys that look like vex's own (`_vex...`) put behind `ESCAPE_PREFIX`; the order is kept."""
    if not needs_escape(metadata):
        return metadata
    prefix = ESCAPE_PREFIX
    return {(prefix + key if key.startswith(RESERVED_PREFIX) else key): value for key, value in metadata.items()}


def unescape_reserved(metadata: dict[str, Any]) -> dict[str, Any]:
    """Undo `escape_reserved`, after a store's own `_vex...` keys were taken out."""
    if not needs_escape(metadata):
        return metadata
    cut = len(ESCAPE_PREFIX)
    return {(key[cut:] if _escaped(key) else key): value for key, value in metadata.items()}


def _escaped(key: str) -> bool:
    """Only what `escape_reserved` makes: the prefix and then a key that starts with `_vex`. A key another
    tool wrote as `_vex_user:x` is left as it is."""
    return key.startswith(ESCAPE_PREFIX) and key.startswith(RESERVED_PREFIX, len(ESCAPE_PREFIX))


def may_need_escape(texts: pa.Array) -> np.ndarray:
    """Rows of a column of metadata JSON texts that may hold a key starting with `_vex` (a cheap test in C:
    the text holds `"_vex`); only those need parsing to escape or unescape their keys."""
    if not len(texts):
        return np.zeros(0, dtype=bool)
    hits = pc.match_substring(texts, '"' + RESERVED_PREFIX).fill_null(False)
    return np.asarray(hits.to_numpy(zero_copy_only=False), dtype=bool)
