"""The column-at-a-time binary COPY encoder, read back by a real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid

import numpy as np
import pyarrow as pa
import pytest

from connectors.pgvector import copy_codec
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
        copy_codec.text(ids),
        copy_codec.vector(vectors),
        copy_codec.vector(vectors, half=True),
        copy_codec.text(texts),
        copy_codec.jsonb(metas),
        copy_codec.text(metas),
        copy_codec.timestamptz(stamps),
        copy_codec.float8(scores),
        copy_codec.uuid_constant(scope, 4),
    ]
    with psycopg.connect(pg_server.dsn(), client_encoding="UTF8") as conn:
        register_vector(conn)
        conn.execute(
            "CREATE TEMP TABLE copy_t (id text, v vector(5), h halfvec(5), t text, m jsonb, j json, "
            "c timestamptz, s float8, u uuid)"
        )
        with conn.cursor() as cur, cur.copy("COPY copy_t FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(copy_codec.copy_stream(fields, 4))
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
    stream = copy_codec.copy_stream([copy_codec.text(pa.array(["x"] * count, pa.string()))], count).to_pybytes()
    assert stream.startswith(copy_codec.SIGNATURE) and stream.endswith(copy_codec.TRAILER)
    assert len(stream) == len(copy_codec.SIGNATURE) + len(copy_codec.TRAILER) + count * (2 + 4 + 1)


def test_binary_copy_out_reads_back_every_column(pg_server: PgServer) -> None:
    import psycopg

    from connectors.pgvector.read import copy_messages

    vectors = np.random.default_rng(4).standard_normal((300, 6)).astype(np.float32)
    ids = [f"id-{i}" if i % 7 else f"é-{i}" for i in range(300)]
    texts = [None if i % 5 == 0 else f"text {i}\n" * (i % 4) for i in range(300)]
    stamps = [None if i % 3 == 0 else 1_736_936_580_123_000 + i for i in range(300)]
    scores = [None if i % 4 == 0 else i / 3 for i in range(300)]
    fields = [
        copy_codec.text(pa.array(ids)),
        copy_codec.vector(vectors),
        copy_codec.vector(vectors, half=True),
        copy_codec.text(pa.array(texts, pa.string())),
        copy_codec.timestamptz(pa.array(stamps, pa.timestamp("us", tz="UTC"))),
        copy_codec.float8(pa.array(scores, pa.float64())),
    ]
    with psycopg.connect(pg_server.dsn(), client_encoding="UTF8") as conn:
        conn.execute("CREATE TEMP TABLE out_t (id text, v vector(6), h halfvec(6), t text, c timestamptz, s float8)")
        with conn.cursor() as cur, cur.copy("COPY out_t FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(copy_codec.copy_stream(fields, 300))
        pages = []
        for limit in (300, 1, 0):
            query = f"COPY (SELECT * FROM out_t ORDER BY id LIMIT {limit}) TO STDOUT (FORMAT BINARY)"
            with conn.cursor() as cur, cur.copy(query) as copy:
                pages.append(copy_messages(conn.pgconn, copy))
    messages = pages[0]
    by_rows = copy_codec.split_rows(messages, 6)
    by_fields = copy_codec.split_fields(b"".join(messages), 6)
    assert np.array_equal(by_rows.starts, by_fields.starts) and np.array_equal(by_rows.lengths, by_fields.lengths)
    got_ids = copy_codec.read_text(by_rows, 0).to_pylist()
    assert sorted(got_ids) == sorted(ids)
    order = [ids.index(i) for i in got_ids]
    assert np.array_equal(copy_codec.read_vectors(by_rows, 1), vectors[order])
    assert np.array_equal(
        copy_codec.read_vectors(by_rows, 2, half=True), vectors[order].astype(np.float16).astype(np.float32)
    )
    assert copy_codec.read_text(by_rows, 3).to_pylist() == [texts[i] for i in order]
    assert copy_codec.read_timestamptz(by_rows, 4).to_pylist() == [stamps[i] for i in order]
    assert copy_codec.read_float8(by_rows, 5).to_pylist() == [scores[i] for i in order]
    assert copy_codec.split_rows(pages[1], 6).rows == 1 and copy_codec.split_rows(pages[2], 6).rows == 0
    assert copy_codec.read_text(copy_codec.split_rows(pages[1], 6), 0).to_pylist() == [got_ids[0]]


def test_copy_out_cut_short_by_the_server_raises_its_error(pg_server: PgServer) -> None:
    """A COPY TO that the server ends mid-stream (here a statement timeout) raises the server's error."""
    import psycopg

    from connectors.pgvector.read import copy_messages

    query = "COPY (SELECT i, pg_sleep(0.001) FROM generate_series(1, 100000) i) TO STDOUT (FORMAT BINARY)"
    with psycopg.connect(pg_server.dsn()) as conn:
        conn.execute("SET statement_timeout = 200")
        with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
            with conn.cursor() as cur, cur.copy(query) as copy:
                copy_messages(conn.pgconn, copy)
        conn.rollback()
        assert conn.execute("SELECT 1").fetchone() == (1,), "the connection is still usable"
