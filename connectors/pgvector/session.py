"""The connection to PostgreSQL: opened on first use, each statement under a watchdog, every client error
sorted by the connector's `classify` after a rollback, and the server process of a lost connection ended."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connectors.clients import ClientLibrary
from connectors.pgvector.options import PgvectorOptions
from vmig.errors import UsageError, VexError

PSYCOPG = ClientLibrary("pgvector", "psycopg", "psycopg")
"""psycopg 3: the connector's client (the `pgvector` extra also installs the `pgvector` adapters)."""


def psycopg_module() -> Any:
    """psycopg, imported on first use; a missing one names the pip extra."""
    return PSYCOPG.load("pgvector")


def shut(conn: Any) -> None:
    """Shut a connection's socket, so that a call waiting on a stalled server fails (and is retried)."""
    if conn is None or conn.closed:
        return
    try:
        socket.socket(fileno=os.dup(conn.pgconn.socket)).shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


@dataclass
class Prepared:
    """What the connection has set up that a rollback or a reconnect may have taken with it: either one
    forgets it all, and each is set up again when next needed."""

    staging: bool = False
    """The temporary staging table `pg_temp.vex_stage` exists (see `Writer`)."""
    rows_listed: bool = False
    """Delete-then-insert tables with a row key: the temporary table `vex_rows` lists each row's record id
    and row key (see `Writer._replace_staged`)."""
    reading: bool = False
    """The open transaction reads in the export's snapshot (see `ExportSnapshot`)."""


class Session:
    """One connection at a time to the server the options name."""

    def __init__(self, opts: PgvectorOptions, classify: Callable[[Exception, str], Exception]) -> None:
        self.opts = opts
        self.classify = classify
        """The connector's sorting of a psycopg error into vex's (`Connector.classify`)."""
        self.current: Any = None
        """The open connection; None before the first statement and after one was lost."""
        self.backend_pid: int | None = None
        """The server process of the current connection."""
        self._orphan_pid: int | None = None
        """The server process of a connection left in an unknown state: the next connection ends it."""
        self.prepared = Prepared()

    def conninfo(self) -> str:
        from psycopg.conninfo import make_conninfo

        extra = {"password": self.opts.password.get_secret_value()} if self.opts.password else {}
        try:
            # COPY sends text fields as UTF-8 bytes (connectors/pgvector/copy_codec.py).
            return str(make_conninfo(self.opts.url, connect_timeout=10, client_encoding="UTF8", **extra))
        except Exception:  # noqa: BLE001 - a malformed URL; never echo it (it may hold a password)
            raise UsageError("pgvector --url is not a valid PostgreSQL URL (postgresql://user@host:5432/db)") from None

    def where(self) -> str:
        """The server and database, for messages (never the password)."""
        from psycopg.conninfo import conninfo_to_dict

        try:
            parts = conninfo_to_dict(self.conninfo())
        except Exception:  # noqa: BLE001 - only used in messages
            return "postgresql"
        host = str(parts.get("host") or "local socket")
        host = "local socket" if host.startswith("/") else host
        return f"postgresql {host}/{parts.get('dbname') or parts.get('user') or ''}"

    def conn(self) -> Any:
        """The connection, opened on first use."""
        if self.current is not None:
            return self.current
        psycopg = psycopg_module()
        try:
            self.current = psycopg.connect(self.conninfo(), autocommit=False)
            self.backend_pid = self.current.info.backend_pid
            self._end_orphan(self.current)
            self.current.rollback()
        except psycopg.Error as exc:
            self.current = None
            raise self.classify(exc, "connecting") from None
        return self.current

    def run(self, doing: str, fn: Any) -> Any:
        """`fn()`, its psycopg errors sorted (`error`) after the transaction is rolled back or the connection
        left; a statement that waits longer than `--timeout` has its connection shut under it."""
        psycopg = psycopg_module()
        watchdog = threading.Timer(self.opts.timeout, self._drop)
        watchdog.daemon = True
        watchdog.start()
        try:
            return fn()
        except VexError:
            self.rollback()
            raise
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.OperationalError):
                # Lost, stalled or cancelled mid-statement: its state is unknown (psycopg may still
                # call it open), so the next call starts on a new connection.
                self.discard()
            else:
                self.rollback()
            raise self.classify(exc, doing) from None
        finally:
            watchdog.cancel()

    def _drop(self) -> None:
        """A stalled server never answers: shut the socket so the waiting call fails and is retried."""
        shut(self.current)

    def discard(self) -> None:
        """Leave a connection whose state is unknown; the next connection ends its server process.

        Over a stalled network the server process does not notice we left: it would keep the
        batch's transaction open, and its row locks would block the retry's rows until it did.
        A cancel does not reach a process waiting for COPY data, so the next connection
        terminates it (`pg_terminate_backend`, allowed for one's own sessions).
        """
        conn, self.current, self.prepared = self.current, None, Prepared()
        if conn is None:
            return
        self._orphan_pid = self.backend_pid  # libpq forgets it once the connection is broken
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - closing a broken connection may fail; it is gone either way
            pass

    def _end_orphan(self, conn: Any) -> None:
        pid, self._orphan_pid = self._orphan_pid, None
        if not pid:
            return
        try:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        except Exception:  # noqa: BLE001 - gone already, or not ours to end: the retry meets the locks, if any
            conn.rollback()

    def rollback(self) -> None:
        """Roll back the open transaction, and forget what it may have taken with it (`Prepared`)."""
        self.prepared = Prepared()
        if self.current is not None and not self.current.closed:
            try:
                self.current.rollback()
            except Exception:  # noqa: BLE001 - the connection is already broken; the next call reconnects
                self.current = None

    def close(self) -> None:
        if self.current is not None:
            self.current.close()
            self.current = None
            self.prepared = Prepared()
