"""A local Weaviate: the REST endpoints and the gRPC service `weaviate.v1.Weaviate` as the official
`weaviate-client` (4.x) calls them, objects kept in memory per collection and tenant, with injectable failures.

No Weaviate server installs here, so vex's Weaviate connector is tested against this. It serves what the
client uses: over HTTP `GET /v1/meta`, `/v1/.well-known/ready|live|openid-configuration`, `/v1/nodes`,
`GET|POST /v1/schema`, `GET|DELETE /v1/schema/{collection}`, `POST /v1/schema/{collection}/properties`,
`GET|POST|PUT|DELETE /v1/schema/{collection}/tenants` and `HEAD|GET /v1/schema/{collection}/tenants/{tenant}`;
over gRPC (served with `grpcio` from the generated modules the client ships) `BatchObjects`, `Search` (the
cursor read the client's iterator makes: `after` the last UUID, objects in UUID order, properties and vectors
the way the client parses them; plain `limit`/`offset` reads with simple filters), `BatchDelete`, `TenantsGet`,
`Aggregate` (the object count) and the health check. Weaviate's rules that a migration meets are enforced as
Weaviate enforces them: collection names start with a capital letter, property names match
`[_A-Za-z][_0-9A-Za-z]*` (the first letter lowered, unique without regard to case), a property's data type is
checked on every write (auto-schema adds a missing property, as Weaviate's default does), every vector of a
name has one length, tenant names match `[A-Za-z0-9_-]{1,64}`, a multi-tenant collection needs a tenant on
every read and write and a single-tenant one refuses one. Only `vectorizer: none` (vectors given by the client).

Both sides check the API key (`Authorization: Bearer KEY`): a wrong one is a 401 over HTTP and
UNAUTHENTICATED over gRPC. Tests hold the `FakeWeaviate` and inject faults: `fail_next("batch", times=2,
code=grpc.StatusCode.UNAVAILABLE)` fails the next gRPC calls of a kind, `fail_next("rest", code=503,
path="/v1/schema")` the next HTTP requests, and `refuse_objects({uuid: "reason"})` makes a batch answer those
objects with per-object errors, as Weaviate reports a refused object inside a successful reply.

Run it standalone to try the CLI against it: `python -m tests.fakes.weaviate --port 8080 --grpc-port 50051`.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import re
import struct
import threading
import time
import uuid as uuid_lib
from collections import Counter, deque
from collections.abc import Iterable
from concurrent import futures
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import grpc
import numpy as np
import orjson
from google.protobuf import json_format
from weaviate.proto.v1 import (
    aggregate_pb2,
    base_pb2,
    batch_delete_pb2,
    batch_pb2,
    health_weaviate_pb2,
    properties_pb2,
    search_get_pb2,
    tenants_pb2,
    weaviate_pb2_grpc,
)

from tests.fakes.json_http import JsonHandler, serve

VERSION = "1.34.0"
"""The Weaviate version the fake reports (the client picks its API by it)."""
GRPC_MAX_MESSAGE = 104_858_000
CLASS_NAME = re.compile(r"[A-Z][_0-9A-Za-z]{0,254}")
PROPERTY_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,230}")
RESERVED_PROPERTIES = {"_additional", "_id", "id"}
TENANT_NAME = re.compile(r"[A-Za-z0-9\-_]{1,64}")
DISTANCES = {"cosine", "dot", "l2-squared", "hamming", "manhattan"}
PRIMITIVE_TYPES = {
    "text", "text[]", "int", "int[]", "number", "number[]", "boolean", "boolean[]", "date", "date[]", "uuid",
    "uuid[]", "object", "object[]", "blob", "geoCoordinates", "phoneNumber",
}  # fmt: skip
DEFAULT_LIMIT = 10
"""Objects a read returns when it names no limit (Weaviate's QUERY_DEFAULTS_LIMIT)."""
TENANT_STATUS = "ACTIVE"


class RestFailure(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Fault:
    kind: str
    """A gRPC method ("batch", "search", "delete", "tenants", "aggregate", "health") or "rest"."""
    code: Any
    """A `grpc.StatusCode` for a gRPC method, an HTTP status for "rest"."""
    message: str
    path: str | None = None
    """For "rest": only requests whose path starts with this."""


_GRPC_KINDS = {
    "BatchObjects": "batch", "Search": "search", "BatchDelete": "delete", "TenantsGet": "tenants",
    "Aggregate": "aggregate", "Check": "health",
}  # fmt: skip


@dataclass
class FakeCollection:
    schema: dict[str, Any]
    shards: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """Tenant ("" in a single-tenant collection) to UUID to the stored object."""
    tenants: dict[str, str] = field(default_factory=dict)
    dims: dict[str, int] = field(default_factory=dict)
    """Vector name ("" for the collection's unnamed vector) to its length, fixed by the first vector."""
    writes: Counter[str] = field(default_factory=Counter)
    """How many times each object (`tenant/uuid`, `uuid` alone without a tenant) was written."""
    _order: dict[str, list[str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.schema["class"])

    @property
    def multi_tenant(self) -> bool:
        return bool(self.schema.get("multiTenancyConfig", {}).get("enabled"))

    @property
    def named_vectors(self) -> bool:
        return "vectorConfig" in self.schema

    def property(self, name: str) -> dict[str, Any] | None:
        for prop in self.schema["properties"]:
            if prop["name"] == name:
                return dict(prop)
        return None

    def objects(self, tenant: str = "") -> dict[str, dict[str, Any]]:
        return self.shards.setdefault(tenant, {})

    def ordered(self, tenant: str) -> list[str]:
        """The shard's UUIDs in order (the cursor's order), cached until the next write."""
        if tenant not in self._order:
            self._order[tenant] = sorted(self.objects(tenant))
        return self._order[tenant]

    def changed(self, tenant: str) -> None:
        self._order.pop(tenant, None)


class FakeWeaviate:
    """The fake's state, servers and fault switches; a context manager that starts and stops it."""

    def __init__(self, api_key: str | None = "weaviate-test-key", port: int = 0, grpc_port: int = 0) -> None:
        self.api_key = api_key
        self.collections: dict[str, FakeCollection] = {}
        self.lock = threading.RLock()
        self.faults: deque[Fault] = deque()
        self.refused: dict[str, str] = {}
        self.calls: Counter[str] = Counter()
        self.auto_schema = True
        """Add a property an object names that the collection lacks (Weaviate's default)."""
        self._port = port
        self._grpc_port = grpc_port
        self.http: ThreadingHTTPServer | None = None
        self.grpc: grpc.Server | None = None
        self.grpc_port = 0

    # -- switches tests use ------------------------------------------------------------------------------

    def fail_next(
        self, kind: str, times: int = 1, code: Any = None, message: str | None = None, path: str | None = None
    ) -> None:
        """The next `times` calls of `kind` fail: a gRPC method ("batch", "search", "delete", "tenants",
        "aggregate", "health") with `code` (default UNAVAILABLE), or "rest" with an HTTP status (default 503),
        only on paths starting with `path` when given."""
        if code is None:
            code = 503 if kind == "rest" else grpc.StatusCode.UNAVAILABLE
        text = message or f"simulated failure ({getattr(code, 'name', code)})"
        with self.lock:
            self.faults.extend(Fault(kind, code, text, path) for _ in range(times))

    def refuse_objects(self, reasons: dict[str, str]) -> None:
        """Batches answer these objects (by UUID) with a per-object error carrying the reason."""
        with self.lock:
            self.refused.update({str(uuid_lib.UUID(str(key))): value for key, value in reasons.items()})

    def create_collection(
        self,
        name: str,
        *,
        distance: str = "cosine",
        vector_names: Iterable[str] | None = None,
        multi_tenant: bool = False,
        properties: Iterable[dict[str, Any]] = (),
    ) -> FakeCollection:
        """A collection made directly, as another tool would have made it (no vectors: `vectorizer: none`)."""
        body: dict[str, Any] = {"class": name, "properties": list(properties)}
        if vector_names is None:
            body.update(vectorizer="none", vectorIndexType="hnsw", vectorIndexConfig={"distance": distance})
        else:
            body["vectorConfig"] = {
                vector: {
                    "vectorizer": {"none": {}},
                    "vectorIndexType": "hnsw",
                    "vectorIndexConfig": {"distance": distance},
                }
                for vector in vector_names
            }
        if multi_tenant:
            body["multiTenancyConfig"] = {"enabled": True}
        self.schema_create(body)
        return self.collections[name]

    def collection(self, name: str) -> FakeCollection:
        return self.collections[name]

    # -- lifecycle ---------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self.http is not None
        return f"http://127.0.0.1:{self.http.server_address[1]}"

    @property
    def port(self) -> int:
        assert self.http is not None
        return int(self.http.server_address[1])

    def start(self) -> FakeWeaviate:
        self.http = _http_server(self, self._port)
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=8),
            options=[("grpc.max_receive_message_length", GRPC_MAX_MESSAGE),
                     ("grpc.max_send_message_length", GRPC_MAX_MESSAGE)],
        )  # fmt: skip
        weaviate_pb2_grpc.add_WeaviateServicer_to_server(_Servicer(self), server)
        health = grpc.unary_unary_rpc_method_handler(
            self._health,
            request_deserializer=health_weaviate_pb2.WeaviateHealthCheckRequest.FromString,
            response_serializer=health_weaviate_pb2.WeaviateHealthCheckResponse.SerializeToString,
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("grpc.health.v1.Health", {"Check": health}),)
        )
        self.grpc_port = server.add_insecure_port(f"127.0.0.1:{self._grpc_port}")
        server.start()
        self.grpc = server
        return self

    def stop(self) -> None:
        if self.grpc is not None:
            self.grpc.stop(grace=None).wait(10)
            self.grpc = None
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()
            self.http = None

    def __enter__(self) -> FakeWeaviate:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- checks on every request -------------------------------------------------------------------------

    def _key_ok(self, presented: str | None) -> bool:
        return self.api_key is None or presented == f"Bearer {self.api_key}"

    def _take_fault(self, kind: str, path: str | None = None) -> Fault | None:
        """The first fault queued for this kind of call (and path), taken off the queue."""
        with self.lock:
            for fault in self.faults:
                if fault.kind == kind and (path is None or fault.path is None or path.startswith(fault.path)):
                    self.faults.remove(fault)
                    return fault
        return None

    def grpc_guard(self, method: str, context: grpc.ServicerContext) -> None:
        with self.lock:
            self.calls[f"grpc {method}"] += 1
        metadata = dict(context.invocation_metadata())
        if method != "Check" and not self._key_ok(metadata.get("authorization")):  # the health check is open
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "unauthorized: invalid api key")
        fault = self._take_fault(_GRPC_KINDS[method])
        if fault is not None:
            context.abort(fault.code, fault.message)

    def _health(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.grpc_guard("Check", context)
        return health_weaviate_pb2.WeaviateHealthCheckResponse(
            status=health_weaviate_pb2.WeaviateHealthCheckResponse.SERVING
        )

    # -- REST --------------------------------------------------------------------------------------------

    def rest(self, method: str, path: str, headers: Any, body: Any) -> tuple[int, Any]:
        with self.lock:
            self.calls[f"rest {method} {path}"] += 1
        if path.startswith("/v1/.well-known/"):
            if path.endswith("/openid-configuration"):
                return 404, None
            return 200, None
        if not self._key_ok(headers.get("Authorization")):
            raise RestFailure(401, "unauthorized: invalid api key")
        fault = self._take_fault("rest", path)
        if fault is not None:
            raise RestFailure(int(fault.code), fault.message)
        parts = [unquote(part) for part in path.strip("/").split("/")][1:]
        if parts == ["meta"] and method == "GET":
            return 200, {"hostname": "http://[::]:8080", "version": VERSION, "modules": {},
                         "grpcMaxMessageSize": GRPC_MAX_MESSAGE}  # fmt: skip
        if parts == ["nodes"] and method == "GET":
            with self.lock:
                count = sum(len(objects) for c in self.collections.values() for objects in c.shards.values())
            node = {"name": "fake-node", "status": "HEALTHY", "version": VERSION, "gitHash": "fake",
                    "stats": {"objectCount": count, "shardCount": len(self.collections)}, "shards": None}  # fmt: skip
            return 200, {"nodes": [node]}
        if parts and parts[0] == "schema":
            return self._schema(method, parts[1:], body)
        raise RestFailure(404, f"no route {method} {path} in this fake")

    def _schema(self, method: str, parts: list[str], body: Any) -> tuple[int, Any]:
        if not parts:
            if method == "GET":
                with self.lock:
                    return 200, {"classes": [_shown_schema(c) for c in self.collections.values()]}
            if method == "POST":
                return 200, _shown_schema(self.schema_create(body))
        collection = self.collections.get(parts[0])
        if len(parts) == 1:
            if method == "GET":
                return (200, _shown_schema(collection)) if collection is not None else (404, None)
            if method == "DELETE":
                with self.lock:
                    self.collections.pop(parts[0], None)
                return 200, None
        if collection is None:
            raise RestFailure(404, f"class {parts[0]!r} not found")
        if parts[1:] == ["properties"] and method == "POST":
            return 200, self.property_add(collection, body)
        if parts[1] == "tenants":
            return self._tenants(collection, method, parts[2:], body)
        if parts[1:] == ["shards"] and method == "GET":
            return 200, [{"name": "fake-shard", "status": "READY", "vectorQueueSize": 0}]
        raise RestFailure(404, f"no route {method} /v1/schema/{'/'.join(parts)} in this fake")

    def schema_create(self, body: Any) -> FakeCollection:
        if not isinstance(body, dict) or not isinstance(body.get("class"), str):
            raise RestFailure(422, "a collection needs a class name")
        name = body["class"][:1].upper() + body["class"][1:]
        if not CLASS_NAME.fullmatch(name):
            raise RestFailure(422, f"'{body['class']}' is not a valid class name")
        schema: dict[str, Any] = {"class": name, "properties": []}
        if body.get("vectorConfig"):
            schema["vectorConfig"] = {}
            for vector, config in body["vectorConfig"].items():
                if list(config.get("vectorizer") or {"none": {}}) != ["none"]:
                    raise RestFailure(422, "this fake has no vectorizer modules: use vectorizer none")
                schema["vectorConfig"][vector] = {
                    "vectorizer": {"none": {}},
                    "vectorIndexType": config.get("vectorIndexType") or "hnsw",
                    "vectorIndexConfig": _index_config(config.get("vectorIndexConfig")),
                }
        else:
            if body.get("vectorizer", "none") != "none":
                raise RestFailure(422, "this fake has no vectorizer modules: use vectorizer none")
            schema.update(vectorizer="none", vectorIndexType=body.get("vectorIndexType") or "hnsw",
                          vectorIndexConfig=_index_config(body.get("vectorIndexConfig")))  # fmt: skip
        tenancy = body.get("multiTenancyConfig") or {}
        schema["multiTenancyConfig"] = {
            "enabled": bool(tenancy.get("enabled")),
            "autoTenantCreation": bool(tenancy.get("autoTenantCreation")),
            "autoTenantActivation": bool(tenancy.get("autoTenantActivation")),
        }
        schema["invertedIndexConfig"] = {
            "bm25": {"b": 0.75, "k1": 1.2}, "cleanupIntervalSeconds": 60,
            "stopwords": {"preset": "en", "additions": None, "removals": None},
        }  # fmt: skip
        schema["replicationConfig"] = {"factor": 1, "asyncEnabled": False, "deletionStrategy": "NoAutomatedResolution"}
        schema["shardingConfig"] = {
            "virtualPerPhysical": 128, "desiredCount": 1, "actualCount": 1, "desiredVirtualCount": 128,
            "actualVirtualCount": 128, "key": "_id", "strategy": "hash", "function": "murmur3",
        }  # fmt: skip
        collection = FakeCollection(schema)
        for prop in body.get("properties") or []:
            self.property_add(collection, prop)
        with self.lock:
            if any(existing.lower() == name.lower() for existing in self.collections):
                raise RestFailure(422, f'class name "{name}" already exists')
            self.collections[name] = collection
        return collection

    def property_add(self, collection: FakeCollection, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            raise RestFailure(422, "property must contain name")
        raw = body["name"]
        name = raw[:1].lower() + raw[1:]
        if not PROPERTY_NAME.fullmatch(name) or name in RESERVED_PROPERTIES:
            raise RestFailure(
                422,
                f"'{raw}' is not a valid property name. Property names in Weaviate are restricted to valid "
                "GraphQL names, which must be “/[_A-Za-z][_0-9A-Za-z]{0,230}/”.",
            )
        types = body.get("dataType")
        if not isinstance(types, list) or len(types) != 1 or types[0] not in PRIMITIVE_TYPES:
            raise RestFailure(422, f"property '{name}': dataType {types!r} is not one this fake knows")
        prop = {
            "name": name,
            "dataType": list(types),
            "indexFilterable": body.get("indexFilterable", True),
            "indexSearchable": body.get("indexSearchable", types[0] in ("text", "text[]")),
            "indexRangeFilters": body.get("indexRangeFilters", False),
            "tokenization": body.get("tokenization") or ("word" if types[0] in ("text", "text[]") else None),
        }
        if body.get("nestedProperties") is not None:
            prop["nestedProperties"] = body["nestedProperties"]
        if prop["tokenization"] is None:
            del prop["tokenization"]
        with self.lock:
            if any(existing["name"].lower() == name.lower() for existing in collection.schema["properties"]):
                raise RestFailure(422, f'class "{collection.name}": property "{name}" already exists')
            collection.schema["properties"].append(prop)
        return dict(prop)

    def _tenants(self, collection: FakeCollection, method: str, parts: list[str], body: Any) -> tuple[int, Any]:
        if not collection.multi_tenant:
            raise RestFailure(422, f'multi-tenancy is not enabled for class "{collection.name}"')
        if parts:
            found = parts[0] in collection.tenants
            if method in ("GET", "HEAD"):
                shown = {"name": parts[0], "activityStatus": collection.tenants.get(parts[0])}
                return (200, shown if method == "GET" else None) if found else (404, None)
        if method == "GET":
            with self.lock:
                return 200, [{"name": name, "activityStatus": status} for name, status in collection.tenants.items()]
        entries = body if isinstance(body, list) else []
        if method in ("POST", "PUT"):
            names = [entry.get("name") if isinstance(entry, dict) else entry for entry in entries]
            for name in names:
                if not isinstance(name, str) or not TENANT_NAME.fullmatch(name):
                    raise RestFailure(422, f"tenant name {name!r} is not valid: it must match [A-Za-z0-9_-]{{1,64}}")
            with self.lock:
                if method == "POST":
                    existing = [name for name in names if name in collection.tenants]
                    if existing:
                        raise RestFailure(422, f'tenant "{existing[0]}" already exists')
                for name in names:
                    collection.tenants[name] = TENANT_STATUS
            return 200, [{"name": name, "activityStatus": TENANT_STATUS} for name in names]
        if method == "DELETE":
            with self.lock:
                for name in entries:
                    collection.tenants.pop(name, None)
                    collection.shards.pop(name, None)
                    collection.changed(name)
            return 200, None
        raise RestFailure(404, f"no route {method} tenants in this fake")

    # -- gRPC: objects in and out ------------------------------------------------------------------------

    def shard(self, collection_name: str, tenant: str) -> tuple[FakeCollection, str]:
        """The collection and shard a read or write names, or the error Weaviate answers."""
        collection = self.collections.get(collection_name)
        if collection is None:
            raise _Refused(f"could not find class {collection_name} in schema")
        if collection.multi_tenant:
            if not tenant:
                raise _Refused(f"class {collection.name} has multi-tenancy enabled, but request was without tenant")
            if tenant not in collection.tenants:
                if collection.schema["multiTenancyConfig"].get("autoTenantCreation") and TENANT_NAME.fullmatch(tenant):
                    collection.tenants[tenant] = TENANT_STATUS
                else:
                    raise _Refused(f'tenant not found: "{tenant}"')
        elif tenant:
            raise _Refused(f"class {collection.name} has multi-tenancy disabled, but request was with tenant")
        return collection, tenant

    def put(self, obj: Any) -> None:
        """One object of a batch stored (replacing one of its UUID), or `_Refused` with Weaviate's reason."""
        collection, tenant = self.shard(obj.collection, obj.tenant)
        try:
            object_id = str(uuid_lib.UUID(obj.uuid))
        except ValueError:
            raise _Refused(f"invalid UUID {obj.uuid!r}") from None
        if object_id in self.refused:
            raise _Refused(self.refused[object_id])
        properties = _properties_in(obj.properties) if obj.HasField("properties") else {}
        stored_props = {}
        for name, value in properties.items():
            prop = collection.property(name)
            if prop is None:
                if value is None or value == []:
                    continue
                if not self.auto_schema:
                    raise _Refused(
                        f"no such prop with name '{name}' found in class '{collection.name}' in the schema. "
                        "Check your schema files for which properties in this class are available"
                    )
                try:
                    prop = self.property_add(collection, {"name": name, "dataType": [_inferred_type(value)]})
                except RestFailure as failure:
                    raise _Refused(failure.message) from None
            if value is None:
                continue
            stored_props[prop["name"]] = _checked_value(collection.name, prop, value)
        vectors = self._vectors(collection, obj)
        now = int(time.time() * 1000)
        shard = collection.objects(tenant)
        created = shard.get(object_id, {}).get("created", now)
        shard[object_id] = {"properties": stored_props, "vectors": vectors, "created": created, "updated": now}
        collection.changed(tenant)
        collection.writes[f"{tenant}/{object_id}" if tenant else object_id] += 1

    def _vectors(self, collection: FakeCollection, obj: Any) -> dict[str, np.ndarray]:
        given: dict[str, np.ndarray] = {}
        if obj.vector_bytes:
            given[""] = np.frombuffer(obj.vector_bytes, dtype="<f4").copy()
        elif len(obj.vector):
            given[""] = np.asarray(obj.vector, dtype=np.float32)
        for vector in obj.vectors:
            if vector.type == base_pb2.Vectors.VECTOR_TYPE_MULTI_FP32:
                dims = struct.unpack("<H", vector.vector_bytes[:2])[0]
                given[vector.name or "default"] = np.frombuffer(vector.vector_bytes[2:], dtype="<f4").reshape(-1, dims)
            else:
                given[vector.name or "default"] = np.frombuffer(vector.vector_bytes, dtype="<f4").copy()
        named = collection.schema.get("vectorConfig") or {}
        if "" in given and named:
            if len(named) != 1:
                raise _Refused(f"collection {collection.name} is configured with multiple named vectors "
                               f"{sorted(named)}, but received a single vector")  # fmt: skip
            given[next(iter(named))] = given.pop("")  # the only named vector takes an unnamed one, as Weaviate does
        for name, values in given.items():
            if name and not named:
                raise _Refused(f"collection {collection.name} is configured without multiple named vectors, "
                               f"but received named vectors: [{name}]")  # fmt: skip
            if name and name not in named:
                raise _Refused(f"collection {collection.name} does not have configuration for vector {name}")
            length = values.shape[-1]
            expected = collection.dims.setdefault(name, length)
            if length != expected:
                raise _Refused(f"new node has a vector with length {length}. "
                               f"Existing nodes have vectors with length {expected}")  # fmt: skip
        return given

    def search(self, request: Any) -> Any:
        unsupported = [name for name in ("group_by", "hybrid_search", "bm25_search", "near_vector", "near_object",
                                         "near_text", "near_image", "near_audio", "near_video", "near_depth",
                                         "near_thermal", "near_imu", "generative", "rerank", "boost")
                       if request.HasField(name)] + (["sort_by"] if len(request.sort_by) else [])  # fmt: skip
        if unsupported:
            raise _Refused(
                f"this fake answers object reads only, not {', '.join(unsupported)}", grpc.StatusCode.UNIMPLEMENTED
            )
        with self.lock:
            collection, tenant = self.shard(request.collection, request.tenant)
            if request.after and request.HasField("filters"):
                raise _Refused("explorer: list class: search: cursor api: invalid 'after' parameter: "
                               "where filters are not supported together with a cursor")  # fmt: skip
            limit = request.limit or DEFAULT_LIMIT
            order = collection.ordered(tenant)
            shard = collection.objects(tenant)
            if request.after:
                start = bisect.bisect_right(order, str(uuid_lib.UUID(request.after)))
                chosen = order[start : start + limit]
            else:
                filtered = request.HasField("filters")
                matching = [key for key in order if not filtered or _matches(request.filters, key, shard[key])]
                chosen = matching[request.offset : request.offset + limit]
            results = [_result(collection, key, shard[key], request) for key in chosen]
        return search_get_pb2.SearchReply(took=0.001, results=results)

    def delete(self, request: Any) -> Any:
        with self.lock:
            collection, tenant = self.shard(request.collection, request.tenant)
            shard = collection.objects(tenant)
            matched = [key for key in list(shard) if _matches(request.filters, key, shard[key])]
            if not request.dry_run:
                for key in matched:
                    del shard[key]
                collection.changed(tenant)
        objects = [batch_delete_pb2.BatchDeleteObject(uuid=uuid_lib.UUID(key).bytes, successful=True)
                   for key in matched] if request.verbose else []  # fmt: skip
        return batch_delete_pb2.BatchDeleteReply(took=0.001, failed=0, matches=len(matched), successful=len(matched),
                                                 objects=objects)  # fmt: skip

    def tenants_get(self, request: Any) -> Any:
        with self.lock:
            collection = self.collections.get(request.collection)
            if collection is None:
                raise _Refused(f"could not find class {request.collection} in schema")
            if not collection.multi_tenant:
                raise _Refused(f'multi-tenancy is not enabled for class "{collection.name}"')
            names = list(request.names.values) if request.HasField("names") else list(collection.tenants)
            tenants = [tenants_pb2.Tenant(name=name, activity_status=tenants_pb2.TENANT_ACTIVITY_STATUS_HOT)
                       for name in names if name in collection.tenants]  # fmt: skip
        return tenants_pb2.TenantsGetReply(took=0.001, tenants=tenants)

    def aggregate(self, request: Any) -> Any:
        if len(request.aggregations) or request.HasField("group_by"):
            raise _Refused("this fake aggregates the object count only", grpc.StatusCode.UNIMPLEMENTED)
        with self.lock:
            collection, tenant = self.shard(request.collection, request.tenant)
            shard = collection.objects(tenant)
            count = sum(
                1 for key in shard if not request.HasField("filters") or _matches(request.filters, key, shard[key])
            )
        return aggregate_pb2.AggregateReply(
            took=0.001, single_result=aggregate_pb2.AggregateReply.Single(objects_count=count)
        )


class _Refused(Exception):
    def __init__(self, message: str, code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class _Servicer(weaviate_pb2_grpc.WeaviateServicer):
    def __init__(self, fake: FakeWeaviate) -> None:
        self.fake = fake

    def _answer(self, method: str, context: grpc.ServicerContext, call: Any, request: Any) -> Any:
        self.fake.grpc_guard(method, context)
        try:
            return call(request)
        except _Refused as refused:
            context.abort(refused.code, refused.message)

    def BatchObjects(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.fake.grpc_guard("BatchObjects", context)
        started = time.perf_counter()
        errors = []
        with self.fake.lock:
            for index, obj in enumerate(request.objects):
                try:
                    self.fake.put(obj)
                except _Refused as refused:
                    errors.append(batch_pb2.BatchObjectsReply.BatchError(index=index, error=refused.message))
        return batch_pb2.BatchObjectsReply(took=time.perf_counter() - started, errors=errors)

    def Search(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._answer("Search", context, self.fake.search, request)

    def BatchDelete(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._answer("BatchDelete", context, self.fake.delete, request)

    def TenantsGet(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._answer("TenantsGet", context, self.fake.tenants_get, request)

    def Aggregate(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._answer("Aggregate", context, self.fake.aggregate, request)


# -- values in and out -------------------------------------------------------------------------------------


def _index_config(given: Any) -> dict[str, Any]:
    config = dict(given or {})
    distance = config.get("distance", "cosine")
    if distance not in DISTANCES:
        raise RestFailure(422, f"invalid distance {distance!r}: one of {sorted(DISTANCES)}")
    defaults = {
        "skip": False, "cleanupIntervalSeconds": 300, "maxConnections": 32, "efConstruction": 128, "ef": -1,
        "dynamicEfMin": 100, "dynamicEfMax": 500, "dynamicEfFactor": 8, "vectorCacheMaxObjects": 1_000_000_000_000,
        "flatSearchCutoff": 40000, "distance": distance, "filterStrategy": "sweeping",
        "pq": {"enabled": False}, "bq": {"enabled": False}, "sq": {"enabled": False},
    }  # fmt: skip
    return {**defaults, **config}


def _shown_schema(collection: FakeCollection) -> dict[str, Any]:
    return orjson.loads(orjson.dumps(collection.schema))


def _properties_in(props: Any) -> dict[str, Any]:
    """An object's properties as the client sent them (a Struct of scalars and typed arrays), as Python values."""
    out: dict[str, Any] = (
        json_format.MessageToDict(props.non_ref_properties) if props.HasField("non_ref_properties") else {}
    )
    for array in props.text_array_properties:
        out[array.prop_name] = list(array.values)
    for array in props.int_array_properties:
        out[array.prop_name] = list(array.values)
    for array in props.number_array_properties:
        raw = array.values_bytes
        out[array.prop_name] = list(struct.unpack(f"<{len(raw) // 8}d", raw)) if raw else list(array.values)
    for array in props.boolean_array_properties:
        out[array.prop_name] = list(array.values)
    for nested in props.object_properties:
        out[nested.prop_name] = _properties_in(nested.value)
    for nested_list in props.object_array_properties:
        out[nested_list.prop_name] = [_properties_in(value) for value in nested_list.values]
    for name in props.empty_list_props:
        out[name] = []
    return out


def _inferred_type(value: Any) -> str:
    """The data type auto-schema gives a new property (numbers are `number`: JSON and Struct have no integers)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "date" if _date(value) is not None else "text"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list) and value:
        return _inferred_type(value[0]) + "[]" if not isinstance(value[0], dict) else "object[]"
    return "text"


def _date(value: str) -> dt.datetime | None:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})", value):
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", value)
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _checked_value(collection: str, prop: dict[str, Any], value: Any) -> Any:
    """A value as its property's data type holds it, or the error Weaviate gives for it."""
    kind = prop["dataType"][0]
    name = prop["name"]
    if kind.endswith("[]"):
        if not isinstance(value, list):
            raise _Refused(f"invalid {kind} property '{name}' on class '{collection}': not a list")
        return [_checked_value(collection, {**prop, "dataType": [kind[:-2]]}, item) for item in value]
    if kind == "text" or kind == "uuid":
        if not isinstance(value, str):
            raise _Refused(
                f"invalid text property '{name}' on class '{collection}': not a string, but {_go_type(value)}"
            )
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value):
            raise _Refused(f"invalid integer property '{name}' on class '{collection}': requires an integer, "
                           f"the given value is {value!r}")  # fmt: skip
        return int(value)
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Refused(f"invalid number property '{name}' on class '{collection}': requires a float, "
                           f"the given value is {_go_type(value)}")  # fmt: skip
        return float(value)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _Refused(f"invalid boolean property '{name}' on class '{collection}': requires a bool, "
                           f"the given value is {_go_type(value)}")  # fmt: skip
        return value
    if kind == "date":
        parsed = _date(value) if isinstance(value, str) else None
        if parsed is None:
            raise _Refused(f"invalid date property '{name}' on class '{collection}': requires a string with a "
                           f"RFC3339 formatted date, but the given value is {value!r}")  # fmt: skip
        return parsed
    if kind == "object":
        if not isinstance(value, dict):
            raise _Refused(f"invalid object property '{name}' on class '{collection}': not an object")
        return value
    return value


def _go_type(value: Any) -> str:
    return {bool: "bool", int: "float64", float: "float64", str: "string", dict: "map[string]interface {}",
            list: "[]interface {}"}.get(type(value), type(value).__name__)  # fmt: skip


def _date_text(value: dt.datetime) -> str:
    """A date as Weaviate prints it: RFC 3339 with the fraction's trailing zeros dropped."""
    base = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        base += f".{value.microsecond:06d}".rstrip("0")
    offset = value.utcoffset()
    if offset is None or offset == dt.timedelta(0):
        return base + "Z"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{base}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _value_out(kind: str, value: Any) -> Any:
    """A stored value as a `properties_pb2.Value` of its data type."""
    pb = properties_pb2
    if value is None:
        return pb.Value(null_value=0)
    if kind.endswith("[]"):
        item = kind[:-2]
        if item == "text":
            return pb.Value(list_value=pb.ListValue(text_values=pb.TextValues(values=value)))
        if item == "uuid":
            return pb.Value(list_value=pb.ListValue(uuid_values=pb.UuidValues(values=value)))
        if item == "int":
            return pb.Value(
                list_value=pb.ListValue(int_values=pb.IntValues(values=struct.pack(f"<{len(value)}q", *value)))
            )
        if item == "number":
            packed = struct.pack(f"<{len(value)}d", *value)
            return pb.Value(list_value=pb.ListValue(number_values=pb.NumberValues(values=packed)))
        if item == "boolean":
            return pb.Value(list_value=pb.ListValue(bool_values=pb.BoolValues(values=value)))
        if item == "date":
            return pb.Value(list_value=pb.ListValue(date_values=pb.DateValues(values=[_date_text(v) for v in value])))
        if item == "object":
            objects = [_nested_out(v) for v in value]
            return pb.Value(list_value=pb.ListValue(object_values=pb.ObjectValues(values=objects)))
    if kind == "text":
        return pb.Value(text_value=value)
    if kind == "uuid":
        return pb.Value(uuid_value=value)
    if kind == "int":
        return pb.Value(int_value=value)
    if kind == "number":
        return pb.Value(number_value=value)
    if kind == "boolean":
        return pb.Value(bool_value=value)
    if kind == "date":
        return pb.Value(date_value=_date_text(value))
    if kind == "object":
        return pb.Value(object_value=_nested_out(value))
    return pb.Value(text_value=str(value))


def _nested_out(value: dict[str, Any]) -> Any:
    fields = {}
    for key, item in value.items():
        kind = (_inferred_type(item) if not isinstance(item, str) else "text") if item is not None else "text"
        if kind == "date":
            kind = "text"
        fields[key] = _value_out(kind, item)
    return properties_pb2.Properties(fields=fields)


def _result(collection: FakeCollection, key: str, stored: dict[str, Any], request: Any) -> Any:
    wanted = request.metadata if request.HasField("metadata") else search_get_pb2.MetadataRequest(uuid=True)
    metadata = search_get_pb2.MetadataResult(id=key, id_as_bytes=uuid_lib.UUID(key).bytes)
    if wanted.creation_time_unix:
        metadata.creation_time_unix, metadata.creation_time_unix_present = stored["created"], True
    if wanted.last_update_time_unix:
        metadata.last_update_time_unix, metadata.last_update_time_unix_present = stored["updated"], True
    vectors: dict[str, np.ndarray] = stored["vectors"]
    names = list(wanted.vectors) if len(wanted.vectors) else (list(vectors) if wanted.vector else [])
    for name in names:
        values = vectors.get(name)
        if values is None:
            continue
        if name == "":
            metadata.vector_bytes = values.astype("<f4").tobytes()
        elif values.ndim == 2:
            raw = struct.pack("<H", values.shape[1]) + values.astype("<f4").tobytes()
            metadata.vectors.append(
                base_pb2.Vectors(name=name, vector_bytes=raw, type=base_pb2.Vectors.VECTOR_TYPE_MULTI_FP32)
            )
        else:
            metadata.vectors.append(base_pb2.Vectors(name=name, vector_bytes=values.astype("<f4").tobytes(),
                                                     type=base_pb2.Vectors.VECTOR_TYPE_SINGLE_FP32))  # fmt: skip
    props = stored["properties"]
    if not request.HasField("properties") or request.properties.return_all_nonref_properties:
        names_out = [prop["name"] for prop in collection.schema["properties"]]
    else:
        names_out = list(request.properties.non_ref_properties)
    fields = {}
    for name in names_out:
        prop = collection.property(name)
        if prop is not None:
            fields[name] = _value_out(prop["dataType"][0], props.get(name))
    properties = search_get_pb2.PropertiesResult(non_ref_props=properties_pb2.Properties(fields=fields),
                                                 target_collection=collection.name)  # fmt: skip
    return search_get_pb2.SearchResult(properties=properties, metadata=metadata)


_OPS = base_pb2.Filters


def _matches(flt: Any, key: str, stored: dict[str, Any]) -> bool:
    """Simple filters: equal, not equal, contains any (on `_id` or a property), and, or, not."""
    op = flt.operator
    if op == _OPS.OPERATOR_AND:
        return all(_matches(inner, key, stored) for inner in flt.filters)
    if op == _OPS.OPERATOR_OR:
        return any(_matches(inner, key, stored) for inner in flt.filters)
    if op == _OPS.OPERATOR_NOT:
        return not _matches(flt.filters[0], key, stored)
    path = flt.target.property if flt.HasField("target") else (flt.on[0] if len(flt.on) else "")
    actual: Any = key if path == "_id" else stored["properties"].get(path)
    which = flt.WhichOneof("test_value")
    wanted: Any = getattr(flt, which) if which else None
    if hasattr(wanted, "values"):
        wanted = list(wanted.values)
    if path == "_id":
        wanted = [str(uuid_lib.UUID(w)) for w in wanted] if isinstance(wanted, list) else str(uuid_lib.UUID(wanted))
    if op == _OPS.OPERATOR_EQUAL:
        return bool(actual == wanted)
    if op == _OPS.OPERATOR_NOT_EQUAL:
        return bool(actual != wanted)
    if op == _OPS.OPERATOR_CONTAINS_ANY:
        values = actual if isinstance(actual, list) else [actual]
        return any(value in wanted for value in values)
    raise _Refused(f"this fake does not filter with operator {_OPS.Operator.Name(op)}", grpc.StatusCode.UNIMPLEMENTED)


def _http_server(fake: FakeWeaviate, port: int) -> ThreadingHTTPServer:
    class Handler(JsonHandler):
        methods = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE"})

        def respond(self, method: str) -> None:
            url = urlsplit(self.path)
            raw = self.read_body()
            try:
                try:
                    body = orjson.loads(raw) if raw else None
                except orjson.JSONDecodeError:
                    raise RestFailure(400, "the body is not JSON") from None
                status, answer = fake.rest(method, url.path, self.headers, body)
                self.send_json(status, answer, head=method == "HEAD")
            except RestFailure as failure:
                if failure.status == 401:
                    self.send_json(401, {"code": 401, "message": failure.message})
                else:
                    self.send_json(failure.status, {"error": [{"message": failure.message}]})

    return serve(Handler, port)


def main() -> None:
    parser = argparse.ArgumentParser(description="A local fake of Weaviate's REST and gRPC API for trying vex")
    parser.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080)")
    parser.add_argument("--grpc-port", type=int, default=50051, help="gRPC port (default 50051)")
    parser.add_argument("--api-key", default="weaviate-test-key", help="the key clients must send ('' for none)")
    args = parser.parse_args()
    with FakeWeaviate(args.api_key or None, args.port, args.grpc_port) as fake:
        key = f"--api-key {fake.api_key} " if fake.api_key else ""
        print(f"fake Weaviate {VERSION} at {fake.url}, gRPC on 127.0.0.1:{fake.grpc_port}"
              f"{f' (api key {fake.api_key})' if fake.api_key else ''}; Ctrl-C stops.", flush=True)  # fmt: skip
        print(f"try: vex import --from FILE --to weaviate --url {fake.url} --grpc-port {fake.grpc_port} "
              f"{key}--collection Demo", flush=True)  # fmt: skip
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
