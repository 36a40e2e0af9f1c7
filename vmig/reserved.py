"""vex's own record fields kept in a store's metadata under `_vex`, where the store has no place for them.

VEKTOR layout 1 has no column for a record's model, score, origin or unknown format keys; a pgvector table
vex did not create may lack those and the namespace and created_at too, and keep an id under another
spelling. Such fields travel in the metadata JSON under `RESERVED_KEY`, and a user's own keys that start
with `_vex` are escaped (`vmig.metadata.escape_reserved`), so an export tells the two apart and a round
trip loses nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
import pyarrow as pa

from vmig import metadata as md

RESERVED_KEY = "_vex"

KINDS: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "namespace": (str,),
    "model": (str,),
    "created_at": (int,),
    "score": (float, int),
    "source_store": (str,),
    "extra": (dict,),
}
"""Each field vex may keep under `_vex`, and the types it writes there (`created_at` in µs)."""

_MARK = '"' + md.RESERVED_PREFIX
_MARK_BYTES = _MARK.encode()


def field_columns(batch: pa.RecordBatch, names: Iterable[str], store: str) -> dict[str, list[Any]]:
    """The values of `names` as they go under `_vex`, a list per field: None where there is nothing to keep
    (no value, an empty `extra`, the origin that is this store itself)."""
    columns: dict[str, list[Any]] = {}
    for name in names:
        if name == "created_at":
            columns[name] = batch.column(name).cast(pa.int64()).to_pylist()
        elif name == "extra":
            columns[name] = [orjson.loads(text) if text else None for text in batch.column(name).to_pylist()]
        elif name == "source_store":
            columns[name] = [None if origin == store else origin for origin in batch.column(name).to_pylist()]
        else:
            columns[name] = batch.column(name).to_pylist()
    return columns


def pack(metadata: pa.Array, fields: dict[str, list[Any]]) -> list[str | None]:
    """Metadata JSON texts with `fields` under `_vex` and a user's own `_vex...` keys escaped. A row that
    needs neither, nearly all, is passed through as it is, unparsed: a test in C over the column finds those
    that may hold such a key."""
    names = list(fields)
    rows = list(zip(*fields.values(), strict=True)) if fields else [()] * len(metadata)
    texts: list[str | None] = []
    for text, suspect, values in zip(metadata.to_pylist(), md.may_need_escape(metadata).tolist(), rows, strict=True):
        reserved = {name: value for name, value in zip(names, values, strict=True) if value is not None}
        if not reserved and not suspect:
            texts.append(text)
            continue
        meta = md.loads(text)
        if suspect and md.needs_escape(meta):
            meta = md.escape_reserved(meta)
        elif not reserved:
            texts.append(text)  # `"_vex` was in a value, not a key
            continue
        if reserved:
            meta[RESERVED_KEY] = reserved
        texts.append(md.dumps(meta))
    return texts


def may_hold_reserved(text: str | bytes | None) -> bool:
    """Whether metadata text may hold a key starting with `_vex` (a substring test, no parsing)."""
    if isinstance(text, str):
        return _MARK in text
    return isinstance(text, bytes) and _MARK_BYTES in text


def unpack(meta: dict[str, Any], names: Iterable[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Metadata split into the user's (escaped keys restored) and vex's own fields, those of `names` only.

    A `_vex` value is taken as vex's only when it is what vex writes there (an object of those fields, of
    their types): a file another tool wrote may hold anything under that key, which then stays the user's.
    """
    reserved: dict[str, Any] = {}
    if _is_ours(meta.get(RESERVED_KEY), set(names)):
        meta = dict(meta)
        reserved = meta.pop(RESERVED_KEY)
    user = md.unescape_reserved(meta)
    if len(user) != len(meta):
        # `x` beside `_vex_user:x`: vex never writes that (it escapes only `_vex...` keys), so this row comes
        # from another writer and its keys are kept as they are rather than one replacing the other.
        return meta, reserved
    return user, reserved


def _is_ours(value: Any, names: set[str]) -> bool:
    return (
        type(value) is dict
        and bool(value)
        and all(key in names and isinstance(item, KINDS[key]) and type(item) is not bool for key, item in value.items())
    )
