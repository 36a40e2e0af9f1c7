"""`vex sync`: the first run copies everything, later runs write only what changed and delete what left.

The source is a VEKTOR database edited between runs as an agent would (rows added, rewritten, deleted); the
target is Qdrant's real client in local mode, or a second VEKTOR database where a run is killed mid-way.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, run_vex
from tests.records import sample_records, write_vmig


def _summary(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def _vektor_source(tmp_path: Path, count: int) -> Path:
    """A VEKTOR database of `count` records, every one with a vector, made by `vex import`."""
    data = write_vmig(tmp_path / "seed.vmig.jsonl", sample_records(count=count, odd_ones=False))
    db = tmp_path / "source.db"
    result = run_vex("import", "--from", str(data), "--to", "vektor", "--db", str(db), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return db


def _edit_source(db: Path, added: int, changed: int, deleted: int) -> None:
    """New rows (copies of the first under new ids), rewritten texts, deleted rows: at the end of the table."""
    with sqlite3.connect(db) as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM memories ORDER BY id")]
        for n in range(added):
            conn.execute(
                "INSERT INTO memories (id, content, embedding, metadata, created_at, namespace) "
                "SELECT ?, content || ' (copy)', embedding, metadata, created_at, namespace FROM memories WHERE id = ?",
                (f"added-{n}", ids[0]),
            )
        for record_id in ids[1 : 1 + changed]:
            conn.execute("UPDATE memories SET content = content || ' (edited)' WHERE id = ?", (record_id,))
        for record_id in ids[-deleted:] if deleted else []:
            conn.execute("DELETE FROM memories WHERE id = ?", (record_id,))


def _sync(tmp_path: Path, db: Path, state: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_vex(
        "sync", "--from", "vektor", "--db", str(db), "--to", "qdrant", "--path", str(tmp_path / "qdrant"),
        "--collection", "memories", "--state", str(state), "--json", *extra, cwd=tmp_path,
    )  # fmt: skip


def test_second_run_writes_the_changes_deletes_what_left_and_verifies(tmp_path: Path) -> None:
    db = _vektor_source(tmp_path, 2000)
    state = tmp_path / "sync.sqlite"
    first = _summary(_sync(tmp_path, db, state, "--delete"))
    assert (first["total"], first["upserted"], first["unchanged"], first["deleted"]) == (2000, 2000, 0, 0)

    _edit_source(db, added=5, changed=3, deleted=2)
    second = _summary(_sync(tmp_path, db, state, "--delete", "--verify"))
    assert (second["total"], second["upserted"], second["unchanged"], second["deleted"]) == (2003, 8, 1995, 2)
    assert second["verify"]["matched"] == 2003 and second["verify"]["ok"], second["verify"]

    third = _summary(_sync(tmp_path, db, state, "--delete"))
    assert (third["upserted"], third["unchanged"], third["deleted"]) == (0, 2003, 0)


def test_without_delete_what_left_is_counted_and_kept(tmp_path: Path) -> None:
    db = _vektor_source(tmp_path, 60)
    state = tmp_path / "sync.sqlite"
    _summary(_sync(tmp_path, db, state))
    _edit_source(db, added=0, changed=0, deleted=4)
    result = _sync(tmp_path, db, state)
    second = _summary(result)
    assert (second["upserted"], second["unchanged"], second["deleted"]) == (0, 56, 0)
    assert "4 records of qdrant left the source since an earlier run: --delete removes them" in result.stderr
    later = _summary(_sync(tmp_path, db, state, "--delete"))
    assert (later["upserted"], later["deleted"]) == (0, 4)  # the next run with --delete still finds them


def test_a_limited_run_deletes_nothing(tmp_path: Path) -> None:
    db = _vektor_source(tmp_path, 40)
    state = tmp_path / "sync.sqlite"
    _summary(_sync(tmp_path, db, state))
    result = _sync(tmp_path, db, state, "--delete", "--limit", "10")
    limited = _summary(result)
    assert (limited["unchanged"], limited["deleted"]) == (10, 0)
    assert "no record is taken as deleted" in result.stderr


def test_a_state_of_another_pair_or_not_a_state_is_refused(tmp_path: Path) -> None:
    db = _vektor_source(tmp_path, 20)
    state = tmp_path / "sync.sqlite"
    _summary(_sync(tmp_path, db, state))
    other = run_vex(
        "sync", "--from", "vektor", "--db", str(db), "--to", "qdrant", "--path", str(tmp_path / "qdrant"),
        "--collection", "elsewhere", "--state", str(state), cwd=tmp_path,
    )  # fmt: skip
    assert other.returncode == 2
    assert f"sync state {state} belongs to another sync" in other.stderr
    assert "Traceback" not in other.stderr

    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    unreadable = _sync(tmp_path, db, junk)
    assert unreadable.returncode == 2
    assert f"sync state {junk} cannot be read" in unreadable.stderr


def test_a_file_target_is_refused(tmp_path: Path) -> None:
    db = _vektor_source(tmp_path, 5)
    result = run_vex(
        "sync", "--from", "vektor", "--db", str(db), "--to", "jsonl", "--path", str(tmp_path / "out.vmig.jsonl"),
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "jsonl cannot be synced into: sync needs a store that keeps one record per id" in result.stderr
    assert not (tmp_path / "out.vmig.jsonl").exists()


def test_the_default_state_is_one_file_per_pair_in_the_data_directory(tmp_path: Path) -> None:
    db = _vektor_source(tmp_path, 10)
    env = {"XDG_DATA_HOME": str(tmp_path / "data")}
    args = ["sync", "--from", "vektor", "--source-db", str(db), "--to", "vektor", "--json"]
    first = _summary(run_vex(*args, "--target-db", str(tmp_path / "a.db"), cwd=tmp_path, env=env))
    again = _summary(run_vex(*args, "--target-db", str(tmp_path / "a.db"), cwd=tmp_path, env=env))
    other = _summary(run_vex(*args, "--target-db", str(tmp_path / "b.db"), cwd=tmp_path, env=env))
    assert (first["upserted"], again["unchanged"], other["upserted"]) == (10, 10, 10)
    assert len(list((tmp_path / "data" / "vex" / "sync").glob("*.sqlite"))) == 2


def test_a_run_killed_midway_leaves_a_state_the_next_run_trusts(tmp_path: Path) -> None:
    db = _vektor_source(tmp_path, 3000)
    with sqlite3.connect(db) as conn:  # 3,000 records copied to 60,000, so the run lasts long enough to kill
        for n in range(1, 20):
            conn.execute(
                "INSERT INTO memories (id, content, embedding, metadata, created_at, namespace) "
                "SELECT id || '-' || ?, content, embedding, metadata, created_at, namespace FROM memories "
                "WHERE id NOT LIKE '%-%-%'",
                (n,),
            )
        total = conn.execute("SELECT count(*) FROM memories").fetchone()[0]
    state, target = tmp_path / "sync.sqlite", tmp_path / "target.db"
    args = ["sync", "--from", "vektor", "--source-db", str(db), "--to", "vektor", "--target-db", str(target),
            "--state", str(state), "--chunk-rows", "2000", "--quiet"]  # fmt: skip

    def recorded() -> int:
        try:
            with sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=1) as conn:
                return int(conn.execute("SELECT count(*) FROM records").fetchone()[0])
        except sqlite3.Error:
            return 0

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "cli.main", *args], cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while recorded() < 4000 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    if process.poll() is not None:
        pytest.fail("the sync ended before it could be killed")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    trusted = recorded()
    assert 4000 <= trusted < total

    again = _summary(run_vex(*[a for a in args if a != "--quiet"], "--json", cwd=tmp_path))
    assert again["unchanged"] == trusted  # what the state holds, the target had acknowledged
    assert again["upserted"] == total - trusted
    with sqlite3.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM memories").fetchone()[0] == total


def test_the_flow_syncs_as_a_tracked_run_and_its_module_takes_the_flags(tmp_path: Path, prefect_api: None) -> None:
    from engine.params import StoreSpec, SyncParams
    from flows.sync import sync_flow

    db = _vektor_source(tmp_path, 30)
    params = SyncParams(
        source=StoreSpec(store="vektor", options={"db": str(db)}),
        target=StoreSpec(store="vektor", options={"db": str(tmp_path / "t.db")}),
        state=tmp_path / "s.sqlite",
    )
    assert sync_flow(params).upserted == 30
    _edit_source(db, added=1, changed=0, deleted=0)
    tracked = sync_flow(params)
    assert (tracked.upserted, tracked.unchanged) == (1, 30)

    args = ["--from", "vektor", "--source-db", str(db), "--to", "vektor", "--target-db", str(tmp_path / "t.db"),
            "--state", str(tmp_path / "s.sqlite"), "--json"]  # fmt: skip
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    env["PYTHONPATH"] = str(ROOT)
    module = subprocess.run([sys.executable, "-m", "flows.sync", *args], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert (_summary(module)["upserted"], _summary(module)["unchanged"]) == (0, 31)
