"""The exit-code table of the README, walked through the CLI: each code, from the way a person meets it.

0 done; 1 some records failed; 2 bad usage or configuration; 3 integrity; 4 a store could not be reached
or refused the credentials (safe to re-run).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.chroma_server import free_port
from tests.conftest import ROOT, run_vex
from tests.pg_server import PgServer
from tests.records import sample_records, write_vmig

DEMO_DB = ROOT / "demo" / "memory.db"
SAME_POINT = ("6f1c2a4e-0000-4000-8000-000000000001", "6F1C2A4E-0000-4000-8000-000000000001")
"""Two spellings of one UUID: Qdrant keeps them as one point, so the second is a failed record."""


def _no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr and "Error:" not in stderr.replace("vex: error:", "")


def test_0_done(tmp_path: Path) -> None:
    result = run_vex("export", "--from", "vektor", "--db", str(DEMO_DB), "--output", str(tmp_path / "m.vmig.jsonl"))
    assert result.returncode == 0, result.stderr


def test_1_some_records_failed(tmp_path: Path) -> None:
    records = sample_records(count=4, odd_ones=False)
    records[0]["id"], records[1]["id"] = SAME_POINT
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    result = run_vex("import", "--from", str(source), "--to", "qdrant", "--path", str(tmp_path / "q"))
    assert result.returncode == 1, result.stderr
    assert "failed        : 1" in result.stdout


def test_2_bad_usage_or_configuration(tmp_path: Path) -> None:
    out = str(tmp_path / "o.vmig.jsonl")
    cases = {
        "unknown store": (["export", "--from", "nosuch", "--output", out], "unknown store 'nosuch'"),
        "missing option": (["export", "--from", "vektor", "--db", str(DEMO_DB)], "--output"),
        "missing input file": (["import", "--from", str(tmp_path / "none.vmig.jsonl"), "--to", "vektor"], "not found"),
        "missing database": (["export", "--from", "vektor", "--db", str(tmp_path / "x.db"), "--output", out],
                             "vektor database not found"),
        "inspect a missing file": (["inspect", str(tmp_path / "none.vmig.jsonl")], "file not found"),
    }  # fmt: skip
    for name, (args, fragment) in cases.items():
        result = run_vex(*args)
        assert result.returncode == 2, (name, result.stderr)
        assert fragment in result.stderr, (name, result.stderr)
        _no_traceback(result.stderr)


def test_3_integrity(tmp_path: Path) -> None:
    path = tmp_path / "m.vmig.jsonl"
    assert run_vex("export", "--from", "vektor", "--db", str(DEMO_DB), "--output", str(path)).returncode == 0
    data = bytearray(path.read_bytes())
    data[data.index(b'"text"') + 9] ^= 0x01  # one letter of a text: the file no longer matches its checksum
    path.write_bytes(bytes(data))
    for args in (
        ["import", "--from", str(path), "--to", "vektor", "--db", str(tmp_path / "t.db")],
        ["validate", str(path)],
    ):
        result = run_vex(*args)
        assert result.returncode == 3, result.stderr
        assert "checksum" in result.stderr


def test_4_unreachable_store_and_refused_credentials(tmp_path: Path, pg_server: PgServer) -> None:
    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=3, odd_ones=False))
    unreachable = run_vex("import", "--from", str(source), "--to", "qdrant",
                          "--url", f"http://127.0.0.1:{free_port()}", "--collection", "c")  # fmt: skip
    refused = run_vex("import", "--from", str(source), "--to", "pgvector", "--table", "t_exit4",
                      "--url", pg_server.dsn(password="not-the-password"))  # fmt: skip
    for result, fragment in ((unreachable, "connection refused"), (refused, "password authentication failed")):
        assert result.returncode == 4, result.stderr
        assert fragment in result.stderr and "safe to re-run" in result.stderr
        _no_traceback(result.stderr)


def test_a_namespace_that_matches_nothing_lists_those_present(tmp_path: Path) -> None:
    out = tmp_path / "o.vmig.jsonl"
    result = run_vex("export", "--from", "vektor", "--db", str(DEMO_DB), "--namespace", "nosuch", "--output", str(out))
    assert result.returncode == 0
    assert "namespace 'nosuch' matched no record" in result.stderr
    assert "'research' (100)" in result.stderr and "'trading' (100)" in result.stderr


def test_limit_zero_and_an_empty_source_say_nothing_was_moved(tmp_path: Path) -> None:
    out = str(tmp_path / "o.vmig.jsonl")
    result = run_vex("export", "--from", "vektor", "--db", str(DEMO_DB), "--limit", "0", "--output", out)
    assert result.returncode == 0 and "--limit 0: nothing was moved" in result.stderr
    empty = tmp_path / "empty.db"
    with sqlite3.connect(empty) as conn:
        conn.execute("CREATE TABLE memories (id TEXT PRIMARY KEY, content TEXT, embedding BLOB, metadata TEXT, "
                     "created_at TEXT, namespace TEXT)")  # fmt: skip
    result = run_vex("export", "--from", "vektor", "--db", str(empty), "--output", str(tmp_path / "e.vmig.jsonl"))
    assert result.returncode == 0 and "holds no records: nothing was moved" in result.stderr
    migrate = run_vex("migrate", "--from", "vektor", "--to", "qdrant", "--db", str(DEMO_DB), "--namespace", "none",
                      "--path", str(tmp_path / "q"))  # fmt: skip
    assert migrate.returncode == 0 and "namespace 'none' matched no record" in migrate.stderr


def test_a_missing_database_message_names_the_default_only_when_it_was_the_default(tmp_path: Path) -> None:
    out = str(tmp_path / "o.vmig.jsonl")
    given = run_vex("export", "--from", "vektor", "--db", str(tmp_path / "mine.db"), "--output", out)
    assert given.returncode == 2 and "check the path" in given.stderr and "pass --db" not in given.stderr
    default = run_vex("export", "--from", "vektor", "--output", out, cwd=tmp_path)
    assert default.returncode == 2 and "slipstream-memory.db (the default: pass --db FILE)" in default.stderr


def test_the_quickstart_and_readme_examples_leave_the_clone_clean(tmp_path: Path) -> None:
    """The quickstart's migrate and the README's export, verify and validate, run in a git checkout with the
    project's .gitignore: `git status` shows nothing new."""
    import shutil
    import subprocess

    clone = tmp_path / "clone"
    (clone / "demo").mkdir(parents=True)
    shutil.copy(ROOT / ".gitignore", clone / ".gitignore")
    shutil.copy(DEMO_DB, clone / "demo" / "memory.db")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(clone)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "clone"], check=True)
    commands = [
        ["migrate", "--from", "vektor", "--to", "qdrant", "--db", "demo/memory.db", "--path", "qdrant_data",
         "--collection", "memories", "--verify"],
        ["export", "--from", "vektor", "--db", "demo/memory.db", "--output", "memories.vmig.jsonl"],
        ["validate", "memories.vmig.jsonl"],
        ["verify", "--from", "vektor", "--to", "jsonl", "--db", "demo/memory.db", "--path", "memories.vmig.jsonl"],
    ]  # fmt: skip
    for command in commands:
        result = run_vex(*command, cwd=clone)
        assert result.returncode == 0, (command, result.stderr)
    assert (clone / "qdrant_data").is_dir() and (clone / "vex-verify.json").exists()
    status = subprocess.run([*git, "status", "--porcelain", "--untracked-files=all"], capture_output=True, text=True)
    assert status.stdout == "", status.stdout
