"""Milvus specifics, against the real Milvus Lite engine through the command line: the round trip from VEKTOR,
ids Milvus filters cannot take unescaped, migrate both ways, a resumed migrate, sparse vectors, a collection
another tool made, and the inputs vex refuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from connectors.milvus import MilvusConnector, MilvusOptions, literal
from tests.conftest import run_vex
from tests.records import read_vmig, sample_records, write_vmig
from tests.vektor_layouts import make_layout1


def _lite(path: Path, collection: str = "memories", *extra: str) -> list[str]:
    return ["--path", str(path), "--collection", collection, *extra]


def _summary(result: Any) -> dict[str, Any]:
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def _same(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    for key in ("text", "namespace", "metadata", "model", "created_at"):
        assert actual[key] == expected[key], (actual["id"], key, actual[key], expected[key])
    assert np.array_equal(np.asarray(actual["vector"], np.float32), np.asarray(expected["vector"], np.float32))


def test_vektor_to_milvus_lite_to_vmig_keeps_every_field(tmp_path: Path) -> None:
    """The issue's round trip: VEKTOR -> Milvus Lite -> .vmig.jsonl gives back the ids, text, vectors, namespaces
    (a null one too) and nested metadata exactly, and `vex verify` finds every record."""
    db = make_layout1(tmp_path / "vektor.db", count=60, dims=16)
    direct = tmp_path / "direct.vmig.jsonl"
    assert run_vex("export", "--from", "vektor", "--db", str(db), "--output", str(direct)).returncode == 0
    lite = _lite(tmp_path / "m.db", "memories")
    moved = run_vex("migrate", "--from", "vektor", "--to", "milvus", "--source-db", str(db), "--target-path",
                    str(tmp_path / "m.db"), "--target-collection", "memories", "--json")  # fmt: skip
    assert moved.returncode == 0, moved.stderr
    summary = _summary(moved)
    assert summary["upserted"] == 59 and summary["skipped"] == {"null vector": 1}
    out = tmp_path / "back.vmig.jsonl"
    exported = run_vex("export", "--from", "milvus", *lite, "--output", str(out), "--json")
    assert exported.returncode == 0, exported.stderr
    back, original = read_vmig(out), read_vmig(direct)
    assert sorted(back) == sorted(i for i, r in original.items() if r["vector"] is not None)
    for record_id, record in back.items():
        _same(record, original[record_id])
    assert any(r["namespace"] is None for r in back.values()) and any("history" in r["metadata"] for r in back.values())
    assert back["l1-0"]["metadata"]["history"] == [{"turn": 0, "ok": True}, None]
    verify = run_vex("verify", "--from", "vektor", "--to", "milvus", "--source-db", str(db),
                     "--target-path", str(tmp_path / "m.db"), "--target-collection", "memories",
                     "--report", str(tmp_path / "v.json"))  # fmt: skip
    report = json.loads((tmp_path / "v.json").read_text())
    assert verify.returncode == 0, (verify.stdout, report)
    assert report["matched"] == 59


TRICKY_IDS = ['say "hi"', "back\\slash", "line\nbreak", "tab\there", "ü/é 1", " ", "'single'", "x" * 300, "0", "-5"]


def test_ids_a_filter_cannot_hold_unescaped_round_trip_across_pages(tmp_path: Path) -> None:
    """Export pages by `id > last`: quotes, backslashes and line breaks in an id are escaped, so every page
    follows on from the last one, none lost or repeated; null and empty namespaces stay apart."""
    records = sample_records(count=len(TRICKY_IDS), odd_ones=False)
    for record, new_id in zip(records, TRICKY_IDS, strict=True):
        record["id"] = new_id
    records[0]["namespace"], records[1]["namespace"] = None, ""
    source = write_vmig(tmp_path / "ids.vmig.jsonl", records)
    lite = _lite(tmp_path / "m.db", "ids")
    assert run_vex("import", "--from", str(source), "--to", "milvus", *lite).returncode == 0
    with MilvusConnector(MilvusOptions(path=tmp_path / "m.db", collection="ids")) as milvus:
        milvus.page_size = 3
        pages = list(milvus.extract(None, None))
        empty = [i for page in milvus.extract("", None) for i in page.batch.column("id").to_pylist()]
    ids = [i for page in pages for i in page.batch.column("id").to_pylist()]
    assert ids == sorted(TRICKY_IDS) and len(pages) == 4
    assert empty == [TRICKY_IDS[1]]
    out = tmp_path / "back.vmig.jsonl"
    assert run_vex("export", "--from", "milvus", *lite, "--output", str(out)).returncode == 0
    back = read_vmig(out)
    expected = {r["id"]: r for r in read_vmig(source).values()}
    assert sorted(back) == sorted(expected)
    for record_id, record in back.items():
        _same(record, expected[record_id])
    assert back['say "hi"']["namespace"] is None and back["back\\slash"]["namespace"] == ""


def test_filter_literals_escape_what_milvus_reads_as_syntax() -> None:
    assert literal('a"b\\c\nd\re') == '"a\\"b\\\\c\\nd\\re"'
    assert literal(42) == "42"


def test_migrate_milvus_to_qdrant_and_back_and_to_a_file(tmp_path: Path) -> None:
    records = sample_records(count=25, odd_ones=False)
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    first = tmp_path / "a.db"
    assert run_vex("import", "--from", str(source), "--to", "milvus", *_lite(first, "one")).returncode == 0
    to_qdrant = run_vex("migrate", "--from", "milvus", "--to", "qdrant", "--source-path", str(first),
                        "--source-collection", "one", "--target-path", str(tmp_path / "q"), "--target-collection",
                        "copy", "--verify", "--json")  # fmt: skip
    assert to_qdrant.returncode == 0, to_qdrant.stderr
    assert _summary(to_qdrant)["upserted"] == 25 and _summary(to_qdrant)["verify"]["ok"]
    back = run_vex("migrate", "--from", "qdrant", "--to", "milvus", "--source-path", str(tmp_path / "q"),
                   "--source-collection", "copy", "--target-path", str(tmp_path / "b.db"), "--target-collection",
                   "again", "--target-metric", "dot", "--verify", "--json")  # fmt: skip
    assert back.returncode == 0, back.stderr
    assert _summary(back)["upserted"] == 25 and _summary(back)["verify"]["ok"]
    out = tmp_path / "again.vmig.jsonl"
    assert (
        run_vex("export", "--from", "milvus", *_lite(tmp_path / "b.db", "again"), "--output", str(out)).returncode == 0
    )
    again = read_vmig(out)
    for record in read_vmig(source).values():
        _same(again[record["id"]], record)
    with MilvusConnector(MilvusOptions(path=tmp_path / "b.db", collection="again")) as milvus:
        info = milvus.describe()
    assert (info.dims, info.metric, info.count) == (8, "dot", 25)
    assert info.layout == "VARCHAR primary key 'id', FLOAT_VECTOR 'vector' (8-d, IP index), namespace as partition key"


def test_an_interrupted_migrate_from_milvus_resumes_after_its_cursor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Milvus is the source: the checkpoint keeps the last id of the last chunk written; the same run again reads
    on from there, and the target ends with every record once."""
    from connectors.vektor import VektorConnector
    from engine.jobs import migrate_job
    from engine.local import LocalRunner
    from engine.params import MigrateParams, StoreSpec
    from vmig.errors import StoreError

    records = sample_records(count=2_500, odd_ones=False)
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    assert run_vex("import", "--from", str(source), "--to", "milvus", *_lite(tmp_path / "m.db")).returncode == 0
    params = MigrateParams(
        source=StoreSpec(store="milvus", options={"path": tmp_path / "m.db", "collection": "memories"}),
        target=StoreSpec(store="vektor", options={"db": tmp_path / "t.db"}),
        chunk_rows=1_000,
    )
    real_load = VektorConnector.load
    loads = 0

    def failing_load(self: VektorConnector, batch):  # type: ignore[no-untyped-def]
        nonlocal loads
        loads += 1
        if loads == 2:
            raise StoreError("the disk is gone")
        return real_load(self, batch)

    monkeypatch.setattr(VektorConnector, "load", failing_load)
    with pytest.raises(StoreError):
        migrate_job(params, LocalRunner())
    monkeypatch.setattr(VektorConnector, "load", real_load)
    summary = migrate_job(params, LocalRunner())
    assert any("resumed" in warning for warning in summary.warnings)
    assert summary.read == 2_500 and summary.upserted == 2_500
    import sqlite3

    with sqlite3.connect(tmp_path / "t.db") as conn:
        total, distinct = conn.execute("SELECT count(*), count(DISTINCT id) FROM memories").fetchone()
    conn.close()
    assert (total, distinct) == (2_500, 2_500)


def test_a_collection_dropped_and_made_again_is_another_incarnation(tmp_path: Path) -> None:
    """A checkpoint keeps the target's incarnation: a resumed run into a collection made again starts over."""
    from tests.records import to_batch

    def fill() -> str | None:
        with MilvusConnector(MilvusOptions(path=tmp_path / "m.db")) as milvus:
            milvus.ensure_target(8, None)
            milvus.load(to_batch(sample_records(count=5, odd_ones=False)))
            milvus.finish()
            return milvus.incarnation()

    first = fill()
    with MilvusConnector(MilvusOptions(path=tmp_path / "m.db")) as milvus:
        assert first is not None and milvus.incarnation() == first
        milvus.client().drop_collection("memories")
    assert fill() not in (None, first)


def test_sparse_vectors_in_the_sparse_field_and_beside_it(tmp_path: Path) -> None:
    """With --sparse-field the sparse vectors go into that field (Milvus Lite refuses a record without one there:
    it fails with the reason); without it, every sparse vector travels in vex_fields, one Milvus could not hold
    (a negative weight, indices out of order) too. Both come back exactly."""
    records = sample_records(count=4, odd_ones=False)
    records[0]["sparse_vector"] = {"indices": [3, 17, 4000000], "values": [0.5, 1.25, 2.0]}
    records[1]["sparse_vector"] = {"indices": [9, 2], "values": [-1.5, 0.25]}
    records[2]["sparse_vector"] = {"indices": [1], "values": [0.75]}
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    held = _lite(tmp_path / "m.db", "held", "--sparse-field", "sparse")
    result = run_vex("import", "--from", str(source), "--to", "milvus", *held, "--json")
    assert result.returncode == 1, result.stderr
    summary = _summary(result)
    assert summary["upserted"] == 2 and summary["failed"] == 2
    assert "Milvus Lite refuses a null or empty one in the sparse field 'sparse'" in result.stdout
    out = tmp_path / "held.vmig.jsonl"
    assert run_vex("export", "--from", "milvus", *held, "--output", str(out)).returncode == 0
    back = read_vmig(out)
    assert sorted(back) == ["mem-0000", "mem-0002"]
    assert back["mem-0000"]["sparse_vector"] == records[0]["sparse_vector"]
    assert back["mem-0002"]["sparse_vector"] == records[2]["sparse_vector"]
    with MilvusConnector(MilvusOptions(path=tmp_path / "m.db", collection="held")) as milvus:
        milvus.client().load_collection("held")  # Milvus Lite keeps a collection loaded only while it runs
        rows = milvus.client().query("held", filter='id == "mem-0000"', output_fields=["sparse", "vex_fields"])
        assert rows[0]["sparse"] == {3: 0.5, 17: 1.25, 4000000: 2.0}
        assert "sparse_vector" not in (rows[0]["vex_fields"] or {})
        assert "sparse vectors in 'sparse'" in (milvus.describe().layout or "")
    kept = _lite(tmp_path / "m.db", "kept")
    assert run_vex("import", "--from", str(source), "--to", "milvus", *kept).returncode == 0
    out = tmp_path / "kept.vmig.jsonl"
    assert run_vex("export", "--from", "milvus", *kept, "--output", str(out)).returncode == 0
    back = read_vmig(out)
    assert [back[r["id"]]["sparse_vector"] for r in records] == [r.get("sparse_vector") for r in records]


def _foreign_collection(path: Path) -> None:
    """A collection another tool made: INT64 ids, its own field names, a dynamic field."""
    from milvus_lite.server_manager import server_manager_instance
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(str(path))
    try:
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
        schema.add_field("pk", DataType.INT64, is_primary=True)
        schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=2)
        schema.add_field("title", DataType.VARCHAR, max_length=64)
        schema.add_field("year", DataType.INT32)
        client.create_collection("articles", schema=schema)
        client.upsert("articles", [{"pk": i, "embedding": [float(i), 1.0], "title": f"a{i}", "year": 2000 + i,
                                    "lang": "en"} for i in range(1, 4)])  # fmt: skip
        params = client.prepare_index_params()
        params.add_index("embedding", index_type="AUTOINDEX", metric_type="L2")
        client.create_index("articles", params)
        client.load_collection("articles")
    finally:
        client.close()
        server_manager_instance.release_server(str(path))


def test_a_collection_another_tool_made_exports_every_field(tmp_path: Path) -> None:
    _foreign_collection(tmp_path / "f.db")
    out = tmp_path / "articles.vmig.jsonl"
    result = run_vex("export", "--from", "milvus", *_lite(tmp_path / "f.db", "articles", "--text-field", "title"),
                     "--output", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    back = read_vmig(out)
    assert sorted(back) == ["1", "2", "3"]
    record = back["2"]
    assert record["text"] == "a2" and record["vector"] == [2.0, 1.0] and record["source_store"] == "milvus"
    assert record["metadata"] == {"year": 2002, "lang": "en"}


def test_an_int64_key_takes_integer_ids_and_refuses_text_ones(tmp_path: Path) -> None:
    """Integer ids go into an INT64 key as numbers and come back as the same text; a text id stops the run
    with the reason before anything is written."""
    _foreign_collection(tmp_path / "f.db")
    lite = _lite(tmp_path / "f.db", "articles", "--vector-field", "embedding", "--text-field", "title")
    numbered = sample_records(count=3, dims=2, odd_ones=False)
    for year, (record, new_id) in enumerate(zip(numbered, ["10", "-7", "9223372036854775807"], strict=True)):
        record["id"] = new_id
        record["metadata"]["year"] = 1990 + year  # the collection's own INT32 field, not nullable
    numbered[2]["metadata"].pop("year")
    source = write_vmig(tmp_path / "n.vmig.jsonl", numbered)
    result = run_vex("import", "--from", str(source), "--to", "milvus", *lite, "--metric", "euclid", "--json")
    assert result.returncode == 1, result.stderr
    assert _summary(result)["upserted"] == 2 and "its metadata has no 'year'" in result.stdout
    out = tmp_path / "n-back.vmig.jsonl"
    assert run_vex("export", "--from", "milvus", *lite, "--output", str(out)).returncode == 0
    back = read_vmig(out)
    assert sorted(back) == ["-7", "1", "10", "2", "3"] and back["-7"]["text"] == numbered[1]["text"]
    sent = read_vmig(source)
    _same(back["10"], sent["10"])
    _same(back["-7"], sent["-7"])
    assert back["1"]["metadata"] == {"year": 2001, "lang": "en"}
    texts = write_vmig(tmp_path / "t.vmig.jsonl", sample_records(count=3, dims=2, odd_ones=False))
    refused = run_vex("import", "--from", str(texts), "--to", "milvus", *lite, "--metric", "euclid")
    assert refused.returncode == 2
    assert "INT64 primary key 'pk', and the id 'mem-0000' is no integer" in _one_line(refused.stderr)
    with MilvusConnector(MilvusOptions(path=tmp_path / "f.db", collection="articles")) as milvus:
        assert milvus.describe().count == 5, "the refused run wrote nothing"


def test_an_id_or_text_longer_than_its_field_fails_that_record_only(tmp_path: Path) -> None:
    records = sample_records(count=3, odd_ones=False)
    records[1]["id"] = "é" * 40_000  # 80,000 bytes of UTF-8: more than a VARCHAR holds
    records[2]["text"] = "t" * 70_000
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    result = run_vex("import", "--from", str(source), "--to", "milvus", *_lite(tmp_path / "m.db"), "--json")
    assert result.returncode == 1, result.stderr
    summary = _summary(result)
    assert summary["upserted"] == 1 and summary["failed"] == 2
    with MilvusConnector(MilvusOptions(path=tmp_path / "m.db")) as milvus:
        assert milvus.describe().count == 1


def _refused(tmp_path: Path, *args: str) -> str:
    result = run_vex(*args, cwd=tmp_path)
    assert result.returncode == 2, (args, result.returncode, result.stderr)
    return _one_line(result.stderr)


def test_bad_inputs_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=5, odd_ones=False))
    lite = _lite(tmp_path / "m.db", "c")
    assert run_vex("import", "--from", str(source), "--to", "milvus", *lite).returncode == 0
    wide = write_vmig(tmp_path / "w.vmig.jsonl", sample_records(count=5, dims=16, odd_ones=False))
    assert "holds 8-d vectors but the input's are 16-d" in _refused(tmp_path, "import", "--from", str(wide), "--to",
                                                              "milvus", *lite)  # fmt: skip
    assert "uses cosine distance, not euclid" in _refused(tmp_path, "import", "--from", str(source), "--to", "milvus",
                                                          *lite, "--metric", "euclid")  # fmt: skip
    (tmp_path / "file.db").write_text("not milvus")
    line = _refused(tmp_path, "import", "--from", str(source), "--to", "milvus", *_lite(tmp_path / "file.db"))
    assert "is a file, not a Milvus Lite database" in line
    assert (tmp_path / "file.db").read_text() == "not milvus"
    other = tmp_path / "other.db"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    line = _refused(tmp_path, "import", "--from", str(source), "--to", "milvus", *_lite(other))
    assert "holds no Milvus Lite database" in line and sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    line = _refused(tmp_path, "import", "--from", str(source), "--to", "milvus", *_lite(tmp_path / "m.sqlite"))
    assert "ending in .db" in line and not (tmp_path / "m.sqlite").exists()
    out = tmp_path / "o.vmig.jsonl"
    line = _refused(tmp_path, "export", "--from", "milvus", *_lite(tmp_path / "none.db"), "--output", str(out))
    assert "no database at" in line and not (tmp_path / "none.db").exists() and not out.exists()
    line = _refused(tmp_path, "export", "--from", "milvus", *_lite(tmp_path / "m.db", "nope"), "--output", str(out))
    assert "collection 'nope' not found" in line and not out.exists()


def test_a_database_open_in_another_process_is_named(tmp_path: Path) -> None:
    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=3, odd_ones=False))
    assert run_vex("import", "--from", str(source), "--to", "milvus", *_lite(tmp_path / "m.db")).returncode == 0
    with MilvusConnector(MilvusOptions(path=tmp_path / "m.db")) as milvus:
        assert milvus.describe().count == 3  # holds the folder's lock until closed
        out = tmp_path / "o.vmig.jsonl"
        line = _refused(tmp_path, "export", "--from", "milvus", *_lite(tmp_path / "m.db"), "--output", str(out))
    assert "is open in another process" in line
    assert run_vex("export", "--from", "milvus", *_lite(tmp_path / "m.db"), "--output", str(out)).returncode == 0


def test_inspect_and_stores_know_milvus(tmp_path: Path) -> None:
    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=9, odd_ones=False))
    lite = _lite(tmp_path / "m.db")
    assert run_vex("import", "--from", str(source), "--to", "milvus", *lite).returncode == 0
    report = json.loads(run_vex("inspect", "--from", "milvus", *lite, "--json").stdout)
    assert report["records"] == 9 and report["metric"] == "cosine" and report["dims"] == 8
    entry = json.loads(run_vex("stores", "milvus", "--json").stdout)
    assert entry["installed"] is True and "--sparse-field" in [option["flag"] for option in entry["options"]]


def test_migrate_between_collections_of_one_lite_database(tmp_path: Path) -> None:
    """Both ends share one Milvus Lite server in the process (opened once, closed by the last); the collection
    the run reads is never its target."""
    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=12, odd_ones=False))
    db = str(tmp_path / "same.db")
    imported = run_vex("import", "--from", str(source), "--to", "milvus", "--path", db, "--collection", "one")
    assert imported.returncode == 0, imported.stderr
    copied = run_vex("migrate", "--from", "milvus", "--to", "milvus", "--source-path", db, "--source-collection", "one",
                     "--target-path", db, "--target-collection", "two", "--target-metric", "euclid", "--verify",
                     "--json")  # fmt: skip
    assert copied.returncode == 0, copied.stderr
    assert _summary(copied)["upserted"] == 12 and _summary(copied)["verify"]["ok"]
    line = _refused(tmp_path, "migrate", "--from", "milvus", "--to", "milvus", "--source-path", db,
                    "--source-collection", "one", "--target-path", db, "--target-collection", "one")  # fmt: skip
    assert "which this run reads" in line


def test_client_errors_are_sorted_for_the_retry_policy(tmp_path: Path) -> None:
    from pymilvus.exceptions import MilvusException

    from vmig.errors import AccessError, StoreError, TransientError, UsageError

    milvus = MilvusConnector(MilvusOptions(url="http://127.0.0.1:19530", collection="c"))
    cases = [
        (MilvusException(8, "request is rejected by grpc RateLimiter middleware"), TransientError),
        (MilvusException(1, "service unavailable: the proxy is not ready"), TransientError),
        (MilvusException(65535, "retriable by the server", retriable=True), TransientError),
        (MilvusException(100, "can't find collection[database=default][collection=c]"), UsageError),
        (MilvusException(1800, "user hasn't authenticated"), AccessError),
        (MilvusException(1100, "the length (70000) of varchar field exceeds max length (65535)"), StoreError),
        (MilvusException(1100, "field author expects a string"), StoreError),
        (ConnectionResetError("reset by peer"), TransientError),
    ]
    for exc, kind in cases:
        sorted_as = milvus.classify(exc, "upserting entities")
        assert type(sorted_as) is kind, (exc, sorted_as)


def test_int64_keys_take_only_an_integer_in_its_own_spelling() -> None:
    from connectors.milvus import _int_id
    from vmig.errors import UsageError

    assert [_int_id(i, "c", "pk") for i in ("0", "42", "-7", str(2**63 - 1), str(-(2**63)))] == [
        0, 42, -7, 2**63 - 1, -(2**63)
    ]  # fmt: skip
    for text in ("007", "-0", "+5", "1e3", str(2**63), "١٢٣", " 5", "mem-1"):
        with pytest.raises(UsageError):
            _int_id(text, "c", "pk")


def test_sparse_vectors_milvus_holds_exactly() -> None:
    from connectors.milvus import _sparse_for_milvus

    assert _sparse_for_milvus({"indices": [1, 5], "values": [0.5, 2.0]}) == {1: 0.5, 5: 2.0}
    for value in ({"indices": [5, 1], "values": [0.5, 2.0]}, {"indices": [1], "values": [-1.0]},
                  {"indices": [1], "values": [0.0]}, {"indices": [], "values": []},
                  {"indices": [2**32 - 1], "values": [1.0]}):  # fmt: skip
        assert _sparse_for_milvus(value) is None, value
