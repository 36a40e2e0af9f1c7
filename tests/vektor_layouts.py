"""VEKTOR SQLite files in each of the three layouts, built as VEKTOR builds them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np

from connectors.vektor import LAYOUT1_DDL
from vmig.timefmt import format_micros

DIMS = 16


def _vectors(count: int, seed: int, dims: int = DIMS) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, dims)).astype("<f4")


def make_layout1(path: Path, count: int = 50, seed: int = 1, dims: int = DIMS) -> Path:
    vectors = _vectors(count, seed, dims)
    with sqlite3.connect(path) as conn:
        conn.execute(LAYOUT1_DDL)
        rows = []
        for i in range(count):
            meta: dict[str, Any] = {"tags": "crypto,trending", "importance": i / count, "agent_id": "default"}
            if i % 5 == 0:
                meta["history"] = [{"turn": i, "ok": True}, None]
            blob = None if i == 7 else vectors[i].tobytes()
            created = "2025-01-15T10:23:00.000Z" if i % 2 else str(1_736_936_580 + i)  # ISO and epoch seconds
            rows.append(
                (f"l1-{i}", f"memory {i}", blob, json.dumps(meta), created, ["trading", "default", None][i % 3])
            )
        conn.executemany("INSERT INTO memories VALUES (?, ?, ?, ?, ?, ?)", rows)
    conn.close()
    return path


def make_layout2(path: Path, count: int = 50, seed: int = 2) -> Path:
    """Vectors in a sqlite-vec vec0 table joined by rowid (needs pysqlite3 + sqlite-vec)."""
    import pysqlite3.dbapi2 as sqlite  # type: ignore[import-not-found]
    import sqlite_vec  # type: ignore[import-untyped]

    vectors = _vectors(count, seed)
    conn = sqlite.connect(str(path))
    conn.enable_load_extension(True)
    sqlite_vec.load(conn)
    conn.execute(
        "CREATE TABLE memories (id TEXT PRIMARY KEY, content TEXT, metadata TEXT, created_at TEXT, namespace TEXT)"
    )
    conn.execute(f"CREATE VIRTUAL TABLE memories_vec USING vec0(embedding FLOAT[{DIMS}])")
    for i in range(count):
        cursor = conn.execute(
            "INSERT INTO memories (id, content, metadata, created_at, namespace) VALUES (?, ?, ?, ?, ?)",
            (
                f"l2-{i}",
                f"vec0 memory {i}",
                json.dumps({"rank": i, "nested": {"k": [i]}}),
                format_micros(1_736_936_580_000_000 + i),
                "agents",
            ),
        )
        if i != 3:  # one memory never got a vector
            conn.execute(
                "INSERT INTO memories_vec (rowid, embedding) VALUES (?, ?)", (cursor.lastrowid, vectors[i].tobytes())
            )
    conn.commit()
    conn.close()
    return path


def make_layout3(path: Path, count: int = 50, seed: int = 3) -> Path:
    """The graph layout: agent columns, unix-second timestamps and graph_edges."""
    vectors = _vectors(count, seed)
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE memories (id TEXT PRIMARY KEY, agent_id TEXT, content TEXT, summary TEXT, importance REAL, "
            "tags TEXT, namespace TEXT, pinned INTEGER, created_at INTEGER, updated_at INTEGER, vector BLOB, "
            "edge_type TEXT, potential REAL)"
        )
        conn.execute(
            "CREATE TABLE graph_edges (id TEXT PRIMARY KEY, source_id TEXT, target_id TEXT, edge_type TEXT, "
            "weight REAL, created_at INTEGER)"
        )
        for i in range(count):
            conn.execute(
                "INSERT INTO memories VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    f"g-{i}",
                    f"agent-{i % 2}",
                    f"graph memory {i}",
                    f"summary {i}" if i % 4 else None,
                    0.5 + i / (2 * count),
                    json.dumps(["graph", f"t{i % 3}"]),
                    "graph",
                    i % 2,
                    1_736_936_580 + 60 * i,
                    1_736_936_580 + 60 * i + 5,
                    vectors[i].tobytes(),
                    "episodic" if i % 2 else "semantic",
                    i / count,
                ),
            )
        edges = [
            (f"e-{i}", f"g-{i}", f"g-{(i + 1) % count}", "follows", 0.5, 1_736_936_600 + i) for i in range(0, count, 2)
        ]
        edges.append(("e-extra", "g-0", "g-9", "relates", 0.9, 1_736_936_700))
        conn.executemany("INSERT INTO graph_edges VALUES (?, ?, ?, ?, ?, ?)", edges)
    conn.close()
    return path


LAYOUTS = {1: make_layout1, 2: make_layout2, 3: make_layout3}


def window_id(n: int) -> str:
    """Ids that sort as their numbers, so a set of them reads as a window of the writer's sequence."""
    return f"w-{n:08d}"


def window_row(n: int, dims: int = 4) -> tuple[Any, ...]:
    vector = np.full(dims, n % 1000, dtype="<f4").tobytes()
    return (window_id(n), f"memory {n}", vector, json.dumps({"n": n}), "2025-01-15T10:23:00.000Z", "w")


def make_window(path: Path, count: int, journal_mode: str = "delete") -> Path:
    """A layout-1 file holding `window_id(0) .. window_id(count - 1)`, in the given journal mode (persistent)."""
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA journal_mode={journal_mode}")
        conn.execute(LAYOUT1_DDL)
        conn.executemany("INSERT INTO memories VALUES (?, ?, ?, ?, ?, ?)", (window_row(n) for n in range(count)))
    conn.close()
    return path
