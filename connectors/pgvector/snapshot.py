"""One snapshot per export: every page of a read sees the table as of one moment, whatever others write.

Paged in many short queries, each in a transaction of its own, an export taken while others write
gave a set of rows that was never in the table (a row deleted after its page was read and one
inserted before its page was: both out). So every page is read in one REPEATABLE READ, READ ONLY
transaction, and that transaction imports a snapshot which a second connection exported and holds
open, idle, until the last page (`pg_export_snapshot`): when the reading connection is dropped
(the watchdog, a reset), the retry's new connection imports the same snapshot and reads on as of
the same moment. A resumed run (a new process, a cursor from its checkpoint) reads the rest as of
its own start: a snapshot does not outlive the run that took it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from connectors.base import Cursor
from connectors.pgvector.session import Session, psycopg_module, shut
from vmig.errors import StoreError

SNAPSHOT_APPLICATION = "vex export snapshot"
"""`application_name` of the connection that holds an export's snapshot (as `pg_stat_activity` shows it)."""


@dataclass
class _Snapshot:
    """An export's snapshot: the connection whose open transaction exported it, and its id; both None where
    only the reading transaction holds it (see `ExportSnapshot._export`)."""

    holder: Any
    name: str | None
    begun: bool = False
    """A reading transaction has taken it: a later one must import it to read on."""


class ExportSnapshot:
    """The moment an export reads the table as of, from its first page to its last."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._taken: _Snapshot | None = None

    def take(self, cursor: Cursor | None) -> None:
        """The moment this read of the table sees: a new one for a read from the start, the same one for a
        read reopened at its cursor after an error (`ChunkReader` retries that way, on a new connection
        where the old one was lost)."""
        if cursor is not None and self._taken is not None:
            return
        self.release()
        self._taken = self._export()

    def _export(self) -> _Snapshot:
        """A connection holding a transaction open, and the id of the snapshot it exported; only the
        reading connection's own transaction where no second connection can be had (a server at its
        connection limit, one without snapshot export): the export is then consistent unless that
        connection is lost (`begin_read` says so then)."""
        psycopg = psycopg_module()
        try:
            holder = psycopg.connect(self.session.conninfo(), autocommit=False, application_name=SNAPSHOT_APPLICATION)
        except psycopg.Error:
            return _Snapshot(None, None)
        watchdog = threading.Timer(self.session.opts.timeout, shut, (holder,))
        watchdog.daemon = True
        watchdog.start()
        try:
            holder.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            name = holder.execute("SELECT pg_export_snapshot()").fetchone()[0]
        except psycopg.Error:
            holder.close()
            return _Snapshot(None, None)
        finally:
            watchdog.cancel()
        return _Snapshot(holder, str(name))

    def begin_read(self, conn: Any) -> None:
        """Start the reading connection's transaction in the export's snapshot (`take`)."""
        from psycopg import sql

        psycopg = psycopg_module()
        snapshot = self._taken
        assert snapshot is not None
        if snapshot.begun and snapshot.name is None:
            raise self._lost()
        conn.rollback()  # a catalog query may have begun a transaction: the isolation level comes first
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        if snapshot.name is not None:
            try:
                conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot.name)))
            except (psycopg.errors.UndefinedObject, psycopg.errors.ObjectNotInPrerequisiteState):
                # The holding transaction ended, and its snapshot with it ("snapshot ... does not exist"), or
                # its server process is ending ("could not import the requested snapshot").
                conn.rollback()
                raise self._lost() from None
        # Along the page key's index, whatever the statistics say: a table just loaded, with no
        # statistics yet, made the planner sort all the rows after the key for every page instead.
        conn.execute("SET LOCAL enable_sort = off")
        snapshot.begun, self.session.prepared.reading = True, True

    def _lost(self) -> StoreError:
        self.release()
        return StoreError(
            f"pgvector {self.session.where()}: the connection was lost in the middle of the export, and with it "
            "the snapshot of the table the export reads: the rest, read now, could give a set of rows the table "
            "never held. Run it again: an export to a file starts over (the file is written whole); a migrate "
            "resumes after its last loaded chunk, reading the rest as of then (--restart reads all again)"
        )

    def release(self) -> None:
        """End the export's snapshot: the reading transaction, and the connection that held it."""
        snapshot, self._taken = self._taken, None
        session = self.session
        if session.prepared.reading and session.current is not None:
            session.prepared.reading = False
            try:
                session.current.rollback()
            except Exception:  # noqa: BLE001 - a broken connection: the next call reconnects
                session.discard()
        if snapshot is not None and snapshot.holder is not None:
            try:
                snapshot.holder.close()
            except Exception:  # noqa: BLE001 - closing a lost connection may fail; it is gone either way
                pass
