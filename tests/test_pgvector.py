"""pgvector on a real PostgreSQL: layouts people already have, halfvec, indexes, refusals, secrets."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from connectors.ids import uuid_for
from connectors.pgvector import PgvectorConnector, PgvectorOptions
from connectors.pgvector.options import split_name
from tests.chroma_server import free_port
from tests.conftest import ROOT, run_vex
from tests.pg_server import PgServer
from tests.records import read_vmig, sample_records, write_vmig
from vmig.errors import UsageError

DEMO_DB = ROOT / "demo" / "memory.db"


def _last(result) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _no_secret(result, server: PgServer) -> None:  # type: ignore[no-untyped-def]
    assert server.password not in result.stdout + result.stderr


def test_demo_into_pgvector_with_index_and_back(tmp_path: Path, pg_server: PgServer) -> None:
    url = pg_server.dsn()
    result = run_vex("migrate", "--from", "vektor", "--to", "pgvector", "--db", str(DEMO_DB), "--url", url,
                     "--table", "public.demo_memories", "--verify", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert _last(result)["verify"]["ok"]
    _no_secret(result, pg_server)
    with pg_server.admin("vexdb") as conn:
        index = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'demo_memories' AND indexdef LIKE '%hnsw%'"
        ).fetchone()
        assert index is not None and "vector_cosine_ops" in index[0]
    out = tmp_path / "ns.vmig.jsonl"
    result = run_vex("export", "--from", "pgvector", "--url", url, "--table", "public.demo_memories",
                     "--namespace", "research", "--limit", "30", "--output", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    records = read_vmig(out)
    assert len(records) == 30 and {r["namespace"] for r in records.values()} == {"research"}


def test_ivfflat_and_no_index(pg_server: PgServer, tmp_path: Path) -> None:
    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=20, odd_ones=False))
    for table, index, metric in (("t_ivf", "ivfflat", "euclid"), ("t_noidx", "none", "cosine")):
        result = run_vex("import", "--from", str(source), "--to", "pgvector", "--url", pg_server.dsn(),
                         "--table", table,
                         "--index", index, "--metric", metric)  # fmt: skip
        assert result.returncode == 0, result.stderr
    with pg_server.admin("vexdb") as conn:
        ivf = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 't_ivf' AND indexdef LIKE '%ivfflat%'"
        ).fetchone()
        assert ivf is not None  # vector_l2_ops is ivfflat's default operator class, so it is not printed
        assert (
            conn.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 't_noidx'").fetchone()[0] == 1
        )  # the pkey


def test_vectors_above_the_index_limit_are_refused_before_the_table_is_made(
    pg_server: PgServer, tmp_path: Path
) -> None:
    """pgvector indexes at most 2,000 dims: an import of 2,100-d vectors with an index asked for is refused
    before anything is written (it used to finish with exit 0 and no index), and loads with --index none."""
    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=5, dims=2100, odd_ones=False))
    base = ["import", "--from", str(source), "--to", "pgvector", "--url", pg_server.dsn(), "--table", "wide"]
    refused = run_vex(*base)
    assert refused.returncode == 2, refused.stderr
    assert "cannot build a hnsw index on 2100-d vectors (at most 2,000): pass --index none" in refused.stderr
    with pg_server.admin("vexdb") as conn:
        assert conn.execute("SELECT to_regclass('wide')").fetchone()[0] is None
    loaded = run_vex(*base, "--index", "none")
    assert loaded.returncode == 0, loaded.stderr
    with pg_server.admin("vexdb") as conn:
        assert conn.execute("SELECT count(*) FROM wide").fetchone()[0] == 5


def test_a_new_table_s_index_is_built_for_the_source_metric(pg_server: PgServer, tmp_path: Path) -> None:
    """A migrate from a dot-product Qdrant collection builds the new table's HNSW index with inner-product ops;
    an explicit --target-metric wins over the source's."""
    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=12, odd_ones=False))
    qdrant = ["--path", str(tmp_path / "q"), "--collection", "m"]
    assert run_vex("import", "--from", str(source), "--to", "qdrant", *qdrant, "--metric", "dot").returncode == 0
    for table, flags, ops in (("t_from_dot", [], "ip"), ("t_l2", ["--target-metric", "euclid"], "l2")):
        result = run_vex("migrate", "--from", "qdrant", "--to", "pgvector", "--source-path", str(tmp_path / "q"),
                         "--source-collection", "m", "--target-url", pg_server.dsn(), "--target-table", table,
                         *flags)  # fmt: skip
        assert result.returncode == 0, result.stderr
        with pg_server.admin("vexdb") as conn:
            index = conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexdef LIKE '%%hnsw%%'", (table,)
            ).fetchone()
        assert index is not None and f"vector_{ops}_ops" in index[0]


def test_jsonb_integer_beyond_64_bits_is_a_reject_not_a_changed_number(pg_server: PgServer, tmp_path: Path) -> None:
    """jsonb keeps every digit; vex's JSON would turn such an integer into a float: that row is a reject naming
    it, in the native table's metadata and extra, and the rest (a long digit string among them) exports."""
    records = sample_records(count=6, odd_ones=False)
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    url = pg_server.dsn()
    result = run_vex("import", "--from", str(source), "--to", "pgvector", "--url", url, "--table", "t_wide")
    assert result.returncode == 0, result.stderr
    with pg_server.admin("vexdb") as conn:
        conn.execute("UPDATE t_wide SET metadata = '{\"n\": 123456789012345678901234}' WHERE id = 'mem-0001'")
        conn.execute("UPDATE t_wide SET extra = '{\"k\": [-99999999999999999999]}' WHERE id = 'mem-0003'")
        conn.execute("UPDATE t_wide SET metadata = '{\"s\": \"123456789012345678901234\"}' WHERE id = 'mem-0004'")
    out = tmp_path / "o.vmig.jsonl"
    result = run_vex("export", "--from", "pgvector", "--url", url, "--table", "t_wide", "--output", str(out), "--json")
    assert result.returncode == 3, result.stderr
    assert _last(result)["rejected"] == 2
    rejects = {entry["id"]: entry["reason"] for entry in map(json.loads, (tmp_path / "o.rejects.jsonl").open())}
    assert "holds the integer 123456789012345678901234, beyond 64 bits" in rejects["mem-0001"]
    assert "holds the integer -99999999999999999999, beyond 64 bits" in rejects["mem-0003"]
    back = read_vmig(out)
    assert sorted(back) == ["mem-0000", "mem-0002", "mem-0004", "mem-0005"]
    assert back["mem-0004"]["metadata"] == {"s": "123456789012345678901234"}


def test_halfvec_columns(pg_server: PgServer, tmp_path: Path) -> None:
    with pg_server.admin("vexdb") as conn:
        conn.execute(
            "CREATE TABLE half_mem (id text PRIMARY KEY, embedding halfvec(8) NOT NULL, text text, metadata jsonb)"
        )
        conn.execute("GRANT ALL ON half_mem TO vex")
    records = sample_records(count=10, odd_ones=False)
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    url = pg_server.dsn()
    assert (
        run_vex("import", "--from", str(source), "--to", "pgvector", "--url", url, "--table", "half_mem").returncode
        == 0
    )
    out = tmp_path / "o.vmig.jsonl"
    assert (
        run_vex("export", "--from", "pgvector", "--url", url, "--table", "half_mem", "--output", str(out)).returncode
        == 0
    )
    back = read_vmig(out)
    for record in records:
        got = np.asarray(back[record["id"]]["vector"], dtype=np.float32)
        assert np.array_equal(got, record["vector"].astype(np.float16).astype(np.float32))
        assert (
            back[record["id"]]["metadata"] == record["metadata"]
            and back[record["id"]]["namespace"] == record["namespace"]
        )


LANGCHAIN_DDL = """
-- langchain-postgres (langchain_postgres/vectorstores.py): CollectionStore and EmbeddingStore
CREATE TABLE langchain_pg_collection (uuid UUID PRIMARY KEY, name VARCHAR NOT NULL UNIQUE, cmetadata JSON);
CREATE TABLE langchain_pg_embedding (
    id VARCHAR PRIMARY KEY,
    collection_id UUID REFERENCES langchain_pg_collection(uuid) ON DELETE CASCADE,
    embedding VECTOR(8),
    document VARCHAR,
    cmetadata JSONB
);
CREATE INDEX ix_cmetadata_gin ON langchain_pg_embedding USING gin (cmetadata jsonb_path_ops);
"""

LLAMAINDEX_DDL = """
-- llama-index-vector-stores-postgres (PGVectorStore, use_jsonb=True): table data_<name>
CREATE TABLE data_docs (
    id BIGSERIAL PRIMARY KEY,
    text VARCHAR NOT NULL,
    metadata_ JSONB,
    node_id VARCHAR,
    embedding VECTOR(8)
);
CREATE INDEX docs_idx_1 ON data_docs ((metadata_ ->> 'ref_doc_id'));
"""


def make_llamaindex_table(pg_server: PgServer, name: str, dims: int = 8) -> None:
    """An empty `data_<name>` as LlamaIndex makes it, writable by the `vex` role."""
    ddl = LLAMAINDEX_DDL.replace("data_docs", f"data_{name}").replace("docs_idx_1", f"{name}_idx_1")
    with pg_server.admin("vexdb") as conn:
        conn.execute(f"DROP TABLE IF EXISTS data_{name}")
        conn.execute(ddl.replace("VECTOR(8)", f"VECTOR({dims})"))
        conn.execute(f"GRANT ALL ON data_{name} TO vex")
        conn.execute(f"GRANT USAGE ON SEQUENCE data_{name}_id_seq TO vex")


def load_into_llamaindex(pg_server: PgServer, name: str, records: list[dict[str, Any]], batch: int) -> None:
    """One run of the connector into `data_<name>`, `batch` records a load; each load must write them all."""
    from tests.records import to_batch

    connector = PgvectorConnector(PgvectorOptions(url=pg_server.dsn(), layout="llamaindex", collection=name))
    with connector:
        connector.ensure_target(8, "cosine")
        for start in range(0, len(records), batch):
            part = records[start : start + batch]
            assert connector.load(to_batch(part)).written == len(part)
        connector.finish()


def _vec(seed: int) -> str:
    return "[" + ",".join(f"{x:.6f}" for x in np.random.default_rng(seed).standard_normal(8)) + "]"


@pytest.fixture
def langchain_tables(pg_server: PgServer):  # type: ignore[no-untyped-def]
    with pg_server.admin("vexdb") as conn:
        conn.execute("DROP TABLE IF EXISTS langchain_pg_embedding, langchain_pg_collection")
        conn.execute(LANGCHAIN_DDL)
        conn.execute("GRANT ALL ON langchain_pg_embedding, langchain_pg_collection TO vex")
        docs, other = uuid.uuid4(), uuid.uuid4()
        conn.execute(
            "INSERT INTO langchain_pg_collection VALUES (%s, 'docs', '{}'), (%s, 'other', NULL)", (docs, other)
        )
        for i in range(12):
            conn.execute(
                "INSERT INTO langchain_pg_embedding VALUES (%s, %s, %s, %s, %s)",
                (f"lc-{i}", docs if i < 10 else other, _vec(i), f"langchain doc {i}",
                 json.dumps({"source": f"file{i}.md", "page": i, "tags": ["a", "b"]})),
            )  # fmt: skip
    yield


@pytest.fixture
def llamaindex_tables(pg_server: PgServer):  # type: ignore[no-untyped-def]
    with pg_server.admin("vexdb") as conn:
        conn.execute("DROP TABLE IF EXISTS data_docs")
        conn.execute(LLAMAINDEX_DDL)
        conn.execute("GRANT ALL ON data_docs TO vex")
        conn.execute("GRANT ALL ON SEQUENCE data_docs_id_seq TO vex")
        for i in range(10):
            meta = {"ref_doc_id": f"doc-{i // 3}", "_node_type": "TextNode", "file_name": f"f{i}.txt"}
            conn.execute(
                "INSERT INTO data_docs (text, metadata_, node_id, embedding) VALUES (%s, %s, %s, %s)",
                (f"llama node {i}", json.dumps(meta), str(uuid.UUID(int=i + 1)), _vec(100 + i)),
            )
    yield


@pytest.mark.usefixtures("langchain_tables")
def test_langchain_layout_to_qdrant_and_back(pg_server: PgServer, tmp_path: Path) -> None:
    url = pg_server.dsn()
    first = tmp_path / "lc.vmig.jsonl"
    result = run_vex("export", "--from", "pgvector", "--url", url, "--layout", "langchain", "--collection", "docs",
                     "--output", str(first))  # fmt: skip
    assert result.returncode == 0, result.stderr
    original = read_vmig(first)
    assert sorted(original) == [f"lc-{i}" for i in range(10)]
    assert original["lc-3"]["text"] == "langchain doc 3" and original["lc-3"]["metadata"]["tags"] == ["a", "b"]

    result = run_vex("migrate", "--from", "pgvector", "--to", "qdrant", "--source-url", url, "--layout", "langchain",
                     "--source-collection", "docs", "--target-path", str(tmp_path / "q"), "--target-collection", "lc",
                     "--verify")  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    result = run_vex("migrate", "--from", "qdrant", "--to", "pgvector", "--source-path", str(tmp_path / "q"),
                     "--source-collection", "lc", "--target-url", url, "--layout", "langchain", "--target-collection",
                     "restored", "--verify")  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    second = tmp_path / "restored.vmig.jsonl"
    assert run_vex("export", "--from", "pgvector", "--url", url, "--layout", "langchain", "--collection", "restored",
                   "--output", str(second)).returncode == 0  # fmt: skip
    restored = read_vmig(second)
    assert sorted(restored) == sorted(original)
    for key, record in original.items():
        for field in ("text", "metadata", "vector", "namespace"):
            assert restored[key][field] == record[field], (key, field)


LANGCHAIN_LEGACY_DDL = """
-- langchain_community (langchain_community/vectorstores/pgvector.py, before langchain-postgres): CollectionStore
-- and EmbeddingStore; uuid has only SQLAlchemy's client-side default uuid.uuid4, no server default
CREATE TABLE langchain_pg_collection (uuid UUID PRIMARY KEY, name VARCHAR, cmetadata JSON);
CREATE TABLE langchain_pg_embedding (
    uuid UUID PRIMARY KEY,
    collection_id UUID REFERENCES langchain_pg_collection(uuid) ON DELETE CASCADE,
    embedding {vector},
    document VARCHAR NULL,
    cmetadata {metadata} NULL,
    custom_id VARCHAR NULL
);
"""
"""`{vector}`: `VECTOR(d)`, or `VECTOR` for a store made without vector_size; `{metadata}`: JSON, or JSONB
(use_jsonb=True)."""


def make_legacy_langchain_tables(conn: Any, vector: str = "VECTOR(8)", metadata: str = "JSON") -> None:
    """Fresh, empty legacy LangChain tables in the database of `conn` (an admin connection)."""
    conn.execute("DROP TABLE IF EXISTS langchain_pg_embedding, langchain_pg_collection")
    conn.execute(LANGCHAIN_LEGACY_DDL.format(vector=vector, metadata=metadata))
    conn.execute("GRANT ALL ON langchain_pg_embedding, langchain_pg_collection TO vex")


_LcRow = tuple[str | None, list[float], str, dict[str, Any]]
"""A row as LangChain writes it: custom_id (None: a row with no id of its own), embedding, document, cmetadata."""


def _written_by_langchain(pg_server: PgServer, collection: str, rows: list[_LcRow]) -> list[uuid.UUID]:
    """Rows added as langchain_community's PGVector.add_embeddings adds them (its collection made on first use):
    a random uuid4 key each. Returns the keys."""
    keys = [uuid.uuid4() for _ in rows]
    with pg_server.admin("vexdb") as conn:
        found = conn.execute("SELECT uuid FROM langchain_pg_collection WHERE name = %s", (collection,)).fetchone()
        scope = found[0] if found else uuid.uuid4()
        if not found:
            conn.execute("INSERT INTO langchain_pg_collection VALUES (%s, %s, NULL)", (scope, collection))
        for key, (custom_id, vector, text, meta) in zip(keys, rows, strict=True):
            conn.execute(
                "INSERT INTO langchain_pg_embedding (uuid, collection_id, embedding, document, cmetadata, custom_id) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (key, scope, str(vector), text, json.dumps(meta), custom_id),
            )
    return keys


def _lc_vec(seed: int, dims: int = 8) -> list[float]:
    """A vector exactly representable as float32, so a comparison with what comes back can be exact."""
    return [float(x) for x in np.random.default_rng(seed).standard_normal(dims).astype(np.float32)]


def _langchain(url: str, collection: str) -> list[str]:
    return ["--url", url, "--layout", "langchain", "--collection", collection]


def _rows_of(pg_server: PgServer, collection: str) -> list[tuple[uuid.UUID, str | None, str | None]]:
    """(uuid, custom_id, document) of a collection's rows, by custom_id."""
    with pg_server.admin("vexdb") as conn:
        return conn.execute(
            "SELECT e.uuid, e.custom_id, e.document FROM langchain_pg_embedding e "
            "JOIN langchain_pg_collection c ON c.uuid = e.collection_id WHERE c.name = %s ORDER BY e.custom_id",
            (collection,),
        ).fetchall()


def test_legacy_langchain_table_exports_custom_ids(pg_server: PgServer, tmp_path: Path) -> None:
    """langchain_community's PGVector table (no `id`; a random `uuid` key and the user's `custom_id`): export
    gives custom_id as the record id, the uuid where custom_id is NULL, and each row once, also where ids
    repeat, in pages of any size and from a resumed cursor."""
    with pg_server.admin("vexdb") as conn:
        make_legacy_langchain_tables(conn)
    rows: list[_LcRow] = [
        (f"lc-{i}", _lc_vec(i), f"legacy doc {i}", {"source": f"file{i}.md", "page": i, "tags": ["a", "b"]})
        for i in range(6)
    ]
    rows += [(None, _lc_vec(6), "no id of its own", {}), ("twice", _lc_vec(7), "first of two", {"n": 1}),
             ("twice", _lc_vec(8), "second of two", {"n": 2})]  # fmt: skip
    keys = _written_by_langchain(pg_server, "docs", rows)
    _written_by_langchain(pg_server, "other", [("lc-0", _lc_vec(9), "another collection's", {})])
    url = pg_server.dsn()
    out = tmp_path / "legacy.vmig.jsonl"
    result = run_vex("export", "--from", "pgvector", *_langchain(url, "docs"), "--output", str(out))
    assert result.returncode == 0, result.stderr
    _no_secret(result, pg_server)
    back = read_vmig(out)
    assert sorted(back) == sorted([f"lc-{i}" for i in range(6)] + [str(keys[6]), "twice"])
    for custom_id, vector, text, meta in rows[:7]:
        got = back[custom_id or str(keys[6])]
        assert (got["text"], got["metadata"], got["vector"]) == (text, meta, vector), custom_id
        assert got["namespace"] is None and got["model"] is None
    lines = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert len(lines) == 9 and lines.count("twice") == 2, "every row once, the repeated id too"

    connector = PgvectorConnector(PgvectorOptions(url=url, layout="langchain", collection="docs"))
    connector.page_size = 2
    with connector:
        assert connector.describe().count == 9
        pages = list(connector.extract(None, None))
        texts = [t for page in pages for t in page.batch.column("text").to_pylist()]
        assert sorted(texts) == sorted(row[2] for row in rows), "pages on the uuid key: no row lost or doubled"
        resumed = list(connector.extract(None, json.loads(json.dumps(pages[1].next_cursor))))
    assert [t for page in resumed for t in page.batch.column("text").to_pylist()] == texts[4:]


def test_legacy_langchain_reimport_replaces_rows(pg_server: PgServer, tmp_path: Path) -> None:
    """Import into the legacy table keeps the record id in custom_id and fills the uuid key (no server default)
    with a UUIDv5 of the id in its collection: a re-run, and a record with the id of a row LangChain wrote,
    replace rows of that collection instead of adding any; another collection's rows stay, and the same ids
    go into another collection of the table without claiming the same keys."""
    with pg_server.admin("vexdb") as conn:
        make_legacy_langchain_tables(conn, metadata="JSONB")
    old = _written_by_langchain(pg_server, "docs", [("mem-0001", _lc_vec(1), "written by LangChain", {"v": 1})])
    _written_by_langchain(pg_server, "other", [("mem-0001", _lc_vec(2), "the other collection's", {})])
    records = sample_records(count=6, odd_ones=False)
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    url = pg_server.dsn()
    runs = []
    for _ in range(2):
        result = run_vex("import", "--from", str(source), "--to", "pgvector", *_langchain(url, "docs"), "--json")
        assert result.returncode == 0, result.stderr
        _no_secret(result, pg_server)
        runs.append(_rows_of(pg_server, "docs"))
    assert runs[0] == runs[1], "a re-run writes the same rows under the same keys"
    assert [(custom_id, text) for _, custom_id, text in runs[1]] == [(r["id"], r["text"]) for r in records]
    assert old[0] not in {key for key, _, _ in runs[1]}, "LangChain's row of mem-0001 was replaced"
    assert [text for _, _, text in _rows_of(pg_server, "other")] == ["the other collection's"]
    result = run_vex("import", "--from", str(source), "--to", "pgvector", *_langchain(url, "other"))
    assert result.returncode == 0, result.stderr
    assert [(custom_id, text) for _, custom_id, text in _rows_of(pg_server, "other")] == [
        (r["id"], r["text"]) for r in records
    ]
    assert _rows_of(pg_server, "docs") == runs[1]
    out = tmp_path / "o.vmig.jsonl"
    assert run_vex("export", "--from", "pgvector", *_langchain(url, "docs"), "--output", str(out)).returncode == 0
    back = read_vmig(out)
    for record in records:
        got = back[record["id"]]
        assert np.array_equal(np.asarray(got["vector"], dtype=np.float32), record["vector"])
        assert (got["text"], got["metadata"], got["namespace"], got["model"]) == (
            record["text"], record["metadata"], record["namespace"], record["model"]
        )  # fmt: skip
    # A row LangChain wrote without an id is exported under its uuid; importing that export replaces it.
    (anonymous,) = _written_by_langchain(pg_server, "docs", [(None, _lc_vec(3), "no id", {})])
    assert run_vex("export", "--from", "pgvector", *_langchain(url, "docs"), "--output", str(out)).returncode == 0
    result = run_vex("import", "--from", str(out), "--to", "pgvector", *_langchain(url, "docs"))
    assert result.returncode == 0, result.stderr
    after = _rows_of(pg_server, "docs")
    assert len(after) == 7 and (str(anonymous), "no id") in [(custom_id, text) for _, custom_id, text in after]


def test_legacy_langchain_to_qdrant_and_into_a_fresh_table(pg_server: PgServer, tmp_path: Path) -> None:
    """Legacy table -> .vmig.jsonl -> Qdrant -> a fresh legacy table: ids, texts, metadata and vectors come back;
    the row without a custom_id comes back with its old uuid as custom_id."""
    with pg_server.admin("vexdb") as conn:
        make_legacy_langchain_tables(conn)
    rows: list[_LcRow] = [(str(uuid.uuid1()), _lc_vec(i), f"doc {i}", {"source": f"f{i}.md", "nested": {"p": i}})
                          for i in range(7)]  # fmt: skip
    rows.append((None, _lc_vec(7), "anonymous", {"source": "g.md"}))
    keys = _written_by_langchain(pg_server, "docs", rows)
    url = pg_server.dsn()
    first = tmp_path / "first.vmig.jsonl"
    assert run_vex("export", "--from", "pgvector", *_langchain(url, "docs"), "--output", str(first)).returncode == 0
    original = read_vmig(first)
    assert sorted(original) == sorted([row[0] for row in rows[:7]] + [str(keys[7])])
    qdrant = ["--path", str(tmp_path / "q"), "--collection", "lc"]
    result = run_vex("import", "--from", str(first), "--to", "qdrant", *qdrant)
    assert result.returncode == 0, result.stderr
    with pg_server.admin("vexdb") as conn:
        make_legacy_langchain_tables(conn)
    result = run_vex("migrate", "--from", "qdrant", "--to", "pgvector", "--source-path", str(tmp_path / "q"),
                     "--source-collection", "lc", "--target-url", url, "--layout", "langchain",
                     "--target-collection", "docs", "--verify")  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    _no_secret(result, pg_server)
    second = tmp_path / "second.vmig.jsonl"
    assert run_vex("export", "--from", "pgvector", *_langchain(url, "docs"), "--output", str(second)).returncode == 0
    restored = read_vmig(second)
    assert sorted(restored) == sorted(original)
    for key, record in original.items():
        for name in ("text", "metadata", "vector", "namespace"):
            assert restored[key][name] == record[name], (key, name)
    assert (None, "anonymous") not in [(custom_id, text) for _, custom_id, text in _rows_of(pg_server, "docs")]


def test_legacy_langchain_vector_column_without_dimensions(pg_server: PgServer, tmp_path: Path) -> None:
    """PGVector made without vector_size has a plain `vector` column: each collection's dimension is its data's,
    not the first row of the table, so collections of other sizes share the table."""
    with pg_server.admin("vexdb") as conn:
        make_legacy_langchain_tables(conn, vector="VECTOR")
    _written_by_langchain(pg_server, "wide", [(f"w-{i}", _lc_vec(i, 8), f"wide {i}", {}) for i in range(3)])
    narrow = [(f"n-{i}", _lc_vec(10 + i, 4), f"narrow {i}", {"i": i}) for i in range(3)]
    _written_by_langchain(pg_server, "narrow", narrow)
    url = pg_server.dsn()
    for name, dims in (("wide", 8), ("narrow", 4)):
        with PgvectorConnector(PgvectorOptions(url=url, layout="langchain", collection=name)) as connector:
            assert connector.describe().dims == dims, name
    out = tmp_path / "narrow.vmig.jsonl"
    assert run_vex("export", "--from", "pgvector", *_langchain(url, "narrow"), "--output", str(out)).returncode == 0
    assert {key: record["vector"] for key, record in read_vmig(out).items()} == {row[0]: row[1] for row in narrow}

    records = sample_records(count=5, dims=4, odd_ones=False)
    source = write_vmig(tmp_path / "s4.vmig.jsonl", records)
    for collection in ("fresh", "narrow"):  # a new collection beside 8-d rows; an existing 4-d one
        result = run_vex("import", "--from", str(source), "--to", "pgvector", *_langchain(url, collection))
        assert result.returncode == 0, (collection, result.stderr)
    assert len(_rows_of(pg_server, "fresh")) == 5 and len(_rows_of(pg_server, "narrow")) == 8
    out = tmp_path / "fresh.vmig.jsonl"
    assert run_vex("export", "--from", "pgvector", *_langchain(url, "fresh"), "--output", str(out)).returncode == 0
    back = read_vmig(out)
    assert all(np.array_equal(np.asarray(back[r["id"]]["vector"], dtype=np.float32), r["vector"]) for r in records)
    wide = write_vmig(tmp_path / "s8.vmig.jsonl", sample_records(count=3, dims=8, odd_ones=False))
    result = run_vex("import", "--from", str(wide), "--to", "pgvector", *_langchain(url, "narrow"))
    assert result.returncode == 2 and "holds 4-d vectors but the input's are 8-d" in result.stderr
    assert len(_rows_of(pg_server, "narrow")) == 8


def test_langchain_layout_refuses_a_table_of_neither_kind(pg_server: PgServer, tmp_path: Path) -> None:
    with pg_server.admin("vexdb") as conn:
        make_legacy_langchain_tables(conn)
        conn.execute("ALTER TABLE langchain_pg_embedding RENAME custom_id TO doc_id")
    _written_by_langchain(pg_server, "docs", [])
    result = run_vex("export", "--from", "pgvector", *_langchain(pg_server.dsn(), "docs"),
                     "--output", str(tmp_path / "x.vmig.jsonl"))  # fmt: skip
    assert result.returncode == 2 and "is not a LangChain PGVector table" in result.stderr
    assert "nor the uuid and custom_id columns of langchain_community" in result.stderr
    _no_secret(result, pg_server)


@pytest.mark.usefixtures("llamaindex_tables")
def test_llamaindex_layout_to_qdrant_and_back(pg_server: PgServer, tmp_path: Path) -> None:
    url = pg_server.dsn()
    first = tmp_path / "li.vmig.jsonl"
    result = run_vex("export", "--from", "pgvector", "--url", url, "--layout", "llamaindex", "--collection", "docs",
                     "--output", str(first))  # fmt: skip
    assert result.returncode == 0, result.stderr
    original = read_vmig(first)
    assert len(original) == 10 and original[str(uuid.UUID(int=5))]["metadata"]["ref_doc_id"] == "doc-1"
    # PGVectorStore(table_name="Docs") made the same table: it lowercases the name.
    result = run_vex("migrate", "--from", "pgvector", "--to", "qdrant", "--source-url", url, "--layout", "llamaindex",
                     "--source-collection", "Docs", "--target-path", str(tmp_path / "q"), "--target-collection", "li",
                     "--verify")  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    with pg_server.admin("vexdb") as conn:
        conn.execute("DELETE FROM data_docs WHERE node_id IN (%s, %s)", (str(uuid.UUID(int=1)), str(uuid.UUID(int=2))))
        conn.execute("UPDATE data_docs SET text = 'changed' WHERE node_id = %s", (str(uuid.UUID(int=3)),))
    result = run_vex("migrate", "--from", "qdrant", "--to", "pgvector", "--source-path", str(tmp_path / "q"),
                     "--source-collection", "li", "--target-url", url, "--layout", "llamaindex",
                     "--target-collection", "docs",
                     "--verify")  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    second = tmp_path / "again.vmig.jsonl"
    assert run_vex("export", "--from", "pgvector", "--url", url, "--layout", "llamaindex", "--collection", "docs",
                   "--output", str(second)).returncode == 0  # fmt: skip
    restored = read_vmig(second)
    assert sorted(restored) == sorted(original)
    for key, record in original.items():
        for field in ("text", "metadata", "vector"):
            assert restored[key][field] == record[field], (key, field)
    with pg_server.admin("vexdb") as conn:
        assert conn.execute("SELECT count(*) FROM data_docs").fetchone()[0] == 10, "no node doubled"


def test_llamaindex_rows_page_by_their_serial_key(pg_server: PgServer, tmp_path: Path) -> None:
    """node_id has neither an index nor NOT NULL nor uniqueness: pages follow the BIGSERIAL id, so a node_id
    repeated across a page boundary and a NULL node_id each come out (the latter under its id), and a
    re-import replaces those rows instead of adding to them."""
    make_llamaindex_table(pg_server, "paged")
    with pg_server.admin("vexdb") as conn:
        for i, node in enumerate(["n-9", "n-2", "dup", "dup", None, "n-1", "n-8", "n-3", "n-10", "n-4", "n-5"]):
            conn.execute("INSERT INTO data_paged (text, metadata_, node_id, embedding) VALUES (%s, '{}', %s, %s)",
                         (f"text {i}", node, _vec(i)))  # fmt: skip
        null_key = conn.execute("SELECT id FROM data_paged WHERE node_id IS NULL").fetchone()[0]
    options = PgvectorOptions(url=pg_server.dsn(), layout="llamaindex", collection="paged")
    connector = PgvectorConnector(options)
    connector.page_size = 2
    with connector:
        pages = list(connector.extract(None, None))
        ids = [i for page in pages for i in page.batch.column("id").to_pylist()]
        resumed = [
            i for page in connector.extract(None, pages[1].next_cursor) for i in page.batch.column("id").to_pylist()
        ]
    assert ids == ["n-9", "n-2", "dup", "dup", str(null_key), "n-1", "n-8", "n-3", "n-10", "n-4", "n-5"]
    assert resumed == ids[4:]
    out = tmp_path / "paged.vmig.jsonl"
    result = run_vex("export", "--from", "pgvector", "--url", pg_server.dsn(), "--layout", "llamaindex",
                     "--collection", "paged", "--output", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    result = run_vex("import", "--from", str(out), "--to", "pgvector", "--url", pg_server.dsn(), "--layout",
                     "llamaindex", "--collection", "paged")  # fmt: skip
    assert result.returncode == 1, "the two 'dup' rows become one: the import says so"
    assert "1 records replaced by a later record with the same id" in result.stderr
    with pg_server.admin("vexdb") as conn:
        rows = conn.execute("SELECT node_id, count(*) FROM data_paged GROUP BY node_id").fetchall()
    counts = dict(rows)
    assert sum(counts.values()) == 10 and counts["dup"] == 1 and counts[str(null_key)] == 1 and None not in counts


def test_first_load_of_a_table_without_unique_ids_still_replaces_its_own_rows(pg_server: PgServer) -> None:
    """Into an empty LlamaIndex table the delete only looks at ids this run wrote: an id that comes again in a
    later batch (a source that repeats ids, as LlamaIndex's own tables may) still replaces its row, and a
    second run (the table no longer empty) replaces them all."""

    make_llamaindex_table(pg_server, "fresh")
    records = sample_records(count=5, odd_ones=False)
    records[3]["id"], records[3]["text"] = records[0]["id"], "the later one"
    for _ in range(2):
        load_into_llamaindex(pg_server, "fresh", records, batch=2)
        with pg_server.admin("vexdb") as conn:
            rows = conn.execute("SELECT node_id, text FROM data_fresh ORDER BY node_id").fetchall()
        assert rows == sorted([(r["id"], r["text"]) for r in records if r is not records[0]])


def _table_scans(pg_server: PgServer, table: str, at_least: int = 0) -> int:
    """How many sequential scans PostgreSQL has counted on `table`. A server process hands its counts over
    when it ends, a moment after its client closes: wait (boundedly) until they reach `at_least`."""
    for _ in range(50):
        with pg_server.admin("vexdb") as conn:
            scans = conn.execute("SELECT seq_scan FROM pg_stat_user_tables WHERE relname = %s", (table,)).fetchone()
        if scans[0] >= at_least:
            return int(scans[0])
        time.sleep(0.1)
    return int(scans[0])


def test_a_reimport_into_a_table_without_unique_ids_reads_it_once(pg_server: PgServer) -> None:
    """`node_id` has no index: a delete by id for every batch scanned the whole table each time, so a
    re-import grew with the square of the table. The run lists the rows' ids and keys once and deletes
    by key: one scan of the table per run, whatever the number of batches."""

    make_llamaindex_table(pg_server, "rescan")
    records = sample_records(count=12, odd_ones=False)
    for run in range(2):
        before = _table_scans(pg_server, "data_rescan")
        load_into_llamaindex(pg_server, "rescan", records, batch=2)
        scans = _table_scans(pg_server, "data_rescan", at_least=before + 1) - before
        assert scans == 1, f"run {run}: {scans} scans of the table for 6 batches"
    with pg_server.admin("vexdb") as conn:
        rows = conn.execute("SELECT node_id, text FROM data_rescan ORDER BY node_id").fetchall()
    assert rows == sorted((r["id"], r["text"]) for r in records)


def test_tables_of_the_user_named_like_vex_s_temporary_ones_are_left_alone(pg_server: PgServer) -> None:
    """vex's working tables are temporary (`pg_temp`). Named without their schema, a statement that runs
    before the temporary table exists (`DROP TABLE IF EXISTS vex_rows`) reaches the user's own table of
    that name in the search path."""
    import psycopg

    make_llamaindex_table(pg_server, "namesake")
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:  # the vex role owns these, so it could drop them
        for name in ("vex_rows", "vex_stage"):
            conn.execute(f"DROP TABLE IF EXISTS public.{name}")
            conn.execute(f"CREATE TABLE public.{name} (note text)")
            conn.execute(f"INSERT INTO public.{name} VALUES ('the user''s')")
    records = sample_records(count=4, odd_ones=False)
    for _ in range(2):
        load_into_llamaindex(pg_server, "namesake", records, batch=4)
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        for name in ("vex_rows", "vex_stage"):
            assert conn.execute(f"SELECT note FROM public.{name}").fetchall() == [("the user's",)]
            conn.execute(f"DROP TABLE public.{name}")
        assert conn.execute("SELECT count(*) FROM data_namesake").fetchone() == (4,)


def test_a_llamaindex_table_with_a_search_column_gets_it_filled_and_replaced(
    pg_server: PgServer,
) -> None:
    """A NOT NULL tsvector column (a user's full-text search) added to a LlamaIndex table is filled by
    PostgreSQL from the text, and a re-import still replaces each row (found through the run's list of
    rows) and refills the column from the new text."""

    make_llamaindex_table(pg_server, "searched")
    with pg_server.admin("vexdb") as conn:
        conn.execute("ALTER TABLE data_searched ADD COLUMN text_tsv tsvector NOT NULL")
    records = sample_records(count=6, odd_ones=False)
    for run in range(2):
        for record in records:
            record["text"] = f"{record['id']} run {run}"
        load_into_llamaindex(pg_server, "searched", records, batch=3)
    with pg_server.admin("vexdb") as conn:
        rows = conn.execute(
            "SELECT node_id, text, text_tsv = to_tsvector('pg_catalog.english', text) FROM data_searched"
            " ORDER BY node_id"
        ).fetchall()
    assert rows == [(r["id"], f"{r['id']} run 1", True) for r in records]


def test_a_listed_row_given_another_id_meanwhile_is_not_replaced(pg_server: PgServer) -> None:
    """The run lists each row's id and key when it starts. A row another writer gives a new id after that
    is no longer a row of the old id: a later batch of the old id must leave it alone."""
    from tests.records import to_batch

    make_llamaindex_table(pg_server, "moved")
    records = sample_records(count=4, odd_ones=False)
    load_into_llamaindex(pg_server, "moved", records, batch=4)
    connector = PgvectorConnector(PgvectorOptions(url=pg_server.dsn(), layout="llamaindex", collection="moved"))
    with connector:
        connector.ensure_target(8, "cosine")
        connector.load(to_batch(records[:1]))  # the rows are listed with this first batch
        with pg_server.admin("vexdb") as conn:
            conn.execute("UPDATE data_moved SET node_id = 'renamed' WHERE node_id = %s", (records[1]["id"],))
        connector.load(to_batch(records[1:]))
        connector.finish()
    with pg_server.admin("vexdb") as conn:
        rows = conn.execute("SELECT node_id, text FROM data_moved ORDER BY node_id").fetchall()
    assert rows == sorted([*((r["id"], r["text"]) for r in records), ("renamed", records[1]["text"])])


def test_integer_keyed_table_exports_every_row_across_pages(pg_server: PgServer, tmp_path: Path) -> None:
    """Pages follow the key's own order: ordered by the key as text (1, 10, 11, ..., 2), the keyset after a
    page skipped every row between, and a 30-row table exported 22."""
    records = _integer_keyed(pg_server, "int_paged", [str(n) for n in range(1, 31)])
    result = run_vex("import", "--from", str(write_vmig(tmp_path / "i.vmig.jsonl", records)), "--to", "pgvector",
                     "--url", pg_server.dsn(), "--table", "int_paged", "--id-column", "item_id")  # fmt: skip
    assert result.returncode == 0, result.stderr
    connector = PgvectorConnector(PgvectorOptions(url=pg_server.dsn(), table="int_paged", id_column="item_id"))
    connector.page_size = 7
    with connector:
        ids = [i for page in connector.extract(None, None) for i in page.batch.column("id").to_pylist()]
    assert ids == [str(n) for n in range(1, 31)]


def test_llamaindex_table_in_its_own_schema(pg_server: PgServer, tmp_path: Path) -> None:
    """PGVectorStore(schema_name="RAG", table_name="Notes") keeps its rows in rag.data_notes."""
    with pg_server.admin("vexdb") as conn:
        conn.execute("DROP SCHEMA IF EXISTS rag CASCADE")
        conn.execute("CREATE SCHEMA rag")
        conn.execute("SET search_path TO rag, public")
        conn.execute(LLAMAINDEX_DDL.replace("data_docs", "data_notes").replace("docs_idx_1", "notes_idx_1"))
        conn.execute("GRANT USAGE ON SCHEMA rag TO vex")
        conn.execute("GRANT ALL ON rag.data_notes TO vex")
        conn.execute("INSERT INTO rag.data_notes (text, metadata_, node_id, embedding) VALUES ('n', '{}', 'n-1', %s)",
                     (_vec(7),))  # fmt: skip
    out = tmp_path / "notes.vmig.jsonl"
    result = run_vex("export", "--from", "pgvector", "--url", pg_server.dsn(), "--layout", "llamaindex",
                     "--collection", "RAG.Notes", "--output", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert list(read_vmig(out)) == ["n-1"]


def test_table_names_are_read_as_postgresql_reads_them(pg_server: PgServer, tmp_path: Path) -> None:
    """An unquoted name folds to lower case, as in psql; a double-quoted one is taken as written."""
    with pg_server.admin("vexdb") as conn:
        for ddl_name, row in (("MyDocs", "folded"), ('"MyDocs"', "quoted")):
            conn.execute(f"DROP TABLE IF EXISTS {ddl_name}")
            conn.execute(f"CREATE TABLE {ddl_name} (id text PRIMARY KEY, embedding vector(2) NOT NULL)")
            conn.execute(f"INSERT INTO {ddl_name} VALUES ('{row}', '[1,2]')")
            conn.execute(f"GRANT ALL ON {ddl_name} TO vex")
    for given, expected in (("MyDocs", "folded"), ("public.MYDOCS", "folded"), ('"MyDocs"', "quoted")):
        out = tmp_path / "t.vmig.jsonl"
        result = run_vex("export", "--from", "pgvector", "--url", pg_server.dsn(), "--table", given,
                         "--output", str(out))  # fmt: skip
        assert result.returncode == 0, (given, result.stderr)
        assert list(read_vmig(out)) == [expected], given


@pytest.mark.parametrize(
    ("given", "parts"),
    [("docs", ("docs",)), ("Sch.Docs", ("sch", "docs")), ('"My.T"', ("My.T",)), ('s."a""b"', ("s", 'a"b')),
     (" Docs ", ("docs",)), ("ÄDocs", ("Ädocs",))],
)  # fmt: skip
def test_split_name(given: str, parts: tuple[str, ...]) -> None:
    assert split_name(given) == parts


@pytest.mark.parametrize("given", ['"docs', "a.b.c", "", "a.", '"a"x', '""'])
def test_split_name_refuses(given: str) -> None:
    with pytest.raises(UsageError):
        split_name(given)


def test_namespace_filter_on_a_table_without_namespaces(pg_server: PgServer, tmp_path: Path) -> None:
    with pg_server.admin("vexdb") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bare_t (id text PRIMARY KEY, embedding vector(2) NOT NULL)")
        conn.execute("GRANT ALL ON bare_t TO vex")
    result = run_vex("export", "--from", "pgvector", "--url", pg_server.dsn(), "--table", "bare_t",
                     "--namespace", "x", "--output", str(tmp_path / "x.vmig.jsonl"))  # fmt: skip
    assert result.returncode == 2
    assert "bare_t has no namespace column and no metadata column" in result.stderr
    assert not (tmp_path / "x.vmig.jsonl").exists()


LANGCHAIN_V2_DDL = """
-- langchain-postgres v2 (langchain_postgres/v2/engine.py): PGEngine.init_vectorstore_table("{name}", 8)
CREATE TABLE "public"."{name}"(
    "langchain_id" UUID PRIMARY KEY,
    "content" TEXT NOT NULL,
    "embedding" vector(8) NOT NULL{metadata}
);
"""
_LANGCHAIN_V2_MAPPING = ["--id-column", "langchain_id", "--text-column", "content", "--metadata-column",
                         "langchain_metadata"]  # fmt: skip


def test_langchain_pgvectorstore_table_keyed_by_uuid(pg_server: PgServer, tmp_path: Path) -> None:
    """LangChain's PGVectorStore keys rows by a uuid: other ids go in as their UUIDv5 and come back as they were."""
    with pg_server.admin("vexdb") as conn:
        conn.execute("DROP TABLE IF EXISTS lc_store")
        conn.execute(LANGCHAIN_V2_DDL.format(name="lc_store", metadata=',\n    "langchain_metadata" JSON'))
        conn.execute("GRANT ALL ON lc_store TO vex")
        own = uuid.UUID(int=42)
        conn.execute("INSERT INTO lc_store VALUES (%s, 'written by LangChain', %s, '{\"source\": \"a.md\"}')",
                     (own, _vec(1)))  # fmt: skip
    records = sample_records(count=9, odd_ones=False)
    records[1]["id"] = str(uuid.UUID(int=7))  # a UUID goes in as itself
    records[2]["text"] = None  # the content column is NOT NULL
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    url = pg_server.dsn()
    for _ in range(2):  # a re-run upserts the same rows
        result = run_vex("import", "--from", str(source), "--to", "pgvector", "--url", url, "--table", "lc_store",
                         *_LANGCHAIN_V2_MAPPING)  # fmt: skip
        assert result.returncode == 0, result.stderr
    with pg_server.admin("vexdb") as conn:
        keys = {row[0] for row in conn.execute("SELECT langchain_id FROM lc_store")}
    assert len(keys) == 10 and uuid.UUID(int=7) in keys and uuid_for("mem-0000") in keys
    out = tmp_path / "o.vmig.jsonl"
    result = run_vex("export", "--from", "pgvector", "--url", url, "--table", "lc_store", *_LANGCHAIN_V2_MAPPING,
                     "--output", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    back = read_vmig(out)
    assert sorted(back) == sorted([r["id"] for r in records] + [str(own)])
    for record in records:
        got = back[record["id"]]
        assert got["text"] == (record["text"] or ""), record["id"]
        assert np.array_equal(np.asarray(got["vector"], dtype=np.float32), record["vector"])
        assert (got["metadata"], got["namespace"], got["model"]) == (
            record["metadata"], record["namespace"], record["model"]
        )  # fmt: skip
    assert back[str(own)]["metadata"] == {"source": "a.md"}
    # Pages follow the uuid key: a small page size still gives every row once.
    options = PgvectorOptions(url=url, table="lc_store", id_column="langchain_id", text_column="content",
                              metadata_column="langchain_metadata")  # fmt: skip
    connector = PgvectorConnector(options)
    connector.page_size = 3
    with connector:
        paged = [i for page in connector.extract(None, None) for i in page.batch.column("id").to_pylist()]
    assert sorted(paged) == sorted(back)


def test_langchain_hybrid_search_table_gets_its_search_column(pg_server: PgServer, tmp_path: Path) -> None:
    """PGVectorStore with a HybridSearchConfig adds `content_tsv TSVECTOR NOT NULL`: an import fills it from the
    text with the configured text search configuration (also on re-import), and export leaves it out."""
    hybrid = ',\n    "content_tsv" TSVECTOR NOT NULL,\n    "langchain_metadata" JSON'  # engine.py's column order
    with pg_server.admin("vexdb") as conn:
        conn.execute("DROP TABLE IF EXISTS lc_hybrid")
        conn.execute(LANGCHAIN_V2_DDL.format(name="lc_hybrid", metadata=hybrid))
        conn.execute("GRANT ALL ON lc_hybrid TO vex")
    records = sample_records(count=6, odd_ones=False)
    records[0]["text"] = "The running foxes jumped"
    records[1]["text"] = None
    url = pg_server.dsn()
    into = ["--to", "pgvector", "--url", url, "--table", "lc_hybrid", *_LANGCHAIN_V2_MAPPING]
    result = run_vex("import", "--from", str(write_vmig(tmp_path / "a.vmig.jsonl", records)), *into)
    assert result.returncode == 0, result.stderr

    def search_column() -> dict[str, str]:
        with pg_server.admin("vexdb") as conn:
            rows = conn.execute(
                "SELECT content, content_tsv::text, "
                "content_tsv = to_tsvector('pg_catalog.english', content) FROM lc_hybrid"
            ).fetchall()
        assert all(row[2] for row in rows), "every row's search column is its text's, as LangChain writes it"
        return {row[0]: row[1] for row in rows}

    assert len(search_column()) == 6 and search_column()["The running foxes jumped"] == "'fox':3 'jump':4 'run':2"
    records[0]["text"] = "Sleeping cats"
    result = run_vex("import", "--from", str(write_vmig(tmp_path / "b.vmig.jsonl", records[:1])), *into)
    assert result.returncode == 0, result.stderr
    assert search_column()["Sleeping cats"] == "'cat':2 'sleep':1", "re-import updates the search column"
    out = tmp_path / "o.vmig.jsonl"
    result = run_vex("export", "--from", "pgvector", "--url", url, "--table", "lc_hybrid", *_LANGCHAIN_V2_MAPPING,
                     "--output", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    back = read_vmig(out)
    assert sorted(back) == sorted(r["id"] for r in records)
    assert all(back[r["id"]]["metadata"] == r["metadata"] for r in records), "no content_tsv key"
    result = run_vex("import", "--from", str(out), *into, "--tsv-config", "simple")
    assert result.returncode == 0, result.stderr
    with pg_server.admin("vexdb") as conn:
        rows = conn.execute("SELECT content_tsv::text FROM lc_hybrid WHERE content = 'Sleeping cats'").fetchall()
    assert rows == [("'cats':2 'sleeping':1",)]
    result = run_vex("import", "--from", str(out), *into, "--tsv-config", "klingon")
    assert result.returncode == 2 and "--tsv-config klingon: PostgreSQL has no such text search configuration" in (
        result.stderr
    )


def test_langchain_v2_layout_makes_and_reads_pgvectorstore_tables(pg_server: PgServer, tmp_path: Path) -> None:
    """`--layout langchain-v2 --table NAME` is PGVectorStore's column names without three flags, and a missing
    table is created with PGEngine.init_vectorstore_table's DDL (and vex's vector index)."""
    with pg_server.admin("vexdb") as conn:
        conn.execute("DROP TABLE IF EXISTS lc_made")
    records = sample_records(count=9, odd_ones=False)
    records[1]["id"] = str(uuid.UUID(int=7))
    url = pg_server.dsn()
    store = ["--url", url, "--layout", "langchain-v2", "--table", "lc_made"]
    for _ in range(2):  # created, then upserted into
        result = run_vex("import", "--from", str(write_vmig(tmp_path / "s.vmig.jsonl", records)), "--to", "pgvector",
                         *store)  # fmt: skip
        assert result.returncode == 0, result.stderr
    with pg_server.admin("vexdb") as conn:
        columns = conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute "
            "WHERE attrelid = 'lc_made'::regclass AND attnum > 0 ORDER BY attnum"
        ).fetchall()
        keys = {row[0] for row in conn.execute("SELECT langchain_id FROM lc_made")}
        hnsw = conn.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'lc_made' AND indexdef LIKE '%hnsw%'")
        assert hnsw.fetchone()[0] == 1
    assert columns == [("langchain_id", "uuid", True), ("content", "text", True), ("embedding", "vector(8)", True),
                       ("langchain_metadata", "json", False)]  # fmt: skip
    assert len(keys) == 9 and uuid.UUID(int=7) in keys and uuid_for("mem-0000") in keys
    out = tmp_path / "o.vmig.jsonl"
    result = run_vex("export", "--from", "pgvector", *store, "--output", str(out))
    assert result.returncode == 0, result.stderr
    back = read_vmig(out)
    assert sorted(back) == sorted(r["id"] for r in records)
    for record in records:
        got = back[record["id"]]
        assert (got["text"], got["metadata"]) == (record["text"], record["metadata"])
        assert np.array_equal(np.asarray(got["vector"], dtype=np.float32), record["vector"])
    result = run_vex("export", "--from", "pgvector", "--url", url, "--layout", "langchain-v2", "--output", str(out))
    assert result.returncode == 2 and "--layout langchain-v2 needs --table NAME" in result.stderr


def test_langchain_pgvectorstore_metadata_columns(pg_server: PgServer, tmp_path: Path) -> None:
    """PGVectorStore(metadata_columns=[...]) keeps some metadata keys in columns of their own: they come out
    as metadata keys and go back to their columns, the rest to the JSON column."""
    columns = ',\n    "source" TEXT,\n    "page" INTEGER,\n    "langchain_metadata" JSON'
    with pg_server.admin("vexdb") as conn:
        for name in ("lc_cols", "lc_cols_copy"):
            conn.execute(f"DROP TABLE IF EXISTS {name}")
            conn.execute(LANGCHAIN_V2_DDL.format(name=name, metadata=columns))
            conn.execute(f"GRANT ALL ON {name} TO vex")
        conn.execute("INSERT INTO lc_cols VALUES (%s, 'from LangChain', %s, 'a.md', 3, '{\"lang\": \"en\"}'), "
                     "(%s, 'no page', %s, 'b.md', NULL, NULL)",
                     (uuid.UUID(int=1), _vec(1), uuid.UUID(int=2), _vec(2)))  # fmt: skip
    url = pg_server.dsn()
    first, second = tmp_path / "first.vmig.jsonl", tmp_path / "second.vmig.jsonl"
    mapping = ["--id-column", "langchain_id", "--text-column", "content", "--metadata-column", "langchain_metadata"]
    assert run_vex("export", "--from", "pgvector", "--url", url, "--table", "lc_cols", *mapping,
                   "--output", str(first)).returncode == 0  # fmt: skip
    records = read_vmig(first)
    assert records[str(uuid.UUID(int=1))]["metadata"] == {"lang": "en", "source": "a.md", "page": 3}
    assert records[str(uuid.UUID(int=2))]["metadata"] == {"source": "b.md"}  # a NULL column is no key
    result = run_vex("import", "--from", str(first), "--to", "pgvector", "--url", url, "--table", "lc_cols_copy",
                     *mapping)  # fmt: skip
    assert result.returncode == 0, result.stderr
    with pg_server.admin("vexdb") as conn:
        rows = conn.execute("SELECT source, page, langchain_metadata::text FROM lc_cols_copy ORDER BY langchain_id")
        assert [(a, b, json.loads(c)) for a, b, c in rows] == [("a.md", 3, {"lang": "en"}), ("b.md", None, {})]
    assert run_vex("export", "--from", "pgvector", "--url", url, "--table", "lc_cols_copy", *mapping,
                   "--output", str(second)).returncode == 0  # fmt: skip
    assert read_vmig(second) == records
    result = run_vex("migrate", "--from", "jsonl", "--source-path", str(first), "--to", "pgvector", "--target-url", url,
                     "--table", "lc_cols_copy", *mapping, "--verify", "--json")  # fmt: skip
    assert result.returncode == 0 and _last(result)["verify"]["ok"], result.stdout + result.stderr


def test_columns_no_field_maps_to_travel_as_metadata(pg_server: PgServer, tmp_path: Path) -> None:
    """A user's table with columns of its own: they are exported as metadata keys and filled from them on
    import; a column no record names keeps its default, and serial or generated columns are the server's."""
    with pg_server.admin("vexdb") as conn:
        conn.execute("DROP TABLE IF EXISTS notes")
        conn.execute(
            "CREATE TABLE notes (id text PRIMARY KEY, embedding vector(8) NOT NULL, text text, metadata jsonb, "
            "agent_id text, importance double precision, added timestamptz NOT NULL DEFAULT now(), model text, "
            "serial_no bigserial, body_length int GENERATED ALWAYS AS (length(text)) STORED)"
        )
        conn.execute("GRANT ALL ON notes TO vex")
        conn.execute("GRANT ALL ON SEQUENCE notes_serial_no_seq TO vex")
    records = sample_records(count=6, odd_ones=False)
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    url = pg_server.dsn()
    for _ in range(2):  # the second run upserts
        result = run_vex("import", "--from", str(source), "--to", "pgvector", "--url", url, "--table", "notes")
        assert result.returncode == 0, result.stderr
    with pg_server.admin("vexdb") as conn:
        rows = conn.execute("SELECT id, agent_id, importance, added, metadata FROM notes ORDER BY id").fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (rec["id"], rec["metadata"]["agent_id"], rec["metadata"]["importance"]) for rec in records
    ]
    assert all(r[3] is not None and "agent_id" not in r[4] and "importance" not in r[4] for r in rows)
    out = tmp_path / "o.vmig.jsonl"
    result = run_vex("export", "--from", "pgvector", "--url", url, "--table", "notes", "--output", str(out))
    assert result.returncode == 0, result.stderr
    back = read_vmig(out)
    for record in records:
        metadata = dict(back[record["id"]]["metadata"])
        assert isinstance(metadata.pop("added"), str) and "serial_no" not in metadata and "body_length" not in metadata
        assert back[record["id"]]["model"] == record["model"] and "model" not in metadata  # a record field, not a key
        assert metadata == record["metadata"], record["id"]


def _integer_keyed(pg_server: PgServer, table: str, ids: list[str]) -> list[dict[str, Any]]:
    """A new table keyed by a bigint `item_id`, and records with these ids for it."""
    with pg_server.admin("vexdb") as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table} (item_id bigint PRIMARY KEY, embedding vector(8) NOT NULL, text text, "
                     "metadata jsonb)")  # fmt: skip
        conn.execute(f"GRANT ALL ON {table} TO vex")
    records = sample_records(count=len(ids), odd_ones=False)
    for record, new_id in zip(records, ids, strict=True):
        record["id"] = new_id
    return records


def test_table_keyed_by_an_integer_column(pg_server: PgServer, tmp_path: Path) -> None:
    """Whole-number ids go into a bigint key (`007` as 7, kept under `_vex`); an id it cannot hold is one
    failed record, not a failed run."""
    records = _integer_keyed(pg_server, "int_items", ["1", "2", "007", "-5", "abc", "99999999999999999999"])
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    url = pg_server.dsn()
    result = run_vex("import", "--from", str(source), "--to", "pgvector", "--url", url, "--table", "int_items",
                     "--id-column", "item_id", "--json")  # fmt: skip
    summary = _last(result)
    assert result.returncode == 1 and summary["upserted"] == 4 and summary["failed"] == 2
    assert {entry["id"] for entry in summary["failed_sample"]} == {"abc", "99999999999999999999"}
    with pg_server.admin("vexdb") as conn:
        assert sorted(row[0] for row in conn.execute("SELECT item_id FROM int_items")) == [-5, 1, 2, 7]
    out = tmp_path / "o.vmig.jsonl"
    result = run_vex("export", "--from", "pgvector", "--url", url, "--table", "int_items", "--id-column", "item_id",
                     "--output", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    back = read_vmig(out)
    assert sorted(back) == sorted(["1", "2", "007", "-5"])
    assert back["007"]["metadata"] == records[2]["metadata"] and back["007"]["text"] == records[2]["text"]


def _import_7_8_007_9_twice(tmp_path: Path, records: list[dict], into: list[str]) -> None:
    """Records with ids 7, 8, 007, 9 into a table keyed by an integer: 3 upserted and 007 failed naming 7;
    then 007 and 7 again with new texts: 7 is updated, 007 fails again."""
    result = run_vex("import", "--from", str(write_vmig(tmp_path / "a.vmig.jsonl", records)), *into, "--json")
    summary = _last(result)
    assert result.returncode == 1 and summary["upserted"] == 3 and summary["failed"] == 1, result.stdout
    assert summary["failed_sample"][0]["id"] == "007"
    assert "under key 7, which holds another record, id '7'" in summary["failed_sample"][0]["reason"]
    records[0]["text"], records[2]["text"] = "seven again", "double-oh-seven"
    later = write_vmig(tmp_path / "b.vmig.jsonl", [records[2], records[0]])
    summary = _last(run_vex("import", "--from", str(later), *into, "--json"))
    assert summary["upserted"] == 1 and summary["failed"] == 1 and summary["failed_sample"][0]["id"] == "007"


def test_a_key_two_ids_share_is_not_silently_taken_over(pg_server: PgServer, tmp_path: Path) -> None:
    """`7` and `007` share the integer key 7: the record there first stays, the other is one failed record
    naming the holder, in one batch and across runs; the same id again is an ordinary update."""
    records = _integer_keyed(pg_server, "int_shared", ["7", "8", "007", "9"])
    mapping = ["--to", "pgvector", "--url", pg_server.dsn(), "--table", "int_shared", "--id-column", "item_id"]
    _import_7_8_007_9_twice(tmp_path, records, mapping)
    with pg_server.admin("vexdb") as conn:
        rows = dict(conn.execute("SELECT item_id, text FROM int_shared").fetchall())
    assert rows == {7: "seven again", 8: records[1]["text"], 9: records[3]["text"]}


def test_uuid_keyed_table_without_metadata_refuses_other_ids(pg_server: PgServer, tmp_path: Path) -> None:
    with pg_server.admin("vexdb") as conn:
        conn.execute("DROP TABLE IF EXISTS lc_bare")
        conn.execute(LANGCHAIN_V2_DDL.format(name="lc_bare", metadata=""))
        conn.execute("GRANT ALL ON lc_bare TO vex")
    mapping = ["--table", "lc_bare", "--id-column", "langchain_id", "--text-column", "content"]
    records = sample_records(count=3, odd_ones=False)
    result = run_vex("import", "--from", str(write_vmig(tmp_path / "s.vmig.jsonl", records)), "--to", "pgvector",
                     "--url", pg_server.dsn(), *mapping)  # fmt: skip
    assert result.returncode == 2 and "id 'mem-0000' would not come back as it is" in result.stderr
    for record in records:
        record["id"] = str(uuid.uuid4())
    result = run_vex("import", "--from", str(write_vmig(tmp_path / "u.vmig.jsonl", records)), "--to", "pgvector",
                     "--url", pg_server.dsn(), *mapping)  # fmt: skip
    assert result.returncode == 0, result.stderr
    with pg_server.admin("vexdb") as conn:
        assert conn.execute("SELECT count(*) FROM lc_bare").fetchone()[0] == 3


def test_explicit_column_mapping(pg_server: PgServer, tmp_path: Path) -> None:
    with pg_server.admin("vexdb") as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS my_items "
            "(item_key text PRIMARY KEY, vec vector(8), body text, attrs jsonb, tenant text)"
        )
        conn.execute("GRANT ALL ON my_items TO vex")
    mapping = ["--table", "my_items", "--id-column", "item_key", "--vector-column", "vec", "--text-column", "body",
               "--metadata-column", "attrs", "--namespace-column", "tenant"]  # fmt: skip
    records = sample_records(count=9, odd_ones=False)
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    result = run_vex("import", "--from", str(source), "--to", "pgvector", "--url", pg_server.dsn(), *mapping)
    assert result.returncode == 0, result.stderr
    with pg_server.admin("vexdb") as conn:
        assert conn.execute("SELECT count(*) FROM my_items WHERE tenant = 'trading'").fetchone()[0] == 3
    out = tmp_path / "o.vmig.jsonl"
    assert (
        run_vex("export", "--from", "pgvector", "--url", pg_server.dsn(), *mapping, "--output", str(out)).returncode
        == 0
    )
    back = read_vmig(out)
    assert back["mem-0004"]["metadata"] == records[4]["metadata"] and back["mem-0004"]["model"] == records[4]["model"]
    result = run_vex("export", "--from", "pgvector", "--url", pg_server.dsn(), "--table", "my_items",
                     "--id-column", "nope", "--output", str(tmp_path / "x.vmig.jsonl"))  # fmt: skip
    assert result.returncode == 2 and "has no column nope" in result.stderr


_METADATA_AS_STORED = {
    "plain": ('{"a": 1, "tag": "x"}', {"a": 1, "tag": "x"}),
    "null": (None, {}),
    "not-an-object": ("[1, 2]", {}),
    "quoted-key-in-a-value": ('{"note": "say \\"_vex\\" here"}', {"note": 'say "_vex" here'}),
    "nested": ('{"a": {"b": [1, 2]}}', {"a": {"b": [1, 2]}}),
}
"""Metadata a user's own table may hold (the jsonb text PostgreSQL gives back), and what vex reads from it."""


@pytest.mark.parametrize("native", [True, False], ids=["native-columns", "mapped-columns"])
def test_metadata_of_existing_rows_reads_back_exactly(pg_server: PgServer, tmp_path: Path, native: bool) -> None:
    """Rows vex did not write: every metadata shape reads back as it was; `_vex` is lifted out where it is
    vex's own (a top-level key of a mapped table), and is only text where it sits inside a value. The native
    table has a column for every field, so vex keeps nothing in its metadata: a `_vex` key there is a user's."""
    table = "meta_native" if native else "meta_mapped"
    extras = (", namespace text, model text, created_at timestamptz, score double precision, source_store text, "
              "extra jsonb")  # fmt: skip
    rows = _METADATA_AS_STORED
    reserved = '{"k": 2, "_vex": {"model": "m-1", "score": 0.5, "namespace": "ns-1"}}'
    with pg_server.admin("vexdb") as conn:
        conn.execute(f"CREATE TABLE {table} (id text PRIMARY KEY, embedding vector(2) NOT NULL, text text, "
                     f"metadata jsonb{extras if native else ''})")  # fmt: skip
        conn.execute(f"GRANT ALL ON {table} TO vex")
        for key, (stored, _) in [*rows.items(), ("reserved", (reserved, None))]:
            conn.execute(f"INSERT INTO {table} (id, embedding, text, metadata) VALUES (%s, '[1,2]', 't', %s)",
                         (key, stored))  # fmt: skip
    mapping = [] if native else ["--id-column", "id", "--vector-column", "embedding", "--metadata-column", "metadata"]
    out = tmp_path / "o.vmig.jsonl"
    result = run_vex("export", "--from", "pgvector", "--url", pg_server.dsn(), "--table", table, *mapping,
                     "--output", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    back = read_vmig(out)
    for key, (_, expected) in rows.items():
        assert back[key]["metadata"] == expected, key
        assert back[key]["model"] is None and back[key]["source_store"] == "pgvector", key
    assert back["reserved"]["metadata"] == (json.loads(reserved) if native else {"k": 2})
    # In flight, too, metadata is always a JSON object: other stores' loaders take it as it is.
    connector = PgvectorConnector(PgvectorOptions(url=pg_server.dsn(), table=table, id_column="id",
                                                  vector_column="embedding", metadata_column="metadata"))  # fmt: skip
    with connector:
        pages = list(connector.extract(None, None))
    texts = [text for page in pages for text in page.batch.column("metadata").to_pylist()]
    assert len(texts) == len(rows) + 1 and all(isinstance(json.loads(text), dict) for text in texts)
    if native:  # a native table keeps these in its own columns; `_vex` in its metadata is the user's key
        assert back["reserved"]["model"] is None and back["reserved"]["namespace"] is None
    else:
        assert (back["reserved"]["model"], back["reserved"]["score"], back["reserved"]["namespace"]) == (
            "m-1",
            0.5,
            "ns-1",
        )


def test_refused_record_is_counted_and_the_rest_loaded(pg_server: PgServer, tmp_path: Path) -> None:
    records = sample_records(count=6, odd_ones=False)
    records[2]["text"] = "a NUL \x00 byte PostgreSQL text cannot hold"
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    result = run_vex("import", "--from", str(source), "--to", "pgvector", "--url", pg_server.dsn(), "--table", "nul_t",
                     "--json")  # fmt: skip
    assert result.returncode == 1
    summary = _last(result)
    assert summary["upserted"] == 5 and summary["failed"] == 1 and summary["failed_sample"][0]["id"] == "mem-0002"
    with pg_server.admin("vexdb") as conn:
        assert conn.execute("SELECT count(*) FROM nul_t").fetchone()[0] == 5


# -- bad input ------------------------------------------------------------------------------


def _import(source: Path, *flags: str):  # type: ignore[no-untyped-def]
    return run_vex("import", "--from", str(source), "--to", "pgvector", *flags)


def test_wrong_password(pg_server: PgServer, tmp_path: Path) -> None:
    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=3, odd_ones=False))
    result = _import(source, "--url", pg_server.dsn(password="not-the-password-123"), "--table", "t_pw")
    assert result.returncode == 4 and "password authentication failed" in result.stderr, "refused credentials: 4"
    assert "not-the-password-123" not in result.stderr + result.stdout and "Traceback" not in result.stderr


def test_unreachable_server(pg_server: PgServer, tmp_path: Path) -> None:
    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=3, odd_ones=False))
    result = _import(source, "--url", pg_server.dsn(host="127.0.0.1", port=free_port()), "--table", "t_x")
    assert result.returncode == 4 and "unreachable" in result.stderr and "Traceback" not in result.stderr
    _no_secret(result, pg_server)


def test_missing_extension_without_rights(pg_server: PgServer, tmp_path: Path) -> None:
    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=3, odd_ones=False))
    result = _import(source, "--url", pg_server.dsn(database="vex_noext"), "--table", "t")
    assert result.returncode == 2 and "CREATE EXTENSION vector" in result.stderr
    _no_secret(result, pg_server)


def test_existing_table_of_other_dims(pg_server: PgServer, tmp_path: Path) -> None:
    small = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=3, odd_ones=False))
    assert _import(small, "--url", pg_server.dsn(), "--table", "t_dims").returncode == 0
    wide = write_vmig(tmp_path / "w.vmig.jsonl", sample_records(count=3, dims=12, odd_ones=False))
    result = _import(wide, "--url", pg_server.dsn(), "--table", "t_dims")
    assert result.returncode == 2 and "nothing would fit" in result.stderr
    with pg_server.admin("vexdb") as conn:
        assert conn.execute("SELECT count(*) FROM t_dims").fetchone()[0] == 3


def test_table_without_primary_key(pg_server: PgServer, tmp_path: Path) -> None:
    with pg_server.admin("vexdb") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS no_pk (id text, embedding vector(8), text text, metadata jsonb)")
        conn.execute("GRANT ALL ON no_pk TO vex")
    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=3, odd_ones=False))
    result = _import(source, "--url", pg_server.dsn(), "--table", "no_pk")
    assert result.returncode == 2 and "no primary key" in result.stderr
    with pg_server.admin("vexdb") as conn:
        assert conn.execute("SELECT count(*) FROM no_pk").fetchone()[0] == 0


def test_schema_that_does_not_exist(pg_server: PgServer, tmp_path: Path) -> None:
    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=3, odd_ones=False))
    result = _import(source, "--url", pg_server.dsn(), "--table", "nowhere.t")
    assert result.returncode == 2 and "schema nowhere does not exist" in result.stderr


# -- an export while others write ---------------------------------------------------------------


def _churning_table(pg_server: PgServer, table: str, rows: int) -> set[str]:
    """A native table of `rows` rows, ids `r0000000`, `r0000001`, ... (text order is number order); its ids."""
    with pg_server.admin("vexdb") as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(
            f"CREATE TABLE {table} (id text PRIMARY KEY, embedding vector(8) NOT NULL, text text, metadata jsonb, "
            "namespace text, model text, created_at timestamptz, score double precision, source_store text, "
            "extra jsonb)"
        )
        conn.execute(f"GRANT ALL ON {table} TO vex")
        conn.execute(
            f"INSERT INTO {table} (id, embedding, text) SELECT 'r' || lpad(g::text, 7, '0'), "
            "'[1,2,3,4,5,6,7,8]', 'row ' || g FROM generate_series(0, %s) g",
            (rows - 1,),
        )
    return {f"r{i:07d}" for i in range(rows)}


class _Churn:
    """Another client of a `_churning_table`, on its own connection and thread: each of its transactions
    inserts the next id and deletes the lowest, so every state it commits holds the same number of rows,
    a run of consecutive ids."""

    def __init__(self, pg_server: PgServer, table: str, next_id: int) -> None:
        import threading

        import psycopg

        self.conn = psycopg.connect(pg_server.dsn(), autocommit=True)
        self.table, self.next_id, self.commits = table, next_id, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            with self.conn.transaction():
                self.conn.execute(f"INSERT INTO {self.table} (id, embedding) VALUES (%s, '[1,1,1,1,1,1,1,1]')",
                                  (f"r{self.next_id:07d}",))  # fmt: skip
                self.conn.execute(f"DELETE FROM {self.table} WHERE id = (SELECT min(id) FROM {self.table})")
            self.next_id += 1
            self.commits += 1
            time.sleep(0.001)

    def __enter__(self) -> _Churn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        self.conn.close()

    def more(self) -> None:
        """Wait (boundedly) until at least one more transaction is committed."""
        seen, deadline = self.commits, time.monotonic() + 10
        while self.commits == seen and time.monotonic() < deadline:
            time.sleep(0.001)
        assert self.commits > seen, "the writer is stuck"


def _terminate(pg_server: PgServer, *pids: int) -> None:
    with pg_server.admin("vexdb") as conn:
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def _snapshot_holder(pg_server: PgServer) -> int:
    from connectors.pgvector.snapshot import SNAPSHOT_APPLICATION

    with pg_server.admin("vexdb") as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                            (SNAPSHOT_APPLICATION,)).fetchall()  # fmt: skip
    assert len(rows) == 1, rows
    return int(rows[0][0])


def _export_while_churning(pg_server: PgServer, table: str, rows: int, fault: Any = None) -> list[str]:
    """Export `table` page by page (10 rows a page) through the pipeline's reader, retrying a lost connection
    as the pipeline does, while a `_Churn` commits at least one transaction between any two pages. It starts
    after the first page: the export's moment comes before any of its writes. `fault(connector)` runs
    after the fifth page."""
    from engine.chunks import ChunkReader
    from vmig.errors import TransientError

    connector = PgvectorConnector(PgvectorOptions(url=pg_server.dsn(), table=table))
    connector.page_size = 10
    ids: list[str] = []
    with connector:
        reader = ChunkReader(connector, None, None)
        ids += reader.next_chunk(10).batch.column("id").to_pylist()
        with _Churn(pg_server, table, rows) as churn:
            retries = 0
            while not reader.finished:
                churn.more()
                if len(ids) == 50 and fault is not None:
                    fault(connector)
                try:
                    ids += reader.next_chunk(10).batch.column("id").to_pylist()
                except TransientError:
                    retries += 1
                    assert retries == 1
            assert churn.commits >= rows // 10 - 1
        assert fault is None or retries == 1, "the fault cost the reading connection"
    return ids


def test_an_export_reads_one_moment_while_another_client_writes(pg_server: PgServer) -> None:
    """Each page was its own transaction: a row deleted after its page was read and one inserted before its
    page was read both came out, more rows than the table ever held. Now all pages read one snapshot."""
    before = _churning_table(pg_server, "churn_plain", 200)
    ids = _export_while_churning(pg_server, "churn_plain", 200)
    assert len(ids) == 200 and set(ids) == before


def test_an_export_keeps_its_moment_across_a_lost_connection(pg_server: PgServer) -> None:
    """The reading connection is lost mid-export: the retry's new connection imports the snapshot that a
    second connection holds, and reads on as of the same moment."""
    before = _churning_table(pg_server, "churn_lost", 200)

    def lose_reader(connector: PgvectorConnector) -> None:
        assert connector.session.backend_pid is not None
        _terminate(pg_server, connector.session.backend_pid)

    ids = _export_while_churning(pg_server, "churn_lost", 200, lose_reader)
    assert len(ids) == 200 and set(ids) == before


def test_an_export_that_lost_its_snapshot_stops_and_says_so(pg_server: PgServer) -> None:
    """Reader and snapshot holder both lost: reading on would mix two moments, so the export fails, not
    retried, with what to do."""
    from vmig.errors import StoreError

    _churning_table(pg_server, "churn_gone", 200)

    def lose_both(connector: PgvectorConnector) -> None:
        assert connector.session.backend_pid is not None
        _terminate(pg_server, connector.session.backend_pid, _snapshot_holder(pg_server))

    with pytest.raises(StoreError, match="lost in the middle of the export, and with it the snapshot") as failed:
        _export_while_churning(pg_server, "churn_gone", 200, lose_both)
    assert "Run it again" in str(failed.value)


def test_export_through_the_cli_while_another_client_writes(pg_server: PgServer, tmp_path: Path) -> None:
    """The whole command, pages of 5,000: every committed state of the table is a run of 20,000 consecutive
    ids, and so is the file."""
    rows = 20_000
    _churning_table(pg_server, "churn_cli", rows)
    out = tmp_path / "churn.vmig.jsonl"
    with _Churn(pg_server, "churn_cli", rows) as churn:
        churn.more()
        result = run_vex("export", "--from", "pgvector", "--url", pg_server.dsn(), "--table", "churn_cli",
                         "--output", str(out), "--json")  # fmt: skip
        commits = churn.commits
    assert result.returncode == 0, result.stderr
    numbers = sorted(int(i[1:]) for i in read_vmig(out))
    assert commits > 10 and len(numbers) == rows and numbers == list(range(numbers[0], numbers[0] + rows))


# -- metadata keys that look like vex's own -------------------------------------------------------------


@pytest.mark.parametrize("layout", ["native", "langchain-v2", "llamaindex"])
def test_user_keys_that_look_like_vex_s_own_come_back(pg_server: PgServer, tmp_path: Path, layout: str) -> None:
    """`_vex` is where a layout without columns for them keeps namespace, model, an id its key spells otherwise:
    a user's own `_vex`, `_vex...` keys were overwritten or taken for vex's (a namespace, an id!) and dropped.
    Now they go in escaped (mapped layouts) or as they are (the native table has a column for every field)."""
    records = sample_records(count=4, odd_ones=False)
    records[0]["metadata"] = {"_vex": {"id": "not-this", "namespace": "nor-this"}, "_vex_user:x": 1, "_vexfoo": "a"}
    records[1]["metadata"] = {"_vex": "plain", "_vex_user:_vex": [1, 2], "k": {"_vex": 3}}
    records[2]["metadata"] = {"_vex_user:": None, "other": "_vex"}
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    name = f"vexkeys_{layout.replace('-', '_')}"
    store = ["--layout", layout, "--table", name]
    if layout == "llamaindex":
        make_llamaindex_table(pg_server, name)
        store = ["--layout", layout, "--collection", name]
    url = pg_server.dsn()
    result = run_vex("migrate", "--from", "jsonl", "--source-path", str(source), "--to", "pgvector", "--target-url",
                     url, *store, "--verify", "--json")  # fmt: skip
    assert result.returncode == 0 and _last(result)["verify"]["ok"], result.stdout + result.stderr
    out = tmp_path / "o.vmig.jsonl"
    result = run_vex("export", "--from", "pgvector", "--url", url, *store, "--output", str(out))
    assert result.returncode == 0, result.stderr
    back = read_vmig(out)
    assert sorted(back) == sorted(r["id"] for r in records)
    for record in records:
        got = back[record["id"]]
        assert (got["metadata"], got["namespace"]) == (record["metadata"], record["namespace"]), record["id"]
    result = run_vex("export", "--from", "pgvector", "--url", url, *store, "--namespace", "nor-this",
                     "--output", str(tmp_path / "none.vmig.jsonl"), "--json")  # fmt: skip
    assert result.returncode == 0 and _last(result)["total"] == 0, result.stdout


# -- ids that share a key, in tables without a unique key ------------------------------------------------


def test_a_key_two_ids_share_in_a_table_without_a_unique_key(pg_server: PgServer, tmp_path: Path) -> None:
    """A LlamaIndex table whose node_id is a bigint, with no unique key: rows are replaced by delete-then-insert,
    which deleted the row of `7` to write `007` in its place. Now, as with a unique key, the record there first
    stays and the other is one failed record naming it, in one batch and across runs."""
    with pg_server.admin("vexdb") as conn:
        conn.execute("DROP TABLE IF EXISTS data_int_nodes")
        conn.execute("CREATE TABLE data_int_nodes (text varchar NOT NULL, metadata_ jsonb, node_id bigint, "
                     "embedding vector(8))")  # fmt: skip
        conn.execute("GRANT ALL ON data_int_nodes TO vex")
    records = sample_records(count=4, odd_ones=False)
    for record, new_id in zip(records, ["7", "8", "007", "9"], strict=True):
        record["id"] = new_id
    into = ["--to", "pgvector", "--url", pg_server.dsn(), "--layout", "llamaindex", "--collection", "int_nodes"]
    _import_7_8_007_9_twice(tmp_path, records, into)
    with pg_server.admin("vexdb") as conn:
        rows = sorted(conn.execute("SELECT node_id, text FROM data_int_nodes").fetchall())
    assert rows == [(7, "seven again"), (8, records[1]["text"]), (9, records[3]["text"])]


def test_uuid_node_ids_in_a_table_keyed_by_a_serial(pg_server: PgServer, tmp_path: Path) -> None:
    """A LlamaIndex table (BIGSERIAL key) whose node_id is a uuid: every record failed ("operator does not
    exist: text = uuid"). Now ids go in as UUIDs, a re-import replaces its rows, and another spelling of a
    UUID already there is a failed record naming the one there."""
    with pg_server.admin("vexdb") as conn:
        conn.execute("DROP TABLE IF EXISTS data_uuid_nodes")
        conn.execute("CREATE TABLE data_uuid_nodes (id bigserial PRIMARY KEY, text varchar NOT NULL, "
                     "metadata_ jsonb, node_id uuid, embedding vector(8))")  # fmt: skip
        conn.execute("GRANT ALL ON data_uuid_nodes TO vex")
        conn.execute("GRANT ALL ON SEQUENCE data_uuid_nodes_id_seq TO vex")
    from tests.records import to_batch

    own = str(uuid.UUID(int=77))
    records = sample_records(count=3, odd_ones=False)
    records[0]["id"], records[2]["id"] = own, own.upper()
    connector = PgvectorConnector(PgvectorOptions(url=pg_server.dsn(), layout="llamaindex", collection="uuid_nodes"))
    with connector:
        connector.ensure_target(8, "cosine")
        assert connector.load(to_batch(records[:2])).failed == []
        again = connector.load(to_batch(records[2:]))
        assert again.written == 0 and [i for i, _ in again.failed] == [own.upper()]
        assert f"which holds another record, id '{own}'" in again.failed[0][1]
        records[0]["text"] = "replaced"
        assert connector.load(to_batch(records[:1])).failed == []
        pages = [page.batch.to_pydict() for page in connector.extract(None, None)]
    back = {i: t for page in pages for i, t in zip(page["id"], page["text"], strict=True)}
    assert back == {own: "replaced", "mem-0001": records[1]["text"]}


def test_a_nul_character_fails_its_record_with_a_reason_and_json_metadata_keeps_it(
    pg_server: PgServer, tmp_path: Path
) -> None:
    """PostgreSQL's text and jsonb cannot hold a NUL (json can): a record with one is a failed record saying
    which field holds it (the batch no longer goes one record per transaction for it), the rest load, and a
    json metadata column (PGVectorStore's, with the namespace in it) takes it and gives it back."""
    records = sample_records(count=30, odd_ones=False)
    records[3]["text"] = "a \x00 in the text"
    records[5]["metadata"] = {"note": "a \x00 in a value"}
    records[7]["metadata"] = {"key \x00": 1}
    records[9]["namespace"] = "ns\x00"
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    bad = {"mem-0003": "text", "mem-0005": "metadata", "mem-0007": "metadata", "mem-0009": "namespace"}
    native = ["--to", "pgvector", "--url", pg_server.dsn(), "--table", "nul_fields", "--json"]
    summary = _last(run_vex("import", "--from", str(source), *native))
    assert summary["upserted"] == 26 and summary["failed"] == 4 and summary["exit_code"] == 1, summary
    reasons = {entry["id"]: entry["reason"] for entry in summary["failed_sample"]}
    assert sorted(reasons) == sorted(bad)
    for record_id, field in bad.items():
        assert reasons[record_id].startswith(f"{field} holds a NUL character (\\u0000), which PostgreSQL"), reasons
    v2 = ["--to", "pgvector", "--url", pg_server.dsn(), "--layout", "langchain-v2", "--table", "nul_json"]
    summary = _last(run_vex("import", "--from", str(source), *v2, "--json"))
    assert summary["upserted"] == 29 and [e["id"] for e in summary["failed_sample"]] == ["mem-0003"]  # its text
    out = tmp_path / "o.vmig.jsonl"
    result = run_vex("export", "--from", "pgvector", "--url", pg_server.dsn(), "--layout", "langchain-v2",
                     "--table", "nul_json", "--output", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    back = read_vmig(out)
    assert back["mem-0005"]["metadata"] == records[5]["metadata"] and back["mem-0007"]["metadata"] == {"key \x00": 1}
    assert back["mem-0009"]["namespace"] == "ns\x00"  # kept in the JSON, under `_vex`
