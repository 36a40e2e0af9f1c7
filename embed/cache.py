"""Embeddings kept on disk by (model, SHA-256 of the text), so a resumed or repeated run embeds nothing twice.

One SQLite file under vex's state directory, shared by the processes of a run (WAL, one writer at a time).
It is bounded: before the pages in use would pass `limit_mb`, the oldest entries go (the write-ahead log
beside it adds a few MiB). Pages are 64 KiB, so a 384-d or
768-d vector wastes little of its page, and the pages in use are two PRAGMAs away: a `put` costs what it
writes, never a scan of the cache.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np

from embed.plan import DEFAULT_CACHE_MB as DEFAULT_LIMIT_MB
from vmig.paths import state_home

PAGE_SIZE = 1 << 16
_ENTRY_BYTES = "length(vector) + length(digest) + length(CAST(model AS BLOB))"


def default_path() -> Path:
    return state_home() / "embeddings.sqlite3"


class EmbeddingCache:
    def __init__(self, path: Path | None = None, limit_mb: int = DEFAULT_LIMIT_MB) -> None:
        self.path = path or default_path()
        self.limit_bytes = limit_mb * 1024 * 1024
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        self._db.execute(f"PRAGMA page_size={PAGE_SIZE}")  # takes effect only in a new file
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA wal_autocheckpoint=64")  # the log stays a few MiB beside the file
        self._db.execute(f"PRAGMA journal_size_limit={64 * PAGE_SIZE}")
        with self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS embeddings "
                "(model TEXT, digest BLOB, vector BLOB, PRIMARY KEY (model, digest))"
            )
            self._db.execute("CREATE TABLE IF NOT EXISTS totals (name TEXT PRIMARY KEY, bytes INTEGER NOT NULL)")
            self._db.execute(  # the entries' own bytes, kept as they change: a file from before is counted once
                f"INSERT OR IGNORE INTO totals SELECT 'entries', coalesce(sum({_ENTRY_BYTES}), 0) FROM embeddings"
            )

    @staticmethod
    def digest(text: str) -> bytes:
        return hashlib.sha256(text.encode()).digest()

    def get(self, model: str, digests: list[bytes]) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        for start in range(0, len(digests), 500):
            part = digests[start : start + 500]
            marks = ",".join("?" * len(part))
            rows = self._db.execute(
                f"SELECT digest, vector FROM embeddings WHERE model = ? AND digest IN ({marks})", (model, *part)
            )
            found.update((digest, np.frombuffer(blob, dtype=np.float32)) for digest, blob in rows)
        return found

    def put(self, model: str, digests: list[bytes], vectors: np.ndarray) -> None:
        """Keep these vectors; an entry already there stays as it is (the same text gives the same vector)."""
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        rows = [(model, d, matrix[i].tobytes()) for i, d in enumerate(digests)]
        if not rows:
            return
        entry = len(model.encode()) + len(digests[0]) + matrix[0].nbytes
        fit = int((self.limit_bytes - 4 * PAGE_SIZE) / (1.15 * entry))  # more than the cache holds: the last
        rows = rows[len(rows) - fit :] if fit < len(rows) else rows
        if not rows:
            return
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")  # room, insert and count as one writer
            self._make_room(len(rows) * entry)
            added = self._db.executemany("INSERT OR IGNORE INTO embeddings VALUES (?, ?, ?)", rows).rowcount
            self._db.execute("UPDATE totals SET bytes = bytes + ? WHERE name = 'entries'", (added * entry,))

    def size_bytes(self) -> int:
        """The bytes of the file's pages in use (what the bound holds to)."""
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        size = self._db.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

    def _make_room(self, incoming: int) -> None:
        """Inside put's transaction, before the insert: the oldest entries (lowest rowids) out until the pages in
        use and the incoming entries fit, with room for a few more puts (a twentieth of the bound), so that a
        full cache does not delete on every put and the file never grows past the bound."""
        entries = int(self._db.execute("SELECT bytes FROM totals WHERE name = 'entries'").fetchone()[0])
        used = self.size_bytes()
        per_entry_byte = used / entries if entries else 1.1  # pages per byte of entries: index, headers, slack
        over = used + incoming * per_entry_byte - self.limit_bytes
        if over <= 0:
            return
        target = (over + self.limit_bytes // 20) / per_entry_byte
        freed, last = 0, None
        rows = self._db.execute(f"SELECT rowid, {_ENTRY_BYTES} FROM embeddings ORDER BY rowid")
        for rowid, size in rows:
            freed, last = freed + size, rowid
            if freed >= target:
                break
        rows.close()
        if last is not None:
            self._db.execute("DELETE FROM embeddings WHERE rowid <= ?", (last,))
            self._db.execute("UPDATE totals SET bytes = bytes - ? WHERE name = 'entries'", (freed,))

    def close(self) -> None:
        self._db.close()
