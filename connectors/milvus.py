"""Milvus, embedded (Milvus Lite, `--path FILE.db`) or a server (`--url`, `--token`), both directions, on `pymilvus`.

Milvus Lite 3 is pure Python: `--path x.db` names a folder it keeps its segments in, served to `pymilvus` by a
gRPC server that runs in this process on 127.0.0.1 (started on first use, stopped when the last connector using
that folder closes, so another process can open it next). A path that is a file, or a folder that holds
something other than a Milvus Lite database, is refused before anything is written to it.

How a record is held. A collection vex creates has these fields:

| field | type | holds |
|---|---|---|
| `id` | VARCHAR(65535), primary key | the record's id, as it is |
| `vector` | FLOAT_VECTOR(dims) | the vector (`--vector-field`) |
| `text` | VARCHAR(65535), nullable | the text (`--text-field`) |
| `namespace` | VARCHAR(65535), partition key | the namespace (a null one is `""`, see `vex_fields`) |
| `model` | VARCHAR(65535), nullable | the embedding model |
| `created_at` | INT64, nullable | µs since the epoch, UTC |
| `metadata` | JSON | the metadata object, nested values as they are |
| `vex_fields` | JSON, nullable | what has no field of its own (below) |

`vex_fields` holds the score, the source_store, unknown format keys (`extra`), a sparse vector the sparse field
cannot hold exactly, and `nulls`: the fields of a record that were null where a non-nullable field holds them as
empty (the namespace partition key, which cannot be null).

With `--sparse-field NAME` a new collection also gets a SPARSE_FLOAT_VECTOR field (nullable) for the records'
sparse vectors; an existing collection's one sparse field (not a BM25 function's output) is used without it.
Milvus keeps only positive weights in ascending index order: a sparse vector that is not so goes into
`vex_fields` instead, exactly. Milvus Lite 3.2 refuses null (and empty) sparse vectors, so there a record
without one the field can hold fails with that reason; without a sparse field every sparse vector is kept in
`vex_fields`. The vector index (AUTOINDEX with the metric: cosine is COSINE, dot IP, euclid L2) and the sparse
one (SPARSE_INVERTED_INDEX, IP) are built after the load, and the collection loaded.

An existing collection is checked before anything is written: its vector field's dims and its index's metric,
and each of the fields above by name and type (`--vector-field`, `--text-field` map a user's own names); a field
it lacks goes in its dynamic field where it has one, and otherwise the run is refused with the missing names.
Its other fields are filled from the metadata keys of their names (as an export of it put them there); a record
without a value for one that is not nullable fails with the reason. A
primary key that is an INT64 takes ids that are integers (written as numbers, exported as the same decimal text);
a text id stops the run with the reason, since Milvus could not hold it. An id, text, namespace or model longer
than its VARCHAR holds (in UTF-8 bytes) fails that record with the reason; Milvus would refuse the whole request.

Export reads pages of `id > last` in primary-key order (the query API in iterator mode, as pymilvus's
`query_iterator` does, but with the id escaped in the filter: the iterator writes it into the expression as it
is, which breaks on an id holding `"`); the cursor is the last id, so a run resumes after it. A thread reads up to
two pages ahead of the one the run is writing. Every field is read:
a collection another tool wrote gives its other fields (and dynamic keys) to the metadata under their own names.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import SecretStr, model_validator

from connectors.base import Capabilities, Connector, Cursor, LoadResult, Location, Page, StoreInfo, StoreOptions
from connectors.clients import ClientLibrary, is_network_error, network_reason
from vmig.batch import RecordColumns, last_of_each_id, vector_matrix
from vmig.errors import AccessError, StoreError, TransientError, UsageError
from vmig.parallel import read_ahead
from vmig.sparse import sparse_rows
from vmig.timefmt import TimestampError, to_micros

METRICS = {"cosine": "COSINE", "dot": "IP", "euclid": "L2"}
"""vex's metric names and Milvus's metric types of a FLOAT_VECTOR index."""
ID, VECTOR, TEXT = "id", "vector", "text"
NAMESPACE, MODEL, CREATED, METADATA, FIELDS = "namespace", "model", "created_at", "metadata", "vex_fields"
MAX_VARCHAR = 65_535
"""The longest VARCHAR Milvus declares (bytes of UTF-8)."""
MAX_DIMS = 32_768
REQUEST_BYTES = 16 * 1024 * 1024
"""Roughly the most one upsert request carries (Milvus refuses gRPC messages over 64 MiB by default)."""
DELETE_PER_REQUEST = 1000
"""Ids one delete request names."""
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
READ_AHEAD = 2
"""Pages an export reads (and turns into records) ahead of the one the run is writing."""
_TRANSIENT_WORDS = (
    "unavailable", "deadline exceeded", "timed out", "rate limit", "ratelimit", "too many requests",
    "connection refused", "connection reset", "connection closed", "reset by peer", "broken pipe", "temporar",
    "not ready", "try again", "resource exhausted", "memory quota", "server is busy",
)  # fmt: skip
_REFUSED_WORDS = ("authenticat", "unauthori", "permission denied", "privilege", "invalid token", "forbidden")
_NOT_FOUND_WORDS = ("collection not found", "can't find collection", "collection not exist", "does not exist")
_TRANSIENT_CODES = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED")
_SPARSE_LIMIT = 2**32 - 1
"""Milvus reserves the largest uint32 as a sparse index."""
_NO_NULL_SPARSE = (
    "it has no sparse vector Milvus can hold (positive weights, ascending indices), and Milvus Lite refuses a null or "
    "empty one in the sparse field '{field}' of {what}: import into a collection without --sparse-field (sparse "
    "vectors are then kept in vex_fields)"
)

_OWN_TYPES = {NAMESPACE: "VARCHAR", MODEL: "VARCHAR", CREATED: "INT64", METADATA: "JSON", FIELDS: "JSON"}
"""vex's own fields (beside the id, vector and text) and the type each must have in an existing collection."""


class MilvusOptions(StoreOptions):
    path: Path | None = None
    """Milvus Lite database: a name ending in `.db` (Milvus Lite 3 keeps it as a folder), created on import."""
    url: str | None = None
    """A Milvus server, `http://host:19530` (Zilliz Cloud: its https endpoint); default when --path is not given."""
    token: SecretStr | None = None
    """`user:password` or an API key, for a server that asks for one (default: the MILVUS_TOKEN environment
    variable)."""
    database: str | None = None
    """The server's database (default: `default`)."""
    collection: str = "memories"
    """Collection to read or write; created on import when missing."""
    metric: Literal["cosine", "dot", "euclid"] | None = None
    """Metric of a new collection's index (default: the source's, else cosine); checked against an existing one."""
    vector_field: str | None = None
    """The FLOAT_VECTOR field a record's vector is (default: the collection's only one; `vector` for a new one)."""
    text_field: str = TEXT
    """The VARCHAR field a record's text is."""
    sparse_field: str | None = None
    """SPARSE_FLOAT_VECTOR field for the records' sparse vectors (a new collection gets it; default: an existing
    collection's only one)."""
    timeout: float = 60.0
    """Seconds one request may take."""

    @model_validator(mode="after")
    def _one_location(self) -> MilvusOptions:
        if self.path is not None and self.url is not None:
            raise ValueError("give --path (Milvus Lite) or --url (a server), not both")
        return self


@dataclass
class _Layout:
    """What vex needs to know of an existing collection."""

    pk: str
    pk_text: bool
    """VARCHAR (True) or INT64 (False)."""
    pk_max: int
    auto_id: bool
    vector: str
    dims: int
    text: str
    """The VARCHAR field a record's text is (`--text-field`)."""
    metric: str | None
    """vex's name of the vector index's metric; None while the field has no index."""
    indexed: set[str]
    """Fields that have an index."""
    fields: dict[str, dict[str, Any]]
    """Every field (not function outputs, not the dynamic one) by name, as `describe_collection` gives it."""
    dynamic: bool
    sparse: str | None
    outputs: set[str]
    """Fields a function (BM25) fills: never written, not read."""
    collection_id: int
    own: bool = field(default=False)
    """Whether the collection has vex's `vex_fields` (a collection vex made): created_at is then µs."""


class _LiteServers:
    """Milvus Lite servers of this process, by folder, with the connectors using each: the last one to close
    stops it, which releases the folder's lock for the next process (pymilvus would keep it until exit)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[str, int] = {}

    def acquire(self, path: Path) -> None:
        from milvus_lite.server_manager import server_manager_instance

        key = str(path.resolve())
        with self._lock:
            if self._users.get(key):
                self._users[key] += 1
                return
            uri = server_manager_instance.start_and_get_uri(key)
            if uri is None:
                raise UsageError(_why_not_opened(path))
            self._users[key] = 1

    def release(self, path: Path) -> None:
        from milvus_lite.server_manager import server_manager_instance

        key = str(path.resolve())
        with self._lock:
            left = self._users.get(key, 0) - 1
            if left > 0:
                self._users[key] = left
                return
            self._users.pop(key, None)
        server_manager_instance.release_server(key)


_SERVERS = _LiteServers()


def _quiet(*names: str) -> None:
    """pymilvus (which gives its loggers handlers of their own when imported) and Milvus Lite log each failed call
    with its traceback on stderr; vex reports the error itself, once, in one line."""
    for name in names:
        log = logging.getLogger(name)
        log.handlers = [logging.NullHandler()]
        log.propagate = False


def _why_not_opened(path: Path) -> str:
    """Why Milvus Lite could not open a folder, in one line (its own message went to its log)."""
    import fcntl  # here: Milvus Lite runs on POSIX systems only, a server is reached from anywhere

    lock = path / "LOCK"
    if lock.is_file():
        try:
            with lock.open("a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(handle, fcntl.LOCK_UN)
        except OSError:
            return f"milvus lite {path} is open in another process (Milvus Lite allows one process per database)"
    return f"milvus lite could not open {path}: is it a Milvus Lite database folder you may write to?"


def check_lite_path(path: Path, creating: bool) -> None:
    """Refuse, before Milvus Lite writes anything there, a --path that is no Milvus Lite database."""
    if path.suffix != ".db":
        raise UsageError(f"milvus --path must name a Milvus Lite database ending in .db, got '{path}'")
    if path.is_file() or (path.exists() and not path.is_dir()):
        raise UsageError(
            f"milvus --path {path} is a file, not a Milvus Lite database (Milvus Lite 3 keeps one as a folder; "
            "a file from Milvus Lite 2 cannot be read by it)"
        )
    if path.is_dir():
        entries = {entry.name for entry in path.iterdir()}
        if entries and not {"LOCK", "collections"} <= entries:
            raise UsageError(
                f"milvus --path {path} is a folder that holds no Milvus Lite database ({len(entries)} other entries): "
                "choose a new or a Milvus Lite path"
            )
    elif not creating:
        raise UsageError(f"milvus lite: no database at {path} (check --path)")
    elif not path.parent.is_dir():
        raise UsageError(f"milvus --path {path}: the folder {path.parent} does not exist")


class MilvusConnector(Connector[MilvusOptions]):
    name: ClassVar[str] = "milvus"
    Options: ClassVar[type[StoreOptions]] = MilvusOptions
    capabilities: ClassVar[Capabilities] = Capabilities(
        deletes=True,
        max_batch=1000,
        metrics=tuple(METRICS),
        embedded=True,
        sparse_vectors=True,
        sparse_column=True,
        max_dims=MAX_DIMS,
    )
    client_library: ClassVar[ClientLibrary | None] = ClientLibrary("milvus", "pymilvus", "pymilvus")

    def __init__(self, options: MilvusOptions) -> None:
        super().__init__(options)
        _quiet("pymilvus", "pymilvus.milvus_client", "pymilvus.bulk_writer", "milvus_lite")
        self._client: Any = None
        self._serving: Path | None = None
        self._layout_cache: _Layout | None = None
        self._wanted_metric: str | None = None
        self._written = False

    @property
    def collection(self) -> str:
        return self.opts.collection

    def label(self) -> str:
        where = self.opts.path.name if self.opts.path is not None else "server"
        return f"milvus:{where}/{self.collection}"

    @property
    def _where(self) -> str:
        return str(self.opts.path) if self.opts.path is not None else (self.opts.url or "http://localhost:19530")

    @property
    def _what(self) -> str:
        return f"milvus collection '{self.collection}'"

    def locations(self) -> list[Location]:
        if self.opts.path is None:
            return []
        return [Location(self.opts.path, "the milvus lite database", self.collection)]

    def incarnation(self) -> str | None:
        """The collection's id on a server. Milvus Lite gives every collection the id 0; there it is the collection's
        folder (inode) and the time its schema was written, which a collection dropped and made again changes."""
        layout = self._layout() if self._reachable() else None
        if layout is None:
            return None
        if layout.collection_id:
            return str(layout.collection_id)
        if self.opts.path is None:
            return None
        folder = self.opts.path / "collections" / self.collection
        try:
            return f"lite:{folder.stat().st_ino}:{(folder / 'schema.json').stat().st_mtime_ns}"
        except OSError:
            return None  # another layout of Milvus Lite's files: no way to tell

    # -- client and errors ------------------------------------------------------

    def _reachable(self) -> bool:
        """Whether there is a store to look at without creating one (a Milvus Lite path that exists)."""
        return self.opts.path is None or self.opts.path.exists()

    def client(self, creating: bool = False) -> Any:
        if self._client is not None:
            return self._client
        module = self.client_package()
        if self.opts.path is not None:
            path = self.opts.path
            check_lite_path(path, creating)
            _SERVERS.acquire(path)
            self._serving = path
            uri, token = str(path.resolve()), ""
        else:
            uri = self.opts.url or "http://localhost:19530"
            token = self.opts.token.get_secret_value() if self.opts.token else os.environ.get("MILVUS_TOKEN", "")
        try:
            self._client = self.guarded(
                "connecting", module.MilvusClient, uri=uri, token=token, db_name=self.opts.database or "",
                timeout=self.opts.timeout,
            )  # fmt: skip
        except BaseException:
            self.close()
            raise
        return self._client

    def _call(self, doing: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """A client call bounded by --timeout. Without one, pymilvus retries a failed call itself up to 75 times,
        up to 3 s apart (minutes against a server that is gone); with one, its retries stop there and vex's own
        retry policy takes over."""
        return self.guarded(doing, fn, *args, timeout=self.opts.timeout, **kwargs)

    def classify(self, exc: Exception, doing: str) -> Exception:
        """Sort the client's exceptions into transient (retried) and permanent ones."""
        import grpc
        from pymilvus.exceptions import MilvusException

        where = f"milvus {self._where}"
        if isinstance(exc, grpc.RpcError):
            code = exc.code().name if hasattr(exc, "code") else ""
            if code in _TRANSIENT_CODES:
                return TransientError(f"{where} unreachable while {doing} ({code})")
            if code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
                return AccessError(f"{where} refused the token while {doing} (check --token)")
            return StoreError(f"{where}: {doing} failed: {_first_line(str(exc))}")
        if isinstance(exc, MilvusException):
            text = _first_line(str(exc.message or exc))
            lowered = text.lower()
            if "fail connecting" in lowered or "unavailable" in lowered:
                return TransientError(f"{where} unreachable while {doing} ({_connection_reason(exc)})")
            if any(word in lowered for word in _NOT_FOUND_WORDS) or exc.code == 100:
                return UsageError(f"{where}: collection '{self.collection}' not found (check --collection)")
            if any(word in lowered for word in _REFUSED_WORDS):
                return AccessError(f"{where} refused the token while {doing} (check --token): {text}")
            if exc.code == 8 or exc.retriable or any(word in lowered for word in _TRANSIENT_WORDS):
                return TransientError(f"{where}: {doing} failed, worth a retry: {text}")
            return StoreError(f"{where}: {doing} failed: {text}")
        if is_network_error(exc):
            return TransientError(f"{where} unreachable while {doing} ({network_reason(exc)})")
        return StoreError(f"{where}: {doing} failed: {_first_line(str(exc))}")

    # -- the collection ---------------------------------------------------------

    def _layout(self) -> _Layout | None:
        """The collection as vex needs to know it; None when there is none."""
        if self._layout_cache is not None:
            return self._layout_cache
        client = self.client()
        if not self._call("looking up the collection", client.has_collection, self.collection):
            return None
        info = self._call("reading the collection's schema", client.describe_collection, self.collection)
        outputs = {name for fn in info.get("functions") or [] for name in fn.get("output_field_names") or []}
        fields: dict[str, dict[str, Any]] = {}
        for entry in info.get("fields") or []:
            if not entry.get("is_dynamic") and entry["name"] not in outputs and not entry.get("is_function_output"):
                fields[entry["name"]] = entry
        pk = next((entry for entry in fields.values() if entry.get("is_primary")), None)
        if pk is None:
            raise StoreError(f"{self._what} has no primary key field")
        pk_type = _type_name(pk["type"])
        if pk_type not in ("VARCHAR", "INT64"):
            raise UsageError(f"{self._what}: its primary key '{pk['name']}' is {pk_type}; vex reads VARCHAR and INT64")
        vector = self._chosen_vector(fields)
        sparse = self._chosen_sparse(fields)
        indexed, metric = self._indexes(vector)
        layout = _Layout(
            pk=pk["name"], pk_text=pk_type == "VARCHAR", pk_max=_max_length(pk), auto_id=bool(pk.get("auto_id")),
            vector=vector, dims=int(fields[vector]["params"].get("dim", 0)), text=self.opts.text_field,
            metric=metric, indexed=indexed, fields=fields, dynamic=bool(info.get("enable_dynamic_field")),
            sparse=sparse, outputs=outputs, collection_id=int(info.get("collection_id") or 0),
            own=_type_name(fields.get(FIELDS, {}).get("type")) == "JSON",
        )  # fmt: skip
        self._layout_cache = layout
        return layout

    def _chosen_vector(self, fields: dict[str, dict[str, Any]]) -> str:
        floats = [name for name, entry in fields.items() if _type_name(entry["type"]) == "FLOAT_VECTOR"]
        wanted = self.opts.vector_field
        if wanted is not None:
            if wanted not in fields:
                raise UsageError(
                    f"{self._what} has no field '{wanted}' (float vectors: {floats}): check --vector-field"
                )
            kind = _type_name(fields[wanted]["type"])
            if kind != "FLOAT_VECTOR":
                raise UsageError(f"{self._what}: '{wanted}' is a {kind} field; vex carries FLOAT_VECTOR fields")
            return wanted
        if len(floats) != 1:
            found = f"float vector fields {floats}" if floats else "no FLOAT_VECTOR field"
            raise UsageError(f"{self._what} has {found}: pass --vector-field")
        return floats[0]

    def _chosen_sparse(self, fields: dict[str, dict[str, Any]]) -> str | None:
        sparse = [name for name, entry in fields.items() if _type_name(entry["type"]) == "SPARSE_FLOAT_VECTOR"]
        wanted = self.opts.sparse_field
        if wanted is not None:
            if wanted not in sparse:
                raise UsageError(f"{self._what} has no sparse field '{wanted}' (it has {sparse}): check --sparse-field")
            return wanted
        return sparse[0] if len(sparse) == 1 else None

    def _indexes(self, vector: str) -> tuple[set[str], str | None]:
        """The fields that have an index, and the metric of the vector field's."""
        client = self.client()
        indexed: set[str] = set()
        metric = None
        for name in self._call("listing indexes", client.list_indexes, self.collection) or []:
            index = self._call("reading an index", client.describe_index, self.collection, name) or {}
            field_name = index.get("field_name", name)
            indexed.add(field_name)
            if field_name == vector:
                kind = str(index.get("metric_type", "")).upper()
                metric = {v: k for k, v in METRICS.items()}.get(kind, kind.lower() or None)
        return indexed, metric

    # -- describe ---------------------------------------------------------------

    def describe(self) -> StoreInfo:
        if not self._reachable():
            return StoreInfo(exists=False)
        layout = self._layout()
        if layout is None:
            return StoreInfo(exists=False)
        count = self._count()
        pk = f"{'VARCHAR' if layout.pk_text else 'INT64'} primary key '{layout.pk}'"
        index = f"{METRICS.get(layout.metric, layout.metric.upper())} index" if layout.metric else "no index yet"
        namespace = layout.fields.get(NAMESPACE, {})
        keyed = ", namespace as partition key" if namespace.get("is_partition_key") else ""
        sparse = f", sparse vectors in '{layout.sparse}'" if layout.sparse else ""
        return StoreInfo(
            exists=True, dims=layout.dims, metric=layout.metric, count=count,
            layout=f"{pk}, FLOAT_VECTOR '{layout.vector}' ({layout.dims}-d, {index}){keyed}{sparse}",
        )  # fmt: skip

    def _count(self) -> int | None:
        client = self.client()
        try:
            found = self._call(
                "counting entities", client.query, self.collection, filter="", output_fields=["count(*)"],
                consistency_level="Strong",
            )  # fmt: skip
            return int(found[0]["count(*)"])
        except (StoreError, KeyError, IndexError):
            stats = self._call("reading the collection's statistics", client.get_collection_stats, self.collection)
            return int(stats.get("row_count", 0))

    # -- export -----------------------------------------------------------------

    def extract(self, namespace: str | None, cursor: Cursor | None) -> Iterator[Page]:
        if not self._reachable():
            raise UsageError(f"milvus lite: no database at {self.opts.path} (check --path)")
        layout = self._layout()
        if layout is None:
            raise UsageError(f"milvus {self._where}: collection '{self.collection}' not found (check --collection)")
        self._ensure_loaded(layout)
        filtered = namespace is not None and _type_name(layout.fields.get(NAMESPACE, {}).get("type")) == "VARCHAR"
        scope = f"{NAMESPACE} == {literal(namespace)}" if filtered and namespace is not None else ""
        size = max(1, min(self.page_size, 16_384))
        # A thread reads up to READ_AHEAD pages ahead while the run converts and writes the last ones.
        yield from read_ahead(self._pages(layout, namespace, scope, size, cursor), READ_AHEAD)

    def _pages(
        self, layout: _Layout, namespace: str | None, scope: str, size: int, cursor: Cursor | None
    ) -> Iterator[Page]:
        """The pages after `cursor`, in primary-key order: `pk > last` (escaped), in iterator mode."""
        last = cursor
        while True:
            if last is None:
                expr = f"{layout.pk} >= {literal('')}" if layout.pk_text else ""
            else:
                expr = f"{layout.pk} > {literal(last if layout.pk_text else int(last))}"
            if scope:
                expr = f"{expr} and ({scope})" if expr else scope
            rows = self._call(
                "reading entities", self.client().query, self.collection, filter=expr, output_fields=["*"], limit=size,
                consistency_level="Strong", iterator="True", reduce_stop_for_best="False",
                collection_id=layout.collection_id, strict_float32=True,
            )  # fmt: skip
            rows = list(rows)
            if not rows:
                return
            last = rows[-1][layout.pk]
            batch = self._rows_to_batch(rows, layout)
            if namespace is not None:
                keep = pc.equal(batch.column("namespace"), pa.scalar(namespace)).fill_null(False)
                batch = batch.filter(keep)
            done = len(rows) < size
            yield Page(batch, None if done else (last if layout.pk_text else int(last)))
            if done:
                return

    def _ensure_loaded(self, layout: _Layout) -> None:
        """A server answers queries only on a loaded collection, and loads only one whose vectors are indexed."""
        client = self.client()
        state = self._call("reading the load state", client.get_load_state, self.collection)
        loaded = "Loaded" in str(state.get("state", state) if isinstance(state, dict) else state)
        if loaded:
            return
        missing = [name for name in (layout.vector, layout.sparse) if name is not None and name not in layout.indexed]
        if missing:
            raise UsageError(
                f"{self._what} is not loaded and its vector fields {missing} have no index, so Milvus cannot load it: "
                "build an index (a vex import into it does) and run again"
            )
        self._call("loading the collection", client.load_collection, self.collection)

    def _rows_to_batch(self, rows: list[dict[str, Any]], layout: _Layout) -> pa.RecordBatch:
        records = RecordColumns()
        vectors: list[Any] = []
        for row in rows:
            row = dict(row)
            record_id = str(row.pop(layout.pk))
            vectors.append(row.pop(layout.vector, None))
            sparse_value = row.pop(layout.sparse, None) if layout.sparse else None
            own, meta = _unpacked(row, layout)
            sparse = own.pop("sparse_vector", None)
            if sparse is None and sparse_value:
                sparse = _sparse_from_milvus(sparse_value)
            records.add(record_id, sparse_vector=sparse, **own)
            records.metadata[-1] = orjson.dumps(meta).decode() if meta else "{}"
        dims = {len(v) for v in vectors if v is not None}
        if len(dims) == 1 and all(v is not None for v in vectors):
            # strict_float32: each row's vector is a float32 view of one array pymilvus made of the whole page
            return records.build(vectors=np.stack(vectors).astype(np.float32, copy=False))
        return records.build(vectors=[None if v is None else np.asarray(v, dtype=np.float32) for v in vectors])

    # -- import -----------------------------------------------------------------

    def ensure_target(self, dims: int | None, metric: str | None) -> None:
        wanted = self.opts.metric or metric
        self.client(creating=True)
        layout = self._layout()
        if layout is not None:
            info = StoreInfo(exists=True, dims=layout.dims, metric=layout.metric)
            self.refuse_mismatch(info, dims, wanted, self._what, "--collection")
            self._check_fields(layout)
            self._wanted_metric = layout.metric or wanted or "cosine"
            return
        if dims is None:
            raise UsageError("milvus needs a dimension to create a collection: pass --dims N")
        if dims > MAX_DIMS:
            raise UsageError(f"milvus holds vectors of at most {MAX_DIMS} dims, the data has {dims}")
        self._create(dims)
        self._wanted_metric = wanted or "cosine"

    def _create(self, dims: int) -> None:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        vector = self.opts.vector_field or VECTOR
        text = self.opts.text_field
        names = [ID, vector, text, NAMESPACE, MODEL, CREATED, METADATA, FIELDS, self.opts.sparse_field]
        named = [name for name in names if name is not None]
        if len(set(named)) != len(named):
            own = [ID, NAMESPACE, MODEL, CREATED, METADATA, FIELDS]
            raise UsageError(
                f"milvus: --vector-field, --text-field and --sparse-field must differ from each other and from {own}"
            )
        schema.add_field(ID, DataType.VARCHAR, is_primary=True, max_length=MAX_VARCHAR)
        schema.add_field(vector, DataType.FLOAT_VECTOR, dim=dims)
        schema.add_field(text, DataType.VARCHAR, max_length=MAX_VARCHAR, nullable=True)
        schema.add_field(NAMESPACE, DataType.VARCHAR, max_length=MAX_VARCHAR, is_partition_key=True)
        schema.add_field(MODEL, DataType.VARCHAR, max_length=MAX_VARCHAR, nullable=True)
        schema.add_field(CREATED, DataType.INT64, nullable=True)
        schema.add_field(METADATA, DataType.JSON)
        schema.add_field(FIELDS, DataType.JSON, nullable=True)
        if self.opts.sparse_field is not None:
            schema.add_field(self.opts.sparse_field, DataType.SPARSE_FLOAT_VECTOR, nullable=True)
        self._call("creating the collection", self.client().create_collection, self.collection, schema=schema)
        self._layout_cache = None

    def _check_fields(self, layout: _Layout) -> None:
        """Refuse, before anything is written, a collection vex cannot write a record to without losing part of it."""
        if layout.auto_id:
            raise UsageError(
                f"{self._what}: its primary key '{layout.pk}' is auto_id (Milvus makes the ids), so the records' ids "
                "would be lost: choose another --collection"
            )
        wanted = {self.opts.text_field: "VARCHAR", **_OWN_TYPES}
        missing, wrong = [], []
        for name, kind in wanted.items():
            entry = layout.fields.get(name)
            if entry is None:
                missing.append(name)
            elif _type_name(entry["type"]) != kind:
                wrong.append(f"'{name}' is {_type_name(entry['type'])}, not {kind}")
        if wrong:
            raise UsageError(f"{self._what}: {'; '.join(wrong)}: choose another --collection (or --text-field)")
        if missing and not layout.dynamic:
            raise UsageError(
                f"{self._what} has no fields {missing} and no dynamic field, so vex could not keep those parts of a "
                "record: add them, or choose another --collection"
            )

    def load(self, batch: pa.RecordBatch) -> LoadResult:
        if batch.num_rows == 0:
            return LoadResult(written=0)
        layout = self._layout()
        if layout is None:
            raise StoreError(f"{self._what} vanished during the load")
        part = last_of_each_id(batch)
        written = batch.num_rows - part.num_rows  # earlier rows of an id, replaced by its last one
        failed: list[tuple[str, str]] = []
        rows, owners = self._rows(part, layout, failed)
        per_row = max(1, part.nbytes // max(1, part.num_rows))
        size = max(1, min(len(rows), REQUEST_BYTES // per_row))
        for start in range(0, len(rows), size):
            written += self._upsert(rows[start : start + size], owners[start : start + size], failed)
        if written:
            self._written = True
        return LoadResult(written=written, failed=failed)

    def _rows(
        self, batch: pa.RecordBatch, layout: _Layout, failed: list[tuple[str, str]]
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """The records as Milvus rows, and each row's record id; those Milvus could not hold go into `failed`."""
        ids = batch.column("id").to_pylist()
        keys: list[Any] = ids if layout.pk_text else [_int_id(record_id, self._what, layout.pk) for record_id in ids]
        vectors = vector_matrix(batch)
        texts = batch.column("text").to_pylist()
        namespaces = batch.column("namespace").to_pylist()
        models = batch.column("model").to_pylist()
        created = batch.column("created_at").cast(pa.int64()).to_pylist()
        metadata = batch.column("metadata").to_pylist()
        scores = batch.column("score").to_pylist()
        origins = batch.column("source_store").to_pylist()
        extras = batch.column("extra").to_pylist()
        sparse = sparse_rows(batch.column("sparse_vector"))
        too_long = self._too_long(batch, layout)
        text = self.opts.text_field
        have = layout.fields
        fields = {name: name in have for name in (text, NAMESPACE, MODEL, CREATED, METADATA, FIELDS)}
        nullable = {name: bool(have.get(name, {}).get("nullable")) for name in fields}
        ours = {layout.pk, layout.vector, layout.sparse, *fields}
        others = [name for name in have if name not in ours]
        rows: list[dict[str, Any]] = []
        owners: list[str] = []
        matrix = vectors.tolist()
        for i, record_id in enumerate(ids):
            if i in too_long:
                failed.append((record_id, too_long[i]))
                continue
            row: dict[str, Any] = {layout.pk: keys[i], layout.vector: matrix[i]}
            own: dict[str, Any] = {}
            nulls: list[str] = []
            for name, value, empty in ((text, texts[i], ""), (NAMESPACE, namespaces[i], ""), (MODEL, models[i], ""),
                                       (CREATED, created[i], 0)):  # fmt: skip
                if value is None:
                    if not fields[name]:
                        continue  # nothing to keep in the dynamic field
                    if not nullable[name]:
                        nulls.append(name)
                        value = empty
                row[name] = value
            if others or not fields[METADATA]:
                meta = orjson.loads(metadata[i] or "{}")
                needed = _fill_from_metadata(row, meta, others, have)
                if needed is not None:
                    failed.append((record_id, f"its metadata has no '{needed}', which the field '{needed}' of "
                                              f"{self._what} needs (not nullable, no default)"))  # fmt: skip
                    continue
                row[METADATA] = orjson.dumps(meta).decode() if fields[METADATA] else meta
            else:
                row[METADATA] = metadata[i] or "{}"
            if scores[i] is not None:
                own["score"] = scores[i]
            if origins[i] is not None:
                own["source_store"] = origins[i]
            if extras[i]:
                own["extra"] = orjson.loads(extras[i])
            value = sparse[i]
            fitting = _sparse_for_milvus(value) if value is not None and layout.sparse is not None else None
            if value is not None and fitting is None:
                own["sparse_vector"] = value
            if layout.sparse is not None:
                if fitting is None and self.opts.path is not None:
                    failed.append((record_id, _NO_NULL_SPARSE.format(field=layout.sparse, what=self._what)))
                    continue
                row[layout.sparse] = fitting
            if nulls:
                own["nulls"] = nulls
            if own:
                row[FIELDS] = orjson.dumps(own, option=orjson.OPT_SERIALIZE_NUMPY).decode() if fields[FIELDS] else own
            elif fields[FIELDS]:
                row[FIELDS] = None if nullable[FIELDS] else "{}"
            rows.append(row)
            owners.append(record_id)
        return rows, owners

    def _too_long(self, batch: pa.RecordBatch, layout: _Layout) -> dict[int, str]:
        """Rows with an id, text, namespace or model longer than its VARCHAR holds, each with the reason."""
        checks = [("id", layout.pk, layout.pk_max if layout.pk_text else None)]
        for column, name in (("text", self.opts.text_field), ("namespace", NAMESPACE), ("model", MODEL)):
            entry = layout.fields.get(name)
            if entry is not None and _type_name(entry["type"]) == "VARCHAR":
                checks.append((column, name, _max_length(entry)))
        found: dict[int, str] = {}
        for column, name, limit in checks:
            if limit is None:
                continue
            lengths = pc.binary_length(batch.column(column)).fill_null(0).to_numpy(zero_copy_only=False)
            for row in np.flatnonzero(lengths > limit).tolist():
                found.setdefault(
                    row,
                    f"its {column} is {int(lengths[row])} bytes; the field '{name}' of {self._what} holds at most "
                    f"{limit} (a Milvus VARCHAR)",
                )
        return found

    def _upsert(self, rows: list[dict[str, Any]], owners: list[str], failed: list[tuple[str, str]]) -> int:
        """One upsert request, its count checked; a request Milvus refuses for a record's sake is halved until
        the record is found (Milvus refuses a whole request for one bad row), so the rest are written."""
        if not rows:
            return 0
        try:
            answer = self._call("upserting entities", self.client().upsert, self.collection, rows)
        except StoreError as error:
            if isinstance(error, TransientError) or type(error) is not StoreError:
                raise
            if len(rows) == 1:
                failed.append((owners[0], f"Milvus refused the record: {error}"))
                return 0
            half = len(rows) // 2
            return self._upsert(rows[:half], owners[:half], failed) + self._upsert(rows[half:], owners[half:], failed)
        count = int(answer.get("upsert_count", 0)) if isinstance(answer, dict) else 0
        if count != len(rows):
            raise StoreError(f"milvus {self._where} acknowledged {count} of the {len(rows)} entities sent (upsert)")
        return count

    def takes_concurrent_writers(self) -> bool:
        return self.opts.url is not None  # a server does; the embedded store is one process's

    def delete(self, namespace: str | None, ids: list[str]) -> None:
        layout = self._layout()
        if layout is None:
            return  # no collection: none of the records is there
        keys: list[Any] = ids if layout.pk_text else [_int_id(record_id, self._what, layout.pk) for record_id in ids]
        for start in range(0, len(keys), DELETE_PER_REQUEST):
            self._call(
                "deleting entities", self.client().delete, self.collection, ids=keys[start : start + DELETE_PER_REQUEST]
            )

    def finish(self) -> None:
        """The indexes built after the load (the vector field's with the run's metric, the sparse field's), and the
        collection loaded, so it answers searches and queries."""
        if self._client is None or (not self._written and self._wanted_metric is None):
            return None
        layout = self._layout()
        if layout is None:
            return None
        from pymilvus import MilvusClient

        params = MilvusClient.prepare_index_params()
        if layout.vector not in layout.indexed:
            params.add_index(
                layout.vector, index_type="AUTOINDEX", metric_type=METRICS[self._wanted_metric or "cosine"]
            )
        if layout.sparse is not None and layout.sparse not in layout.indexed:
            params.add_index(layout.sparse, index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
        if len(params):
            self._call("building the index", self.client().create_index, self.collection, params)
            self._layout_cache = None
        self._call("loading the collection", self.client().load_collection, self.collection)
        return None

    def close(self) -> None:
        client, self._client = self._client, None
        self._layout_cache = None
        try:
            if client is not None:
                client.close()
        except Exception:  # noqa: BLE001 - closing must not hide the error that ended the run
            pass
        finally:
            serving, self._serving = self._serving, None
            if serving is not None:
                _SERVERS.release(serving)


# -- values -------------------------------------------------------------------


def literal(value: str | int) -> str:
    """A value as a Milvus filter literal: a string quoted, with `\\`, `"` and line breaks escaped."""
    if isinstance(value, int):
        return str(value)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def _int_id(record_id: str, what: str, pk: str) -> int:
    """An id as an INT64 key: only an integer's own decimal spelling, so the export gives back the same text."""
    stripped = record_id[1:] if record_id.startswith("-") else record_id
    canonical = stripped.isdecimal() and stripped.isascii() and (stripped == "0" or not stripped.startswith("0"))
    if canonical and len(stripped) <= 19 and record_id != "-0" and INT64_MIN <= int(record_id) <= INT64_MAX:
        return int(record_id)
    raise UsageError(
        f"{what} has an INT64 primary key '{pk}', and the id '{record_id[:60]}' is no integer: vex writes only integer "
        "ids there (as themselves); import into a collection with a VARCHAR key (a new --collection gets one)"
    )


def _fill_from_metadata(
    row: dict[str, Any], meta: dict[str, Any], others: list[str], fields: dict[str, dict[str, Any]]
) -> str | None:
    """A collection's own fields (other than vex's) filled from the metadata keys of their names, taken out of the
    metadata: the reverse of an export, which puts such fields into the metadata. The name of a field that needs a
    value the metadata lacks, else None."""
    for name in others:
        value = meta.pop(name, None)
        entry = fields[name]
        if value is None and not entry.get("nullable") and entry.get("default_value") is None:
            return name
        row[name] = value
    return None


def _sparse_for_milvus(value: dict[str, Any]) -> dict[int, float] | None:
    """A sparse vector as Milvus holds it exactly, or None where it cannot: Milvus keeps positive weights only,
    in ascending index order, and reserves the largest index."""
    indices = [int(index) for index in value["indices"]]
    weights = np.asarray(value["values"], dtype=np.float32)
    if not indices or any(b <= a for a, b in itertools.pairwise(indices)) or indices[-1] >= _SPARSE_LIMIT:
        return None
    if not bool(np.all(weights > 0)):
        return None
    return dict(zip(indices, weights.tolist(), strict=True))


def _sparse_from_milvus(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        items = sorted((int(index), float(weight)) for index, weight in value.items())
    else:  # a scipy matrix or a list of pairs, as pymilvus may hand it over
        items = sorted((int(index), float(weight)) for index, weight in getattr(value, "items", lambda: value)())
    if not items:
        return None
    return {"indices": [index for index, _ in items], "values": [weight for _, weight in items]}


def _unpacked(row: dict[str, Any], layout: _Layout) -> tuple[dict[str, Any], dict[str, Any]]:
    """An entity's record fields (for `RecordColumns.add`) and its metadata. A value that does not fit its field
    (another tool's collection) and every field vex does not know stay in the metadata under their own names."""
    raw_fields = row.pop(FIELDS, None)
    own = raw_fields if isinstance(raw_fields, dict) else {}
    nested = row.pop(METADATA, None)
    meta: dict[str, Any] = dict(nested) if isinstance(nested, dict) else {}
    if raw_fields is not None and not isinstance(raw_fields, dict):
        _keep(meta, FIELDS, raw_fields)
    if nested is not None and not isinstance(nested, dict):
        _keep(meta, METADATA, nested)
    nulls = set(own.get("nulls") or [])
    out: dict[str, Any] = {}
    for name, key in ((layout.text, "text"), (NAMESPACE, "namespace"), (MODEL, "model")):
        value = row.pop(name, None)
        if isinstance(value, str):
            out[key] = None if name in nulls else value
        elif value is not None:
            _keep(meta, name, value)
    stamp = row.pop(CREATED, None)
    if stamp is not None and CREATED not in nulls:
        micros = _stamp(stamp, layout.own)
        if micros is None:
            _keep(meta, CREATED, stamp)
        else:
            out["created_at"] = micros
    score = own.get("score")
    if isinstance(score, (int, float)) and not isinstance(score, bool):
        out["score"] = float(score)
    origin = own.get("source_store")
    out["source_store"] = origin if isinstance(origin, str) else "milvus"
    extra = own.get("extra")
    if isinstance(extra, dict) and extra:
        out["extra"] = orjson.dumps(extra).decode()
    sparse = own.get("sparse_vector")
    if isinstance(sparse, dict):
        out["sparse_vector"] = sparse
    for name, value in row.items():
        if value is not None and name not in layout.outputs:
            _keep(meta, name, _jsonable(value))
    return out, meta


def _stamp(value: Any, micros: bool) -> int | None:
    """created_at in µs: vex's own field holds µs; another tool's value is read as a time where it is one."""
    if micros and isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return to_micros(value)
    except (TimestampError, OverflowError, TypeError, ValueError):
        return None


def _keep(meta: dict[str, Any], key: str, value: Any) -> None:
    """A field's value into the metadata without replacing a key it already has."""
    while key in meta:
        key = "field:" + key
    meta[key] = value


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return str(value)


def _type_name(kind: Any) -> str:
    """A field type's name (`VARCHAR`), from pymilvus's DataType or whatever the schema holds."""
    if kind is None:
        return ""
    return str(getattr(kind, "name", kind)).upper()


def _max_length(entry: dict[str, Any]) -> int:
    return int((entry.get("params") or {}).get("max_length") or MAX_VARCHAR)


def _connection_reason(exc: BaseException) -> str:
    """Why a connection failed, from the gRPC error pymilvus wraps (its own message only says it failed)."""
    seen: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(seen) < 5:
        seen.append(str(current).lower())
        current = current.__cause__ or current.__context__
    text = " ".join(seen)
    if "connection refused" in text:
        return "connection refused: is the server running at that address?"
    if "deadline" in text or "timed out" in text or "timeout" in text:
        return "timed out"
    if "name resolution" in text or "dns" in text:
        return "host name not found"
    return "no answer"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return (lines[0] if lines else "no reason given")[:300]
