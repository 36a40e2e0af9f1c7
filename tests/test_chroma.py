"""Chroma specifics: exact vectors, batch limits, rejected records, refusals, a real server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from connectors.chroma import ChromaConnector, ChromaOptions
from tests.chroma_server import ChromaServer, free_port, start_chroma, stop_chroma
from tests.conftest import ROOT, run_vex
from tests.records import read_vmig, sample_records, to_batch, write_vmig

DEMO_DB = ROOT / "demo" / "memory.db"


def _last(result) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_l2_collection_keeps_float32_vectors_bit_for_bit(tmp_path: Path) -> None:
    records = sample_records(count=20, odd_ones=False)
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    store = ["--path", str(tmp_path / "c"), "--collection", "exact"]
    result = run_vex("import", "--from", str(source), "--to", "chroma", *store, "--metric", "euclid")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "o.vmig.jsonl"
    assert run_vex("export", "--from", "chroma", *store, "--output", str(out)).returncode == 0
    back = read_vmig(out)
    for record in records:
        assert np.array_equal(np.asarray(back[record["id"]]["vector"], dtype=np.float32), record["vector"])


def test_more_records_than_a_request_holds(tmp_path: Path, chroma_server: ChromaServer) -> None:
    records = sample_records(count=2500, odd_ones=False)
    source = write_vmig(tmp_path / "big.vmig.jsonl", records)
    store = ["--url", chroma_server.url, "--collection", "big_batches"]
    result = run_vex("import", "--from", str(source), "--to", "chroma", *store, "--json")
    assert result.returncode == 0, result.stderr
    assert _last(result)["upserted"] == 2500
    with ChromaConnector(ChromaOptions(url=chroma_server.url, collection="big_batches")) as chroma:
        assert chroma.describe().count == 2500


def test_records_the_store_refuses_are_counted_as_failed(tmp_path: Path) -> None:
    records = sample_records(count=10, odd_ones=False)
    records[3]["metadata"] = {"#not-a-chroma-key": 1}
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    result = run_vex("import", "--from", str(source), "--to", "chroma", "--path", str(tmp_path / "c"),
                     "--collection", "refusals", "--json")  # fmt: skip
    assert result.returncode == 1
    summary = _last(result)
    assert summary["upserted"] == 9 and summary["failed"] == 1
    assert summary["failed_sample"][0]["id"] == "mem-0003"
    assert "'#not-a-chroma-key'" in summary["failed_sample"][0]["reason"]


def test_duplicate_ids_in_one_request_keep_the_last(tmp_path: Path) -> None:
    records = sample_records(count=3, odd_ones=False)
    records.append(dict(records[0], text="the later version"))
    source = write_vmig(tmp_path / "d.vmig.jsonl", records)
    store = ["--path", str(tmp_path / "c"), "--collection", "dups"]
    result = run_vex("import", "--from", str(source), "--to", "chroma", *store, "--json")
    assert result.returncode == 1, "a record replaced by a later one with its id is not held: the exit says so"
    summary = _last(result)
    assert (summary["total"], summary["upserted"], summary["replaced"], summary["failed"]) == (4, 3, 1, 0)
    out = tmp_path / "o.vmig.jsonl"
    assert run_vex("export", "--from", "chroma", *store, "--output", str(out)).returncode == 0
    back = read_vmig(out)
    assert len(back) == 3 and back["mem-0000"]["text"] == "the later version"


def test_vektor_to_chroma_server_and_back_verified(tmp_path: Path, chroma_server: ChromaServer) -> None:
    result = run_vex("migrate", "--from", "vektor", "--to", "chroma", "--db", str(DEMO_DB), "--url", chroma_server.url,
                     "--collection", "demo_memories", "--verify", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = _last(result)
    assert summary["upserted"] == 300 and summary["verify"]["ok"]
    out = tmp_path / "trading.vmig.jsonl"
    result = run_vex("export", "--from", "chroma", "--url", chroma_server.url, "--collection", "demo_memories",
                     "--namespace", "trading", "--output", str(out))  # fmt: skip
    assert result.returncode == 0 and len(read_vmig(out)) == 100


def test_missing_collection_on_export(chroma_server: ChromaServer, tmp_path: Path) -> None:
    result = run_vex("export", "--from", "chroma", "--url", chroma_server.url, "--collection", "nope_nope",
                     "--output", str(tmp_path / "o.vmig.jsonl"))  # fmt: skip
    assert result.returncode == 2 and "not found" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o.vmig.jsonl").exists()


def test_unreachable_server(tmp_path: Path) -> None:
    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=3, odd_ones=False))
    result = run_vex("import", "--from", str(source), "--to", "chroma", "--url", f"http://127.0.0.1:{free_port()}",
                     "--collection", "abc", "--api-key", "chroma-secret-token")  # fmt: skip
    assert result.returncode == 4 and "unreachable" in result.stderr and "Error" not in result.stderr
    assert "Traceback" not in result.stderr and "chroma-secret-token" not in result.stderr + result.stdout


@pytest.mark.parametrize("metric", ["dot", "euclid"])
def test_existing_collection_with_another_metric_or_dims(tmp_path: Path, metric: str) -> None:
    store = ["--path", str(tmp_path / "c"), "--collection", "fixed"]
    small = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=4, odd_ones=False))
    assert run_vex("import", "--from", str(small), "--to", "chroma", *store).returncode == 0
    result = run_vex("import", "--from", str(small), "--to", "chroma", *store, "--metric", metric)
    assert result.returncode == 2 and "distance" in result.stderr
    wide = write_vmig(tmp_path / "w.vmig.jsonl", sample_records(count=4, dims=12, odd_ones=False))
    result = run_vex("import", "--from", str(wide), "--to", "chroma", *store)
    assert result.returncode == 2 and "nothing would fit" in result.stderr
    with ChromaConnector(ChromaOptions(path=tmp_path / "c", collection="fixed")) as chroma:
        assert chroma.describe().count == 4


def _reserved_lookalikes() -> dict[str, object]:
    """User metadata under every key vex keeps its own fields in, and the escape's own shapes."""
    from connectors import flatmeta as chroma  # where the chroma connector's own keys are named

    own = [chroma.NAMESPACE_KEY, chroma.MODEL_KEY, chroma.CREATED_KEY, chroma.SCORE_KEY, chroma.SOURCE_KEY,
           chroma.EXTRA_KEY, chroma.JSON_KEYS, chroma.NULL_KEYS, chroma.INT_KEYS, chroma.USER_TEXT_KEY]  # fmt: skip
    meta: dict[str, object] = {key: f"the user's {key}" for key in own}
    meta.update({
        "_vex": "bare prefix",
        "_vex_user:x": "looks escaped already",
        "_vex_user:_vex_model": 7,
        "_vex_nested": {"a": [1, {"b": None}]},
        "_vex_list": ["x", 2],
        "_vex_null": None,
        chroma.JSON_KEYS + "_too": None,
        "plain": "kept",
        "none": None,
    })  # fmt: skip
    meta[chroma.NULL_KEYS] = None  # a null under our null list's own name
    meta[chroma.JSON_KEYS] = {"nested": ["under", "our json list's name"]}
    return meta


def test_user_keys_that_look_like_vex_own_round_trip(tmp_path: Path, chroma_server: ChromaServer) -> None:
    records = sample_records(count=3, odd_ones=False)
    records[1]["metadata"] = _reserved_lookalikes()
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    store = ["--path", str(tmp_path / "c"), "--collection", "lookalikes"]
    result = run_vex("import", "--from", str(source), "--to", "chroma", *store, "--json")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "o.vmig.jsonl"
    assert run_vex("export", "--from", "chroma", *store, "--output", str(out)).returncode == 0
    back = read_vmig(out)
    for record in records:
        assert back[record["id"]]["metadata"] == record["metadata"]
        assert back[record["id"]]["namespace"] == record["namespace"]
        assert back[record["id"]]["model"] == record["model"]
    result = run_vex("migrate", "--from", "jsonl", "--to", "chroma", "--source-path", str(source),
                     "--url", chroma_server.url, "--collection", "lookalikes", "--verify", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    assert _last(result)["verify"]["ok"]


def _connector(tmp_path: Path, server: ChromaServer | None, collection: str) -> ChromaConnector:
    if server is not None:
        return ChromaConnector(ChromaOptions(url=server.url, collection=collection))
    return ChromaConnector(ChromaOptions(path=tmp_path / "c", collection=collection))


def _many_keys(count: int) -> dict[str, Any]:
    return {f"key{i:05d}": i for i in range(count)}


@pytest.mark.parametrize("where", ["path", "url"])
def test_a_record_with_too_many_metadata_keys_fails_alone(
    tmp_path: Path, chroma_server: ChromaServer, where: str
) -> None:
    """The issue's case: 300 good records and one with 10,000 keys. Chroma would take that one and then
    never again read or write the collection; vex refuses it before sending, and the rest stays readable."""
    records = sample_records(count=300, dims=384, odd_ones=False)
    records.insert(150, dict(records[0], id="too-many-keys", metadata=_many_keys(10_000)))
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    good = write_vmig(tmp_path / "good.vmig.jsonl", [r for r in records if r["id"] != "too-many-keys"])
    location = str(tmp_path / "c") if where == "path" else chroma_server.url
    store = [f"--{where}", location, "--collection", f"poison_{where}"]
    result = run_vex("import", "--from", str(source), "--to", "chroma", *store, "--json")
    assert result.returncode == 1, result.stderr
    summary = _last(result)
    assert (summary["upserted"], summary["failed"]) == (300, 1)
    assert summary["failed_sample"][0]["id"] == "too-many-keys"
    assert "10,00" in summary["failed_sample"][0]["reason"] and "metadata keys" in summary["failed_sample"][0]["reason"]
    assert "retrying" not in result.stderr
    out = tmp_path / "o.vmig.jsonl"
    assert run_vex("export", "--from", "chroma", *store, "--output", str(out)).returncode == 0
    assert len(read_vmig(out)) == 300
    target = [f"--target-{where}", location, "--collection", f"poison_{where}"]
    report = ["--report", str(tmp_path / "verify.json")]
    result = run_vex(
        "verify", "--from", "jsonl", "--source-path", str(good), "--to", "chroma", *target, *report, "--json"
    )
    assert result.returncode == 0, result.stderr + result.stdout


def test_metadata_key_limit_counts_vex_own_keys_and_the_document(tmp_path: Path) -> None:
    from connectors.chroma import MAX_METADATA_KEYS, _metadatas

    record = sample_records(count=1, odd_ones=False)[0]
    record["metadata"] = {}
    own = len(_metadatas(to_batch([record]))[0] or {}) + 1  # namespace, model, created_at, and the document
    fits = dict(record, id="fits", metadata=_many_keys(MAX_METADATA_KEYS - own))
    over = dict(record, id="over", metadata=_many_keys(MAX_METADATA_KEYS - own + 1))
    with _connector(tmp_path, None, "key_limit") as chroma:
        chroma.ensure_target(8, "cosine")
        result = chroma.load(to_batch([fits, over]))
        assert result.written == 1 and [record_id for record_id, _ in result.failed] == ["over"]
        assert f"{MAX_METADATA_KEYS + 1:,} metadata keys" in result.failed[0][1]
        assert chroma.describe().count == 1


def test_chroma_itself_breaks_past_5461_metadata_keys_and_vex_says_so(tmp_path: Path) -> None:
    """Pins the number behind MAX_METADATA_KEYS (if a chromadb upgrade moves it, this says so), and what
    vex does with a collection broken that way: it fails at once with what happened, no retries."""
    import chromadb

    client = chromadb.PersistentClient(path=str(tmp_path / "c"))
    collection = client.create_collection("damaged", embedding_function=None)
    vector = np.ones((1, 8), dtype=np.float32)
    collection.upsert(ids=["a"], embeddings=vector, documents=["x"], metadatas=[_many_keys(5460)])
    with pytest.raises(chromadb.errors.InternalError, match="apply logs"):
        collection.upsert(ids=["b"], embeddings=vector, documents=["x"], metadatas=[_many_keys(5461)])
    store = ["--path", str(tmp_path / "c"), "--collection", "damaged"]
    result = run_vex("export", "--from", "chroma", *store, "--output", str(tmp_path / "o.vmig.jsonl"))
    assert result.returncode == 1 and "is damaged" in result.stderr and "retrying" not in result.stderr
    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=3, odd_ones=False))
    result = run_vex("import", "--from", str(source), "--to", "chroma", *store)
    assert result.returncode == 1 and "is damaged" in result.stderr and "retrying" not in result.stderr


@pytest.mark.parametrize(
    ("record_id", "metadata", "named"),
    [
        ("", {"a": 1}, "empty id"),
        ("dollar", {"$where": 1}, "'$where'"),
        ("empty-key", {"": 1}, "empty or starts with"),
        ("document-key", {"chroma:document": "x"}, "'chroma:document'"),
    ],
)
def test_ids_and_keys_chroma_refuses_are_failed_records(
    tmp_path: Path, record_id: str, metadata: dict[str, object], named: str
) -> None:
    records = sample_records(count=3, odd_ones=False)
    records.append(dict(records[0], id=record_id, metadata=metadata))
    with _connector(tmp_path, None, "refused") as chroma:
        chroma.ensure_target(8, "cosine")
        result = chroma.load(to_batch(records))
        assert result.written == 3 and len(result.failed) == 1
        assert result.failed[0][0] == record_id and named in result.failed[0][1]
        assert chroma.describe().count == 3


@pytest.fixture
def own_chroma_server(tmp_path: Path) -> Iterator[ChromaServer]:
    """A server of the test's own: 48 MB of documents keep a server busy for a while after they are written,
    long enough for another test's 3 s timeouts to run out on the shared one."""
    server = start_chroma(tmp_path / "server")
    try:
        yield server
    finally:
        stop_chroma(server)


def test_requests_stay_below_the_server_body_limit(tmp_path: Path, own_chroma_server: ChromaServer) -> None:
    """Six 8 MB documents are 48 MB, over the 40 MiB a `chroma run` request may carry: they go in
    requests cut by size (not one refused request and then one request a record); a 34 MB document
    alone is more than one request may hold and is a failed record."""
    records = sample_records(count=7, odd_ones=False)
    for index, record in enumerate(records[:6]):
        record["text"] = str(index) * 8_000_000
    records[6]["text"] = "x" * 34_000_000
    with _connector(tmp_path, own_chroma_server, "big_documents") as chroma:
        chroma.ensure_target(8, "cosine")
        calls: list[int] = []
        assert isinstance(chroma, ChromaConnector)
        collection = chroma._collection
        upsert = collection.upsert

        def counted(**kwargs: object) -> object:
            calls.append(len(kwargs["ids"]))  # type: ignore[arg-type]
            return upsert(**kwargs)

        collection.upsert = counted
        result = chroma.load(to_batch(records))
        assert result.written == 6 and [record_id for record_id, _ in result.failed] == ["mem-0006"]
        assert "one request to a Chroma server" in result.failed[0][1]
        assert sum(calls) == 6 and len(calls) == 2
        assert chroma.describe().count == 6


def test_embedded_record_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors import chroma as module

    monkeypatch.setattr(module, "MAX_EMBEDDED_RECORD_BYTES", 1_000_000)
    records = sample_records(count=3, odd_ones=False)
    records[1]["text"] = "\x00" * 200_000  # 200 kB of text, 1.2 MB as JSON
    with _connector(tmp_path, None, "embedded_size") as chroma:
        chroma.ensure_target(8, "cosine")
        result = chroma.load(to_batch(records))
        assert result.written == 2 and result.failed[0][0] == "mem-0001"
        assert "embedded Chroma" in result.failed[0][1]


@pytest.mark.parametrize("where", ["path", "url"])
def test_integers_beyond_int64_keep_their_digits(tmp_path: Path, chroma_server: ChromaServer, where: str) -> None:
    """Chroma turns a metadata integer over 2**63 - 1 into the nearest float; vex carries up to 2**64 - 1."""
    records = sample_records(count=2, odd_ones=False)
    records[0]["metadata"] = {"largest": 2**64 - 1, "past_int64": 2**63, "int64_max": 2**63 - 1, "int64_min": -(2**63)}
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    location = str(tmp_path / "c") if where == "path" else chroma_server.url
    store = [f"--{where}", location, "--collection", f"wide_{where}"]
    assert run_vex("import", "--from", str(source), "--to", "chroma", *store).returncode == 0
    out = tmp_path / "o.vmig.jsonl"
    assert run_vex("export", "--from", "chroma", *store, "--output", str(out)).returncode == 0
    back = read_vmig(out)["mem-0000"]["metadata"]
    assert back == records[0]["metadata"] and all(type(value) is int for value in back.values())


@pytest.mark.parametrize("where", ["path", "url"])
def test_chroma_keeps_ids_apart_that_differ_only_in_case_form_or_spaces(
    tmp_path: Path, chroma_server: ChromaServer, where: str
) -> None:
    """Chroma normalises no id (measured, embedded and server): ids that differ only in case, Unicode form
    (NFC and NFD, compatibility forms) or surrounding spaces stay separate records, none overwrites another."""
    ids = ["Doc", "doc", "DOC", "caf\u00e9", "cafe\u0301", "\uff44oc", "x", "x ", " x", "x\t"]
    records = sample_records(count=len(ids), odd_ones=False)
    for record, record_id in zip(records, ids, strict=True):
        record["id"] = record_id
        record["text"] = f"the record named {record_id!r}"
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    location = str(tmp_path / "c") if where == "path" else chroma_server.url
    store = [f"--{where}", location, "--collection", f"lookalike_ids_{where}"]
    result = run_vex("import", "--from", str(source), "--to", "chroma", *store, "--json")
    assert result.returncode == 0, result.stderr
    assert _last(result)["upserted"] == len(ids)
    out = tmp_path / "o.vmig.jsonl"
    assert run_vex("export", "--from", "chroma", *store, "--output", str(out)).returncode == 0
    back = read_vmig(out)
    assert sorted(back) == sorted(ids)
    assert all(back[record_id]["text"] == f"the record named {record_id!r}" for record_id in ids)


@pytest.mark.parametrize("where", ["path", "url"])
def test_a_reimport_replaces_a_record_instead_of_merging_into_it(
    tmp_path: Path, chroma_server: ChromaServer, where: str
) -> None:
    """Chroma's upsert keeps the keys a new version leaves out, and the old document when the new one has
    none: a key the record lost stayed, and vex's null and json key lists misread the new values."""
    records = sample_records(count=3, odd_ones=False)
    records[0]["metadata"] = {"a": 1, "gone": "x", "was_nested": {"x": 1}, "was_null": None, "stays": True}
    records[1]["metadata"] = {"many": 1, **{f"old{i}": i for i in range(100)}}
    location = str(tmp_path / "c") if where == "path" else chroma_server.url
    store = [f"--{where}", location, "--collection", f"replace_{where}"]
    first = write_vmig(tmp_path / "first.vmig.jsonl", records)
    assert run_vex("import", "--from", str(first), "--to", "chroma", *store).returncode == 0
    records[0]["metadata"] = {"a": 2, "was_nested": "[1]", "was_null": 5, "stays": True}
    records[1]["metadata"] = {}
    records[2]["text"] = None  # the record loses its document
    second = write_vmig(tmp_path / "second.vmig.jsonl", records)
    assert run_vex("import", "--from", str(second), "--to", "chroma", *store).returncode == 0
    out = tmp_path / "o.vmig.jsonl"
    assert run_vex("export", "--from", "chroma", *store, "--output", str(out)).returncode == 0
    back = read_vmig(out)
    for record in records:
        assert back[record["id"]]["metadata"] == record["metadata"], record["id"]
        assert back[record["id"]]["text"] == record["text"], record["id"]
    target = [f"--target-{where}", location, "--collection", f"replace_{where}"]
    report = ["--report", str(tmp_path / "verify.json")]
    result = run_vex("verify", "--from", "jsonl", "--source-path", str(second), "--to", "chroma", *target, *report)
    assert result.returncode == 0, result.stderr + result.stdout
