"""Weaviate, on the official `weaviate-client` 4.x, both directions; a namespace is a property or a tenant.

The client speaks HTTP for the schema and tenants and gRPC for objects. Objects go in batch requests of
`--batch-size` (one gRPC BatchObjects call each, the call `insert_many` makes), `--concurrent-requests` of them in
flight; every object Weaviate refuses in a reply is a failed record with Weaviate's reason, and one refused for a
transient reason (or a whole request that failed so) is sent again, up to three more times in a load, before the
step's own retries. The client's batch context (`collection.batch.fixed_size`) sends the same requests, but
checks each object with pydantic first (three quarters of the time `add_object` takes, measured here) and
holds a part-filled request back for up to a second: vex's records arrive in batches already. Objects are read
back with the cursor. The BatchObjects and Search messages are made and read by `connectors.weaviate_wire`
(vectors as float32 bytes both ways), on the client's connection.

How a record is held. The object's UUID is the record's id when that is a UUID in its canonical spelling, else
the UUIDv5 of the id (`connectors.ids`); the original id is always kept in the property `vex_id` and restored
on export. The text, model and created_at (a `date`) are the properties `text`, `model` and `created_at`;
score, origin and unknown format keys travel as JSON text in `vex_fields`. Each metadata key is a property of
its own where Weaviate can hold it exactly: a string (`text`), a boolean, an integer within ±2**53 (`int`; the
client sends numbers as doubles) or a float (`number`), whose property has that type. Everything else is kept
in the object's `vex_meta` property, a JSON object: nested objects and lists (as JSON, restored exactly), nulls,
wider integers, and a value whose property another record made with another type. A key Weaviate cannot take
as a property name (Weaviate wants `[_A-Za-z][_0-9A-Za-z]*`, lowers the first letter and compares names without
regard to case) is stored under `vex_k_` + an escape of it (`[a-z0-9]` as they are, `_` as `__`, any other
character as `_` + its code point in hex + `_`: `user-id` is `vex_k_user_2d_id`), as is a key starting with
`vex_` and one equal, but for case, to a property the collection already has; names are decoded on export.

Vectors. A collection vex creates has one named vector (`--vector-name`, default `default`), `vectorizer: none`
and the distance of `--metric` (euclid is Weaviate's `l2-squared`). On export the record's `vector` is the one
`--vector-name` picks (or the only one); every other named vector of the object goes into the metadata key
`_vex_vectors` ({name: values}), and an import into a collection that has those vectors writes them back.

Namespaces. `--namespace-mode property` (default) keeps a record's namespace in the property `namespace`;
`--namespace-mode tenant` makes each namespace a tenant of a multi-tenant collection (created when missing), and
an export walks every tenant (or the one `--namespace` names), so a multi-tenant collection moves in one run. A
namespace that is no valid tenant name (`[A-Za-z0-9_-]{1,64}`, and not starting with `vex-`) is the tenant
`vex-b64-` + its URL-safe base64; records without a namespace go to the tenant `vex-none`. With
`--namespace-mode property`, `--tenant` reads and writes one tenant of a multi-tenant collection.

Export reads objects in UUID order with the cursor (`after` the last UUID); the run's cursor is the tenant and
that UUID, so it resumes where it stopped. Weaviate's cursor takes no filter: `--namespace` in property mode is
applied to what is read.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import math
import os
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import numpy as np
import orjson
import pyarrow as pa
from pydantic import SecretStr

from connectors.base import Capabilities, Connector, Cursor, LoadResult, Page, StoreInfo, StoreOptions
from connectors.clients import ClientLibrary, is_network_error, network_reason
from connectors.ids import ID_NAMESPACE
from connectors.weaviate_wire import (
    CANONICAL_UUID,
    WireObject,
    batch_request,
    reply_objects,
    search_page,
    send_batch,
)
from vmig import metadata as md
from vmig.backoff import base_delay
from vmig.batch import RecordColumns, last_of_each_id, vector_rows
from vmig.errors import AccessError, StoreError, TransientError, UsageError
from vmig.parallel import read_ahead
from vmig.timefmt import TimestampError, format_micros_column, to_micros

METRICS = {"cosine": "cosine", "dot": "dot", "euclid": "l2-squared", "manhattan": "manhattan", "hamming": "hamming"}
"""vex's metric names and Weaviate's distances."""
ID_PROPERTY = "vex_id"
DELETE_PER_REQUEST = 1000
"""Objects one delete_many request names (Weaviate deletes at most 10,000 a request by default)."""
FIELDS_PROPERTY = "vex_fields"
META_PROPERTY = "vex_meta"
OWN_PROPERTIES = {
    "text": "text", "namespace": "text", "model": "text", "created_at": "date",
    ID_PROPERTY: "text", FIELDS_PROPERTY: "text", META_PROPERTY: "text",
}  # fmt: skip
"""The properties vex writes for a record's own fields, and their data types."""
VECTORS_KEY = "_vex_vectors"
"""The metadata key an object's other named vectors travel under."""
ESCAPED = "vex_k_"
_PLAIN_KEY = re.compile(r"[a-z][0-9A-Za-z_]{0,199}")
_NOT_PLAIN = {"id", "vector", "meta"} | set(OWN_PROPERTIES)
"""Names Weaviate or its client refuse for a property, and vex's own: such keys are escaped."""
MAX_PROPERTY_NAME = 230
COLLECTION_NAME = re.compile(r"[A-Z][_0-9A-Za-z]*")
TENANT_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
NULL_TENANT = "vex-none"
MAPPED_TENANT = "vex-b64-"
EXACT_INT = 2**53
"""Integers the client sends exactly (it sends every number as a double)."""
PAGE = 1000
"""Objects an export reads a request (the cursor's page)."""
READ_AHEAD = 3
"""Pages an export reads ahead of the one being converted."""
RESENDS = 3
"""Rounds in which one load sends again the objects Weaviate failed for a transient reason."""
_TRANSIENT = re.compile(
    r"unavailable|deadline|timed? ?out|connection|reset by peer|broken pipe|overload|too many requests|try again|"
    r"temporar|resource.?exhausted|failed after \d+ retries|memory pressure|not enough memory|shutting down",
    re.IGNORECASE,
)
_REFUSED_KEY = re.compile(r"unauthenticated|unauthori[sz]ed|invalid api key|permission denied|forbidden", re.IGNORECASE)

_TYPES = {bool: "boolean", int: "int", float: "number", str: "text"}


class WeaviateOptions(StoreOptions):
    url: str = "http://localhost:8080"
    """The Weaviate server's HTTP address, `http://host:8080` (https for Weaviate Cloud)."""
    grpc_port: int | None = None
    """Port of its gRPC API (default: 50051, or 443 with an https --url)."""
    grpc_host: str | None = None
    """Host of its gRPC API when it is not --url's (Weaviate Cloud: `grpc-` + the host)."""
    api_key: SecretStr | None = None
    """API key of a server that asks for one (default: the WEAVIATE_API_KEY environment variable)."""
    collection: str = "Memories"
    """Collection to read or write (Weaviate capitalises the first letter); created on import when missing."""
    namespace_mode: Literal["property", "tenant"] = "property"
    """Where a record's namespace goes: the `namespace` property, or a tenant per namespace (multi-tenancy)."""
    tenant: str | None = None
    """With --namespace-mode property: the tenant of a multi-tenant collection to read or write; with tenant
    mode, the one tenant an export reads."""
    vector_name: str | None = None
    """The named vector a record's vector is (default: the collection's only vector; `default` for a new one)."""
    metric: Literal["cosine", "dot", "euclid", "manhattan", "hamming"] | None = None
    """Distance of a new collection (default: the source's, else cosine); checked against an existing one."""
    batch_size: int = 200
    """Objects per batch request."""
    concurrent_requests: int = 2
    """Batch requests in flight at once."""
    timeout: float = 60.0
    """Seconds one request may take."""


@dataclass
class _Layout:
    """What vex needs to know of an existing collection."""

    multi_tenant: bool
    vectors: list[str] | None
    """Its named vectors; None for a collection with one unnamed vector."""
    distances: dict[str, str]
    """Vector name ("" for the unnamed one) to Weaviate's distance."""
    properties: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Each property's name without case to (its name, its data type)."""


@dataclass
class _Object:
    record_id: str
    uuid: str
    properties: dict[str, Any]
    vector: Any
    tenant: str | None


class WeaviateConnector(Connector[WeaviateOptions]):
    name: ClassVar[str] = "weaviate"
    Options: ClassVar[type[StoreOptions]] = WeaviateOptions
    # One load call takes up to 10,000 records and cuts them into requests of --batch-size, so its requests keep
    # flowing (the last ones of a call go out with fewer in flight); an export reads pages of PAGE objects.
    capabilities: ClassVar[Capabilities] = Capabilities(
        deletes=True, max_batch=10_000, needs_vector=False, metrics=tuple(METRICS)
    )
    client_library: ClassVar[ClientLibrary | None] = ClientLibrary("weaviate", "weaviate", "weaviate-client")

    def __init__(self, options: WeaviateOptions) -> None:
        super().__init__(options)
        # The client logs every failed batch on its own logger; vex counts and reports them itself.
        client_log = logging.getLogger("weaviate-client")
        if not any(isinstance(handler, logging.NullHandler) for handler in client_log.handlers):
            client_log.addHandler(logging.NullHandler())
        client_log.propagate = False
        self.page_size = PAGE
        self._client: Any = None
        self._layout_cache: _Layout | None = None
        self._handles: dict[str | None, Any] = {}
        self._tenants: set[str] | None = None

    @property
    def collection(self) -> str:
        name = self.opts.collection
        return name[:1].upper() + name[1:]

    def label(self) -> str:
        return f"weaviate:{self.collection}"

    @property
    def _where(self) -> str:
        parts = urlsplit(self.opts.url)
        return f"{parts.scheme}://{parts.hostname}:{parts.port}" if parts.port else f"{parts.scheme}://{parts.hostname}"

    @property
    def _what(self) -> str:
        return f"weaviate collection '{self.collection}'"

    # -- client and errors ------------------------------------------------------

    def client(self) -> Any:
        if self._client is not None:
            return self._client
        weaviate = self.client_package()
        from weaviate.classes.init import AdditionalConfig, Auth, Timeout

        if not COLLECTION_NAME.fullmatch(self.collection):
            raise UsageError(
                f"weaviate --collection '{self.opts.collection}' is no collection name: letters, digits and _ , "
                "starting with a letter"
            )
        parts = urlsplit(self.opts.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"weaviate --url must look like http://host:8080, got '{self.opts.url}'")
        secure = parts.scheme == "https"
        key = self.opts.api_key.get_secret_value() if self.opts.api_key else os.environ.get("WEAVIATE_API_KEY")
        timeout = max(1, math.ceil(self.opts.timeout))
        self._client = self.guarded(
            "connecting",
            weaviate.connect_to_custom,
            http_host=parts.hostname, http_port=parts.port or (443 if secure else 8080), http_secure=secure,
            grpc_host=self._grpc_host, grpc_port=self._grpc_port, grpc_secure=secure,
            auth_credentials=Auth.api_key(key) if key else None,
            # The client's start-up checks would also ask PyPI for its newest version: vex talks to the server only,
            # and checks the gRPC port itself (`_ping_grpc`).
            skip_init_checks=True,
            additional_config=AdditionalConfig(timeout=Timeout(init=min(timeout, 30), query=timeout, insert=timeout)),
        )  # fmt: skip
        try:
            self._ping_grpc(secure)
        except BaseException:
            self.close()
            raise
        return self._client

    @property
    def _grpc_host(self) -> str:
        return self.opts.grpc_host or urlsplit(self.opts.url).hostname or "localhost"

    @property
    def _grpc_port(self) -> int:
        return self.opts.grpc_port or (443 if self.opts.url.startswith("https") else 50051)

    def _ping_grpc(self, secure: bool) -> None:
        """Weaviate's gRPC health check, once, with a short deadline: the client would retry a closed port's
        UNAVAILABLE with backoff for a long time before saying so."""
        import grpc

        target = f"{self._grpc_host}:{self._grpc_port}"
        secured = grpc.ssl_channel_credentials() if secure else None
        channel = grpc.secure_channel(target, secured) if secured else grpc.insecure_channel(target)
        try:
            # The standard grpc.health.v1 messages as bytes (no client module needed): an empty request, and
            # `status: SERVING` (field 1, value 1) in the answer.
            check = channel.unary_unary("/grpc.health.v1.Health/Check")
            answer = check(b"", timeout=min(self.opts.timeout, 10))
        except grpc.RpcError as exc:
            code = exc.code().name if hasattr(exc, "code") else "no answer"
            raise TransientError(
                f"weaviate {self._where}: its gRPC API at {target} is unreachable ({code}): check --grpc-port"
            ) from None
        finally:
            channel.close()
        if answer != b"\x08\x01":
            raise TransientError(f"weaviate {self._where}: its gRPC API at {target} is not serving yet")

    def classify(self, exc: Exception, doing: str) -> Exception:
        """Sort the client's exceptions into transient (retried) and permanent ones."""
        from weaviate import exceptions as wx

        where = f"weaviate {self._where}"
        if isinstance(exc, wx.InsufficientPermissionsError):
            return AccessError(f"{where}: the API key may not do this ({doing}): check --api-key")
        if isinstance(exc, wx.UnexpectedStatusCodeError):
            status = exc.status_code
            if status in (401, 403):
                return AccessError(f"{where} refused the API key while {doing} (check --api-key)")
            if status == 429 or status >= 500:
                return TransientError(f"{where} answered {status} while {doing}")
            return StoreError(f"{where}: {doing} failed ({status}): {_server_message(exc)}")
        if isinstance(exc, (wx.WeaviateConnectionError, wx.WeaviateStartUpError, wx.WeaviateTimeoutError)) or (
            is_network_error(exc)
        ):
            return TransientError(f"{where} unreachable while {doing} ({network_reason(exc)})")
        text = str(getattr(exc, "message", "") or exc)
        if _REFUSED_KEY.search(text):
            return AccessError(f"{where} refused the API key while {doing} (check --api-key): {_first_line(text)}")
        if isinstance(exc, wx.WeaviateRetryError) or _TRANSIENT.search(text):
            return TransientError(f"{where}: {doing} failed, worth a retry: {_first_line(text)}")
        return StoreError(f"{where}: {doing} failed: {_first_line(text)}")

    # -- the collection ---------------------------------------------------------

    def _collections(self) -> Any:
        return self.client().collections

    def _handle(self, tenant: str | None) -> Any:
        """The client's handle of the collection (of one tenant), kept: the batch it makes asks the collection's
        config once per handle."""
        if tenant not in self._handles:
            collections = self._collections()
            use = getattr(collections, "use", None) or collections.get
            handle = use(self.collection)
            self._handles[tenant] = handle.with_tenant(tenant) if tenant is not None else handle
        return self._handles[tenant]

    def _layout(self) -> _Layout | None:
        """The collection as vex needs to know it; None when there is none."""
        if self._layout_cache is not None:
            return self._layout_cache
        if not self.guarded("looking up the collection", self._collections().exists, self.collection):
            return None
        config = self.guarded("reading the collection's config", self._handle(None).config.get)
        named = config.vector_config
        if named:
            distances = {name: _distance(entry.vector_index_config) for name, entry in named.items()}
            vectors: list[str] | None = list(named)
        else:
            distances, vectors = {"": _distance(config.vector_index_config)}, None
        layout = _Layout(bool(config.multi_tenancy_config.enabled), vectors, distances)
        for prop in config.properties:
            layout.properties[prop.name.lower()] = (prop.name, str(getattr(prop.data_type, "value", prop.data_type)))
        self._layout_cache = layout
        return layout

    def _chosen_vector(self, layout: _Layout) -> str:
        """The vector a record's `vector` is: a name, or "" for the collection's unnamed vector."""
        wanted = self.opts.vector_name
        if layout.vectors is None:
            if wanted not in (None, "default"):
                raise UsageError(f"{self._what} has one unnamed vector, no '{wanted}': drop --vector-name")
            return ""
        if wanted is None:
            if len(layout.vectors) != 1:
                raise UsageError(f"{self._what} has named vectors {sorted(layout.vectors)}: pass --vector-name")
            return layout.vectors[0]
        if wanted not in layout.vectors:
            raise UsageError(f"{self._what} has no vector named '{wanted}' (it has {sorted(layout.vectors)})")
        return wanted

    def _check_mode(self, layout: _Layout, writing: bool) -> None:
        tenant_mode = self.opts.namespace_mode == "tenant"
        if tenant_mode and not layout.multi_tenant:
            raise UsageError(f"{self._what} is not multi-tenant: use --namespace-mode property")
        if tenant_mode and writing and self.opts.tenant is not None:
            raise UsageError(
                "--tenant picks one tenant with --namespace-mode property; with tenant mode each record's "
                "namespace is its tenant"
            )
        if not tenant_mode and layout.multi_tenant and self.opts.tenant is None:
            raise UsageError(
                f"{self._what} is multi-tenant: pass --namespace-mode tenant (each tenant a namespace) or --tenant NAME"
            )
        if not tenant_mode and not layout.multi_tenant and self.opts.tenant is not None:
            raise UsageError(f"{self._what} is not multi-tenant: drop --tenant")

    def _tenant_names(self) -> set[str]:
        if self._tenants is None:
            found = self.guarded("listing tenants", self._handle(None).tenants.get)
            self._tenants = set(found)
        return self._tenants

    # -- describe ---------------------------------------------------------------

    def describe(self) -> StoreInfo:
        layout = self._layout()
        if layout is None:
            return StoreInfo(exists=False)
        chosen = self._chosen_vector(layout)
        metric = {w: v for v, w in METRICS.items()}.get(layout.distances.get(chosen, ""))
        shards: list[str | None] = [None]
        if layout.multi_tenant:
            shards = [name for name in sorted(self._tenant_names())]
            if self.opts.namespace_mode == "property" and self.opts.tenant is not None:
                shards = [self.opts.tenant] if self.opts.tenant in self._tenant_names() else []
        by_tenant: dict[str, int] = {}
        dims = None
        for shard in shards:
            handle = self._handle(shard)
            result = self.guarded("counting objects", handle.aggregate.over_all, total_count=True)
            by_tenant[shard or ""] = int(result.total_count or 0)
            if dims is None and by_tenant[shard or ""]:
                dims = self._dims(handle, chosen)
        by_namespace = None
        if layout.multi_tenant and self.opts.namespace_mode == "tenant":
            by_namespace = {namespace_for(name) or "": count for name, count in by_tenant.items()}
        kind = "multi-tenant" if layout.multi_tenant else "single-tenant"
        vectors = f"named vectors {layout.vectors}" if layout.vectors is not None else "one unnamed vector"
        return StoreInfo(
            exists=True, dims=dims, metric=metric, count=sum(by_tenant.values()), count_by_namespace=by_namespace,
            layout=f"{kind} collection, {vectors}, {layout.distances.get(chosen)}",
        )  # fmt: skip

    def _dims(self, handle: Any, chosen: str) -> int | None:
        """The length of the chosen vector of the first objects that have one."""
        include: Any = [chosen] if chosen else True
        found = self.guarded("reading an object", handle.query.fetch_objects, limit=20, include_vector=include)
        for obj in found.objects:
            vector = (obj.vector or {}).get(chosen or "default")
            if vector is not None and len(vector) and not isinstance(vector[0], list):
                return len(vector)
        return None

    # -- export -----------------------------------------------------------------

    def extract(self, namespace: str | None, cursor: Cursor | None) -> Iterator[Page]:
        layout = self._layout()
        if layout is None:
            raise UsageError(f"weaviate {self._where}: collection '{self.collection}' not found (check --collection)")
        self._check_mode(layout, writing=False)
        chosen = self._chosen_vector(layout)
        shards = self._shards_to_read(layout, namespace)
        start_shard, after = (cursor.get("tenant"), cursor.get("after")) if isinstance(cursor, dict) else (None, None)
        if start_shard is not None:
            shards = [shard for shard in shards if shard is not None and shard >= start_shard]
        wanted_namespace = namespace if self.opts.namespace_mode == "property" else None
        size = max(1, self.page_size)
        for position, shard in enumerate(shards):
            later = shards[position + 1 :]
            for objects in self._read_ahead(self._handle(shard), after if shard == start_shard else None, size):
                batch = self._objects_to_batch(objects, shard, chosen)
                if wanted_namespace is not None:
                    keep = [ns == wanted_namespace for ns in batch.column("namespace").to_pylist()]
                    batch = batch.filter(pa.array(keep, pa.bool_()))
                if len(objects) == size:
                    yield Page(batch, {"tenant": shard, "after": str(objects[-1].uuid)})
                else:
                    yield Page(batch, {"tenant": later[0], "after": None} if later else None)

    def _read_ahead(self, handle: Any, after: str | None, size: int) -> Iterator[list[WireObject]]:
        """A shard's objects a page at a time, in UUID order from `after`, read by a thread of their own up to
        `READ_AHEAD` pages ahead (`vmig.parallel.read_ahead`): Weaviate prepares the next pages while vex turns
        the last into records and the run writes them. Closing the generator stops the thread."""

        def pages() -> Iterator[list[Any]]:
            last = after
            while True:
                reply = self.guarded("reading objects", search_page, handle, size, last)
                objects = reply_objects(handle, reply)
                if objects:
                    yield objects
                if len(objects) < size:
                    return
                last = str(objects[-1].uuid)

        return read_ahead(pages(), READ_AHEAD)

    def _shards_to_read(self, layout: _Layout, namespace: str | None) -> list[str | None]:
        """The tenants an export reads, in order (None: the collection is single-tenant)."""
        if not layout.multi_tenant:
            return [None]
        existing = self._tenant_names()
        tenant: str | None = self.opts.tenant
        if self.opts.namespace_mode == "tenant" and namespace is not None:
            tenant = tenant_for(namespace)
            if self.opts.tenant is not None and tenant != self.opts.tenant:
                raise UsageError(f"--namespace '{namespace}' is not the tenant --tenant '{self.opts.tenant}' names")
        if tenant is None:
            return [name for name in sorted(existing)]
        if tenant not in existing:
            shown = f" (namespace '{namespace}')" if namespace is not None and tenant != namespace else ""
            raise UsageError(f"{self._what} has no tenant '{tenant}'{shown}: check --tenant or --namespace")
        return [tenant]

    def _objects_to_batch(self, objects: list[WireObject], tenant: str | None, chosen: str) -> pa.RecordBatch:
        records = RecordColumns()
        vectors: list[Any] = []
        tenant_namespace = namespace_for(tenant) if self.opts.namespace_mode == "tenant" and tenant else None
        vector_key = chosen or "default"
        for obj in objects:
            record_id, fields, meta = _record_fields(obj.properties, obj.uuid)
            named = dict(obj.vector)
            vector = named.pop(vector_key, None)
            if isinstance(vector, list):
                named[vector_key], vector = vector, None  # a multi-vector cannot be the record's vector
            if named:
                if VECTORS_KEY in meta:
                    meta[md.ESCAPE_PREFIX + VECTORS_KEY] = meta.pop(VECTORS_KEY)
                meta[VECTORS_KEY] = {name: _as_list(value) for name, value in named.items()}
            if self.opts.namespace_mode == "tenant":
                fields["namespace"] = tenant_namespace
            records.add(record_id, metadata=md.dumps(meta) or "{}", **fields)
            vectors.append(vector)
        return records.build(vectors=vectors)

    # -- import -----------------------------------------------------------------

    def ensure_target(self, dims: int | None, metric: str | None) -> None:
        wanted = self.opts.metric or metric
        layout = self._layout()
        if layout is not None:
            self._check_mode(layout, writing=True)
            self.refuse_mismatch(self.describe(), dims, wanted, self._what, "--collection")
            self._ensure_own_properties(layout)
            if self.opts.tenant is not None:
                self._ensure_tenants([self.opts.tenant])
            return
        if self.opts.namespace_mode == "tenant" and self.opts.tenant is not None:
            self._check_mode(_Layout(True, None, {}), writing=True)
        multi_tenant = self.opts.namespace_mode == "tenant" or self.opts.tenant is not None
        own = {k: v for k, v in OWN_PROPERTIES.items() if k != "namespace" or self.opts.namespace_mode == "property"}
        properties = [
            {"name": name, "dataType": [kind], "indexSearchable": name in ("text", "namespace", "model"),
             "indexFilterable": name != META_PROPERTY and name != FIELDS_PROPERTY}
            for name, kind in own.items()
        ]  # fmt: skip
        vector = self.opts.vector_name or "default"
        schema = {
            "class": self.collection,
            "properties": properties,
            "vectorConfig": {
                vector: {
                    "vectorizer": {"none": {}},
                    "vectorIndexType": "hnsw",
                    "vectorIndexConfig": {"distance": METRICS[wanted or "cosine"]},
                }
            },
            "multiTenancyConfig": {"enabled": multi_tenant},
        }
        self.guarded("creating the collection", self._collections().create_from_dict, schema)
        self._layout_cache = None
        self._handles.clear()
        self._tenants = set() if multi_tenant else None
        if self.opts.tenant is not None:
            self._ensure_tenants([self.opts.tenant])

    def _ensure_own_properties(self, layout: _Layout) -> None:
        """vex's own properties on an existing collection: added when missing, refused with another type."""
        for name, kind in OWN_PROPERTIES.items():
            if name == "namespace" and self.opts.namespace_mode == "tenant":
                continue
            existing = layout.properties.get(name.lower())
            if existing is None:
                self._add_property(layout, name, kind)
            elif existing != (name, kind):
                raise UsageError(
                    f"{self._what} has a property '{existing[0]}' of type {existing[1]}: vex keeps a record's "
                    f"{name.replace('vex_', '')} in '{name}' ({kind}); choose another --collection"
                )

    def _add_property(self, layout: _Layout, name: str, kind: str) -> None:
        from weaviate.classes.config import DataType, Property

        prop = Property(name=name, data_type=DataType(kind), index_searchable=kind == "text" and name not in
                        (ID_PROPERTY, FIELDS_PROPERTY, META_PROPERTY))  # fmt: skip
        self.guarded(f"adding the property '{name}'", self._handle(None).config.add_property, prop)
        layout.properties[name.lower()] = (name, kind)

    def _ensure_tenants(self, tenants: list[str]) -> None:
        if not tenants:
            return
        missing = sorted(set(tenants) - self._tenant_names())
        if missing:
            self.guarded("creating tenants", self._handle(None).tenants.create, missing)
            assert self._tenants is not None
            self._tenants.update(missing)

    def load(self, batch: pa.RecordBatch) -> LoadResult:
        """Requests go out while the next objects are made ready, and every one is waited for before returning."""
        if batch.num_rows == 0:
            return LoadResult(written=0)
        layout = self._layout()
        if layout is None:
            raise StoreError(f"{self._what} vanished during the load")
        part = last_of_each_id(batch)
        written = batch.num_rows - part.num_rows  # earlier rows of an id, replaced by its last one
        failed: list[tuple[str, str]] = []
        sent: dict[str, _Object] = {}
        with ThreadPoolExecutor(max_workers=max(1, self.opts.concurrent_requests)) as pool:
            answers = []
            for handle, request in self._requests(part, layout, failed):
                sent.update((obj.uuid, obj) for obj in request)
                answers.append(pool.submit(self._insert, handle, request))
            refused, transient = _gathered(answers)
        pending = list(sent.values())
        for attempt in range(RESENDS + 1):
            failed.extend(refused)
            written += len(pending) - len(refused) - len(transient)
            if not transient:
                break
            if attempt == RESENDS:
                reason = next(iter(transient.values()))
                raise TransientError(
                    f"weaviate {self._where}: {len(transient)} objects failed {RESENDS + 1} times: {reason}"
                )
            time.sleep(base_delay() * 2**attempt)
            pending = [sent[object_id] for object_id in transient]
            refused, transient = self._send(pending)
        return LoadResult(written=written, failed=failed)

    def _requests(
        self, batch: pa.RecordBatch, layout: _Layout, failed: list[tuple[str, str]]
    ) -> Iterator[tuple[Any, list[_Object]]]:
        """The records as batch requests of objects, a tenant's at a time, each made when the one before it is on
        its way (properties a request's objects bring are added to the collection before it goes); records that
        cannot be objects go into `failed` with the reason."""
        chosen = self._chosen_vector(layout)
        ids = batch.column("id").to_pylist()
        texts = batch.column("text").to_pylist()
        namespaces = batch.column("namespace").to_pylist()
        models = batch.column("model").to_pylist()
        created = format_micros_column(batch.column("created_at"))
        scores = batch.column("score").to_pylist()
        origins = batch.column("source_store").to_pylist()
        extras = batch.column("extra").to_pylist()
        metadata = batch.column("metadata").to_pylist()
        vectors = vector_rows(batch)  # float32 rows: sent as their bytes (connectors.weaviate_wire)
        tenant_mode = self.opts.namespace_mode == "tenant"
        tenants = [tenant_for(ns) for ns in namespaces] if tenant_mode else [self.opts.tenant] * len(ids)
        self._ensure_tenants(sorted({tenant for tenant in tenants if tenant is not None}))
        rows = sorted(range(len(ids)), key=lambda row: tenants[row] or "") if tenant_mode else range(len(ids))
        # With one named vector a plain vector is that one (Weaviate assigns it).
        several = layout.vectors is not None and len(layout.vectors) > 1
        size = max(1, self.opts.batch_size)
        new_properties: list[tuple[str, str]] = []
        claimed: dict[str, str] = {}
        request: list[_Object] = []
        for row in rows:
            record_id = ids[row]
            tenant = tenants[row]
            if request and (len(request) == size or request[-1].tenant != tenant):
                self._add_properties(layout, new_properties)
                yield self._handle(request[-1].tenant), request
                request = []
            object_id = object_uuid(record_id)
            holder = claimed.setdefault(object_id, record_id)
            if holder != record_id:
                failed.append((record_id, f"id '{record_id}' maps to the same Weaviate object ({object_id}) as "
                                          f"id '{holder}' in this batch: it is not replaced"))  # fmt: skip
                continue
            if tenant_mode and tenant is None:
                failed.append((record_id, f"namespace '{namespaces[row][:40]}…' is too long for a Weaviate "
                                          "tenant name, even encoded (64 characters)"))  # fmt: skip
                continue
            props: dict[str, Any] = {ID_PROPERTY: record_id}
            if texts[row] is not None:
                props["text"] = texts[row]
            if models[row] is not None:
                props["model"] = models[row]
            if created[row] is not None:
                props["created_at"] = created[row]
            if not tenant_mode and namespaces[row] is not None:
                props["namespace"] = namespaces[row]
            if scores[row] is not None or origins[row] is not None or extras[row]:
                fields = {"score": scores[row], "source_store": origins[row]}
                if extras[row]:
                    fields["extra"] = orjson.loads(extras[row])
                props[FIELDS_PROPERTY] = orjson.dumps({k: v for k, v in fields.items() if v is not None}).decode()
            meta = md.loads(metadata[row])
            vector: Any = vectors[row]
            if several:
                others = meta.get(VECTORS_KEY)
                if isinstance(others, dict) and _other_vectors(others, layout.vectors or [], chosen):
                    del meta[VECTORS_KEY]
                    vector = {**others, **({chosen: vector} if vector is not None else {})}
                elif vector is not None:
                    vector = {chosen: vector}
            kept: dict[str, Any] = {}
            for key, value in meta.items():
                kind = _TYPES.get(type(value))
                if (kind == "int" and abs(value) > EXACT_INT) or (kind == "number" and not math.isfinite(value)):
                    kind = None
                name = self._property_for(key, layout) if kind is not None else None
                if name is not None and kind is not None:
                    have = layout.properties.get(name.lower())
                    if have is None:  # a new property, of this value's type; added before the request goes
                        have = layout.properties[name.lower()] = (name, kind)
                        new_properties.append(have)
                    if have == (name, kind):
                        props[name] = value
                        continue
                kept[key] = value
            if kept:
                props[META_PROPERTY] = orjson.dumps(kept).decode()
            request.append(_Object(record_id, object_id, props, vector, tenant))
        if request:
            self._add_properties(layout, new_properties)
            yield self._handle(request[-1].tenant), request

    def _add_properties(self, layout: _Layout, new: list[tuple[str, str]]) -> None:
        """Properties the objects about to be sent bring, added to the collection (and the list emptied)."""
        try:
            while new:
                name, kind = new[0]
                self._add_property(layout, name, kind)
                new.pop(0)
        except BaseException:
            self._layout_cache = None  # it names properties that were not added
            raise

    def delete(self, namespace: str | None, ids: list[str]) -> None:
        from weaviate.classes.query import Filter

        if self._layout() is None:
            return  # no collection: none of the records is there
        tenant = tenant_for(namespace) if self.opts.namespace_mode == "tenant" else self.opts.tenant
        if self.opts.namespace_mode == "tenant" and tenant not in self._tenant_names():
            return
        uuids = [object_uuid(record_id) for record_id in ids]
        handle = self._handle(tenant)
        for start in range(0, len(uuids), DELETE_PER_REQUEST):
            where = Filter.by_id().contains_any(uuids[start : start + DELETE_PER_REQUEST])
            self.guarded("deleting objects", handle.data.delete_many, where=where)

    def _property_for(self, key: str, layout: _Layout) -> str | None:
        """The property a metadata key is kept in (None: it goes into `vex_meta`)."""
        name = property_name(key)
        if name is not None and name != key:
            return name if len(name) <= MAX_PROPERTY_NAME else None
        existing = layout.properties.get(key.lower())
        if existing is not None and existing[0] != key:
            escaped = ESCAPED + escape_key(key)  # another key already holds this name but for case
            return escaped if len(escaped) <= MAX_PROPERTY_NAME else None
        return name

    def _send(self, objects: list[_Object]) -> tuple[list[tuple[str, str]], dict[str, str]]:
        """The objects in batch requests of `--batch-size`, `--concurrent-requests` of them in flight; the records
        Weaviate refused (with its reason) and the objects that failed for a transient reason (UUID: reason)."""
        by_tenant: dict[str | None, list[_Object]] = {}
        for obj in objects:
            by_tenant.setdefault(obj.tenant, []).append(obj)
        size = max(1, self.opts.batch_size)
        requests = [
            (self._handle(tenant), group[start : start + size])
            for tenant, group in by_tenant.items()
            for start in range(0, len(group), size)
        ]
        with ThreadPoolExecutor(max_workers=max(1, self.opts.concurrent_requests)) as pool:
            return _gathered([pool.submit(self._insert, handle, part) for handle, part in requests])

    def _insert(self, handle: Any, part: list[_Object]) -> tuple[list[tuple[str, str]], dict[str, str]]:
        """One BatchObjects request (made by `connectors.weaviate_wire`, sent on the client's connection) and what
        Weaviate said of each object."""
        try:
            objects = [(obj.uuid, obj.properties, obj.vector) for obj in part]
            reasons = send_batch(handle, batch_request(handle.name, handle.tenant, objects))
        except Exception as exc:  # noqa: BLE001 - sorted here: a transient failure is sent again, others fail records
            error = self.classify(exc, "writing objects")
            if isinstance(error, TransientError):
                return [], {obj.uuid: str(error) for obj in part}
            if not isinstance(error, StoreError):
                raise error from None
            return [(obj.record_id, str(error)) for obj in part], {}
        return self._sorted(part, reasons)

    def _sorted(self, part: list[_Object], reasons: dict[int, str]) -> tuple[list[tuple[str, str]], dict[str, str]]:
        """Per-object failures sorted into refused records and objects worth sending again."""
        refused: list[tuple[str, str]] = []
        transient: dict[str, str] = {}
        for index, reason in reasons.items():
            obj = part[index]
            text = _first_line(reason)
            if _REFUSED_KEY.search(text):
                raise AccessError(f"weaviate {self._where} refused the API key while writing objects (check --api-key)")
            if _TRANSIENT.search(text):
                transient[obj.uuid] = text
            else:
                refused.append((obj.record_id, f"Weaviate refused the object: {text}"))
        return refused, transient

    def close(self) -> None:
        client, self._client = self._client, None
        self._handles.clear()
        self._layout_cache = None
        self._tenants = None
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing must not hide the error that ended the run
                pass


def _gathered(answers: list[Future[tuple[list[tuple[str, str]], dict[str, str]]]]) -> tuple[list[Any], dict[str, str]]:
    """The requests' refused records and transient failures together; the first error once every request ended."""
    refused: list[tuple[str, str]] = []
    transient: dict[str, str] = {}
    for answer in answers:
        request_refused, request_transient = answer.result()
        refused.extend(request_refused)
        transient.update(request_transient)
    return refused, transient


_NAMESPACE_BYTES = ID_NAMESPACE.bytes


def object_uuid(record_id: str) -> str:
    """The UUID Weaviate keeps a record under: the id itself when it is a UUID in its canonical spelling (lower
    case, hyphens), else its UUIDv5 (`connectors.ids`). Another spelling of a UUID gets its own UUIDv5, so no
    two ids share an object."""
    if len(record_id) == 36 and CANONICAL_UUID.fullmatch(record_id):
        return record_id
    # uuid.uuid5, without its objects (a third of an import's own time went there)
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + record_id.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def escape_key(key: str) -> str:
    """A metadata key as property-name characters: [a-z0-9] kept, `_` doubled, others `_<hex code point>_`."""
    out = []
    for char in key:
        if "a" <= char <= "z" or "0" <= char <= "9":
            out.append(char)
        elif char == "_":
            out.append("__")
        else:
            out.append(f"_{ord(char):x}_")
    return "".join(out)


def unescape_key(text: str) -> str | None:
    """Undo `escape_key`; None when the text is no escape."""
    out = []
    position = 0
    while position < len(text):
        char = text[position]
        if char != "_":
            if not ("a" <= char <= "z" or "0" <= char <= "9"):
                return None
            out.append(char)
            position += 1
            continue
        if text[position + 1 : position + 2] == "_":
            out.append("_")
            position += 2
            continue
        end = text.find("_", position + 1)
        digits = text[position + 1 : end]
        if end < 0 or not digits or any(c not in "0123456789abcdef" for c in digits) or int(digits, 16) > 0x10FFFF:
            return None
        out.append(chr(int(digits, 16)))
        position = end + 1
    return "".join(out)


def property_name(key: str) -> str | None:
    """The property a metadata key goes to when no other key holds its name but for case: the key itself where
    Weaviate keeps it as it is, else `vex_k_` + its escape; None when that is longer than Weaviate allows."""
    if _PLAIN_KEY.fullmatch(key) and key not in _NOT_PLAIN and not key.lower().startswith("vex_"):
        return key
    name = ESCAPED + escape_key(key)
    return name if len(name) <= MAX_PROPERTY_NAME else None


def key_of(name: str) -> str:
    """The metadata key a property holds (its name, or the key its escape spells)."""
    if name.startswith(ESCAPED):
        key = unescape_key(name[len(ESCAPED) :])
        if key is not None:
            return key
    return name


def tenant_for(namespace: str | None) -> str | None:
    """The tenant a namespace is kept in (see the module docstring); None where no tenant name can hold it."""
    if namespace is None:
        return NULL_TENANT
    if TENANT_NAME.fullmatch(namespace) and not namespace.startswith("vex-"):
        return namespace
    mapped = MAPPED_TENANT + base64.urlsafe_b64encode(namespace.encode()).decode().rstrip("=")
    return mapped if len(mapped) <= 64 else None


def namespace_for(tenant: str | None) -> str | None:
    """The namespace a tenant holds (`tenant_for` undone; another tool's tenant is its own name)."""
    if tenant is None or tenant == NULL_TENANT:
        return None
    if tenant.startswith(MAPPED_TENANT):
        encoded = tenant[len(MAPPED_TENANT) :]
        try:
            return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return tenant
    return tenant


def _other_vectors(value: Any, names: list[str], chosen: str) -> bool:
    """Whether `_vex_vectors` metadata is vectors this collection has (other than the chosen one)."""
    return (
        isinstance(value, dict)
        and bool(value)
        and all(name in names and name != chosen and isinstance(rows, list) and rows for name, rows in value.items())
    )


def _record_fields(props: dict[str, Any], object_id: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """An object's record id, record fields and metadata. A value of vex's own properties that does not fit
    its field (another tool's collection) stays in the metadata under its own name."""
    props = dict(props)
    record_id = props.pop(ID_PROPERTY, None)
    fields: dict[str, Any] = {"text": None, "namespace": None, "model": None, "created_at": None}
    meta: dict[str, Any] = {}
    for name in ("text", "namespace", "model"):
        value = props.pop(name, None)
        if isinstance(value, str):
            fields[name] = value
        elif value is not None:
            meta[name] = _jsonable(value)
    stamp = props.pop("created_at", None)
    if stamp is not None:
        try:
            fields["created_at"] = to_micros(stamp)
        except (TimestampError, OverflowError):
            meta["created_at"] = _jsonable(stamp)
    own = props.pop(FIELDS_PROPERTY, None)
    extra_fields = _json_object(own)
    if own is not None and extra_fields is None:
        meta[FIELDS_PROPERTY] = own
    for key, value in (extra_fields or {}).items():
        if key == "score" and isinstance(value, (int, float)) and not isinstance(value, bool):
            fields["score"] = float(value)
        elif key == "source_store" and isinstance(value, str):
            fields["source_store"] = value
        elif key == "extra" and isinstance(value, dict):
            fields["extra"] = md.dumps(value)
    fields.setdefault("source_store", "weaviate")
    kept = props.pop(META_PROPERTY, None)
    kept_meta = _json_object(kept)
    if kept is not None and kept_meta is None:
        meta[META_PROPERTY] = kept
    for name, value in props.items():
        if value is not None:
            meta[key_of(name)] = _jsonable(value)
    meta.update(kept_meta or {})
    return (record_id if isinstance(record_id, str) else object_id), fields, meta


def _as_list(vector: Any) -> Any:
    """A vector as JSON holds it: the values as Python floats (a multi-vector's rows already are)."""
    return vector.tolist() if isinstance(vector, np.ndarray) else vector


def _json_object(text: Any) -> dict[str, Any] | None:
    if not isinstance(text, str):
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _jsonable(value: Any) -> Any:
    """A property value another tool wrote, as JSON can hold it (dates as ISO text, UUIDs as text, ...)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if hasattr(value, "_asdict"):
        return _jsonable(value._asdict())
    if hasattr(value, "__dict__"):
        return _jsonable({key: item for key, item in vars(value).items() if not key.startswith("_")})
    return str(value)


def _distance(config: Any) -> str:
    metric = getattr(config, "distance_metric", None)
    return str(getattr(metric, "value", metric)) if metric is not None else "cosine"


def _server_message(exc: Any) -> str:
    message = str(getattr(exc, "message", "") or exc)
    found = re.search(r"'message': '([^']*)'", message)
    return found.group(1) if found else _first_line(message)


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return (lines[0] if lines else "no reason given")[:300]
