"""The target's DDL: the vector extension, the table where it is missing (native and langchain-v2 layouts),
and the vector index, built after the load (faster than kept up row by row)."""

from __future__ import annotations

from typing import Any

from connectors.pgvector import catalog
from connectors.pgvector.options import PgvectorOptions, langchain_v2_columns, split_name, table_name
from connectors.pgvector.session import Session, psycopg_module
from connectors.pgvector.tablemap import OPCLASS, TableMap
from vmig.errors import UsageError


def ensure_extension(session: Session) -> None:
    """`CREATE EXTENSION vector` where it is missing; a role that may not is told whom to ask."""
    if catalog.extension_present(session.conn()):
        return
    psycopg = psycopg_module()
    try:
        session.conn().execute("CREATE EXTENSION IF NOT EXISTS vector")
        session.conn().commit()
    except psycopg.errors.InsufficientPrivilege:
        session.conn().rollback()
        raise UsageError(
            f"pgvector {session.where()}: the vector extension is not installed and this role may not create it; "
            "ask an administrator to run CREATE EXTENSION vector in this database"
        ) from None


def create_table(conn: Any, opts: PgvectorOptions, dims: int | None) -> None:
    """The missing table, where the layout is one vex creates; uncommitted."""
    v2 = opts.layout == "langchain-v2"
    mapped = any((opts.id_column, opts.vector_column, opts.text_column, opts.metadata_column))
    if not v2 and (opts.layout != "native" or mapped):
        raise UsageError(
            f"pgvector table {'.'.join(table_name(opts))} not found (vex creates native and langchain-v2 tables only)"
        )
    if dims is None:
        raise UsageError("pgvector needs a dimension to create a table: pass --dims N")
    if v2:
        _create_langchain_v2(conn, opts, dims)
    else:
        _create_native(conn, opts, dims)


def _create_native(conn: Any, opts: PgvectorOptions, dims: int) -> None:
    from psycopg import sql

    table = split_name(opts.table)
    conn.execute(
        sql.SQL(
            "CREATE TABLE {t} (id text PRIMARY KEY, embedding vector({d}) NOT NULL, text text, metadata jsonb, "
            "namespace text, model text, created_at timestamptz, score double precision, source_store text, "
            "extra jsonb)"
        ).format(t=sql.Identifier(*table), d=sql.Literal(dims))
    )


def _create_langchain_v2(conn: Any, opts: PgvectorOptions, dims: int) -> None:
    """The table `PGEngine.init_vectorstore_table(name, dims)` makes (langchain-postgres v2 engine.py)."""
    from psycopg import sql

    names = langchain_v2_columns(opts)
    conn.execute(
        sql.SQL(
            "CREATE TABLE {t} ({i} UUID PRIMARY KEY, {c} TEXT NOT NULL, {e} vector({d}) NOT NULL, {m} JSON)"
        ).format(
            t=sql.Identifier(*split_name(opts.table)), i=sql.Identifier(names["id"]),
            c=sql.Identifier(names["text"]), e=sql.Identifier(names["vector"]), d=sql.Literal(dims),
            m=sql.Identifier(names["metadata"]),
        )
    )  # fmt: skip


INDEX_MAX_DIMS = 2_000
"""pgvector builds neither an HNSW nor an IVFFlat index on a `vector` column of more dimensions."""


def refuse_unindexable(opts: PgvectorOptions, dims: int | None) -> None:
    """Before a table is made: a dimension its `--index` cannot be built for is refused, not found out after the
    load (where the index would be missing or the run would fail with every record written)."""
    if dims is not None and dims > INDEX_MAX_DIMS and opts.index != "none":
        raise UsageError(
            f"pgvector cannot build a {opts.index} index on {dims}-d vectors (at most {INDEX_MAX_DIMS:,}): "
            "pass --index none for a table without a vector index"
        )


def build_index(session: Session, opts: PgvectorOptions, mapping: TableMap) -> None:
    """The `--index` (HNSW or IVFFlat, lists by the row count) on the vector column, for the `--metric`."""
    from psycopg import sql

    opclass = f"{mapping.vector_type}_{OPCLASS[opts.metric or 'cosine']}"
    method = sql.SQL(opts.index)
    with_clause: Any = sql.SQL("")
    if opts.index == "ivfflat":
        count = (
            session.conn()
            .execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*mapping.table)))
            .fetchone()[0]
        )
        with_clause = sql.SQL(" WITH (lists = {})").format(sql.Literal(max(1, int(count) // 1000)))
    index_name = sql.Identifier(f"{mapping.table[-1]}_{mapping.vector}_idx")

    def build() -> None:
        session.conn().execute(
            sql.SQL("CREATE INDEX IF NOT EXISTS {n} ON {t} USING {m} ({v} {o})").format(
                n=index_name, t=sql.Identifier(*mapping.table), m=method, v=sql.Identifier(mapping.vector),
                o=sql.SQL(opclass),
            )
            + with_clause
        )  # fmt: skip
        session.conn().commit()

    session.run("building the vector index", build)
