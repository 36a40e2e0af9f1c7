"""`vex inspect` and `vex validate` on stores (`--from STORE`) and on paths that are not `.vmig.jsonl` files,
through the CLI."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.conftest import ROOT, run_vex
from tests.pg_server import PgServer
from tests.records import sample_records, write_vmig
from tests.vektor_layouts import make_layout1, make_layout2, make_layout3

DEMO_DB = ROOT / "demo" / "memory.db"


def _copy_demo(tmp_path: Path) -> Path:
    db = tmp_path / "memory.db"
    db.write_bytes(DEMO_DB.read_bytes())
    return db


def _no_rejects_file(folder: Path) -> None:
    assert not list(folder.glob("*rejects*")), list(folder.iterdir())


def test_a_vektor_database_given_as_file_is_inspected_as_one(tmp_path: Path) -> None:
    db = _copy_demo(tmp_path)
    result = run_vex("inspect", str(db), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"{db} is a VEKTOR database: read as --from vektor --db {db}" in result.stderr
    assert "records   : 300 (0 without a vector, 0 unreadable)" in result.stdout
    assert "namespace : personal=100, research=100, trading=100" in result.stdout
    assert "layout    : VEKTOR layout 1: memories(" in result.stdout
    assert "damaged" not in result.stdout
    _no_rejects_file(tmp_path)


def test_validate_on_a_vektor_database_reads_it_as_a_store(tmp_path: Path) -> None:
    db = _copy_demo(tmp_path)
    result = run_vex("validate", str(db), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["vektor:memory.db: 300 valid records, 0 unreadable", "valid"]
    _no_rejects_file(tmp_path)


def test_inspect_from_vektor_names_each_layout_and_counts_null_vectors(tmp_path: Path) -> None:
    for number, make in ((1, make_layout1), (2, make_layout2), (3, make_layout3)):
        db = make(tmp_path / f"l{number}.db")
        result = run_vex("inspect", "--from", "vektor", "--db", str(db), "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["layout"].startswith(f"VEKTOR layout {number}:"), report
        assert report["records"] == 50
        assert sum(report["counts"]["namespace"].values()) == 50
    layout1 = json.loads(run_vex("inspect", "--from", "vektor", "--db", str(tmp_path / "l1.db"), "--json").stdout)
    assert layout1["null_vectors"] == 1  # make_layout1 leaves record 7 without a vector
    assert layout1["counts"]["dims"]["null"] == 1


def test_inspect_a_namespace_and_one_that_matches_nothing(tmp_path: Path) -> None:
    db = _copy_demo(tmp_path)
    one = json.loads(run_vex("inspect", "--from", "vektor", "--db", str(db), "--namespace", "trading", "--json").stdout)
    assert one["records"] == 100 and one["counts"]["namespace"] == {"trading": 100}
    none = run_vex("inspect", "--from", "vektor", "--db", str(db), "--namespace", "nosuch")
    assert none.returncode == 0
    assert "records   : 0" in none.stdout
    assert "no record has namespace 'nosuch'; the store holds: personal, research, trading" in none.stderr


def test_inspect_from_qdrant_after_an_import(tmp_path: Path) -> None:
    records = sample_records(count=30, odd_ones=False)
    for index, record in enumerate(records):
        record["namespace"] = ["a", "b", "c"][index % 3]
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    folder = tmp_path / "q"
    imported = run_vex("import", "--from", str(source), "--to", "qdrant", "--path", str(folder), "--metric", "dot")
    assert imported.returncode == 0, imported.stderr
    result = run_vex("inspect", "--from", "qdrant", "--path", str(folder), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["records"] == 30 and report["null_vectors"] == 0
    assert report["counts"]["namespace"] == {"a": 10, "b": 10, "c": 10}
    assert report["metric"] == "dot"
    assert report["dims"] == len(records[0]["vector"])
    as_file = run_vex("inspect", str(folder))
    assert as_file.returncode == 2
    assert f"{folder} is a Qdrant local-mode folder, not a .vmig.jsonl file: use --from qdrant --path {folder}" in (
        as_file.stderr
    )
    missing = run_vex("inspect", "--from", "qdrant", "--path", str(folder), "--collection", "nosuch")
    assert missing.returncode == 2
    assert "does not exist: nothing to inspect" in missing.stderr


def test_inspect_from_pgvector_shows_the_table_layout_and_the_index_metric(tmp_path: Path, pg_server: PgServer) -> None:
    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=20, odd_ones=False))
    url = pg_server.dsn()
    table = "inspected"
    imported = run_vex("import", "--from", str(source), "--to", "pgvector", "--url", url, "--table", table,
                       "--metric", "euclid")  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    result = run_vex("inspect", "--from", "pgvector", "--url", url, "--table", table)
    assert result.returncode == 0, result.stderr
    assert 'layout    : native layout: table "inspected" (id=id, vector=embedding' in result.stdout
    assert "metric    : euclid" in result.stdout
    assert "records   : 20 (0 without a vector, 0 unreadable)" in result.stdout
    assert pg_server.password not in result.stdout + result.stderr


def test_paths_that_are_not_vmig_files_are_named_never_read_as_damaged_lines(tmp_path: Path) -> None:
    (tmp_path / "table.parquet").write_bytes(b"PAR1" + bytes(100))
    (tmp_path / "notes.csv").write_text("id,text\n1,hello\n2,world\n")
    (tmp_path / "blob.bin").write_bytes(bytes(range(256)) * 4)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE things(x)")
    conn.close()
    chroma_dir = tmp_path / "chroma"
    chroma_dir.mkdir()
    (chroma_dir / "chroma.sqlite3").write_bytes(b"")
    expected = {
        "table.parquet": "is a Parquet file, not a .vmig.jsonl file",
        "notes.csv": "is text with no JSON object on any of its first lines, not a .vmig.jsonl file",
        "blob.bin": "is binary data, not lines of JSON, not a .vmig.jsonl file",
        "other.sqlite": "is a SQLite database without a memories table (not a VEKTOR database)",
        "chroma": f"is an embedded Chroma folder, not a .vmig.jsonl file: use --from chroma --path {chroma_dir}",
    }
    for command in ("inspect", "validate"):
        for name, fragment in expected.items():
            result = run_vex(command, str(tmp_path / name), cwd=tmp_path)
            assert result.returncode == 2, (command, name, result.stdout, result.stderr)
            assert fragment in result.stderr, (command, name, result.stderr)
            assert "Traceback" not in result.stderr
    _no_rejects_file(tmp_path)


def test_a_damaged_vmig_file_is_still_reported_line_by_line(tmp_path: Path) -> None:
    path = write_vmig(tmp_path / "d.vmig.jsonl", sample_records(count=5, odd_ones=False))
    lines = path.read_text().splitlines()
    lines[0] = "not json at all"
    path.write_text("\n".join(lines) + "\n")
    result = run_vex("validate", str(path), cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "4 valid records, 0 duplicate ids, 1 damaged lines" in result.stdout
    assert (tmp_path / "d.rejects.jsonl").exists()


def test_validate_from_a_store_names_the_records_it_cannot_read(tmp_path: Path) -> None:
    db = make_layout1(tmp_path / "l1.db")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE memories SET created_at = 'the day after tomorrow' WHERE id = 'l1-3'")
    conn.close()
    result = run_vex("validate", "--from", "vektor", "--db", str(db))
    assert result.returncode == 3, result.stderr
    assert "49 valid records, 1 unreadable" in result.stdout
    assert "  l1-3: vektor row 4: created_at is not ISO-8601: 'the day after tomorrow'" in result.stdout
    assert result.stdout.splitlines()[-1] == "INVALID"
    inspected = json.loads(run_vex("inspect", "--from", "vektor", "--db", str(db), "--json").stdout)
    assert inspected["unreadable"] == 1 and inspected["unreadable_sample"][0]["id"] == "l1-3"


def test_usage_mistakes_are_one_line_with_exit_2(tmp_path: Path) -> None:
    db = _copy_demo(tmp_path)
    cases = {
        "nothing to look at": (["inspect"], "vex inspect needs a FILE or --from STORE"),
        "store options without --from": (["inspect", str(db), "--db", str(db)], "store options go with --from STORE"),
        "an unknown store": (["inspect", "--from", "nosuch"], "unknown store 'nosuch'"),
        "an option the store does not take": (["validate", "--from", "vektor", "--path", "x"],
                                               "vektor does not take --path"),
        "a missing file": (["validate", str(tmp_path / "none.vmig.jsonl")], "file not found"),
        "a namespace on a file": (["inspect", str(write_vmig(tmp_path / "f.vmig.jsonl", sample_records(count=2))),
                                   "--namespace", "x"], "--namespace goes with --from STORE"),
    }  # fmt: skip
    for name, (args, fragment) in cases.items():
        result = run_vex(*args, cwd=tmp_path)
        assert result.returncode == 2, (name, result.stderr)
        assert fragment in result.stderr, (name, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, (name, result.stderr)
