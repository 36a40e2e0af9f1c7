"""vex's own BatchObjects and Search messages (connectors/weaviate_wire.py) against the client's: a request vex
makes is the message the client would make for the same object, and a reply vex reads gives what the client's
decoder gives, for every kind of value Weaviate returns."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip("weaviate")

from weaviate.collections.batch.grpc_batch import _BatchGRPC
from weaviate.collections.classes.batch import _BatchObject
from weaviate.proto.v1 import base_pb2, properties_pb2, search_get_pb2
from weaviate.util import _ServerVersion

from connectors.weaviate_wire import batch_request, reply_objects, search_page
from tests.fakes.weaviate import FakeWeaviate


def _client_message(collection: str, tenant: str | None, object_id: str, props: dict[str, Any], vector: Any) -> Any:
    """The BatchObject the client's `insert_many` sends for this object."""
    made = _BatchObject(collection=collection, vector=vector, uuid=object_id, properties=props, tenant=tenant,
                        references=None, index=0)  # fmt: skip
    return _BatchGRPC(_ServerVersion(1, 34, 0), None, None).grpc_object(made)


def test_a_batch_request_is_the_message_the_client_sends() -> None:
    rng = np.random.default_rng(3)
    row = rng.normal(size=8).astype(np.float32)
    multi = rng.normal(size=(3, 4)).astype(np.float32)
    props = {"vex_id": "mem-1", "text": "héllo", "importance": 0.25, "count": 7, "ok": True,
             "created_at": "2025-01-15T10:23:00.000001Z"}  # fmt: skip
    cases = [
        (row, row.tolist()),  # the collection's only vector
        ({"default": row, "colbert": multi.tolist()}, {"default": row.tolist(), "colbert": multi.tolist()}),
        (None, None),
    ]
    for ours, theirs in cases:
        object_id = str(uuid.uuid4())
        request = batch_request("Memories", "tenant-a", [(object_id, props, ours)])
        expected = _client_message("Memories", "tenant-a", object_id, props, theirs)
        assert request.objects[0] == expected


@pytest.fixture
def fake() -> Iterator[FakeWeaviate]:
    with FakeWeaviate() as server:
        yield server


def _value(**kind: Any) -> Any:
    return properties_pb2.Value(**kind)


def test_a_reply_reads_as_the_client_reads_it(fake: FakeWeaviate) -> None:
    """Every kind of value, named, multi- and unnamed vectors: vex's reading equals the client's objects'."""
    import weaviate
    from weaviate.classes.init import Auth
    from weaviate.collections.classes.internal import _QueryOptions

    nested = properties_pb2.Properties(fields={"a": _value(int_value=1), "b": _value(text_value="x")})
    values = {
        "text": _value(text_value="plain"), "number": _value(number_value=0.5), "int": _value(int_value=-3),
        "bool": _value(bool_value=False), "null": _value(null_value=0),
        "date": _value(date_value="2025-01-15T10:23:00.000001Z"),
        "date_ms": _value(date_value="2025-01-15T10:23:00.123Z"),
        "date_nanos": _value(date_value="2025-01-15T10:23:00.123456789Z"),
        "date_offset": _value(date_value="2025-01-15T10:23:00+02:00"), "uuid": _value(uuid_value=str(uuid.uuid4())),
        "object": _value(object_value=nested),
        "texts": _value(list_value=properties_pb2.ListValue(text_values=properties_pb2.TextValues(values=["a", "b"]))),
        "blob": _value(blob_value="aGk="),
        "geo": _value(geo_value=properties_pb2.GeoCoordinate(latitude=1.5, longitude=2.5)),
    }  # fmt: skip
    row = np.arange(4, dtype=np.float32) / 7
    multi = np.arange(6, dtype=np.float32).reshape(2, 3)
    results = [
        search_get_pb2.SearchResult(
            properties=search_get_pb2.PropertiesResult(non_ref_props=properties_pb2.Properties(fields=values)),
            metadata=search_get_pb2.MetadataResult(id_as_bytes=uuid.uuid4().bytes, vector_bytes=row.tobytes()),
        ),
        search_get_pb2.SearchResult(
            properties=search_get_pb2.PropertiesResult(non_ref_props=properties_pb2.Properties(fields={})),
            metadata=search_get_pb2.MetadataResult(id_as_bytes=uuid.uuid4().bytes, vectors=[
                base_pb2.Vectors(name="one", vector_bytes=row.tobytes(), type=base_pb2.Vectors.VECTOR_TYPE_SINGLE_FP32),
                base_pb2.Vectors(name="many", vector_bytes=b"\x03\x00" + multi.tobytes(),
                                 type=base_pb2.Vectors.VECTOR_TYPE_MULTI_FP32),
            ]),
        ),
    ]  # fmt: skip
    reply = search_get_pb2.SearchReply(results=results)
    client = weaviate.connect_to_custom(
        http_host="127.0.0.1", http_port=fake.port, http_secure=False, grpc_host="127.0.0.1",
        grpc_port=fake.grpc_port, grpc_secure=False, auth_credentials=Auth.api_key(fake.api_key or ""),
    )  # fmt: skip
    try:
        handle = client.collections.use("Anything")
        theirs = handle.query._result_to_query_return(reply, _QueryOptions.from_input(None, None, True, None, None))
        ours = reply_objects(handle, reply)
    finally:
        client.close()
    assert len(ours) == len(theirs.objects) == 2
    for mine, client_object in zip(ours, theirs.objects, strict=True):
        assert mine.uuid == str(client_object.uuid)
        assert mine.properties == client_object.properties
        assert {name: np.asarray(value).tolist() for name, value in mine.vector.items()} == client_object.vector
    assert isinstance(ours[0].properties["date"], dt.datetime) and ours[0].properties["date"].microsecond == 1
    assert isinstance(ours[0].vector["default"], np.ndarray)  # read as a view of the reply's bytes, not a list


def test_a_page_is_the_request_fetch_objects_sends(fake: FakeWeaviate) -> None:
    """Objects written with vex's messages read back by the client and by vex's page alike, in cursor order."""
    import weaviate
    from weaviate.classes.config import Configure
    from weaviate.classes.init import Auth

    from connectors.weaviate_wire import send_batch

    client = weaviate.connect_to_custom(
        http_host="127.0.0.1", http_port=fake.port, http_secure=False, grpc_host="127.0.0.1",
        grpc_port=fake.grpc_port, grpc_secure=False, auth_credentials=Auth.api_key(fake.api_key or ""),
    )  # fmt: skip
    try:
        handle = client.collections.create("Wire", vector_config=Configure.Vectors.self_provided())
        rng = np.random.default_rng(9)
        vectors = rng.normal(size=(25, 16)).astype(np.float32)
        objects = [(str(uuid.UUID(int=i + 1)), {"vex_id": f"m{i}", "n": i}, vectors[i]) for i in range(25)]
        assert send_batch(handle, batch_request("Wire", None, objects)) == {}
        first = reply_objects(handle, search_page(handle, 10, None))
        rest = reply_objects(handle, search_page(handle, 100, first[-1].uuid))
        theirs = handle.query.fetch_objects(limit=100, include_vector=True).objects
    finally:
        client.close()
    assert [obj.uuid for obj in first + rest] == [str(obj.uuid) for obj in theirs] == [o[0] for o in objects]
    assert np.array_equal(np.stack([obj.vector["default"] for obj in first + rest]), vectors)
    assert [obj.properties for obj in first + rest] == [obj.properties for obj in theirs]
