"""Reversible flattening of metadata.

The format (and stores such as Pinecone or Chroma) demand flat metadata: every
value a scalar or null. Sources hold nested objects and lists. We keep those as
JSON text and record which keys were encoded, so our own import restores them
exactly while every other reader still sees valid flat metadata.
"""

from __future__ import annotations

from typing import Any

import orjson

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
    """Metadata as the in-flight JSON text (keys keep their order)."""
    if metadata is None:
        return None
    return orjson.dumps(metadata).decode()


def loads(text: str | None) -> dict[str, Any]:
    """In-flight JSON text back to a dict; null metadata reads as empty."""
    if not text:
        return {}
    value = orjson.loads(text)
    return value if isinstance(value, dict) else {}
