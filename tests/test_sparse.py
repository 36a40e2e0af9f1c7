"""The format's optional `sparse_vector`: its rules, and every store keeping it (Pinecone as sparse values)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

from tests.conftest import run_vex
from tests.fakes.pinecone import FakePinecone
from tests.records import read_lines, write_lines

SPARSE = {"indices": [2, 9, 4_000_000_000], "values": [0.25, -1.5, 1e-7]}


def _records() -> list[dict[str, Any]]:
    return [
        {"id": "hybrid", "text": "dense and sparse", "vector": [0.5, 0.25, -1.0], "sparse_vector": SPARSE},
        {"id": "sparse-only", "text": None, "vector": None, "sparse_vector": {"indices": [1], "values": [2.0]}},
        {"id": "dense", "text": "plain", "vector": [1.0, 2.0, 3.0]},
    ]


def test_damaged_sparse_vectors_are_rejected_with_their_line(tmp_path: Path) -> None:
    bad = [
        {"id": "a", "text": "t", "sparse_vector": {"indices": [1, 2], "values": [1.0]}},
        {"id": "b", "text": "t", "sparse_vector": {"indices": [1, 1], "values": [1.0, 2.0]}},
        {"id": "c", "text": "t", "sparse_vector": {"indices": [-1], "values": [1.0]}},
        {"id": "d", "text": "t", "sparse_vector": {"indices": [2**32], "values": [1.0]}},
        {"id": "e", "text": "t", "sparse_vector": [1, 2]},
        '{"id": "f", "text": "t", "vex_version": "1.0.0", "sparse_vector": {"indices": [1], "values": [NaN]}}',
        {"id": "g", "text": "t", "sparse_vector": {"indices": [1, 2], "values": [0.5, 1e39]}},  # inf as float32
        {"id": "ok", "text": "t", "sparse_vector": {"indices": [], "values": []}},
    ]
    path = write_lines(tmp_path / "s.vmig.jsonl", bad)
    result = run_vex("validate", str(path), "--json", cwd=tmp_path)
    assert result.returncode == 3
    report = json.loads(result.stdout)
    assert report["valid_records"] == 1 and report["damaged_lines"] == 7
    rejects = [orjson.loads(line) for line in (tmp_path / "s.rejects.jsonl").read_bytes().splitlines()]
    reasons = {entry["line"]: entry["reason"] for entry in rejects}
    assert "has 2 indices but 1 values" in reasons[1]
    assert "must not repeat" in reasons[2]
    assert "from 0 to 4294967295" in reasons[3] and "from 0 to 4294967295" in reasons[4]
    assert "object of 'indices' and 'values'" in reasons[5]
    assert 6 in reasons
    assert "not a finite float32" in reasons[7]


def test_file_vektor_qdrant_file_keep_sparse_vectors_exactly(tmp_path: Path) -> None:
    source = write_lines(tmp_path / "in.vmig.jsonl", _records())
    db, folder = tmp_path / "m.db", tmp_path / "q"
    assert run_vex("import", "--from", str(source), "--to", "vektor", "--db", str(db), cwd=tmp_path).returncode == 0
    moved = run_vex("migrate", "--from", "vektor", "--to", "qdrant", "--db", str(db), "--path", str(folder),
                    "--json", "--verify", cwd=tmp_path)  # fmt: skip
    assert moved.returncode == 0, moved.stderr  # verified: the sparse vectors compared and matched
    summary = json.loads(moved.stdout)
    assert summary["upserted"] == 2 and summary["skipped"] == {"null vector": 1}  # qdrant needs a dense vector
    out = tmp_path / "out.vmig.jsonl"
    assert run_vex("export", "--from", "qdrant", "--path", str(folder), "--output", str(out)).returncode == 0
    back = read_lines(out)
    assert back["hybrid"]["sparse_vector"] == SPARSE
    via_vektor = tmp_path / "v.vmig.jsonl"
    assert run_vex("export", "--from", "vektor", "--db", str(db), "--output", str(via_vektor)).returncode == 0
    kept = read_lines(via_vektor)
    assert kept["hybrid"]["sparse_vector"] == SPARSE
    assert kept["sparse-only"]["sparse_vector"] == {"indices": [1], "values": [2.0]}
    migrated = tmp_path / "migrated.vmig.jsonl"
    to_file = run_vex("migrate", "--from", "vektor", "--to", "jsonl", "--db", str(db), "--path", str(migrated),
                      "--verify", cwd=tmp_path)  # fmt: skip
    assert to_file.returncode == 0, to_file.stderr
    assert migrated.read_bytes() == via_vektor.read_bytes()


def test_pinecone_stores_them_as_sparse_values(pinecone_fake: FakePinecone, tmp_path: Path) -> None:
    source = write_lines(tmp_path / "in.vmig.jsonl", _records())
    options = ["--index", "sparse", "--api-key", pinecone_fake.api_key, "--controller-host", pinecone_fake.url,
               "--cloud", "aws", "--region", "us-east-1"]  # fmt: skip
    result = run_vex("import", "--from", str(source), "--to", "pinecone", *options, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["skipped"] == {"null vector": 1}
    stored = pinecone_fake.indexes["sparse"].namespaces["__default__"]["hybrid"]
    assert stored["sparse"][0] == SPARSE["indices"]
    assert "_vex_extra" not in stored["metadata"]
    out = tmp_path / "out.vmig.jsonl"
    assert run_vex("export", "--from", "pinecone", *options, "--output", str(out), cwd=tmp_path).returncode == 0
    assert read_lines(out)["hybrid"]["sparse_vector"] == SPARSE


def test_the_batch_carries_a_typed_column_that_folds_into_extra_and_back(tmp_path: Path) -> None:
    import pyarrow as pa

    from vmig.reader import read_batches
    from vmig.schema import SPARSE_TYPE
    from vmig.sparse import fold, unfold

    source = write_lines(tmp_path / "in.vmig.jsonl", [{**_records()[0], "modality": "text"}, _records()[2]])
    batch = next(iter(read_batches(source))).batch
    assert batch.schema.field("sparse_vector").type == SPARSE_TYPE
    column = batch.column("sparse_vector")
    assert column.to_pylist()[1] is None
    assert column.type.field("values").type == pa.list_(pa.float32())
    assert json.loads(batch.column("extra")[0].as_py()) == {"modality": "text"}
    folded = fold(batch)
    assert folded.column("sparse_vector").null_count == 2
    assert json.loads(folded.column("extra")[0].as_py())["sparse_vector"]["indices"] == SPARSE["indices"]
    back = unfold(folded)
    assert back.column("sparse_vector").to_pylist() == column.to_pylist()
    assert back.column("extra").to_pylist() == batch.column("extra").to_pylist()


def test_chroma_and_pgvector_keep_them(tmp_path: Path, pg_server: Any) -> None:
    source = write_lines(tmp_path / "in.vmig.jsonl", _records())
    for store, options in (
        ("chroma", ["--path", str(tmp_path / "c")]),
        ("pgvector", ["--url", pg_server.dsn(), "--table", "sparse_kept"]),
    ):
        assert run_vex("import", "--from", str(source), "--to", store, *options, cwd=tmp_path).returncode == 0
        out = tmp_path / f"{store}.vmig.jsonl"
        exported = run_vex("export", "--from", store, *options, "--output", str(out), cwd=tmp_path)
        assert exported.returncode == 0, exported.stderr
        assert read_lines(out)["hybrid"]["sparse_vector"] == SPARSE, store


def test_verify_compares_sparse_vectors(tmp_path: Path) -> None:
    records = _records()
    changed = [
        {**records[0], "sparse_vector": {"indices": SPARSE["indices"], "values": [0.25, -1.5, 2e-7]}},
        {**records[1], "sparse_vector": {"indices": [1], "values": [2.0]}},
        {**records[2], "sparse_vector": {"indices": [0], "values": [1.0]}},
    ]
    reordered = [{**records[0], "sparse_vector": {"indices": [4_000_000_000, 9, 2], "values": [1e-7, -1.5, 0.25]}}]
    for name, lines in (("a", records), ("b", changed), ("c", reordered + records[1:])):
        source = write_lines(tmp_path / f"{name}.vmig.jsonl", lines)
        imported = run_vex("import", "--from", str(source), "--to", "vektor", "--db", str(tmp_path / f"{name}.db"))
        assert imported.returncode == 0, imported.stderr

    def verify(target: str) -> tuple[int, dict[str, Any]]:
        report = tmp_path / f"verify-{target}.json"
        result = run_vex("verify", "--from", "vektor", "--to", "vektor", "--source-db", str(tmp_path / "a.db"),
                         "--target-db", str(tmp_path / f"{target}.db"), "--report", str(report))  # fmt: skip
        return result.returncode, json.loads(report.read_text())

    code, report = verify("b")
    assert code == 3
    assert report["mismatched_fields"] == {"sparse_vector": 2}
    assert sorted(entry["id"] for entry in report["mismatches"]) == ["dense", "hybrid"]
    code, report = verify("c")  # the same pairs in another order are the same sparse vector
    assert code == 0 and report["matched"] == 3, report


def test_float32_values_round_trip_exactly(tmp_path: Path) -> None:
    """Every float32 printed in its shortest form comes back with the same bits, through a store and back."""
    import numpy as np

    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2**32, size=4000, dtype=np.uint64).astype(np.uint32)
    values = bits.view(np.float32)
    values = values[np.isfinite(values)][:2000]
    values = np.concatenate([values, np.array([1e-45, -3.4028235e38, 0.1, 1 / 3, 0.0], dtype=np.float32)])
    lines = []
    for row in range(0, len(values), 100):
        part = values[row : row + 100]
        indices = rng.choice(2**32, size=len(part), replace=False).tolist()
        lines.append({"id": f"r{row}", "text": "t", "sparse_vector": {"indices": indices, "values": part.tolist()}})
    source = write_lines(tmp_path / "in.vmig.jsonl", lines)
    db = tmp_path / "m.db"
    assert run_vex("import", "--from", str(source), "--to", "vektor", "--db", str(db)).returncode == 0
    out = tmp_path / "out.vmig.jsonl"
    assert run_vex("export", "--from", "vektor", "--db", str(db), "--output", str(out)).returncode == 0
    back = read_lines(out)
    for line in lines:
        sparse = back[line["id"]]["sparse_vector"]
        assert sparse["indices"] == line["sparse_vector"]["indices"]
        expected = np.asarray(line["sparse_vector"]["values"], dtype=np.float32)
        assert np.asarray(sparse["values"], dtype=np.float32).tobytes() == expected.tobytes()
    again = tmp_path / "again.vmig.jsonl"
    assert run_vex("import", "--from", str(out), "--to", "vektor", "--db", str(tmp_path / "n.db")).returncode == 0
    assert run_vex("export", "--from", "vektor", "--db", str(tmp_path / "n.db"), "--output", str(again)).returncode == 0
    assert again.read_bytes() == out.read_bytes()


def _old_line(record_id: str, **fields: Any) -> dict[str, Any]:
    """A line as vex wrote it before the field had a column: its keys in the writer's order, any key it had no
    field for (sparse_vector among them) after vex_version."""
    line: dict[str, Any] = {
        "id": record_id, "text": f"text of {record_id}", "vector": [0.5, -0.25, 1.0], "model": "m", "dims": 3,
        "namespace": "n", "score": None, "metadata": {"k": 1}, "created_at": "2025-01-15T10:23:00.000Z",
        "source_store": "old", "vex_version": "1.0.0",
    }  # fmt: skip
    line.update(fields)
    return line


def test_files_written_before_the_column_read_and_write_back_the_same(tmp_path: Path) -> None:
    """A file without the field, and one whose lines carried it as an unknown key: a re-export through VEKTOR
    gives the same bytes (the checksum its sidecar records is the original file's)."""
    from vmig.sidecar import file_checksum, read_sidecar

    plain = [_old_line(f"p{i}") for i in range(5)]
    nested = _old_line("nested", metadata={"k": '{"a":1}'}, metadata_json_keys=["k"])
    carried = [
        _old_line("s1", sparse_vector={"indices": [7, 3], "values": [0.1, -2.5]}),
        {**_old_line("s2", vector=None, dims=None), "sparse_vector": {"indices": [1], "values": [3.0]}},
        {**nested, "sparse_vector": {"indices": [4_294_967_295], "values": [1e-30]}},
    ]
    for name, lines in (("plain", plain), ("carried", plain[:2] + carried + plain[2:])):
        source = write_lines(tmp_path / f"{name}.vmig.jsonl", [orjson.dumps(line).decode() for line in lines])
        db, out = tmp_path / f"{name}.db", tmp_path / f"{name}-again.vmig.jsonl"
        assert run_vex("import", "--from", str(source), "--to", "vektor", "--db", str(db)).returncode == 0
        assert run_vex("export", "--from", "vektor", "--db", str(db), "--output", str(out)).returncode == 0
        assert out.read_bytes() == source.read_bytes(), name
        sidecar = read_sidecar(out)
        assert sidecar is not None and sidecar.checksum == file_checksum(source), name
