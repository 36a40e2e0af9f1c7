"""The shipped demo database holds real all-MiniLM-L6-v2 embeddings of its texts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from demo.make_demo_db import DEFAULT_OUTPUT, build, embed, memories


def test_demo_vectors_are_the_models_embeddings_of_the_texts() -> None:
    with sqlite3.connect(DEFAULT_OUTPUT) as conn:
        rows = conn.execute("SELECT content, embedding FROM memories ORDER BY rowid LIMIT 8").fetchall()
    conn.close()
    stored = np.stack([np.frombuffer(blob, dtype="<f4") for _, blob in rows])
    fresh = embed([text for text, _ in rows])
    assert stored.shape == (8, 384)
    cosine = np.sum(stored * fresh, axis=1)  # both unit-normalised
    assert np.all(cosine > 0.999), cosine
    # and texts about one subject are nearer each other than texts about another
    texts = [m["content"] for m in memories(9)]
    vectors = embed(texts)
    assert float(vectors[0] @ vectors[3]) > float(vectors[0] @ vectors[1])


def test_the_generator_is_deterministic(tmp_path: Path) -> None:
    made = build(tmp_path / "demo.db", 12)
    with sqlite3.connect(made) as a, sqlite3.connect(DEFAULT_OUTPUT) as b:
        mine = a.execute("SELECT id, content, metadata, created_at, namespace FROM memories ORDER BY rowid").fetchall()
        shipped = b.execute(
            "SELECT id, content, metadata, created_at, namespace FROM memories ORDER BY rowid LIMIT 12"
        ).fetchall()
    a.close()
    b.close()
    assert mine == shipped
