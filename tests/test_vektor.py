"""VEKTOR files: layout detection, what each layout carries, and lossless round trips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from connectors.vektor import VektorConnector, VektorOptions
from tests.conftest import run_vex
from tests.records import read_vmig
from tests.vektor_layouts import DIMS, LAYOUTS

TIME_KEYS = {"exported_at", "imported_at", "imported_to", "imports", "source_store"}


def _export(db: Path, output: Path) -> None:
    result = run_vex("export", "--from", "vektor", "--db", str(db), "--output", str(output))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("layout", [1, 2, 3])
def test_layout_is_detected(layout: int, tmp_path: Path) -> None:
    db = LAYOUTS[layout](tmp_path / "m.db")
    with VektorConnector(VektorOptions(db=db)) as store:
        assert store.layout() == layout
        info = store.describe()
    assert info.dims == DIMS and info.count == 50


@pytest.mark.parametrize("layout", [1, 2, 3])
def test_round_trip_through_layout1_is_byte_identical(layout: int, tmp_path: Path) -> None:
    """vektor -> jsonl -> vektor -> jsonl gives the same bytes, for each layout as the first source."""
    first_db = LAYOUTS[layout](tmp_path / "source.db")
    first, second = tmp_path / "first.vmig.jsonl", tmp_path / "second.vmig.jsonl"
    _export(first_db, first)
    result = run_vex("import", "--from", str(first), "--to", "vektor", "--db", str(tmp_path / "copy.db"))
    assert result.returncode == 0, result.stderr
    _export(tmp_path / "copy.db", second)

    assert first.read_bytes() == second.read_bytes()
    assert len(first.read_bytes().splitlines()) == 50
    meta_first = json.loads((tmp_path / "first.vmig.meta.json").read_text())
    meta_second = json.loads((tmp_path / "second.vmig.meta.json").read_text())
    assert {k: v for k, v in meta_first.items() if k not in TIME_KEYS} == {
        k: v for k, v in meta_second.items() if k not in TIME_KEYS
    }
    assert meta_first["imports"][0]["upserted"] == 50


def test_layout3_carries_graph_edges_and_agent_columns(tmp_path: Path) -> None:
    db = LAYOUTS[3](tmp_path / "graph.db")
    output = tmp_path / "g.vmig.jsonl"
    _export(db, output)
    records = read_vmig(output)
    first = records["g-0"]["metadata"]
    assert first["agent_id"] == "agent-0" and first["edge_type"] == "semantic" and first["summary"] is None
    assert [e["id"] for e in first["graph_edges"]] == ["e-0", "e-extra"]
    assert first["graph_edges"][1] == {
        "id": "e-extra",
        "target_id": "g-9",
        "edge_type": "relates",
        "weight": 0.9,
        "created_at": 1_736_936_700,
    }
    assert "graph_edges" not in records["g-1"]["metadata"]
    assert sum(len(r["metadata"].get("graph_edges", [])) for r in records.values()) == 26
    assert records["g-2"]["created_at"].timestamp() == 1_736_936_580 + 120
    # the file obeys the format: metadata flat, nested values as JSON text listed per record
    line = json.loads(output.read_text().splitlines()[0])
    assert isinstance(line["metadata"]["graph_edges"], str)
    assert set(line["metadata_json_keys"]) == {"graph_edges"}


def test_layout2_reads_vectors_from_sqlite_vec(tmp_path: Path) -> None:
    db = LAYOUTS[2](tmp_path / "vec.db")
    output = tmp_path / "v.vmig.jsonl"
    _export(db, output)
    records = read_vmig(output)
    assert records["l2-3"]["vector"] is None
    expected = np.random.default_rng(2).standard_normal((50, DIMS)).astype("<f4")
    assert np.array_equal(np.asarray(records["l2-10"]["vector"], dtype=np.float32), expected[10])
    assert records["l2-10"]["metadata"] == {"rank": 10, "nested": {"k": [10]}}


def test_import_upserts_into_existing_file(tmp_path: Path) -> None:
    db = LAYOUTS[1](tmp_path / "m.db")
    output = tmp_path / "m.vmig.jsonl"
    _export(db, output)
    lines = output.read_text().splitlines()
    changed = json.loads(lines[0])
    changed["text"] = "rewritten"
    new = dict(changed, id="brand-new")
    edited = tmp_path / "edit.vmig.jsonl"
    edited.write_text(json.dumps(changed) + "\n" + json.dumps(new) + "\n")
    result = run_vex("import", "--from", str(edited), "--to", "vektor", "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert "no sidecar" in result.stderr
    again = tmp_path / "again.vmig.jsonl"
    _export(db, again)
    records = read_vmig(again)
    assert len(records) == 51
    assert records[changed["id"]]["text"] == "rewritten"


def test_writing_into_another_layout_is_refused(tmp_path: Path) -> None:
    db = LAYOUTS[3](tmp_path / "graph.db")
    source = LAYOUTS[1](tmp_path / "l1.db")
    before = db.read_bytes()
    result = run_vex(
        "migrate", "--from", "vektor", "--to", "vektor", "--source-db", str(source), "--target-db", str(db)
    )
    assert result.returncode == 2
    assert "layout 3" in result.stderr and "Traceback" not in result.stderr
    assert db.read_bytes() == before


@pytest.mark.parametrize(
    ("update", "reason"),
    [
        ("embedding = x'0102030405'", "not a whole number of float32"),
        ("metadata = '{\"ticket\": 340282366920938463463374607431768211455}'",
         "holds the integer 340282366920938463463374607431768211455, beyond 64 bits"),
    ],
    ids=["damaged blob", "metadata integer beyond 64 bits"],
)  # fmt: skip
def test_a_record_vex_cannot_carry_is_rejected_not_counted(tmp_path: Path, update: str, reason: str) -> None:
    import sqlite3

    db = LAYOUTS[1](tmp_path / "m.db")
    with sqlite3.connect(db) as conn:
        conn.execute(f"UPDATE memories SET {update} WHERE id = 'l1-4'")
    conn.close()
    output = tmp_path / "out.vmig.jsonl"
    result = run_vex("export", "--from", "vektor", "--db", str(db), "--output", str(output), "--json")
    assert result.returncode == 3
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["total"] == 49 and summary["rejected"] == 1
    rejects = [json.loads(line) for line in (tmp_path / "out.rejects.jsonl").read_text().splitlines()]
    assert rejects[0]["id"] == "l1-4" and reason in rejects[0]["reason"]
    assert "l1-4" not in read_vmig(output)
