"""Embeddings kept on disk by (model, SHA-256 of the text), so a resumed or repeated run embeds nothing twice.

One SQLite file under vex's state directory; bounded in size: past the bound, the oldest entries go.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np

from embed.plan import DEFAULT_CACHE_MB as DEFAULT_LIMIT_MB
from vmig.paths import state_home


def default_path() -> Path:
    return state_home() / "embeddings.sqlite3"


class EmbeddingCache:
    def __init__(self, path: Path | None = None, limit_mb: int = DEFAULT_LIMIT_MB) -> None:
        self.path = path or default_path()
        self.limit_bytes = limit_mb * 1024 * 1024
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS embeddings (model TEXT, digest BLOB, vector BLOB, PRIMARY KEY (model, digest))"
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
        rows = [
            (model, d, np.ascontiguousarray(v, dtype=np.float32).tobytes())
            for d, v in zip(digests, vectors, strict=True)
        ]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)", rows)
        self._bound()

    def size_bytes(self) -> int:
        row = self._db.execute(
            "SELECT coalesce(sum(length(vector) + length(digest) + length(model)), 0) FROM embeddings"
        )
        return int(row.fetchone()[0])

    def _bound(self) -> None:
        over = self.size_bytes() - self.limit_bytes
        if over <= 0:
            return
        with self._db:  # oldest first: the lowest rowids
            self._db.execute(
                "DELETE FROM embeddings WHERE rowid IN (SELECT rowid FROM embeddings ORDER BY rowid LIMIT "
                "(SELECT count(*) FROM embeddings) * ? / ? + 1)",
                (over, max(1, self.size_bytes())),
            )

    def close(self) -> None:
        self._db.close()
