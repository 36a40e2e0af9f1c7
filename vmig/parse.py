"""A line of a data file to the fields of a record: tolerant of variants, strict about damage.

Variants other vex versions write are read without loss: `created_at` as epoch
seconds or milliseconds, a `source` key, array- or object-valued metadata,
`metadata: null`, extra top-level keys (kept in the `extra` column). A damaged
line raises `LineRejected` saying why; `rows_to_batch` turns the rows of the
good lines into a batch, refusing those whose vector is not finite float32.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from vmig import metadata as md
from vmig.batch import build_batch
from vmig.rejects import Reject
from vmig.schema import FLOAT32_OVERFLOW, KNOWN_KEYS
from vmig.sparse import KEY as SPARSE_KEY
from vmig.sparse import sparse_problem
from vmig.timefmt import TimestampError, to_micros

_NUMBER_TYPES = {int, float}


class LineRejected(ValueError):
    """One line of the file cannot be a record; the message says why."""


def _text(record: dict[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "text":
        return str(value)
    raise LineRejected(f"'{key}' must be a string, got {type(value).__name__}")


def _strict_vector_check(value: list[Any] | np.ndarray) -> None:
    """The exact reason a vector is not a finite float32 array (slow path, per row)."""
    if isinstance(value, np.ndarray):
        if not np.isfinite(value).all() or np.abs(value).max() >= FLOAT32_OVERFLOW:
            raise LineRejected("'vector' holds a value that is not a finite float32")
        return
    if not set(map(type, value)) <= _NUMBER_TYPES:
        raise LineRejected("'vector' holds a value that is not a number")
    peak = max(abs(min(value)), abs(max(value)))
    if math.isnan(peak) or peak >= FLOAT32_OVERFLOW:
        raise LineRejected("'vector' holds a value that is not a finite float32")


def _vector(record: dict[str, Any], raw: bytes) -> list[float] | np.ndarray | None:
    """Shape checks here; element checks happen for the whole batch in numpy."""
    value = record.get("vector")
    if value is None or isinstance(value, np.ndarray):
        return value  # an ndarray comes from the fast path, which checked its elements already
    if not isinstance(value, list):
        raise LineRejected(f"'vector' must be an array of numbers, got {type(value).__name__}")
    if not value:
        raise LineRejected("'vector' is empty")
    if b"true" in raw or b"false" in raw:
        # numpy would read a JSON boolean as 1.0/0.0: check this line element by element
        _strict_vector_check(value)
    return value


def parse_record(raw: bytes) -> dict[str, Any]:
    """One line to the fields of our model, or `LineRejected` saying what is wrong."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        reason = "not valid UTF-8" if "utf-8" in str(exc).lower() else f"not valid JSON ({exc})"
        raise LineRejected(reason) from None
    if not isinstance(record, dict):
        raise LineRejected(f"line is JSON {type(record).__name__}, not an object")
    return _record_fields(record, raw)


_VECTOR_KEY = b'"vector"'
_PLACEHOLDER = b'"\\u0000vex:vector"'
"""Stands in for the vector array while the rest of a line is parsed (a string no real line holds)."""
_PLACEHOLDER_VALUE = orjson.loads(_PLACEHOLDER)


class FastParser:
    """The vector of a line parsed by simdjson, the rest by orjson; `parse_record` when unsure.

    Parsing the numbers of a vector is most of the cost of reading a data file. Here the
    vector's array is cut out of the line by a byte search, its numbers read by simdjson
    into one float64 buffer (no Python object per number, about four times faster than
    orjson), and the small rest of the line parsed by orjson with a placeholder where
    the array was. The placeholder coming back as the record's `vector` proves the cut
    was the record's vector (not a nested key, not the first of duplicate keys). Any
    doubt (no such array, a `[` inside it, a value simdjson refuses) sends the line to
    `parse_record`, so both paths give the same verdict.
    """

    def __init__(self) -> None:
        try:
            import simdjson
        except ImportError:  # pragma: no cover - a dependency; without it every line takes the orjson path
            self._parser: Any = None
        else:
            self._parser = simdjson.Parser()

    def row(self, raw: bytes) -> tuple[Any, ...]:
        """The line's fields in `_BATCH_FIELDS` order: what a batch is built from.

        The line vex itself writes (its own keys, plain values) is checked in one short
        pass; anything else goes through `_record_fields`, which says exactly what is wrong.
        """
        record = self._fast_record(raw) if self._parser is not None else None
        if record is None:
            return _row_fields(parse_record(raw))
        return _plain_row(record) or _row_fields(_record_fields(record, raw))

    def _fast_record(self, raw: bytes) -> dict[str, Any] | None:
        key = raw.find(_VECTOR_KEY)
        start = raw.find(b"[", key + len(_VECTOR_KEY)) if key >= 0 else -1
        if start < 0 or raw[key + len(_VECTOR_KEY) : start].strip() != b":":
            return None
        end = raw.find(b"]", start)
        if end < 0 or raw.find(b"[", start + 1, end) >= 0:
            return None  # unterminated, or a nested array (simdjson would flatten it)
        try:
            record = orjson.loads(b"".join((raw[:start], _PLACEHOLDER, raw[end + 1 :])))
        except orjson.JSONDecodeError:
            return None
        if not isinstance(record, dict) or record.get("vector") != _PLACEHOLDER_VALUE:
            return None
        values = self._numbers(raw[start : end + 1])
        if values is None or not values.size:
            return None
        record["vector"] = values
        return record

    def _numbers(self, array: bytes) -> np.ndarray | None:
        """A flat JSON array of numbers as float64, or None if simdjson refuses it."""
        proxy = None
        try:
            proxy = self._parser.parse(array)
            return np.frombuffer(proxy.as_buffer(of_type="d"), dtype=np.float64)
        except (ValueError, TypeError, AttributeError, RuntimeError):
            import simdjson

            self._parser = simdjson.Parser()  # a failed parse may leave the parser unusable
            return None
        finally:
            del proxy


_NOT_EXTRA = KNOWN_KEYS | {"source"}


def _record_fields(record: dict[str, Any], raw: bytes) -> dict[str, Any]:
    raw_id = record.get("id")
    if type(raw_id) is float and md.may_hold_wide_integer([raw_id]):
        raw_id = _exact(raw).get("id", raw_id)  # a 128-bit numeric id keeps its digits
    if raw_id is None or isinstance(raw_id, (bool, dict, list, float)):
        raise LineRejected("missing 'id'" if raw_id is None else "'id' must be a string or integer")
    record_id = str(raw_id)
    if not record_id:
        raise LineRejected("'id' is empty")
    vector = _vector(record, raw)
    text = _text(record, "text")
    sparse = record.get(SPARSE_KEY)
    if sparse is not None and (problem := sparse_problem(sparse)) is not None:
        raise LineRejected(problem)
    if vector is None and text is None and sparse is None:
        raise LineRejected("record has neither 'text' nor 'vector'")
    dims = record.get("dims")
    if dims is not None and vector is not None and (isinstance(dims, bool) or dims != len(vector)):
        raise LineRejected(f"'dims' is {dims} but the vector has {len(vector)} values")
    meta = record.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise LineRejected(f"'metadata' must be an object, got {type(meta).__name__}")
    encoded = record.get(md.JSON_KEYS_FIELD)
    if encoded is not None:
        if not isinstance(encoded, list) or not all(isinstance(k, str) for k in encoded):
            raise LineRejected(f"'{md.JSON_KEYS_FIELD}' must be a list of keys")
        try:
            meta = md.decode_nested(meta or {}, encoded)
        except orjson.JSONDecodeError:
            raise LineRejected(f"a metadata value listed in '{md.JSON_KEYS_FIELD}' is not JSON") from None
    try:
        created = to_micros(record.get("created_at"))
    except TimestampError as exc:
        raise LineRejected(str(exc)) from None
    score = record.get("score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
        raise LineRejected("'score' must be a number")
    source = _text(record, "source_store")
    if source is None and isinstance(record.get("source"), str):
        source = record["source"]
    # The set difference is a quick test; the comprehension keeps the line's key order.
    extra = {k: v for k, v in record.items() if k not in _NOT_EXTRA} if record.keys() - _NOT_EXTRA else {}
    if "source" in record and not isinstance(record["source"], str):
        extra["source"] = record["source"]
    if (meta and md.may_hold_wide_integer(meta)) or (extra and md.may_hold_wide_integer(extra)):
        _refuse_wide_integers(raw)
    return {
        "id": record_id,
        "vector": vector,
        "text": text,
        "model": _text(record, "model"),
        "namespace": _text(record, "namespace"),
        "metadata": None if meta is None else md.dumps(meta),
        "created_at": created,
        "score": None if score is None else float(score),
        "source_store": source,
        "extra": orjson.dumps(extra).decode() if extra else None,
        "sparse_vector": sparse,
    }


def _exact(raw: bytes) -> dict[str, Any]:
    """The line's record with every digit of its integers (`md.exact_json`), or {}."""
    record = md.exact_json(raw)
    return record if isinstance(record, dict) else {}


def _refuse_wide_integers(raw: bytes) -> None:
    """`LineRejected` if the line's metadata or extra keys hold an integer beyond 64 bits: orjson read it as
    the nearest float, and carrying that would change the number without a word."""
    record = _exact(raw)
    meta, encoded = record.get("metadata"), record.get(md.JSON_KEYS_FIELD)
    for key, value in meta.items() if isinstance(meta, dict) else ():
        nested = isinstance(encoded, list) and key in encoded and isinstance(value, str)
        number = md.exact_wide_integer(value) if nested else md.wide_integer(value)
        if number is not None:
            raise LineRejected(f"metadata '{key}' {md.WideIntegerError(number)}")
    for key, value in record.items():
        number = None if key in _NOT_EXTRA else md.wide_integer(value)
        if number is not None:
            raise LineRejected(f"'{key}' {md.WideIntegerError(number)}")


_PLAIN_KEYS = KNOWN_KEYS - {md.JSON_KEYS_FIELD, SPARSE_KEY}
"""The keys of a line whose fields need no decoding: what vex writes for flat metadata."""


def _plain_row(record: dict[str, Any]) -> tuple[Any, ...] | None:
    """`_record_fields` for the common line, or None when it needs the full checks.

    Only strings (or null) where strings go, an object or null as metadata, a number
    or null as score, an ISO `created_at`, and a vector from the fast path: for such a
    line both functions give the same fields, this one with a third of the work.
    """
    if not record.keys() <= _PLAIN_KEYS:
        return None
    get = record.get
    record_id, text, model, namespace = get("id"), get("text"), get("model"), get("namespace")
    source, meta, score, dims, created = (
        get("source_store"), get("metadata"), get("score"), get("dims"), get("created_at")
    )  # fmt: skip
    vector = record["vector"]
    if (
        type(record_id) is not str
        or not record_id
        or (text is not None and type(text) is not str)
        or (model is not None and type(model) is not str)
        or (namespace is not None and type(namespace) is not str)
        or (source is not None and type(source) is not str)
        or (meta is not None and (type(meta) is not dict or (meta and md.may_hold_wide_integer(meta))))
        or (score is not None and type(score) is not float and type(score) is not int)
        or (dims is not None and (type(dims) is not int or dims != len(vector)))
        or (created is not None and type(created) is not str)
    ):
        return None
    try:
        micros = to_micros(created)
    except TimestampError:
        return None
    return (
        record_id,
        vector,
        text,
        model,
        namespace,
        None if meta is None else orjson.dumps(meta).decode(),
        micros,
        None if score is None else float(score),
        source,
        None,
        None,
    )


def _vector_matrix(vectors: list[Any]) -> tuple[Any, dict[int, str]]:
    """Vectors of a batch as one float32 matrix when uniform, and the rows that are not finite float32."""
    present = [i for i, v in enumerate(vectors) if v is not None]
    if not present:
        return vectors, {}
    width = len(vectors[present[0]])
    matrix = None
    if all(len(vectors[i]) == width for i in present):
        try:
            # No dtype here: numpy would turn the string "0.2" into a float; a string makes a non-numeric array.
            rows = [vectors[i] for i in present]
            if all(isinstance(row, np.ndarray) for row in rows):
                # Row by row into float32: no float64 copy of the whole batch.
                matrix = np.empty((len(rows), width), dtype=np.float32)
                with np.errstate(over="ignore", invalid="ignore"):
                    for index, row in enumerate(rows):
                        matrix[index] = row
            else:
                wide = np.array(rows)
                if wide.dtype.kind in "fi":
                    with np.errstate(over="ignore", invalid="ignore"):
                        matrix = wide.astype(np.float32)
        except (ValueError, TypeError):
            matrix = None
    if matrix is None or matrix.ndim != 2:
        bad: dict[int, str] = {}
        for i in present:
            try:
                _strict_vector_check(vectors[i])
            except LineRejected as exc:
                bad[i] = str(exc)
        return vectors, bad
    finite = np.isfinite(matrix).all(axis=1)
    bad = {present[j]: "'vector' holds a value that is not a finite float32" for j in np.flatnonzero(~finite)}
    if len(present) == len(vectors) and not bad:
        return matrix, bad
    return vectors, bad


_BATCH_FIELDS = (
    "id", "vector", "text", "model", "namespace", "metadata", "created_at", "score", "source_store", "extra",
    "sparse_vector",
)  # fmt: skip
_row_fields = operator.itemgetter(*_BATCH_FIELDS)
_VECTOR_FIELD = _BATCH_FIELDS.index("vector")


def rows_to_batch(
    rows: list[tuple[Any, ...]], lines: list[int], raws: list[bytes]
) -> tuple[pa.RecordBatch, list[Reject], list[int]]:
    """Rows of `FastParser.row` (from the lines numbered `lines`, read as `raws`) as one batch.

    Returns the batch, a `Reject` for each row whose vector is not finite float32, and the
    line number of each row kept.
    """
    vectors, bad = _vector_matrix([row[_VECTOR_FIELD] for row in rows])
    rejects = [Reject(lines[i], reason, raws[i].rstrip(b"\r\n")) for i, reason in sorted(bad.items())]
    if bad:
        rows = [row for i, row in enumerate(rows) if i not in bad]
        lines = [line for i, line in enumerate(lines) if i not in bad]
        vectors = [row[_VECTOR_FIELD] for row in rows]
    if not rows:
        return build_batch([]), rejects, lines
    # One C-level pass: rows to columns.
    columns = dict(zip(_BATCH_FIELDS, zip(*rows, strict=True), strict=True))
    batch = build_batch(columns.pop("id"), vectors=vectors, **{k: v for k, v in columns.items() if k != "vector"})
    return batch, rejects, lines
