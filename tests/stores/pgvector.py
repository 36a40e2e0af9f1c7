from tests.pg_server import PgServer
from tests.stores import StoreContext, StoreKind

LEGACY_DATABASE = "vex_langchain_legacy"
_legacy_made: set[str] = set()
"""Servers (by their session's password) whose legacy LangChain database this session has made afresh."""


def _native(ctx: StoreContext) -> dict[str, str]:
    server = ctx.fixture("pg_server")
    return {"url": server.dsn(), "table": ctx.name}


def _legacy_database(server: PgServer) -> str:
    """A database of its own for the legacy LangChain tables, made once a session: `vexdb`'s
    `langchain_pg_embedding` is remade by other tests, and here every test's collection shares one table."""
    if server.password not in _legacy_made:
        from tests.test_pgvector import make_legacy_langchain_tables

        with server.admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {LEGACY_DATABASE}")
            conn.execute(f"CREATE DATABASE {LEGACY_DATABASE} OWNER vex")
        with server.admin(LEGACY_DATABASE) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            make_legacy_langchain_tables(conn, vector="VECTOR")  # no dimensions: each collection's come from its data
        _legacy_made.add(server.password)
    return LEGACY_DATABASE


def _langchain_legacy(ctx: StoreContext) -> dict[str, str]:
    server = ctx.fixture("pg_server")
    url = server.dsn(database=_legacy_database(server))
    return {"url": url, "layout": "langchain", "collection": ctx.name}


KINDS = [
    StoreKind(id="pgvector", store="pgvector", options=_native),
    StoreKind(id="pgvector-langchain-legacy", store="pgvector", options=_langchain_legacy),
]
