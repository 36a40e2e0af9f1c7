"""The column-at-a-time binary COPY encoder, read back by a real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid

import numpy as np
import pyarrow as pa
import pytest

from connectors import pgcopy
from tests.pg_server import PgServer


def test_every_encoded_type_reads_back_exactly(pg_server: PgServer) -> None:
    import psycopg
    from pgvector.psycopg import register_vector

    vectors = np.random.default_rng(3).standard_normal((4, 5)).astype(np.float32)
    ids = pa.array(["a", "é😀", "", "d"])
    texts = pa.array(["x", None, "three", "tab\tand\nnewline"])
    metas = pa.array(['{"k": 1}', None, '{"nested": {"a": [1, 2]}}', "{}"])
    stamps = pa.array([0, None, 1_736_936_580_123_000, -1], type=pa.timestamp("us", tz="UTC"))
    scores = pa.array([0.5, None, -1e300, 3.0])
    scope = uuid.uuid4()
    fields = [
        pgcopy.text(ids),
        pgcopy.vector(vectors),
        pgcopy.vector(vectors, half=True),
        pgcopy.text(texts),
        pgcopy.jsonb(metas),
        pgcopy.text(metas),
        pgcopy.timestamptz(stamps),
        pgcopy.float8(scores),
        pgcopy.uuid_constant(scope, 4),
    ]
    with psycopg.connect(pg_server.dsn(), client_encoding="UTF8") as conn:
        register_vector(conn)
        conn.execute(
            "CREATE TEMP TABLE copy_t (id text, v vector(5), h halfvec(5), t text, m jsonb, j json, "
            "c timestamptz, s float8, u uuid)"
        )
        with conn.cursor() as cur, cur.copy("COPY copy_t FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(pgcopy.copy_stream(fields, 4))
        rows = conn.execute("SELECT id, v, h, t, m, j::text, c, s, u FROM copy_t").fetchall()
    assert [r[0] for r in rows] == ids.to_pylist()
    assert np.array_equal(np.stack([r[1].to_numpy() for r in rows]), vectors)
    assert np.array_equal(np.stack([r[2].to_numpy() for r in rows]), vectors.astype(np.float16).astype(np.float32))
    assert [r[3] for r in rows] == texts.to_pylist()
    assert [r[4] for r in rows] == [{"k": 1}, None, {"nested": {"a": [1, 2]}}, {}]
    assert [r[5] for r in rows] == metas.to_pylist()
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    assert [r[6] for r in rows] == [
        epoch,
        None,
        epoch + dt.timedelta(microseconds=1_736_936_580_123_000),
        epoch - dt.timedelta(microseconds=1),
    ]
    assert [r[7] for r in rows] == scores.to_pylist()
    assert {r[8] for r in rows} == {scope}


@pytest.mark.parametrize("count", [0, 1])
def test_stream_has_signature_and_trailer(count: int) -> None:
    stream = pgcopy.copy_stream([pgcopy.text(pa.array(["x"] * count, pa.string()))], count).to_pybytes()
    assert stream.startswith(pgcopy.SIGNATURE) and stream.endswith(pgcopy.TRAILER)
    assert len(stream) == len(pgcopy.SIGNATURE) + len(pgcopy.TRAILER) + count * (2 + 4 + 1)
