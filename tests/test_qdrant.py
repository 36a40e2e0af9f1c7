"""Qdrant specifics: id mapping, named vectors, migrate between collections, refusals."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from connectors.ids import uuid_for
from connectors.qdrant import ID_FIELD, QdrantConnector, QdrantOptions, point_id
from tests.chroma_server import free_port
from tests.conftest import ROOT, run_vex
from tests.records import DIMS, read_vmig, sample_records, write_vmig

DEMO_DB = ROOT / "demo" / "memory.db"


def test_point_ids_keep_uints_and_uuids_and_map_the_rest() -> None:
    assert point_id("42") == 42
    assert point_id("3F2504E0-4F89-11D3-9A0C-0305E82C3301") == "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
    mapped = point_id("mem-1")
    assert uuid.UUID(str(mapped)).version == 5 and point_id("mem-1") == mapped
    assert isinstance(point_id("007"), str), "a leading zero would not survive as an integer"
    assert isinstance(point_id(str(2**64)), str)


def test_ids_round_trip_exactly(tmp_path: Path) -> None:
    records = sample_records(count=4, odd_ones=False)
    for record, new_id in zip(records, ["42", "3F2504E0-4F89-11D3-9A0C-0305E82C3301", "007", "mem/ü 1"], strict=True):
        record["id"] = new_id
    source = write_vmig(tmp_path / "ids.vmig.jsonl", records)
    store = ["--path", str(tmp_path / "q"), "--collection", "ids"]
    assert run_vex("import", "--from", str(source), "--to", "qdrant", *store).returncode == 0
    out = tmp_path / "back.vmig.jsonl"
    assert run_vex("export", "--from", "qdrant", *store, "--output", str(out)).returncode == 0
    assert sorted(read_vmig(out)) == sorted(r["id"] for r in records)
    with QdrantConnector(QdrantOptions(path=tmp_path / "q", collection="ids")) as qdrant:
        points, _ = qdrant.client().scroll("ids", limit=10, with_payload=True)
    stored = {str(p.id): p.payload[ID_FIELD] for p in points}
    assert stored["42"] == "42" and stored["3f2504e0-4f89-11d3-9a0c-0305e82c3301"].startswith("3F25")


def test_seed_migrate_from_vektor_and_between_collections(tmp_path: Path) -> None:
    first = ["--path", str(tmp_path / "qa"), "--collection", "memories"]
    result = run_vex("migrate", "--from", "vektor", "--to", "qdrant", "--db", str(DEMO_DB), *first, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["upserted"] == 300
    result = run_vex(
        "migrate", "--from", "qdrant", "--to", "qdrant", "--source-path", str(tmp_path / "qa"),
        "--source-collection", "memories", "--target-path", str(tmp_path / "qb"), "--target-collection", "copy",
        "--target-metric", "dot", "--verify", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["upserted"] == 300 and summary["verify"]["ok"]
    with QdrantConnector(QdrantOptions(path=tmp_path / "qb", collection="copy")) as qdrant:
        info = qdrant.describe()
    assert (info.dims, info.metric, info.count) == (384, "dot", 300)


def test_both_sides_take_collection_so_migrate_asks_for_a_side(tmp_path: Path) -> None:
    result = run_vex("migrate", "--from", "qdrant", "--to", "qdrant", "--collection", "x",
                     "--source-path", str(tmp_path / "a"), "--target-path", str(tmp_path / "b"))  # fmt: skip
    assert result.returncode == 2 and "--source-collection" in result.stderr


def test_named_vectors(tmp_path: Path) -> None:
    source = write_vmig(tmp_path / "n.vmig.jsonl", sample_records(count=6, odd_ones=False))
    store = ["--path", str(tmp_path / "q"), "--collection", "named", "--vector-name", "dense"]
    assert run_vex("import", "--from", str(source), "--to", "qdrant", *store).returncode == 0
    out = tmp_path / "o.vmig.jsonl"
    result = run_vex("export", "--from", "qdrant", "--path", str(tmp_path / "q"), "--collection", "named",
                     "--output", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr  # the single named vector is found without --vector-name
    records = read_vmig(out)
    original = {r["id"]: r["vector"] for r in sample_records(count=6, odd_ones=False)}
    assert all(np.array_equal(np.asarray(r["vector"], dtype=np.float32), original[i]) for i, r in records.items())


def test_payload_integer_beyond_64_bits_is_rejected_not_a_failed_export(tmp_path: Path) -> None:
    """The local client keeps Python's integers: such a point is one reject naming the number, the rest export."""
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(tmp_path / "q"))
    client.create_collection("wide", vectors_config=models.VectorParams(size=2, distance=models.Distance.COSINE))
    client.upsert("wide", [models.PointStruct(id=1, vector=[1.0, 2.0], payload={"n": 10**30}),
                           models.PointStruct(id=2, vector=[1.0, 3.0], payload={"n": 2**64 - 1})])  # fmt: skip
    client.close()
    out = tmp_path / "o.vmig.jsonl"
    result = run_vex("export", "--from", "qdrant", "--path", str(tmp_path / "q"), "--collection", "wide",
                     "--output", str(out), "--json")  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["rejected"] == 1
    assert "qdrant point 1: payload holds the integer 1000000000000000000000000000000, beyond 64 bits" in (
        (tmp_path / "o.rejects.jsonl").read_text()
    )
    assert {i: r["metadata"] for i, r in read_vmig(out).items()} == {"2": {"n": 2**64 - 1}}


def test_missing_collection_on_export(tmp_path: Path) -> None:
    result = run_vex("export", "--from", "qdrant", "--path", str(tmp_path / "q"), "--collection", "nope",
                     "--output", str(tmp_path / "o.vmig.jsonl"))  # fmt: skip
    assert result.returncode == 2 and "collection 'nope' not found" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "o.vmig.jsonl").exists()


@pytest.mark.parametrize(("flag", "message"), [("--dims", "does not match"), ("--metric", "distance")])
def test_existing_collection_that_does_not_fit(tmp_path: Path, flag: str, message: str) -> None:
    store = ["--path", str(tmp_path / "q"), "--collection", "c"]
    small = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=5, odd_ones=False))
    assert run_vex("import", "--from", str(small), "--to", "qdrant", *store).returncode == 0
    other = [*store, "--dims", "16"] if flag == "--dims" else [*store, "--metric", "euclid"]
    result = run_vex("import", "--from", str(small), "--to", "qdrant", *other)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_input_of_other_dims_is_refused_before_writing(tmp_path: Path) -> None:
    store = ["--path", str(tmp_path / "q"), "--collection", "c"]
    small = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=5, odd_ones=False))
    assert run_vex("import", "--from", str(small), "--to", "qdrant", *store).returncode == 0
    wide = write_vmig(tmp_path / "w.vmig.jsonl", sample_records(count=5, dims=32, odd_ones=False, seed=9))
    result = run_vex("import", "--from", str(wide), "--to", "qdrant", *store)
    assert result.returncode == 2 and "nothing would fit" in result.stderr
    with QdrantConnector(QdrantOptions(path=tmp_path / "q", collection="c")) as qdrant:
        assert qdrant.describe().count == 5


def test_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    port = free_port()
    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=3, odd_ones=False))
    result = run_vex("import", "--from", str(source), "--to", "qdrant", "--url", f"http://127.0.0.1:{port}",
                     "--api-key", "s3cr3t-key-value", "--collection", "c")  # fmt: skip
    assert result.returncode == 4, "a store that cannot be reached: exit 4"
    assert "unreachable" in result.stderr and "connection refused" in result.stderr
    assert "safe to re-run" in result.stderr
    assert "Exception" not in result.stderr and "Traceback" not in result.stderr
    assert "s3cr3t-key-value" not in result.stderr + result.stdout


UUID_LOWER = "550e8400-e29b-41d4-a716-446655440000"
SAME_POINT = {  # every other spelling of each first id lands on its point
    UUID_LOWER.upper(): [UUID_LOWER, "{" + UUID_LOWER + "}", "urn:uuid:" + UUID_LOWER, UUID_LOWER.replace("-", "")],
    "123": ["١٢٣", "１２３"],
    "mem-1": [str(uuid_for("mem-1"))],
}


def _import(source: Path, store: list[str]) -> tuple[int, dict[str, Any]]:
    result = run_vex("import", "--from", str(source), "--to", "qdrant", *store, "--json")
    return result.returncode, json.loads(result.stdout.splitlines()[-1])


def test_point_ids_of_every_spelling_that_qdrant_merges() -> None:
    for first, others in SAME_POINT.items():
        assert {point_id(other) for other in others} == {point_id(first)}, first
    assert point_id("²") != point_id("2") and point_id("1" * 5000) == str(uuid_for("1" * 5000))  # no ValueError


def test_ids_that_map_to_one_point_are_failed_records_not_overwrites(tmp_path: Path) -> None:
    """Within a batch and against what an earlier run stored: the first id keeps the point, each other
    spelling is a failed record naming it; the same file again replaces its own points and fails the same."""
    ids = ["other", *(i for first, others in SAME_POINT.items() for i in [first, *others])]
    records = sample_records(count=len(ids), odd_ones=False)
    for record, new_id in zip(records, ids, strict=True):
        record["id"] = new_id
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    store = ["--path", str(tmp_path / "q"), "--collection", "c"]
    for _ in range(2):
        code, summary = _import(source, store)
        assert (code, summary["upserted"], summary["failed"]) == (1, 4, 7)
        reasons = {entry["id"]: entry["reason"] for entry in summary["failed_sample"]}
        for first, others in SAME_POINT.items():
            for other in others:
                assert reasons[other] == (
                    f"id '{other}' maps to the same Qdrant point ({point_id(first)}) as id '{first}', which is stored"
                    " there: it is not replaced"
                )
    out = tmp_path / "o.vmig.jsonl"
    assert run_vex("export", "--from", "qdrant", *store, "--output", str(out)).returncode == 0
    back = read_vmig(out)
    assert sorted(back) == sorted(["other", *SAME_POINT])
    assert all(back[i]["text"] == r["text"] for r in records if (i := r["id"]) in back)


def test_a_later_run_does_not_overwrite_a_point_another_id_holds(tmp_path: Path) -> None:
    store = ["--path", str(tmp_path / "q"), "--collection", "c"]
    first, second = sample_records(count=2, odd_ones=False)
    first["id"], second["id"] = UUID_LOWER, UUID_LOWER.upper()
    assert _import(write_vmig(tmp_path / "a.vmig.jsonl", [first]), store)[0] == 0
    code, summary = _import(write_vmig(tmp_path / "b.vmig.jsonl", [second]), store)
    assert (code, summary["upserted"], summary["failed"]) == (1, 0, 1)
    assert f"as id '{UUID_LOWER}', which is stored there" in summary["failed_sample"][0]["reason"]
    first["text"] = "updated"  # the holder, later in the batch than the other spelling, still updates its point
    code, summary = _import(write_vmig(tmp_path / "c.vmig.jsonl", [second, first]), store)
    assert (code, summary["upserted"], summary["failed"]) == (1, 1, 1)
    assert summary["failed_sample"][0]["id"] == UUID_LOWER.upper()
    with QdrantConnector(QdrantOptions(path=tmp_path / "q", collection="c")) as qdrant:
        (point,) = qdrant.client().retrieve("c", [UUID_LOWER], with_payload=True)
    assert point.payload[ID_FIELD] == UUID_LOWER and point.payload["text"] == "updated"


def test_points_another_tool_wrote_belong_to_their_point_id(tmp_path: Path) -> None:
    """A point without `_vex_id` holds the id export gives it (the point id, a UUID in lower case): that id
    again replaces it (a re-import of its own data), another spelling of it is refused."""
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(tmp_path / "q"))
    client.create_collection("c", vectors_config=models.VectorParams(size=DIMS, distance=models.Distance.DOT))
    client.upsert("c", [models.PointStruct(id=5, vector=[0.5] * DIMS, payload={"text": "five"}),
                        models.PointStruct(id=UUID_LOWER, vector=[0.5] * DIMS, payload={"text": "uuid"})])  # fmt: skip
    client.close()
    records = sample_records(count=4, odd_ones=False)
    for record, new_id in zip(records, ["5", UUID_LOWER, UUID_LOWER.upper(), "٥"], strict=True):
        record["id"] = new_id
    store = ["--path", str(tmp_path / "q"), "--collection", "c"]
    code, summary = _import(write_vmig(tmp_path / "s.vmig.jsonl", records), store)
    assert (code, summary["upserted"], summary["failed"]) == (1, 2, 2)
    assert {entry["id"]: entry["reason"].split(" as ")[1] for entry in summary["failed_sample"]} == {
        UUID_LOWER.upper(): f"id '{UUID_LOWER}', which is stored there: it is not replaced",
        "٥": "id '5', which is stored there: it is not replaced",
    }
    with QdrantConnector(QdrantOptions(path=tmp_path / "q", collection="c")) as qdrant:
        points, _ = qdrant.client().scroll("c", with_payload=True)
    assert {p.id: p.payload["text"] for p in points} == {5: records[0]["text"], UUID_LOWER: records[1]["text"]}


def test_metadata_keys_named_like_vex_fields_round_trip(tmp_path: Path) -> None:
    """Qdrant nests user metadata under `metadata`, so keys named like the payload's own fields or vex's
    (`_vex_id`, `_vex`, `text`, ...) are the user's, through import, export and a verified migrate."""
    meta = {"_vex_id": "not-the-id", "_vex": {"x": [1, 2]}, "_vex_user:k": 1, "text": "in metadata",
            "namespace": "meta-ns", "metadata": {"inner": True}, "created_at": "whenever", "plain": 3}  # fmt: skip
    records = sample_records(count=3, odd_ones=False)
    for record in records:
        record["metadata"] = meta
    store = ["--path", str(tmp_path / "q"), "--collection", "c"]
    assert _import(write_vmig(tmp_path / "s.vmig.jsonl", records), store)[0] == 0
    out = tmp_path / "o.vmig.jsonl"
    assert run_vex("export", "--from", "qdrant", *store, "--output", str(out)).returncode == 0
    back = read_vmig(out)
    assert {i: (r["metadata"], r["text"], r["namespace"]) for i, r in back.items()} == {
        r["id"]: (meta, r["text"], r["namespace"]) for r in records
    }
    result = run_vex("migrate", "--from", "qdrant", "--to", "qdrant", "--source-path", str(tmp_path / "q"),
                     "--source-collection", "c", "--target-path", str(tmp_path / "q2"), "--target-collection", "c",
                     "--verify", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["verify"]["ok"]


def test_foreign_payload_keys_never_replace_or_drop_a_value(tmp_path: Path) -> None:
    """Points another tool wrote: a top-level key named like a key of the nested `metadata` comes in as
    `payload:<key>` beside it; a field vex knows holding something else (a text that is a number, a
    `metadata` that is a string) is kept in the metadata, not dropped and not a failed export."""
    from qdrant_client import QdrantClient, models

    payloads = {
        1: {"metadata": {"a": 1, "payload:a": 2}, "a": 3, "created_at": "yesterday"},
        2: {"metadata": "a string", "extra": "not an object", "x": 1},
        3: {"text": "the text", "page_content": "also kept", "namespace": 7, "score": "high"},
        4: {"text": 5, "model": ["m"], "source_store": 3, "created_at": 10**19, "metadata": {"created_at": "k"}},
    }
    client = QdrantClient(path=str(tmp_path / "q"))
    client.create_collection("f", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert("f", [models.PointStruct(id=i, vector=[1.0, 0.5], payload=p) for i, p in payloads.items()])
    client.close()
    out = tmp_path / "o.vmig.jsonl"
    result = run_vex("export", "--from", "qdrant", "--path", str(tmp_path / "q"), "--collection", "f",
                     "--output", str(out), "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    back = read_vmig(out)
    assert {i: r["metadata"] for i, r in back.items()} == {
        "1": {"a": 1, "payload:a": 2, "payload:payload:a": 3, "created_at": "yesterday"},
        "2": {"metadata": "a string", "extra": "not an object", "x": 1},
        "3": {"page_content": "also kept", "namespace": 7, "score": "high"},
        "4": {"created_at": "k", "text": 5, "model": ["m"], "source_store": 3, "payload:created_at": 10**19},
    }
    assert back["3"]["text"] == "the text" and back["3"]["namespace"] is None and back["4"]["text"] is None
    assert back["4"]["source_store"] == "qdrant"


@pytest.mark.parametrize(("metric", "space"), [("dot", "ip"), ("euclid", "l2"), ("manhattan", "cosine")])
def test_a_new_target_takes_the_source_metric_where_it_has_it(metric: str, space: str, tmp_path: Path) -> None:
    """The source's metric reaches the new target (Chroma has no manhattan: it gets its default, cosine)."""
    import chromadb

    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=10, odd_ones=False))
    qdrant = ["--path", str(tmp_path / "q"), "--collection", "m"]
    assert run_vex("import", "--from", str(source), "--to", "qdrant", *qdrant, "--metric", metric).returncode == 0
    sides = ["--source-path", str(tmp_path / "q"), "--source-collection", "m",
             "--target-path", str(tmp_path / "c"), "--target-collection", "mem"]  # fmt: skip
    result = run_vex("migrate", "--from", "qdrant", "--to", "chroma", *sides)
    assert result.returncode == 0, result.stderr
    collection = chromadb.PersistentClient(path=str(tmp_path / "c")).get_collection("mem")
    assert (collection.metadata or {}).get("hnsw:space") == space
