"""`vex sync --watermark COLUMN`: after the first run, a run reads only the records whose modification column
is at or after the highest value it had when the last complete run began, and with `--delete` lists the ids
to find the records that left. Sources: a VEKTOR graph database (its `updated_at`) and a real PostgreSQL table
with a `timestamptz` column a writer sets; the target is Qdrant's real client in local mode."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import one_line_error, run_vex
from tests.pg_server import PgServer
from tests.records import sample_records, write_vmig
from tests.vektor_layouts import make_layout3


def _summary(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def _counts(summary: dict[str, Any]) -> tuple[int, int, int, int]:
    return summary["total"], summary["upserted"], summary["unchanged"], summary["deleted"]


def _sync(tmp_path: Path, source: list[str], *extra: str) -> subprocess.CompletedProcess[str]:
    return run_vex(
        "sync", *source, "--to", "qdrant", "--target-path", str(tmp_path / "qdrant"), "--target-collection", "memories",
        "--state", str(tmp_path / "sync.sqlite"), "--watermark", "updated_at", "--json", *extra, cwd=tmp_path,
    )  # fmt: skip


def test_a_vektor_source_is_read_only_where_it_changed(tmp_path: Path) -> None:
    db = make_layout3(tmp_path / "graph.db", count=2000)
    source = ["--from", "vektor", "--db", str(db)]
    assert _counts(_summary(_sync(tmp_path, source, "--delete"))) == (2000, 2000, 0, 0)

    with sqlite3.connect(db) as conn:
        (top,) = conn.execute("SELECT max(updated_at) FROM memories").fetchone()
        for n in range(5):  # new rows, written after the first run
            conn.execute(
                "INSERT INTO memories SELECT ?, agent_id, content || ' (new)', summary, importance, tags, namespace, "
                "pinned, created_at, ?, vector, edge_type, potential FROM memories WHERE id = 'g-0'",
                (f"added-{n}", top + 100 + n),
            )
        for n, record_id in enumerate(["g-100", "g-200", "g-300"]):  # rewritten, their time moved on
            conn.execute("UPDATE memories SET content = content || ' (edited)', updated_at = ? WHERE id = ?",
                         (top + 50 + n, record_id))  # fmt: skip
        conn.execute("DELETE FROM memories WHERE id IN ('g-10', 'g-11')")
    conn.close()

    second = _summary(_sync(tmp_path, source, "--delete", "--verify"))
    # Read: the 8 new or rewritten rows and the one row whose time is the last run's watermark itself.
    assert _counts(second) == (9, 8, 1, 2)
    assert second["verify"]["ok"] and second["verify"]["matched"] == 2003, second["verify"]

    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM memories WHERE id = 'g-12'")
    conn.close()
    kept = _summary(_sync(tmp_path, source))  # without --delete: nothing is taken as gone, nothing is listed
    assert _counts(kept) == (1, 0, 1, 0) and not any("left the source" in w for w in kept["warnings"])
    third = _summary(_sync(tmp_path, source, "--delete"))
    assert _counts(third) == (1, 0, 1, 1)  # the listing finds the row that left


def test_a_watermark_the_source_cannot_give_is_one_line_and_nothing_is_written(tmp_path: Path) -> None:
    db = make_layout3(tmp_path / "graph.db", count=20)
    missing = run_vex("sync", "--from", "vektor", "--db", str(db), "--to", "qdrant", "--path",
                      str(tmp_path / "qdrant"), "--collection", "m", "--state", str(tmp_path / "s.sqlite"),
                      "--watermark", "changed", cwd=tmp_path)  # fmt: skip
    assert missing.returncode == 2
    assert (
        "has no column 'changed' for --watermark" in one_line_error(missing.stderr) and "updated_at" in missing.stderr
    )
    data = write_vmig(tmp_path / "seed.vmig.jsonl", sample_records(count=10, odd_ones=False))
    plain = run_vex("sync", "--from", "jsonl", "--source-path", str(data), "--to", "qdrant", "--target-path",
                    str(tmp_path / "qdrant"), "--collection", "m", "--state", str(tmp_path / "s.sqlite"),
                    "--watermark", "updated_at", cwd=tmp_path)  # fmt: skip
    assert plain.returncode == 2 and "leave out --watermark" in one_line_error(plain.stderr)
    assert not (tmp_path / "qdrant").exists() or not any((tmp_path / "qdrant").rglob("*.sqlite"))


def test_a_postgres_table_is_read_only_where_its_timestamp_moved(tmp_path: Path, pg_server: PgServer) -> None:
    url = pg_server.dsn()
    data = write_vmig(tmp_path / "seed.vmig.jsonl", sample_records(count=300, odd_ones=False))
    made = run_vex("import", "--from", str(data), "--to", "pgvector", "--url", url, "--table", "wm_source",
                   "--quiet", cwd=tmp_path)  # fmt: skip
    assert made.returncode == 0, made.stderr
    with pg_server.admin("vexdb") as conn:
        conn.execute("ALTER TABLE wm_source ADD COLUMN updated_at timestamptz")
        conn.execute(
            "WITH n AS (SELECT id, row_number() OVER (ORDER BY id) AS k FROM wm_source) UPDATE wm_source t "
            "SET updated_at = timestamptz '2025-01-01 00:00:00+00' + n.k * interval '1 second' FROM n WHERE t.id = n.id"
        )
    source = ["--from", "pgvector", "--source-url", url, "--table", "wm_source"]
    assert _counts(_summary(_sync(tmp_path, source, "--delete"))) == (300, 300, 0, 0)

    with pg_server.admin("vexdb") as conn:
        conn.execute("CREATE TEMP TABLE copies AS SELECT * FROM wm_source WHERE id = 'mem-0000'")
        for n in range(5):
            conn.execute("UPDATE copies SET id = %s, updated_at = now()", (f"added-{n}",))
            conn.execute("INSERT INTO wm_source SELECT * FROM copies")
        conn.execute("UPDATE wm_source SET text = text || ' (edited)', updated_at = now() "
                     "WHERE id IN ('mem-0100', 'mem-0101', 'mem-0102')")  # fmt: skip
        conn.execute("DELETE FROM wm_source WHERE id IN ('mem-0010', 'mem-0011')")

    second = _summary(_sync(tmp_path, source, "--delete", "--verify"))
    assert _counts(second) == (9, 8, 1, 2)  # the 8 that moved and the row at the last run's watermark
    assert second["verify"]["ok"] and second["verify"]["matched"] == 303, second["verify"]
