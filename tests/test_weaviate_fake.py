"""The local Weaviate (tests/fakes/weaviate.py) as the official `weaviate-client` sees it: what vex's connector
relies on, checked with the client alone, so a fault in the fake is found here and not in the connector's tests."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

weaviate = pytest.importorskip("weaviate")

from weaviate.classes.config import Configure, DataType, Property, VectorDistances  # noqa: E402
from weaviate.classes.init import Auth  # noqa: E402
from weaviate.classes.query import Filter  # noqa: E402
from weaviate.exceptions import UnexpectedStatusCodeError, WeaviateQueryError  # noqa: E402

from tests.chroma_server import free_port  # noqa: E402
from tests.fakes.weaviate import FakeWeaviate  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fake() -> Iterator[FakeWeaviate]:
    with FakeWeaviate() as server:
        yield server


def _connect(fake: FakeWeaviate, key: str | None = None, **extra: Any) -> Any:
    return weaviate.connect_to_custom(
        http_host="127.0.0.1", http_port=fake.port, http_secure=False,
        grpc_host="127.0.0.1", grpc_port=fake.grpc_port, grpc_secure=False,
        auth_credentials=Auth.api_key(key or fake.api_key or ""), skip_init_checks=True, **extra,
    )  # fmt: skip


@pytest.fixture
def client(fake: FakeWeaviate) -> Iterator[Any]:
    connected = _connect(fake)
    try:
        yield connected
    finally:
        connected.close()


def _uuid(i: int) -> str:
    return str(uuid.UUID(int=i + 1))


def test_connect_to_local_with_every_startup_check(fake: FakeWeaviate, monkeypatch: pytest.MonkeyPatch) -> None:
    """`connect_to_local` without skip_init_checks pings the gRPC health service. It also asks PyPI for the
    newest client version (a best-effort check it ignores when it fails): a proxy on a closed local port keeps
    that request on this machine."""
    for name in ("HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    connected = weaviate.connect_to_local(
        host="127.0.0.1", port=fake.port, grpc_port=fake.grpc_port, auth_credentials=Auth.api_key(fake.api_key or "")
    )
    try:
        assert connected.is_ready()
        assert connected.get_meta()["version"] == "1.34.0"
    finally:
        connected.close()
    assert fake.calls["grpc Check"] == 1


def test_create_insert_with_a_fixed_size_batch_and_iterate_with_vectors(fake: FakeWeaviate, client: Any) -> None:
    things = client.collections.create(
        "things",
        properties=[Property(name="text", data_type=DataType.TEXT), Property(name="n", data_type=DataType.INT),
                    Property(name="at", data_type=DataType.DATE), Property(name="tags", data_type=DataType.TEXT_ARRAY)],
        vector_config=Configure.Vectors.self_provided(
            vector_index_config=Configure.VectorIndex.hnsw(distance_metric=VectorDistances.DOT)
        ),
    )  # fmt: skip
    assert things.name == "Things"  # Weaviate capitalises collection names
    config = things.config.get()
    assert config.vector_config is not None
    assert config.vector_config["default"].vector_index_config.distance_metric == VectorDistances.DOT
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((25, 6)).astype(np.float32)
    at = dt.datetime(2025, 1, 15, 10, 23, 0, 123456, tzinfo=dt.UTC)
    with things.batch.fixed_size(batch_size=10, concurrent_requests=2) as batch:
        for i in range(25):
            props = {"text": f"t{i}", "n": i, "at": at, "tags": ["a", "b"], "score": i / 2, "ok": i % 2 == 0}
            batch.add_object(properties=props, uuid=_uuid(i), vector=vectors[i].tolist())
    assert things.batch.failed_objects == []
    seen = list(things.iterator(include_vector=True))
    assert [str(obj.uuid) for obj in seen] == [_uuid(i) for i in range(25)]  # the cursor walks UUIDs in order
    first = seen[3]
    assert first.properties == {"text": "t3", "n": 3, "at": at, "tags": ["a", "b"], "score": 1.5, "ok": False}
    assert np.array_equal(np.asarray(first.vector["default"], dtype=np.float32), vectors[3])
    added = {prop.name: prop.data_type for prop in things.config.get().properties}
    assert added["score"] == DataType.NUMBER and added["ok"] == DataType.BOOL  # auto-schema, as Weaviate's default
    page = things.query.fetch_objects(limit=7, after=_uuid(9))
    assert [str(obj.uuid) for obj in page.objects] == [_uuid(i) for i in range(10, 17)]
    assert things.aggregate.over_all(total_count=True).total_count == 25
    assert set(fake.collection("Things").writes.values()) == {1}


def test_failed_objects_carry_weaviate_s_message(fake: FakeWeaviate, client: Any) -> None:
    things = client.collections.create("Refusing", vector_config=Configure.Vectors.self_provided())
    things.config.add_property(Property(name="n", data_type=DataType.INT))
    fake.refuse_objects({_uuid(2): "simulated refusal of this object"})
    with things.batch.fixed_size(batch_size=5) as batch:
        for i in range(5):
            batch.add_object(properties={"n": 0.5 if i == 4 else i}, uuid=_uuid(i), vector=[1.0, float(i)])
        batch.add_object(properties={"n": 1}, uuid=_uuid(9), vector=[1.0, 2.0, 3.0])
    failed = {str(error.object_.uuid): error.message for error in things.batch.failed_objects}
    assert failed[_uuid(2)] == "simulated refusal of this object"
    assert "invalid integer property 'n'" in failed[_uuid(4)]
    assert "vector with length 3. Existing nodes have vectors with length 2" in failed[_uuid(9)]
    assert len(things.query.fetch_objects(limit=100).objects) == 3


def test_a_wrong_key_is_refused_on_both_protocols(fake: FakeWeaviate) -> None:
    with pytest.raises(UnexpectedStatusCodeError) as refused:
        _connect(fake, key="wrong")
    assert refused.value.status_code == 401
    channel = grpc.insecure_channel(f"127.0.0.1:{fake.grpc_port}")
    try:
        from weaviate.proto.v1 import search_get_pb2, weaviate_pb2_grpc

        stub = weaviate_pb2_grpc.WeaviateStub(channel)
        with pytest.raises(grpc.RpcError) as denied:
            stub.Search(search_get_pb2.SearchRequest(collection="X"), metadata=(("authorization", "Bearer wrong"),))
        assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        channel.close()


def test_tenants_and_named_vectors(fake: FakeWeaviate, client: Any) -> None:
    split = client.collections.create(
        "Split",
        multi_tenancy_config=Configure.multi_tenancy(enabled=True),
        vector_config=[Configure.Vectors.self_provided(name="body"), Configure.Vectors.self_provided(name="title")],
    )
    split.tenants.create(["alpha", "beta"])
    assert sorted(split.tenants.get()) == ["alpha", "beta"]
    alpha = split.with_tenant("alpha")
    with alpha.batch.fixed_size(batch_size=10) as batch:
        for i in range(3):
            batch.add_object(properties={"text": f"a{i}"}, uuid=_uuid(i), vector={"body": [1.0, 2.0], "title": [3.0]})
    got = list(alpha.iterator(include_vector=True))
    assert len(got) == 3 and got[0].vector == {"body": [1.0, 2.0], "title": [3.0]}
    assert list(split.with_tenant("beta").iterator()) == []
    with pytest.raises(WeaviateQueryError, match="multi-tenancy enabled, but request was without tenant"):
        split.query.fetch_objects(limit=1)
    with pytest.raises(WeaviateQueryError, match='tenant not found: "gamma"'):
        split.with_tenant("gamma").query.fetch_objects(limit=1)
    alpha.data.delete_many(where=Filter.by_id().contains_any([_uuid(0), _uuid(1)]))
    assert [str(obj.uuid) for obj in alpha.iterator()] == [_uuid(2)]


def test_unavailable_is_retried_by_the_client(fake: FakeWeaviate, client: Any) -> None:
    things = client.collections.create("Retried", vector_config=Configure.Vectors.self_provided())
    fake.fail_next("batch", times=1, code=grpc.StatusCode.UNAVAILABLE)
    with things.batch.fixed_size(batch_size=4) as batch:
        for i in range(4):
            batch.add_object(properties={"n": i}, uuid=_uuid(i), vector=[float(i)])
    assert things.batch.failed_objects == []
    assert fake.calls["grpc BatchObjects"] == 2
    assert set(fake.collection("Retried").writes.values()) == {1}
    fake.fail_next("batch", times=1, code=grpc.StatusCode.INTERNAL, message="simulated internal error")
    with things.batch.fixed_size(batch_size=4) as batch:
        batch.add_object(properties={"n": 9}, uuid=_uuid(9), vector=[9.0])
    assert "simulated internal error" in things.batch.failed_objects[0].message


def test_standalone_prints_where_it_listens() -> None:
    ports = [free_port(), free_port()]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.weaviate", "--port", str(ports[0]), "--grpc-port", str(ports[1]),
         "--api-key", "k"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert f"http://127.0.0.1:{ports[0]}" in line and f"gRPC on 127.0.0.1:{ports[1]}" in line, line
        connected = weaviate.connect_to_custom(
            http_host="127.0.0.1", http_port=ports[0], http_secure=False, grpc_host="127.0.0.1",
            grpc_port=ports[1], grpc_secure=False, auth_credentials=Auth.api_key("k"), skip_init_checks=True,
        )  # fmt: skip
        try:
            assert connected.collections.list_all() == {}
        finally:
            connected.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
