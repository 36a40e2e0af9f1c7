"""Records as flat store metadata and back, for stores whose metadata holds only flat scalar values
(Chroma, Pinecone).

A record's metadata is stored reversibly: nested objects and lists (and integers the store would turn into
floats) as JSON text, their keys listed under `_vex_json_keys`; null values, which such stores refuse or drop,
listed under `_vex_null_keys`; integers that come back as floats (Pinecone keeps numbers as doubles) listed
under `_vex_int_keys`. The record's namespace, model, created_at, score, origin and unknown format keys travel
under `_vex_*` keys too, and the text under `text_key` where the store has no document of its own. A user's key
that starts with `_vex` is stored as `_vex_user:<key>` (`vmig.metadata.escape_reserved`), and a user's key
named like `text_key` under `_vex_user_text`, so no user key is taken for (and dropped as) one of ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

from vmig import metadata as md

NAMESPACE_KEY = "_vex_namespace"
MODEL_KEY = "_vex_model"
CREATED_KEY = "_vex_created_at"
SCORE_KEY = "_vex_score"
SOURCE_KEY = "_vex_source"
EXTRA_KEY = "_vex_extra"
FIELD_KEYS = {
    "namespace": NAMESPACE_KEY,
    "model": MODEL_KEY,
    "created_at": CREATED_KEY,
    "score": SCORE_KEY,
    "source_store": SOURCE_KEY,
    "extra": EXTRA_KEY,
}
JSON_KEYS = "_vex_json_keys"
NULL_KEYS = "_vex_null_keys"
INT_KEYS = "_vex_int_keys"
USER_TEXT_KEY = "_vex_user_text"


@dataclass(frozen=True)
class FlatRule:
    """What a store's metadata holds as it is."""

    int_range: tuple[int, int]
    """Integers it keeps exactly; others travel as JSON text."""
    ints_come_back_as_floats: bool = False
    string_lists: bool = False
    """Lists of strings are kept as they are (Pinecone); other lists always travel as JSON text."""
    text_key: str | None = None
    """The metadata key the record's text goes under (None: the store keeps text as its document)."""
    namespace_native: bool = False
    """The store keeps namespaces itself: the record's namespace is not written into its metadata."""


def flatten(batch: pa.RecordBatch, rule: FlatRule) -> list[dict[str, Any] | None]:
    """Each record's flat metadata, restorable exactly by `restore`."""
    names = ["metadata", "model", "score", "source_store", "extra", "text"]
    if not rule.namespace_native:
        names.append("namespace")
    columns = {name: batch.column(name).to_pylist() for name in names}
    columns["created_at"] = batch.column("created_at").cast(pa.int64()).to_pylist()
    low, high = rule.int_range
    out: list[dict[str, Any] | None] = []
    for i in range(batch.num_rows):
        meta = md.escape_reserved(md.loads(columns["metadata"][i]))
        if rule.text_key is not None and rule.text_key in meta:
            meta = {(USER_TEXT_KEY if key == rule.text_key else key): value for key, value in meta.items()}
        entry: dict[str, Any] = {}
        encoded: list[str] = []
        nulls: list[str] = []
        ints: list[str] = []
        for key, value in meta.items():
            if value is None:
                nulls.append(key)
            elif type(value) is int:
                if low <= value <= high:
                    entry[key] = value
                    ints.append(key)
                else:
                    entry[key] = str(value)  # JSON text of the integer, read back exactly
                    encoded.append(key)
            elif md.is_scalar(value) or (rule.string_lists and _string_list(value)):
                entry[key] = value
            else:
                entry[key] = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
                encoded.append(key)
        for key, names_of in ((JSON_KEYS, encoded), (NULL_KEYS, nulls)):
            if names_of:
                entry[key] = orjson.dumps(names_of).decode()
        if ints and rule.ints_come_back_as_floats:
            entry[INT_KEYS] = orjson.dumps(ints).decode()
        for field, key in FIELD_KEYS.items():
            value = columns[field][i] if field in columns else None
            if value is not None:
                entry[key] = value
        if rule.text_key is not None and columns["text"][i] is not None:
            entry[rule.text_key] = columns["text"][i]
        out.append(entry or None)
    return out


def restore(raw: dict[str, Any] | None, rule: FlatRule) -> tuple[dict[str, Any], str | None]:
    """The record's fields (namespace, model, created_at, score, source_store, extra, text) and its metadata as
    JSON text, from what `flatten` stored (or what another tool wrote: its keys are the metadata)."""
    entry = dict(raw or {})
    encoded = orjson.loads(entry.pop(JSON_KEYS, "[]"))
    nulls = orjson.loads(entry.pop(NULL_KEYS, "[]"))
    ints = orjson.loads(entry.pop(INT_KEYS, "[]"))
    fields = {field: entry.pop(key, None) for field, key in FIELD_KEYS.items()}
    if rule.text_key is not None:
        text = entry.pop(rule.text_key, None)
        fields["text"] = text if isinstance(text, str) else None
        if text is not None and not isinstance(text, str):
            entry[rule.text_key] = text  # another tool's non-text value under that key is its metadata
        if USER_TEXT_KEY in entry:
            entry = {(rule.text_key if key == USER_TEXT_KEY else key): value for key, value in entry.items()}
    for key in ints:
        if isinstance(entry.get(key), float):
            entry[key] = int(entry[key])
    for key in nulls:
        entry[key] = None
    metadata = md.dumps(md.unescape_reserved(md.decode_nested(entry, encoded)))
    return fields, metadata


def _string_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, str) for item in value)
