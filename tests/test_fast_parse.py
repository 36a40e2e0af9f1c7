"""The simdjson fast path of the reader gives the same verdict as the orjson path, line for line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vmig.parse import _BATCH_FIELDS, FastParser, LineRejected, _plain_row, _row_fields, parse_record
from vmig.reader import read_batches

LINES = [
    b'{"id": "a", "vector": [0.5, -0.25, 1e-3], "text": "x", "metadata": {"k": [1, {"d": true}]}}',
    b'{"id": 7, "vector": [1, 2, 3], "dims": 3, "score": 0.5, "namespace": "n", "model": "m"}',
    b'{"id": "a", "vector": [[1.0], [2.0]]}',
    b'{"id": "a", "vector": [[1.0, 2.0]], "text": "nested"}',
    b'{"id": "a", "vector": [1.0, [2.0], 3.0]}',
    b'{"id": "a", "vector": [1.0, 2.0], "vector": [3.0, 4.0]}',
    b'{"id": "a", "id": "b", "vector": [1.0]}',
    b'{"id": "a", "vector": [true, 1.0]}',
    b'{"id": "a", "vector": [1.0, "2"]}',
    b'{"id": "a", "vector": [1e39, 1.0]}',
    b'{"id": "a", "vector": [1e400]}',
    b'{"id": "a", "vector": [18446744073709551616, 1.0]}',
    b'{"id": "a", "vector": []}',
    b'{"id": "a", "vector": null, "text": "t"}',
    b'{"id": "a", "vector": {"x": 1}}',
    b'{"id": "a", "text": "x", "created_at": "2025-01-15T10:23:00Z", "vector": [0.1]}',
    b'{"id": "a", "text": "\\u00e9\\ud83d\\ude00", "vector": [0.1], "extra_key": {"n": null}}',
    b'{"id": "a", "vector" : [ 0.1 , 0.2 ] }',
    b'{"meta": {"vector": [9.0]}, "id": "a", "vector": [0.1, 0.2]}',
    b'{"id": "a", "vector": [0.1, 0.2]',
    b'{"id": "\xff", "vector": [0.1]}',
    b'["id", "a"]',
    b'{"id": true, "vector": [0.1]}',
    b'{"id": "a", "vector": [0.1], "metadata": [1]}',
]


def test_fast_path_reads_vectors_as_float_arrays() -> None:
    values = np.random.default_rng(1).standard_normal(384).astype(np.float32)
    raw = json.dumps({"id": "v", "vector": values.tolist(), "text": "t"}).encode()
    vector = FastParser().row(raw)[_BATCH_FIELDS.index("vector")]
    assert isinstance(vector, np.ndarray)
    assert np.array_equal(vector.astype(np.float32), values)


def test_nested_vector_is_rejected_not_flattened(tmp_path: Path) -> None:
    path = tmp_path / "nested.vmig.jsonl"
    path.write_bytes(b'{"id": "ok", "vector": [1.0]}\n{"id": "a", "vector": [[1.0], [2.0]]}\n')
    reads = list(read_batches(path))
    assert [(r.line, r.reason) for r in reads[0].rejects] == [(2, "'vector' holds a value that is not a number")]
    assert reads[0].batch.column("id").to_pylist() == ["ok"]


@pytest.mark.parametrize("other", [b"[1.0, 2.0]", b"[1.0, 2.0, 3.0]"], ids=["same dims", "other dims"])
def test_the_largest_float32_is_a_value_and_beyond_it_is_not(other: bytes, tmp_path: Path) -> None:
    """float32's largest prints shortest as 3.4028235e38, a little above it: read back, it is that float32,
    whichever path reads the line (a file of mixed dims takes the row-by-row checks)."""
    path = tmp_path / "edge.vmig.jsonl"
    path.write_bytes(
        b'{"id": "max", "text": "t", "vector": [3.4028235e38, -3.4028235e38]}\n'
        b'{"id": "over", "text": "t", "vector": [3.40282357e38, 1.0]}\n'
        b'{"id": "other", "text": "t", "vector": ' + other + b"}\n"
    )
    reads = list(read_batches(path))
    assert [(r.line, r.reason) for r in reads[0].rejects] == [
        (2, "'vector' holds a value that is not a finite float32")
    ]
    batch = reads[0].batch
    assert batch.column("id").to_pylist() == ["max", "other"]
    largest = float(np.finfo(np.float32).max)
    assert batch.column("vector")[0].as_py() == [largest, -largest]


_WRITTEN = (
    b'{"id":"m-1","text":"t","vector":[0.5,-0.25],"model":null,"dims":2,"namespace":"n","score":null,'
    b'"metadata":{"k":1},"created_at":"2025-01-15T10:23:00.000Z","source_store":"s","vex_version":"1.0.0"}'
)
"""A line as vex writes it: the shape `FastParser.row` checks in its short pass."""

PLAIN_VARIANTS = [
    _WRITTEN,
    _WRITTEN.replace(b'"score":null', b'"score":1'),
    _WRITTEN.replace(b'"score":null', b'"score":true'),
    _WRITTEN.replace(b'"dims":2', b'"dims":3'),
    _WRITTEN.replace(b'"dims":2', b'"dims":2.0'),
    _WRITTEN.replace(b'"dims":2', b'"dims":true'),
    _WRITTEN.replace(b"2025-01-15T10:23:00.000Z", b"2025-02-30T10:23:00.000Z"),
    _WRITTEN.replace(b"2025-01-15T10:23:00.000Z", b"2025-01-15T10:23:00.000001Z"),
    _WRITTEN.replace(b"2025-01-15T10:23:00.000Z", b"2025-01-15 10:23:00+02:00"),
    _WRITTEN.replace(b'"2025-01-15T10:23:00.000Z"', b"1736936580"),
    _WRITTEN.replace(b'"2025-01-15T10:23:00.000Z"', b'""'),
    _WRITTEN.replace(b'"2025-01-15T10:23:00.000Z"', b"true"),
    _WRITTEN.replace(b'"namespace":"n"', b'"namespace":5'),
    _WRITTEN.replace(b'"text":"t"', b'"text":5'),
    _WRITTEN.replace(b'"metadata":{"k":1}', b'"metadata":null'),
    _WRITTEN.replace(b'"metadata":{"k":1}', b'"metadata":[1]'),
    _WRITTEN.replace(b'"id":"m-1"', b'"id":""'),
    _WRITTEN.replace(b'"id":"m-1"', b'"id":7'),
    _WRITTEN.replace(b'"source_store":"s"', b'"source":"s"'),
    _WRITTEN.replace(b'"source_store":"s"', b'"source_store":null,"source":{"x":1}'),
    _WRITTEN.replace(b'"vex_version":"1.0.0"', b'"metadata_json_keys":["k"]').replace(b'{"k":1}', b'{"k":"[1]"}'),
    _WRITTEN.replace(b'"vex_version":"1.0.0"', b'"vex_version":"1.0.0","other":[1]'),
]


def _row_verdict(parse, raw: bytes):  # type: ignore[no-untyped-def]
    try:
        row = parse(raw)
    except LineRejected as exc:
        return ("rejected", str(exc))
    fields = dict(zip(_BATCH_FIELDS, row, strict=True))
    vector = fields["vector"]
    if isinstance(vector, np.ndarray) or (isinstance(vector, list) and all(type(v) in (int, float) for v in vector)):
        fields["vector"] = [float(v) for v in vector]
    return ("ok", fields)


@pytest.mark.parametrize("raw", LINES + PLAIN_VARIANTS)
def test_row_gives_the_fields_and_verdict_of_the_full_checks(raw: bytes) -> None:
    fast = FastParser()
    full = lambda line: _row_fields(parse_record(line))  # noqa: E731 - the reference the fast path must match
    assert _row_verdict(fast.row, raw) == _row_verdict(full, raw)
    # The parser stays usable after any line, good or bad.
    assert _row_verdict(fast.row, LINES[0]) == _row_verdict(full, LINES[0])


def test_written_lines_take_the_short_pass() -> None:
    record = FastParser()._fast_record(_WRITTEN)
    assert record is not None
    assert _plain_row(record) is not None
    assert _plain_row(FastParser()._fast_record(PLAIN_VARIANTS[12]) or {}) is None  # namespace 5 needs the full checks
