"""`vex verify` proves two stores hold the same records, and names what differs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.conftest import DEMO_DB, copy_vektor, last_json, migrate_to_jsonl, run_vex


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "copy.db"
    result = copy_vektor(DEMO_DB, target)
    assert result.returncode == 0, result.stderr
    return target


def _verify(tmp_path: Path, target: Path, *extra: str):  # type: ignore[no-untyped-def]
    report = tmp_path / "report.json"
    result = run_vex(
        "verify",
        "--from",
        "vektor",
        "--to",
        "vektor",
        "--source-db",
        str(DEMO_DB),
        "--target-db",
        str(target),
        "--report",
        str(report),
        *extra,
    )
    return result, json.loads(report.read_text())


def test_identical_stores_verify(tmp_path: Path) -> None:
    result, report = _verify(tmp_path, _copy(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "result: stores match" in result.stdout
    assert report["ok"] and report["matched"] == 300 and report["compared"] == 300
    assert (
        report["counts"]["source"] == report["counts"]["target"] == {"personal": 100, "research": 100, "trading": 100}
    )


def test_every_kind_of_difference_is_named(tmp_path: Path) -> None:
    target = _copy(tmp_path)
    with sqlite3.connect(target) as conn:
        conn.execute("DELETE FROM memories WHERE id = 'mem-00005'")
        conn.execute("UPDATE memories SET content = 'changed' WHERE id = 'mem-00006'")
        blob = conn.execute("SELECT embedding FROM memories WHERE id = 'mem-00007'").fetchone()[0]
        conn.execute("UPDATE memories SET embedding = ? WHERE id = 'mem-00007'", (bytes([blob[0] ^ 1]) + blob[1:],))
        conn.execute("UPDATE memories SET namespace = 'elsewhere' WHERE id = 'mem-00008'")
        conn.execute(
            "INSERT INTO memories SELECT 'intruder', content, embedding, metadata, created_at, namespace "
            "FROM memories WHERE id = 'mem-00009'"
        )
    conn.close()
    result, report = _verify(tmp_path, target)
    assert result.returncode == 3
    assert report["missing_ids"] == ["mem-00005"] and report["extra_ids"] == ["intruder"]
    assert {m["id"]: m["fields"] for m in report["mismatches"]} == {
        "mem-00006": ["text"],
        "mem-00007": ["vector"],
        "mem-00008": ["namespace"],
    }
    assert report["matched"] == 296
    assert "missing mem-00005" in result.stdout and "MISMATCH" in result.stdout


def test_sample_compares_only_that_many(tmp_path: Path) -> None:
    result, report = _verify(tmp_path, _copy(tmp_path), "--sample", "25", "--seed", "3")
    assert result.returncode == 0
    assert report["compared"] == 25 and report["sample"] == 25


def test_migrate_verify_runs_verify_at_the_end(tmp_path: Path) -> None:
    result = migrate_to_jsonl(DEMO_DB, tmp_path / "m.vmig.jsonl", "--verify", "--json")
    assert result.returncode == 0, result.stderr
    summary = last_json(result.stdout)
    assert summary["verify"]["ok"] and summary["verify"]["matched"] == 300
