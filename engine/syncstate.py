"""What a sync remembers between runs: each record's fingerprint as the target last acknowledged it.

One SQLite file per (source, target) pair. A run marks every record it reads as seen in this run and writes a
record's fingerprint only after the target acknowledged the record, so a run that stops anywhere leaves a
state the next run can trust: a record written but not yet recorded is written again (upserts are
idempotent), never skipped. Records the last complete read did not see have left the source; they are
deleted from the target (`--delete`) only after a read that went through the whole source.

Workers of one deployment share a state by pointing `--state` at one file on a shared disk; runs of a pair
must not overlap (SQLite's lock makes a second writer wait, then fail with "database is locked").
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa

from vmig.errors import UsageError
from vmig.fingerprint import fingerprints

SCHEMA_VERSION = "1"
DELETE_BATCH = 1000
"""Ids handed to the target's delete at once."""

_WATERMARK = "watermark:"
"""Meta key prefix of a modification column's highest value when the last complete run began."""

Key = tuple[str, str]
"""A record as the state knows it: (namespace or "", id)."""


def default_state_path(pair: dict[str, str | None]) -> Path:
    """Where a pair's state lives unless `--state` says: the user's data directory, one file per pair."""
    import platformdirs

    digest = hashlib.sha256(orjson.dumps(pair, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    return Path(platformdirs.user_data_dir("vex")) / "sync" / f"{digest}.sqlite"


class SyncState:
    """The fingerprints of one (source, target) pair's records."""

    def __init__(self, path: Path, pair: dict[str, str | None]) -> None:
        self.path = path
        self.pair = pair
        self.run = 0
        self._conn = self._open()

    def _open(self) -> sqlite3.Connection:
        fresh = not self.path.exists()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # One run uses it from whichever thread runs its steps, one step at a time.
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS records (ns TEXT NOT NULL, id TEXT NOT NULL, fp BLOB NOT NULL, "
                "run INTEGER NOT NULL, PRIMARY KEY (ns, id)) WITHOUT ROWID"
            )
            conn.execute("CREATE INDEX IF NOT EXISTS records_run ON records (run)")
            conn.execute("CREATE TEMP TABLE chunk (pos INTEGER PRIMARY KEY, ns TEXT, id TEXT, fp BLOB)")
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        except (sqlite3.DatabaseError, OSError) as exc:
            raise UsageError(
                f"sync state {self.path} cannot be read ({exc}): point --state at another file, or remove this "
                "one to copy everything again"
            ) from None
        pair_text = orjson.dumps(self.pair, option=orjson.OPT_SORT_KEYS).decode()
        if fresh or not meta:
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                [("version", SCHEMA_VERSION), ("pair", pair_text), ("run", "0")],
            )
            conn.execute("COMMIT")
        elif meta.get("pair") != pair_text:
            conn.close()
            theirs = orjson.loads(meta.get("pair", "{}"))
            raise UsageError(
                f"sync state {self.path} belongs to another sync ({theirs.get('source')} -> {theirs.get('target')}"
                f"{', model ' + str(theirs['model']) if theirs.get('model') else ''}): point --state at another "
                "file (or leave it out: each pair gets its own)"
            )
        self.run = int(dict(conn.execute("SELECT key, value FROM meta").fetchall()).get("run", "0"))
        return conn

    @property
    def is_new(self) -> bool:
        """No run of this pair has completed yet: the first run copies everything."""
        return self.completed_run() is None

    def completed_run(self) -> int | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'completed'").fetchone()
        return None if row is None else int(row[0])

    def begin(self) -> None:
        """A new run: every record it reads is marked with its number."""
        self.run += 1
        self._conn.execute("INSERT OR REPLACE INTO meta VALUES ('run', ?)", (str(self.run),))

    def changed(self, batch: pa.RecordBatch) -> tuple[np.ndarray, dict[Key, bytes]]:
        """Which rows are new or changed since the target last acknowledged them (a mask), and their
        fingerprints to record once it has; every row is marked as seen in this run."""
        prints = fingerprints(batch)
        keys = keys_of(batch)
        conn = self._conn
        conn.execute("BEGIN")
        conn.execute("DELETE FROM chunk")
        conn.executemany(
            "INSERT INTO chunk VALUES (?, ?, ?, ?)",
            [(pos, ns, record_id, fp) for pos, ((ns, record_id), fp) in enumerate(zip(keys, prints, strict=True))],
        )
        rows = conn.execute(
            "SELECT c.pos FROM chunk c LEFT JOIN records r ON r.ns = c.ns AND r.id = c.id "
            "WHERE r.fp IS NULL OR r.fp != c.fp"
        ).fetchall()
        conn.execute(
            "UPDATE records SET run = ? WHERE (ns, id) IN (SELECT ns, id FROM chunk)",
            (self.run,),
        )
        conn.execute("COMMIT")
        mask = np.zeros(batch.num_rows, dtype=bool)
        mask[[pos for (pos,) in rows]] = True
        return mask, {keys[pos]: prints[pos] for (pos,) in rows}

    def acknowledged(self, written: list[Key], prints: dict[Key, bytes]) -> None:
        """Records the target took: their fingerprints now stand for what it holds."""
        conn = self._conn
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO records VALUES (?, ?, ?, ?) ON CONFLICT (ns, id) DO UPDATE SET fp = excluded.fp, "
            "run = excluded.run",
            [(ns, record_id, prints[(ns, record_id)], self.run) for ns, record_id in written],
        )
        conn.execute("COMMIT")

    def gone_count(self, namespace: str | None) -> int:
        """How many records this run did not see."""
        where, params = self._unseen(namespace)
        return int(self._conn.execute(f"SELECT count(*) FROM records WHERE {where}", params).fetchone()[0])

    def _unseen(self, namespace: str | None) -> tuple[str, list[object]]:
        params: list[object] = [self.run]
        if namespace is None:
            return "run < ?", params
        params.append(namespace)
        return "run < ? AND ns = ?", params

    def gone(self, namespace: str | None) -> dict[str, list[str]]:
        """Ids by namespace of up to `DELETE_BATCH` records this run did not see (they left the source); ask
        again after `forget` for the next ones. Only after a read of the whole source."""
        where, params = self._unseen(namespace)
        found: dict[str, list[str]] = {}
        query = f"SELECT ns, id FROM records WHERE {where} ORDER BY ns, id LIMIT {DELETE_BATCH}"
        for ns, record_id in self._conn.execute(query, params).fetchall():
            found.setdefault(ns, []).append(record_id)
        return found

    def forget(self, namespace: str, ids: list[str]) -> None:
        """Records deleted from the target."""
        conn = self._conn
        conn.execute("BEGIN")
        conn.executemany("DELETE FROM records WHERE ns = ? AND id = ?", [(namespace, i) for i in ids])
        conn.execute("COMMIT")

    def mark_present(self, keys: list[Key]) -> None:
        """Records the source still holds though this run did not read them (a `--watermark` run lists the
        ids): they have not left it."""
        conn = self._conn
        conn.execute("BEGIN")
        conn.executemany("UPDATE records SET run = ? WHERE ns = ? AND id = ?", [(self.run, ns, i) for ns, i in keys])
        conn.execute("COMMIT")

    def watermark(self, column: str) -> object:
        """The watermark of `column` the last complete run kept (a later run reads the records changed at or
        after it); None when there is none, or the column was empty then: the whole source is read."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (_WATERMARK + column,)).fetchone()
        return None if row is None else orjson.loads(row[0])

    def complete(self, watermark: tuple[str, object] | None = None) -> None:
        """The run read the whole source (or, with a watermark, every record changed since the last one): the
        next one may trust what it did not see, and reads from this run's watermark."""
        conn = self._conn
        conn.execute("BEGIN")
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('completed', ?)", (str(self.run),))
        if watermark is not None:
            column, value = watermark
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (_WATERMARK + column, orjson.dumps(value)))
        conn.execute("COMMIT")

    def count(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM records").fetchone()[0])

    def close(self) -> None:
        self._conn.close()


def keys_of(batch: pa.RecordBatch) -> list[Key]:
    """The state's keys of a batch's rows."""
    namespaces = batch.column("namespace").to_pylist()
    return [(ns or "", record_id) for ns, record_id in zip(namespaces, batch.column("id").to_pylist(), strict=True)]
