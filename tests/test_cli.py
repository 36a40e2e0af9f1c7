"""The `vex` command line end to end: commands, summaries, exit codes, bad input."""

from __future__ import annotations

import json
import os
import pty
import select
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import DEMO_DB, ROOT, copy_vektor, last_json, migrate_to_jsonl, run_vex
from tests.records import read_vmig, sample_records, write_vmig
from tests.vektor_layouts import make_layout1


def test_export_of_the_demo_database(tmp_path: Path) -> None:
    output = tmp_path / "memories.vmig.jsonl"
    result = run_vex("export", "--from", "vektor", "--db", str(DEMO_DB), "--output", str(output))
    assert result.returncode == 0, result.stderr
    assert "┌─ jsonl:memories.vmig.jsonl summary" in result.stdout
    assert "│ total records : 300" in result.stdout and "│ written       : 300" in result.stdout
    assert "upserted" not in result.stdout, "a file is written, not upserted into"
    sidecar = json.loads((tmp_path / "memories.vmig.meta.json").read_text())
    assert sidecar["record_count"] == 300 and sidecar["source_store"] == "vektor"
    assert sidecar["counts"]["dims"] == {"384": 300}
    assert sidecar["counts"]["namespace"] == {"personal": 100, "research": 100, "trading": 100}


def test_namespace_and_limit_on_export_import_and_migrate(tmp_path: Path) -> None:
    export = tmp_path / "t.vmig.jsonl"
    result = run_vex(
        "export",
        "--from",
        "vektor",
        "--db",
        str(DEMO_DB),
        "--namespace",
        "trading",
        "--limit",
        "40",
        "--output",
        str(export),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    records = read_vmig(export)
    assert len(records) == 40 and {r["namespace"] for r in records.values()} == {"trading"}

    full = tmp_path / "all.vmig.jsonl"
    assert run_vex("export", "--from", "vektor", "--db", str(DEMO_DB), "--output", str(full)).returncode == 0
    result = run_vex(
        "import",
        "--from",
        str(full),
        "--to",
        "vektor",
        "--db",
        str(tmp_path / "r.db"),
        "--namespace",
        "research",
        "--limit",
        "25",
        "--json",
    )
    assert last_json(result.stdout)["upserted"] == 25

    result = migrate_to_jsonl(DEMO_DB, tmp_path / "m.vmig.jsonl", "--namespace", "personal", "--json")
    assert last_json(result.stdout)["upserted"] == 100


def test_seed_style_migrate_routes_unprefixed_options(tmp_path: Path) -> None:
    """`--db` goes to the vektor side, `--path` to the jsonl side, as the seed writes it."""
    out = tmp_path / "x.vmig.jsonl.gz"
    result = migrate_to_jsonl(DEMO_DB, out)
    assert result.returncode == 0, result.stderr
    assert len(read_vmig(out)) == 300


def test_migrate_needs_a_side_for_an_option_both_take(tmp_path: Path) -> None:
    result = run_vex("migrate", "--from", "vektor", "--to", "vektor", "--db", str(DEMO_DB))
    assert result.returncode == 2
    assert "--source-db" in result.stderr and "--target-db" in result.stderr
    result = copy_vektor(DEMO_DB, tmp_path / "copy.db", "--json")
    assert result.returncode == 0 and last_json(result.stdout)["upserted"] == 300


def test_python_m_flows_take_the_same_flags(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "f.vmig.jsonl"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "flows.migrate",
            "--from",
            "vektor",
            "--to",
            "jsonl",
            "--db",
            str(DEMO_DB),
            "--path",
            str(out),
            "--limit",
            "10",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert len(read_vmig(out)) == 10
    for module, args in (
        ("flows.export", ["--from", "vektor", "--db", str(DEMO_DB), "--output", str(tmp_path / "e.vmig.jsonl")]),
        ("flows.import_file", ["--from", str(out), "--to", "vektor", "--db", str(tmp_path / "i.db")]),
    ):
        result = subprocess.run(
            [sys.executable, "-m", module, *args, "--json"], capture_output=True, text=True, env=env, timeout=300
        )
        assert result.returncode == 0, result.stderr
    assert len(read_vmig(tmp_path / "e.vmig.jsonl")) == 300


def test_validate_and_inspect(tmp_path: Path) -> None:
    path = write_vmig(tmp_path / "v.vmig.jsonl", sample_records(count=10))
    result = run_vex("validate", str(path))
    assert result.returncode == 0 and "checksum OK" in result.stdout and "valid" in result.stdout
    result = run_vex("inspect", str(path), "--json")
    report = last_json(result.stdout)
    assert report["records"] == 12 and report["counts"]["namespace"]["default"] == 6
    assert report["sidecar_status"] == "checksum OK"

    with path.open("ab") as handle:
        handle.write(b'{"id": "bad", "vector": [1, "x"]}\n')
    result = run_vex("validate", str(path))
    assert result.returncode == 3
    assert "line 13" in result.stdout and "checksum mismatch" in result.stderr
    rejects = (tmp_path / "v.rejects.jsonl").read_text().splitlines()
    assert json.loads(rejects[0])["line"] == 13
    assert "MISMATCH" in run_vex("inspect", str(path)).stdout


def test_summary_off_a_terminal_has_no_progress_bar(tmp_path: Path) -> None:
    result = run_vex("export", "--from", "vektor", "--db", str(DEMO_DB), "--output", str(tmp_path / "o.vmig.jsonl"))
    assert "━" not in result.stderr and "rec/s" not in result.stderr
    for label in ("total records", "written", "skipped", "failed", "duration", "rate"):
        assert f"│ {label}" in result.stdout


def test_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    """On a real pseudo-terminal, stderr shows a bar with count, rate and ETA."""
    leader, follower = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120", "TERM": "xterm"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli.main",
            "export",
            "--from",
            "vektor",
            "--db",
            str(DEMO_DB),
            "--output",
            str(tmp_path / "p.vmig.jsonl"),
        ],
        stdout=subprocess.PIPE,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        elif process.poll() is not None:
            break
    stdout, _ = process.communicate(timeout=60)
    os.close(leader)
    assert process.returncode == 0
    text = seen.decode(errors="replace")
    assert "300/300" in text and "100%" in text and "rec/s" in text and "ETA" in text
    assert "│ total records : 300" in stdout.decode()


# -- bad input: one line, no traceback, right exit code, nothing written ------------------------------


def assert_clean_failure(result: subprocess.CompletedProcess[str], code: int, fragment: str) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    assert fragment in result.stderr, result.stderr


def test_missing_input_file(tmp_path: Path) -> None:
    target = tmp_path / "t.db"
    result = run_vex("import", "--from", str(tmp_path / "nope.vmig.jsonl"), "--to", "vektor", "--db", str(target))
    assert_clean_failure(result, 2, "input file not found")
    assert not target.exists()


def test_unknown_store_and_missing_option(tmp_path: Path) -> None:
    assert_clean_failure(
        run_vex("export", "--from", "mongo", "--output", str(tmp_path / "o.jsonl")), 2, "unknown store 'mongo'"
    )
    assert_clean_failure(
        run_vex("migrate", "--from", "vektor", "--to", "jsonl", "--db", str(DEMO_DB)), 2, "jsonl: --path is required"
    )
    assert_clean_failure(
        run_vex(
            "export", "--from", "vektor", "--db", str(DEMO_DB), "--output", str(tmp_path / "o"), "--collection", "x"
        ),
        2,
        "vektor does not take --collection",
    )
    result = run_vex("export", "--from", "vektor")
    assert result.returncode == 2 and "--output" in result.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("damage", "code", "fragment"),
    [
        ("sidecar-not-json", 3, "cannot be read"),
        ("sidecar-wrong-checksum", 3, "checksum mismatch"),
        ("sidecar-wrong-count", 3, "record count mismatch"),
        ("sidecar-not-object", 3, "not a JSON object"),
    ],
)
def test_bad_sidecar_stops_the_import_before_any_write(tmp_path: Path, damage: str, code: int, fragment: str) -> None:
    path = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=10))
    sidecar = tmp_path / "s.vmig.meta.json"
    payload = json.loads(sidecar.read_text())
    if damage == "sidecar-not-json":
        sidecar.write_text("{not json")
    elif damage == "sidecar-wrong-checksum":
        payload["checksum"] = "sha256:" + "0" * 64
        sidecar.write_text(json.dumps(payload))
    elif damage == "sidecar-wrong-count":
        payload["record_count"] = 11
        sidecar.write_text(json.dumps(payload))
    else:
        sidecar.write_text("[1, 2]")
    target = tmp_path / "t.db"
    result = run_vex("import", "--from", str(path), "--to", "vektor", "--db", str(target))
    assert_clean_failure(result, code, fragment)
    assert not target.exists()
    if damage != "sidecar-not-json" and damage != "sidecar-not-object":
        result = run_vex("import", "--from", str(path), "--to", "vektor", "--db", str(target), "--no-verify")
        assert result.returncode == 0, result.stderr
        assert "--no-verify" in result.stderr


def test_file_without_sidecar_imports_with_a_warning(tmp_path: Path) -> None:
    path = write_vmig(tmp_path / "n.vmig.jsonl", sample_records(count=4))
    (tmp_path / "n.vmig.meta.json").unlink()
    result = run_vex("import", "--from", str(path), "--to", "vektor", "--db", str(tmp_path / "t.db"), "--json")
    assert result.returncode == 0
    assert "no sidecar" in result.stderr and "could not be verified" in result.stderr
    assert last_json(result.stdout)["upserted"] == 6


@pytest.mark.parametrize("content", [b"id,text\n1,hello\n2,world\n", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"])
def test_file_that_is_not_jsonl(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    target = tmp_path / "t.db"
    result = run_vex("import", "--from", str(path), "--to", "vektor", "--db", str(target))
    assert_clean_failure(result, 3, "is not a .vmig.jsonl file")
    assert not target.exists()


def test_damaged_lines_are_counted_and_written_to_rejects(tmp_path: Path) -> None:
    path = write_vmig(tmp_path / "d.vmig.jsonl", sample_records(count=6, odd_ones=False))
    (tmp_path / "d.vmig.meta.json").unlink()
    lines = path.read_bytes().splitlines(keepends=True)
    lines.insert(2, b'{"id": "broken", "vector": [1.0, 2.0], "dims": 5}\n')
    lines.append(b'{"id": "cut", "text": "trunc')
    path.write_bytes(b"".join(lines))
    target = tmp_path / "t.db"
    result = run_vex("import", "--from", str(path), "--to", "vektor", "--db", str(target), "--json")
    assert result.returncode == 3
    summary = last_json(result.stdout)
    assert summary["upserted"] == 6 and summary["rejected"] == 2 and summary["total"] == 6
    rejects = [json.loads(x) for x in (tmp_path / "d.rejects.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejects] == [3, 8]
    assert "'dims' is 5" in rejects[0]["reason"] and "not valid JSON" in rejects[1]["reason"]


def test_sqlite_file_without_memories_table(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE notes (id TEXT)")
    conn.close()
    result = run_vex("export", "--from", "vektor", "--db", str(db), "--output", str(tmp_path / "o.vmig.jsonl"))
    assert_clean_failure(result, 2, "no 'memories' table")
    assert not (tmp_path / "o.vmig.jsonl").exists()
    assert not (tmp_path / "o.vmig.meta.json").exists()


def test_file_that_is_not_a_database(tmp_path: Path) -> None:
    db = tmp_path / "fake.db"
    db.write_bytes(b"this is not sqlite" * 100)
    result = run_vex("export", "--from", "vektor", "--db", str(db), "--output", str(tmp_path / "o.vmig.jsonl"))
    assert_clean_failure(result, 3, "not a SQLite database")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.db"]


def test_new_fixed_dims_rule_and_dims_flag(tmp_path: Path) -> None:
    """A vektor file keeps every record (archive): odd dims and null vectors are not skipped."""
    db = make_layout1(tmp_path / "m.db")
    result = migrate_to_jsonl(db, tmp_path / "o.vmig.jsonl", "--json")
    summary = last_json(result.stdout)
    assert summary["upserted"] == 50 and summary["skipped"] == {}


def test_validate_counts_a_repeated_id_once_and_inspect_flags_a_sidecar_count(tmp_path: Path) -> None:
    """21 lines, one repeating an earlier id: 20 valid records and 1 duplicate, not "21 valid, 1 damaged"."""
    records = sample_records(count=20, odd_ones=False)
    path = write_vmig(tmp_path / "d.vmig.jsonl", [*records, dict(records[2], text="again")])
    result = run_vex("validate", str(path), "--json")
    report = last_json(result.stdout)
    assert result.returncode == 3
    assert (report["valid_records"], report["duplicate_ids"], report["damaged_lines"]) == (20, 1, 0)
    rejects = [json.loads(line) for line in (tmp_path / "d.rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["id"]) for r in rejects] == [(21, "mem-0002")]
    assert "first on line 3" in rejects[0]["reason"]

    clean = write_vmig(tmp_path / "c.vmig.jsonl", records)
    sidecar = tmp_path / "c.vmig.meta.json"
    sidecar.write_text(json.dumps(dict(json.loads(sidecar.read_text()), record_count=21)))
    result = run_vex("inspect", str(clean))
    assert result.returncode == 3
    assert "record count MISMATCH (sidecar 21, file 20)" in result.stdout


def test_an_unreadable_input_is_a_usage_error(tmp_path: Path) -> None:
    """Root reads any file: its DAC override is dropped for the command, so permissions apply as to a user."""
    import shutil

    data = write_vmig(tmp_path / "locked.vmig.jsonl", sample_records(count=5))
    data.chmod(0)
    command = [sys.executable, "-m", "cli.main", "import", "--from", str(data), "--to", "vektor",
               "--db", str(tmp_path / "t.db")]  # fmt: skip
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("root without setpriv cannot be refused a read")
        command = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", *command]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [f"vex: error: {data}: Permission denied"]
    assert not (tmp_path / "t.db").exists()
