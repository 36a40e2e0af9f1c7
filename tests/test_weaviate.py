"""Weaviate through the CLI, against the local fake of its REST and gRPC API (tests/fakes/weaviate.py) that the
official client talks to unchanged: round trips in both namespace modes, what Weaviate cannot take as it is,
named vectors, injected failures, bad input."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

pytest.importorskip("weaviate")

from connectors.weaviate import WeaviateConnector, WeaviateOptions, object_uuid
from tests.conftest import DEMO_DB, export_to_a_demo_copy, one_line_error, run_vex, run_vex_cases, summary_of
from tests.fakes.weaviate import FakeWeaviate
from tests.records import read_vmig, sample_records, write_lines, write_vmig


@pytest.fixture
def fake() -> Iterator[FakeWeaviate]:
    with FakeWeaviate() as server:
        yield server


def _options(fake: FakeWeaviate, collection: str, *extra: str, key: str | None = None) -> list[str]:
    return ["--url", fake.url, "--grpc-port", str(fake.grpc_port), "--api-key", key or fake.api_key or "",
            "--collection", collection, *extra]  # fmt: skip


@pytest.mark.parametrize("mode", ["property", "tenant"])
def test_vektor_to_weaviate_to_file_to_vektor_keeps_every_record(fake: FakeWeaviate, tmp_path: Path, mode: str) -> None:
    options = _options(fake, "Demo", "--namespace-mode", mode)
    moved = run_vex("migrate", "--from", "vektor", "--to", "weaviate", "--db", str(DEMO_DB), *options, "--verify",
                    "--json", cwd=tmp_path)  # fmt: skip
    assert moved.returncode == 0, moved.stderr
    assert summary_of(moved)["upserted"] == 300 and summary_of(moved)["verify"]["matched"] == 300
    stored = fake.collection("Demo")
    if mode == "tenant":
        assert sorted(stored.tenants) == ["personal", "research", "trading"]  # vex namespaces are tenants
        assert all(len(stored.objects(tenant)) == 100 for tenant in stored.tenants)
    else:
        assert not stored.multi_tenant and len(stored.objects()) == 300
    shard = next(iter(stored.shards))
    one = next(iter(stored.objects(shard).values()))
    assert set(one["properties"]) >= {"vex_id", "text", "created_at", "agent_id", "importance", "vex_meta"}
    assert export_to_a_demo_copy("weaviate", options, tmp_path)["matched"] == 300


def test_what_weaviate_cannot_take_as_it_is_comes_back_exactly(fake: FakeWeaviate, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    odd_keys = {"user-name": "x", "Upper": 1, "fooBar": 2, "foobar": 3, "id": "i", "vector": "v", "meta": "m",
                "text": "a user key named text", "vex_id": "mine", "_vex_id": "like ours", "ünï": "u", "": "empty",
                "k" * 300: "a key too long for a property name"}  # fmt: skip
    values = {"big": 2**60, "neg": -5, "f": 1.0, "ok": True, "none": None, "nested": {"a": [1, {"b": None}]},
              "list": ["a", 1], "empty": [], "strings": ["a", "b"], "when": "2025-01-15T10:23:00Z"}  # fmt: skip
    records = [
        {"id": "plain", "text": "t", "namespace": "ns with space/ü", "metadata": {**odd_keys, **values}},
        {"id": "6F9619FF-8B86-D011-B42D-00C04FC964FF", "text": None, "namespace": None, "metadata": {"n": 1}},
        {"id": "6f9619ff-8b86-d011-b42d-00c04fc964ff", "text": "", "namespace": "vex-ns", "metadata": {"n": "one"}},
        {"id": "x" * 100, "text": "long id", "namespace": "default", "metadata": {"n": 1.5}, "score": 0.25,
         "created_at": "2025-01-15T10:23:00.123456Z", "model": "m", "source": "somewhere"},
    ]  # fmt: skip
    for record in records:
        record["vector"] = rng.standard_normal(4).astype(np.float32).tolist()
    source = write_lines(tmp_path / "in.vmig.jsonl", records)
    for mode in ("property", "tenant"):
        options = _options(fake, f"Odd_{mode}", "--namespace-mode", mode)
        imported = run_vex("import", "--from", str(source), "--to", "weaviate", *options, "--json", cwd=tmp_path)
        assert imported.returncode == 0, imported.stderr
        assert summary_of(imported)["upserted"] == 4
        out = tmp_path / f"out-{mode}.vmig.jsonl"
        assert run_vex("export", "--from", "weaviate", *options, "--output", str(out), cwd=tmp_path).returncode == 0
        back = read_vmig(out)
        assert sorted(back) == sorted(r["id"] for r in records)
        for record in records:
            line = back[record["id"]]
            assert line["metadata"] == record["metadata"], (mode, record["id"], line["metadata"])
            assert line["namespace"] == record["namespace"] and line["text"] == record["text"]
            assert np.array_equal(np.asarray(line["vector"], np.float32), np.asarray(record["vector"], np.float32))
        assert back["x" * 100]["score"] == 0.25 and back["x" * 100]["model"] == "m"
        assert back["x" * 100]["created_at"].isoformat() == "2025-01-15T10:23:00.123456+00:00"
        stored = fake.collection(f"Odd_{mode}")
        names = {prop["name"]: prop["dataType"][0] for prop in stored.schema["properties"]}
        assert names["vex_k_user_2d_name"] == "text" and names["vex_k__55_pper"] == "int"
        assert names["fooBar"] == "int" and names["vex_k_foobar"] == "int"  # the same name but for case: escaped
        assert "big" not in names and "none" not in names and "nested" not in names  # in vex_meta, as JSON
        # The type of the first record written with the key (tenant mode writes a tenant's records together); the
        # values of other types went to vex_meta.
        assert names["n"] == ("int" if mode == "property" else "number")
        if mode == "tenant":
            assert sorted(stored.tenants) == sorted(["vex-none", "default", "vex-b64-dmV4LW5z",
                                                     "vex-b64-bnMgd2l0aCBzcGFjZS_DvA"])  # fmt: skip


def test_other_named_vectors_travel_in_metadata_and_come_back(fake: FakeWeaviate, tmp_path: Path) -> None:
    import weaviate
    from weaviate.classes.init import Auth

    fake.create_collection("Multi", vector_names=["body", "title"])
    rng = np.random.default_rng(2)
    body = rng.standard_normal((5, 4)).astype(np.float32)
    title = rng.standard_normal((5, 3)).astype(np.float32)
    client = weaviate.connect_to_custom(
        http_host="127.0.0.1", http_port=fake.port, http_secure=False, grpc_host="127.0.0.1",
        grpc_port=fake.grpc_port, grpc_secure=False, auth_credentials=Auth.api_key(fake.api_key or ""),
        skip_init_checks=True,
    )  # fmt: skip
    try:
        multi = client.collections.use("Multi")
        with multi.batch.fixed_size(batch_size=5) as batch:
            for i in range(5):
                batch.add_object(properties={"text": f"doc {i}"}, uuid=str(uuid.UUID(int=i + 1)),
                                 vector={"body": body[i].tolist(), "title": title[i].tolist()})  # fmt: skip
    finally:
        client.close()
    out = tmp_path / "multi.vmig.jsonl"
    refused = run_vex("export", "--from", "weaviate", *_options(fake, "Multi"), "--output", str(out), cwd=tmp_path)
    assert refused.returncode == 2
    assert "has named vectors ['body', 'title']: pass --vector-name" in one_line_error(refused.stderr)
    options = _options(fake, "Multi", "--vector-name", "body")
    assert run_vex("export", "--from", "weaviate", *options, "--output", str(out), cwd=tmp_path).returncode == 0
    back = read_vmig(out)
    first = back[str(uuid.UUID(int=1))]
    assert np.array_equal(np.asarray(first["vector"], np.float32), body[0])
    assert first["metadata"] == {"_vex_vectors": {"title": title[0].tolist()}}
    fake.create_collection("Copy", vector_names=["body", "title"])
    copy = _options(fake, "Copy", "--vector-name", "body")
    assert run_vex("import", "--from", str(out), "--to", "weaviate", *copy, cwd=tmp_path).returncode == 0
    stored = fake.collection("Copy").objects()[str(uuid.UUID(int=1))]
    assert np.array_equal(stored["vectors"]["title"], title[0]) and np.array_equal(stored["vectors"]["body"], body[0])
    assert "vex_meta" not in stored["properties"]  # the other vector went back where it came from
    single = _options(fake, "Single")
    assert run_vex("import", "--from", str(out), "--to", "weaviate", *single, cwd=tmp_path).returncode == 0
    again = tmp_path / "single.vmig.jsonl"
    assert run_vex("export", "--from", "weaviate", *single, "--output", str(again), cwd=tmp_path).returncode == 0
    assert read_vmig(again)[str(uuid.UUID(int=1))]["metadata"] == first["metadata"]  # kept, never dropped


def test_injected_transient_failures_end_with_every_record_written_exactly_once(
    fake: FakeWeaviate, tmp_path: Path
) -> None:
    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=30, odd_ones=False))
    options = _options(fake, "Flaky", "--batch-size", "10")
    fake.fail_next("rest", times=1, code=503, path="/v1/schema")
    fake.fail_next("batch", times=2, code=grpc.StatusCode.DEADLINE_EXCEEDED, message="Deadline Exceeded")
    result = run_vex("import", "--from", str(source), "--to", "weaviate", *options, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert summary_of(result)["upserted"] == 30
    writes = fake.collection("Flaky").writes
    assert len(writes) == 30 and set(writes.values()) == {1}
    assert fake.calls["grpc BatchObjects"] == 5  # 3 requests, 2 of them sent again
    fake.fail_next("batch", times=1, code=grpc.StatusCode.UNAVAILABLE)  # the client retries this one itself
    again = run_vex("import", "--from", str(source), "--to", "weaviate", *_options(fake, "Flaky2"), "--json",
                    cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert set(fake.collection("Flaky2").writes.values()) == {1} and len(fake.collection("Flaky2").writes) == 30
    fake.fail_next("search", times=1, code=grpc.StatusCode.INTERNAL, message="connection reset by peer")
    out = tmp_path / "o.vmig.jsonl"
    exported = run_vex("export", "--from", "weaviate", *_options(fake, "Flaky"), "--output", str(out), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert len(read_vmig(out)) == 30


def test_per_object_errors_are_failed_records_with_weaviate_s_message(fake: FakeWeaviate, tmp_path: Path) -> None:
    records = sample_records(count=12, odd_ones=False)
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    fake.refuse_objects({object_uuid(records[3]["id"]): "store is read-only: disk usage above threshold"})
    result = run_vex("import", "--from", str(source), "--to", "weaviate", *_options(fake, "Refusing"), "--json",
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1, result.stderr
    summary = summary_of(result)
    assert summary["upserted"] == 11 and summary["failed"] == 1
    assert summary["failed_sample"][0]["id"] == records[3]["id"]
    assert "store is read-only: disk usage above threshold" in summary["failed_sample"][0]["reason"]
    fake.refuse_objects({object_uuid(r["id"]): "simulated refusal" for r in records[:2]})
    pair = write_vmig(tmp_path / "p.vmig.jsonl", records[:2])
    every = run_vex("import", "--from", str(pair), "--to", "weaviate", *_options(fake, "Refusing2"), "--batch-size",
                    "2", "--json", cwd=tmp_path)  # fmt: skip
    assert every.returncode == 1
    reasons = {entry["reason"] for entry in summary_of(every)["failed_sample"]}
    assert reasons == {"Weaviate refused the object: simulated refusal"}  # not the client's wrapping of it


def test_bad_input_is_one_line_with_its_exit_code(fake: FakeWeaviate, tmp_path: Path) -> None:
    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=6, odd_ones=False))
    wide = write_vmig(tmp_path / "w.vmig.jsonl", sample_records(count=3, dims=16, odd_ones=False))
    out = "o.vmig.jsonl"  # each case runs in its own folder
    assert run_vex("import", "--from", str(source), "--to", "weaviate", *_options(fake, "Eight"),
                   cwd=tmp_path).returncode == 0  # fmt: skip
    assert run_vex("import", "--from", str(source), "--to", "weaviate", *_options(fake, "Tenants", "--namespace-mode",
                   "tenant"), cwd=tmp_path).returncode == 0  # fmt: skip
    closed = "http://127.0.0.1:9"
    cases = {
        "a refused key": (["export", "--from", "weaviate", *_options(fake, "Eight", key="wrong"), "--output", out],
                          4, "refused the API key"),
        "no server": (["export", "--from", "weaviate", "--url", closed, "--collection", "Eight", "--output", out], 4,
                      "unreachable"),
        "no gRPC": (["export", "--from", "weaviate", "--url", fake.url, "--grpc-port", "9", "--api-key",
                     fake.api_key or "", "--collection", "Eight", "--output", out], 4,
                    "its gRPC API at 127.0.0.1:9 is unreachable"),
        "no such collection": (["export", "--from", "weaviate", *_options(fake, "Nosuch"), "--output", out], 2,
                               "collection 'Nosuch' not found"),
        "other dims": (["import", "--from", str(wide), "--to", "weaviate", *_options(fake, "Eight")], 2,
                       "holds 8-d vectors but the input's are 16-d"),
        "another distance": (["import", "--from", str(source), "--to", "weaviate", *_options(fake, "Eight"),
                              "--metric", "dot"], 2, "uses cosine distance, not dot"),
        "no such tenant": (["export", "--from", "weaviate", *_options(fake, "Tenants", "--namespace-mode", "tenant"),
                            "--namespace", "nosuch", "--output", out], 2, "has no tenant 'nosuch'"),
        "no such tenant by name": (["export", "--from", "weaviate", *_options(fake, "Tenants", "--tenant", "gone"),
                                    "--output", out], 2, "has no tenant 'gone'"),
        "tenants need a mode": (["export", "--from", "weaviate", *_options(fake, "Tenants"), "--output", out], 2,
                                "is multi-tenant: pass --namespace-mode tenant"),
        "a name Weaviate refuses": (["import", "--from", str(source), "--to", "weaviate",
                                     *_options(fake, "my-collection")], 2, "is no collection name"),
    }  # fmt: skip
    commands = {name: args for name, (args, _, _) in cases.items()}
    results = run_vex_cases(commands, tmp_path, env={"WEAVIATE_API_KEY": ""})
    for name, (_, code, fragment) in cases.items():
        result = results[name]
        assert result.returncode == code, (name, result.stderr)
        assert fragment in one_line_error(result.stderr), (name, result.stderr)
        assert "wrong" not in result.stderr and (fake.api_key or "") not in result.stderr


def test_export_walks_every_tenant_and_resumes_from_its_cursor(fake: FakeWeaviate, tmp_path: Path) -> None:
    records = sample_records(count=21, odd_ones=False)
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    assert run_vex("import", "--from", str(source), "--to", "weaviate", *_options(fake, "Walk", "--namespace-mode",
                   "tenant"), cwd=tmp_path).returncode == 0  # fmt: skip
    options = WeaviateOptions(url=fake.url, grpc_port=fake.grpc_port, api_key=fake.api_key, collection="Walk",
                              namespace_mode="tenant")  # fmt: skip
    with WeaviateConnector(options) as first:
        first.page_size = 4
        pages = first.extract(None, None)
        taken = [next(pages) for _ in range(3)]  # tenant "default": 4 and 3 records; "research": its first 4
        pages.close()
    seen = [i for page in taken for i in page.batch.column("id").to_pylist()]
    cursor = json.loads(json.dumps(taken[-1].next_cursor))  # a cursor survives a checkpoint file
    assert taken[1].next_cursor == {"tenant": "research", "after": None}
    assert cursor["tenant"] == "research" and cursor["after"]
    with WeaviateConnector(options) as second:
        second.page_size = 4
        resumed = [i for page in second.extract(None, cursor) for i in page.batch.column("id").to_pylist()]
    assert len(seen) == 11 and sorted(seen + resumed) == sorted(r["id"] for r in records)
    with WeaviateConnector(options) as whole:
        whole.page_size = 4
        ids = [i for page in whole.extract(None, None) for i in page.batch.column("id").to_pylist()]
        info = whole.describe()
    assert sorted(ids) == sorted(r["id"] for r in records) and len(ids) == 21
    assert info.count == 21 and info.count_by_namespace == {"default": 7, "research": 7, "trading": 7}
    assert info.dims == 8 and info.metric == "cosine"


def test_a_collection_another_tool_made_exports_with_all_its_properties(fake: FakeWeaviate, tmp_path: Path) -> None:
    import datetime as dt

    import weaviate
    from weaviate.classes.config import Configure, DataType, Property
    from weaviate.classes.init import Auth

    client = weaviate.connect_to_custom(
        http_host="127.0.0.1", http_port=fake.port, http_secure=False, grpc_host="127.0.0.1",
        grpc_port=fake.grpc_port, grpc_secure=False, auth_credentials=Auth.api_key(fake.api_key or ""),
        skip_init_checks=True,
    )  # fmt: skip
    when = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)
    try:
        articles = client.collections.create(
            "Articles",
            properties=[Property(name="title", data_type=DataType.TEXT), Property(name="count", data_type=DataType.INT),
                        Property(name="published", data_type=DataType.DATE),
                        Property(name="tags", data_type=DataType.TEXT_ARRAY)],
            vector_config=Configure.Vectors.self_provided(),
        )  # fmt: skip
        with articles.batch.fixed_size(batch_size=3) as batch:
            for i in range(3):
                batch.add_object(properties={"title": f"a{i}", "count": i, "published": when, "tags": ["x", "y"]},
                                 uuid=str(uuid.UUID(int=i + 7)), vector=[float(i), 1.0])  # fmt: skip
    finally:
        client.close()
    out = tmp_path / "articles.vmig.jsonl"
    result = run_vex("export", "--from", "weaviate", *_options(fake, "Articles"), "--output", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    back = read_vmig(out)
    record = back[str(uuid.UUID(int=8))]
    assert record["metadata"] == {"title": "a1", "count": 1, "published": "2024-05-01T08:00:00Z", "tags": ["x", "y"]}
    assert record["text"] is None and record["vector"] == [1.0, 1.0] and record["source_store"] == "weaviate"


def test_inspect_and_stores_know_weaviate(fake: FakeWeaviate, tmp_path: Path) -> None:
    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=9, odd_ones=False))
    options = _options(fake, "Seen")
    assert run_vex("import", "--from", str(source), "--to", "weaviate", *options, cwd=tmp_path).returncode == 0
    report = json.loads(run_vex("inspect", "--from", "weaviate", *options, "--json").stdout)
    assert report["records"] == 9 and report["metric"] == "cosine" and report["dims"] == 8
    assert report["layout"] == "single-tenant collection, named vectors ['default'], cosine"
    entry = json.loads(run_vex("stores", "weaviate", "--json").stdout)
    assert entry["installed"] is True and "--namespace-mode" in [option["flag"] for option in entry["options"]]


def test_one_tenant_of_a_multi_tenant_collection_in_property_mode(fake: FakeWeaviate, tmp_path: Path) -> None:
    records = sample_records(count=9, odd_ones=False)
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    for tenant in ("alpha", "beta"):
        options = _options(fake, "Shared", "--tenant", tenant)
        imported = run_vex("import", "--from", str(source), "--to", "weaviate", *options, "--json", cwd=tmp_path)
        assert imported.returncode == 0, imported.stderr
    shared = fake.collection("Shared")
    assert shared.multi_tenant and sorted(shared.tenants) == ["alpha", "beta"]
    assert len(shared.objects("alpha")) == len(shared.objects("beta")) == 9
    out = tmp_path / "alpha.vmig.jsonl"
    options = _options(fake, "Shared", "--tenant", "alpha")
    assert run_vex("export", "--from", "weaviate", *options, "--output", str(out), cwd=tmp_path).returncode == 0
    back = read_vmig(out)
    assert {r["id"]: r["namespace"] for r in back.values()} == {r["id"]: r["namespace"] for r in records}
