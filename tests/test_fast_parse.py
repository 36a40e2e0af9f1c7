"""The simdjson fast path of the reader gives the same verdict as the orjson path, line for line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vmig.reader import FastParser, LineRejected, parse_record, read_batches

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


def _verdict(parse, raw: bytes):  # type: ignore[no-untyped-def]
    try:
        record = parse(raw)
    except LineRejected as exc:
        return ("rejected", str(exc))
    vector = record["vector"]
    if isinstance(vector, np.ndarray):
        vector = [float(v) for v in vector]
    elif isinstance(vector, list) and all(type(v) in (int, float) for v in vector):
        vector = [float(v) for v in vector]
    return ("ok", {**record, "vector": vector})


@pytest.mark.parametrize("raw", LINES)
def test_fast_path_matches_the_orjson_path(raw: bytes) -> None:
    fast = FastParser()
    assert _verdict(fast, raw) == _verdict(parse_record, raw)
    # The parser stays usable after any line, good or bad.
    assert _verdict(fast, LINES[0]) == _verdict(parse_record, LINES[0])


def test_fast_path_reads_vectors_as_float_arrays() -> None:
    values = np.random.default_rng(1).standard_normal(384).astype(np.float32)
    raw = json.dumps({"id": "v", "vector": values.tolist(), "text": "t"}).encode()
    record = FastParser()(raw)
    assert isinstance(record["vector"], np.ndarray)
    assert np.array_equal(record["vector"].astype(np.float32), values)


def test_nested_vector_is_rejected_not_flattened(tmp_path: Path) -> None:
    path = tmp_path / "nested.vmig.jsonl"
    path.write_bytes(b'{"id": "ok", "vector": [1.0]}\n{"id": "a", "vector": [[1.0], [2.0]]}\n')
    reads = list(read_batches(path))
    assert [(r.line, r.reason) for r in reads[0].rejects] == [(2, "'vector' holds a value that is not a number")]
    assert reads[0].batch.column("id").to_pylist() == ["ok"]
