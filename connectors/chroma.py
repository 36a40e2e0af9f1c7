"""Chroma, embedded (`PersistentClient`, `--path DIR`) or a server (`--url`), both directions.

Text is the Chroma document. Chroma metadata holds only flat scalar values, so a
record's metadata is stored reversibly: nested objects and lists (and integers
beyond int64, which Chroma would turn into floats) as JSON text (keys listed
under `_vex_json_keys`), null values listed under `_vex_null_keys`.
Namespaces map to a reserved metadata field `_vex_namespace` (one collection
holds every namespace; `--namespace` becomes a `where` filter), and model,
created_at, score, origin and unknown format keys travel under `_vex_*` keys
too; export takes them all out again. A user's own key that starts with `_vex`
is stored as `_vex_user:<key>` (`vmig.metadata.escape_reserved`), so it is never
taken for one of ours. Chroma returns float64 embeddings: they
are brought back to float32 (bit for bit for l2/ip collections; within one
float32 rounding step for cosine ones, which Chroma normalises internally).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import SecretStr, model_validator

from connectors.base import Capabilities, Connector, Cursor, LoadResult, Location, Page, StoreInfo, StoreOptions
from connectors.clients import ClientLibrary, is_network_error, network_reason
from connectors.flatmeta import NAMESPACE_KEY, FlatRule, flatten, restore
from vmig.batch import RecordColumns, last_of_each_id, uniform_dims, vector_matrix
from vmig.errors import AccessError, StoreError, TransientError, UsageError

_SPACES = {"cosine": "cosine", "dot": "ip", "euclid": "l2"}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
CHROMA_METADATA = FlatRule(int_range=(_INT64_MIN, _INT64_MAX))
"""Chroma keeps a metadata integer as a signed 64-bit one and silently turns a larger one (vex carries
integers up to 2**64 - 1) into the nearest float: those travel as JSON text."""

MAX_METADATA_KEYS = 4096
"""Most metadata keys one record may send, vex's own `_vex_*` keys and the document (Chroma stores it as one
more key, `chroma:document`) included. Chroma 1.5 copies a record's metadata from its log into SQLite in one
statement of 6 bound variables a key, and its SQLite allows 32,766 variables: a record with more than 5,461
keys (measured: 5,460 and a document go in, 5,461 and a document do not; embedded and `chroma run` alike,
whatever the values) is accepted into the log but can never be applied, and from then on every read and
write of the collection fails ("Failed to apply logs to the metadata segment"). 4,096 leaves a quarter as
margin. Such a record is a failed record, checked before anything is sent."""

MAX_REQUEST_BYTES = 32 * 2**20
"""Most bytes of JSON one request carries. `chroma run` answers a larger body with 413 "Payload too large"
(its `max_payload_size_bytes`, 40 MiB = 41,943,040 bytes by default): requests are cut to stay below it, and
on a server a record that alone is larger is a failed record. Embedded, it only bounds a request's size."""

MAX_EMBEDDED_RECORD_BYTES = 256 * 2**20
"""Most bytes one record may hold in an embedded Chroma (`--path`). PersistentClient writes a record's
metadata and document as one JSON text into its SQLite log, and its SQLite refuses a value over
1,000,000,000 bytes (compiled MAX_LENGTH); 300 MB was measured to go in and read back (27 s, 3.5 GB of
memory); 256 MiB stays below that, and far below SQLite's limit."""


_CHROMA_DOCUMENT = "chroma:document"
"""The metadata key Chroma keeps the document under; it refuses a user key of that name."""


class DamagedCollectionError(StoreError):
    """Chroma cannot apply its own log to the collection: every later read and write fails the same way,
    so neither a retry nor sending the records one by one helps."""


class ChromaOptions(StoreOptions):
    path: Path | None = None
    """Folder of an embedded Chroma (`PersistentClient`)."""
    url: str | None = None
    """A Chroma server, `http://host:port`."""
    api_key: SecretStr | None = None
    """Token for a server that asks for one (sent as `x-chroma-token`)."""
    collection: str = "memories"
    """Collection to read or write; created on import when missing."""
    metric: Literal["cosine", "dot", "euclid"] | None = None
    """Space of a new collection (default cosine); checked against an existing one."""
    timeout: float = 60.0
    """Seconds one request to a server may take."""

    @model_validator(mode="after")
    def _one_location(self) -> ChromaOptions:
        if (self.path is None) == (self.url is None):
            raise ValueError("give --path DIR (embedded) or --url http://host:port (server)")
        return self


class ChromaConnector(Connector[ChromaOptions]):
    name: ClassVar[str] = "chroma"
    Options: ClassVar[type[StoreOptions]] = ChromaOptions
    # A cosine collection gives vectors back within a float32 rounding step (Chroma normalises them internally
    # and scales back); l2 and ip collections give them back bit for bit.
    capabilities: ClassVar[Capabilities] = Capabilities(
        deletes=True, metrics=tuple(_SPACES), vector_tolerance=1e-5, embedded=True
    )
    client_library: ClassVar[ClientLibrary | None] = ClientLibrary("chroma", "chromadb", "chromadb")
    _client: Any = None
    _collection: Any = None
    last_status: int | None = None
    """The HTTP status of the server's last answer (a server's errors are sorted by it)."""

    def label(self) -> str:
        where = self.opts.path.name if self.opts.path is not None else "server"
        return f"chroma:{where}/{self.opts.collection}"

    def locations(self) -> list[Location]:
        if self.opts.path is None:
            return []
        return [Location(self.opts.path, "the chroma folder", self.opts.collection)]

    @property
    def _where(self) -> str:
        if self.opts.path is not None:
            return str(self.opts.path)
        parts = urlsplit(self.opts.url or "")
        return f"{parts.scheme}://{parts.hostname}:{parts.port}" if parts.hostname else "server"

    # -- client and errors ------------------------------------------------------

    def client(self) -> Any:
        if self._client is not None:
            return self._client
        chromadb = self.client_package()
        if self.opts.path is not None:
            self.opts.path.mkdir(parents=True, exist_ok=True)
            self._client = self.guarded("opening the database", chromadb.PersistentClient, path=str(self.opts.path))
            return self._client
        parts = urlsplit(self.opts.url or "")
        if not parts.hostname:
            raise UsageError(f"chroma --url must look like http://host:8000, got '{self._where}'")
        headers = {}
        if self.opts.api_key is not None:
            headers["x-chroma-token"] = self.opts.api_key.get_secret_value()
        self._client = self.guarded(
            "connecting",
            chromadb.HttpClient,
            host=parts.hostname,
            port=parts.port or (443 if parts.scheme == "https" else 8000),
            ssl=parts.scheme == "https",
            headers=headers,
        )
        self._instrument_http()
        return self._client

    def _instrument_http(self) -> None:
        """Bound every HTTP call in time and remember its status (chromadb sets neither)."""
        import httpx

        session = getattr(getattr(self._client, "_server", None), "_session", None)
        if not isinstance(session, httpx.Client):
            return
        session.timeout = httpx.Timeout(self.opts.timeout)

        def remember(response: httpx.Response) -> None:
            self.last_status = response.status_code

        session.event_hooks["response"].append(remember)

    def guarded(self, doing: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        self.last_status = None  # the status a failure is judged by is this call's own
        return super().guarded(doing, fn, *args, **kwargs)

    def classify(self, exc: Exception, doing: str) -> Exception:
        from chromadb import errors

        detail = f"chroma {self._where}: {doing} failed"
        status = self.last_status
        if "failed to apply logs" in str(exc).lower():
            return DamagedCollectionError(
                f"{detail}: collection '{self.opts.collection}' is damaged: Chroma cannot apply its own log "
                f"({str(exc)[:200]}), so nothing in it can be read, counted or written any more. A record Chroma "
                "could not hold was sent to it before (vex refuses those); recreate the collection"
            )
        if isinstance(exc, (errors.ChromaAuthError, errors.AuthorizationError)) or status in (401, 403):
            return AccessError(f"{detail}: not authorised (check --api-key)")
        if isinstance(exc, errors.NotFoundError) or (isinstance(exc, ValueError) and "does not exist" in str(exc)):
            return UsageError(f"chroma {self._where}: collection '{self.opts.collection}' not found")
        if isinstance(exc, (errors.RateLimitError, errors.InternalError)) or (
            status is not None and (status == 429 or status >= 500)
        ):
            answer = f"the server answered {status}" if status else "the server is overloaded or failed"
            return TransientError(f"{detail}: {answer}")
        if is_network_error(exc) or "could not connect" in str(exc).lower():
            return TransientError(f"{detail}: server unreachable ({network_reason(exc)})")
        if isinstance(exc, (errors.InvalidArgumentError, errors.InvalidDimensionException)):
            return StoreError(f"{detail}: {exc}")
        return StoreError(f"{detail}: {str(exc)[:300] or 'no reason given'}")

    def _existing(self) -> Any:
        if self._collection is not None:
            return self._collection
        client = self.client()
        names = {getattr(c, "name", c) for c in self.guarded("listing collections", client.list_collections)}
        if self.opts.collection not in names:
            return None
        self._collection = self.guarded(
            "opening the collection", client.get_collection, self.opts.collection, embedding_function=None
        )
        return self._collection

    # -- describe ---------------------------------------------------------------

    def _space(self, collection: Any) -> str | None:
        space = (collection.metadata or {}).get("hnsw:space")
        if space is None:
            configuration = getattr(collection, "configuration", None) or {}
            space = (configuration.get("hnsw") or {}).get("space") if isinstance(configuration, dict) else None
        return {v: k for k, v in _SPACES.items()}.get(str(space)) if space else None

    def incarnation(self) -> str | None:
        """The collection's id: a collection deleted and created again under its name gets another."""
        collection = self._existing()
        return None if collection is None else str(collection.id)

    def describe(self) -> StoreInfo:
        collection = self._existing()
        if collection is None:
            return StoreInfo(exists=False)
        count = int(self.guarded("counting records", collection.count))
        dims = None
        if count:
            first = self.guarded("reading a record", collection.get, limit=1, include=["embeddings"])
            embeddings = first.get("embeddings")
            if embeddings is not None and len(embeddings):
                dims = len(embeddings[0])
        return StoreInfo(exists=True, dims=dims, metric=self._space(collection), count=count)

    # -- extract ----------------------------------------------------------------

    def extract(self, namespace: str | None, cursor: Cursor | None) -> Iterator[Page]:
        collection = self._existing()
        if collection is None:
            raise UsageError(
                f"chroma {self._where}: collection '{self.opts.collection}' not found (check --collection)"
            )
        where = {NAMESPACE_KEY: namespace} if namespace is not None else None
        offset, size = int(cursor or 0), self.page_size
        while True:
            result = self.guarded(
                "reading records",
                collection.get,
                where=where,
                limit=size,
                offset=offset,
                include=["embeddings", "documents", "metadatas"],
            )
            count = len(result["ids"])
            offset += count
            done = count < size
            if count:
                yield Page(_result_to_batch(result), None if done else offset)
            if done:
                return

    # -- load -------------------------------------------------------------------

    def ensure_target(self, dims: int | None, metric: str | None) -> None:
        wanted = self.opts.metric or metric
        collection = self._existing()
        if collection is not None:
            what = f"chroma collection '{self.opts.collection}'"
            self.refuse_mismatch(self.describe(), dims, wanted, what, "--collection")
            return
        self._collection = self.guarded(
            "creating the collection",
            self.client().get_or_create_collection,
            self.opts.collection,
            metadata={"hnsw:space": _SPACES[wanted or "cosine"]},
            embedding_function=None,
        )

    def load(self, batch: pa.RecordBatch) -> LoadResult:
        if batch.num_rows == 0:
            return LoadResult(written=0)
        collection = self._collection or self._existing()
        if collection is None:
            raise StoreError(f"chroma {self._where}: collection '{self.opts.collection}' vanished during the load")
        part = last_of_each_id(batch)
        written = batch.num_rows - part.num_rows  # earlier rows of an id, replaced by its last one
        metadatas = _metadatas(part)
        sizes = _request_bytes(part, metadatas)
        reasons = _refusals(part, metadatas, sizes, server=self.opts.url is not None)
        failed = [
            (record_id, reason)
            for record_id, reason in zip(part.column("id").to_pylist(), reasons, strict=True)
            if reason is not None
        ]
        sendable = np.flatnonzero([reason is None for reason in reasons])
        for rows in _requests(sendable, sizes, self._max_batch(), MAX_REQUEST_BYTES):
            request = part.take(pa.array(rows))
            request_metadatas = self._replacing(collection, request, [metadatas[row] for row in rows])
            try:
                self._upsert(collection, request, request_metadatas)
                written += len(rows)
            except (TransientError, DamagedCollectionError):
                raise
            except StoreError:
                # Chroma refuses a whole request for one bad record: find which ones, keep the rest.
                ok, bad = self._upsert_one_by_one(collection, request, request_metadatas)
                written += ok
                failed.extend(bad)
        return LoadResult(written=written, failed=failed)

    def _replacing(
        self, collection: Any, request: pa.RecordBatch, metadatas: list[dict[str, Any] | None]
    ) -> list[dict[str, Any] | None]:
        """Metadata that replaces, not merges into, the records of these ids already there.

        Chroma's upsert of an existing record keeps every key the new metadata leaves out, and keeps the
        old document when the new one is None: a re-import would keep keys a record no longer has (vex's
        own json and null key lists among them, which then misread the new values). A stale key is sent
        as None, which Chroma deletes; a record whose document has to go (or with more stale keys than one
        request should name) is deleted first.
        """
        ids = request.column("id").to_pylist()
        has_text = request.column("text").is_valid().to_numpy(zero_copy_only=False)
        include = ["metadatas"] if has_text.all() else ["metadatas", "documents"]
        found = self.guarded("reading the records being replaced", collection.get, ids=ids, include=include)
        if not found["ids"]:
            return metadatas
        documents = found.get("documents") or [None] * len(found["ids"])
        before = {
            record_id: (meta or {}, doc)
            for record_id, meta, doc in zip(found["ids"], found["metadatas"], documents, strict=True)
        }
        replacing, delete = list(metadatas), []
        for index, record_id in enumerate(ids):
            if record_id not in before:
                continue
            old_meta, old_document = before[record_id]
            entry = metadatas[index] or {}
            stale = [key for key in old_meta if key not in entry]
            if (old_document is not None and not has_text[index]) or len(stale) > MAX_METADATA_KEYS:
                delete.append(record_id)
            elif stale:
                replacing[index] = {**entry, **dict.fromkeys(stale)}
        if delete:
            self.guarded("deleting records to replace them", collection.delete, ids=delete)
        return replacing

    def takes_concurrent_writers(self) -> bool:
        return self.opts.url is not None  # a server does; the embedded store is one process's

    def delete(self, namespace: str | None, ids: list[str]) -> None:
        collection = self._collection or self._existing()
        if collection is None:
            return  # no collection: none of the records is there
        step = self._max_batch()
        for start in range(0, len(ids), step):
            self.guarded("deleting records", collection.delete, ids=ids[start : start + step])

    def _upsert(self, collection: Any, part: pa.RecordBatch, metadatas: list[dict[str, Any] | None]) -> None:
        self.guarded(
            "upserting records",
            collection.upsert,
            ids=part.column("id").to_pylist(),
            embeddings=vector_matrix(part),
            documents=part.column("text").to_pylist(),
            metadatas=metadatas,
        )

    def _upsert_one_by_one(
        self, collection: Any, part: pa.RecordBatch, metadatas: list[dict[str, Any] | None]
    ) -> tuple[int, list[tuple[str, str]]]:
        written, failed = 0, []
        for index in range(part.num_rows):
            row = part.slice(index, 1)
            try:
                self._upsert(collection, row, metadatas[index : index + 1])
                written += 1
            except (TransientError, DamagedCollectionError):
                raise
            except StoreError as exc:
                failed.append((row.column("id")[0].as_py(), str(exc)))
        return written, failed

    def _max_batch(self) -> int:
        try:
            server_max = int(self.guarded("asking the batch limit", self.client().get_max_batch_size))
        except StoreError:  # an older server without the endpoint: stay at our own size
            return self.capabilities.max_batch
        return max(1, min(self.capabilities.max_batch, server_max))

    def close(self) -> None:
        self._collection = None
        self._client = None


def _metadatas(batch: pa.RecordBatch) -> list[dict[str, Any] | None]:
    """Flat Chroma metadata that restores the record exactly (see the module docstring)."""
    return flatten(batch, CHROMA_METADATA)


def _json_text_bytes(texts: pa.Array) -> np.ndarray:
    """An upper bound of each string's length as JSON text, in bytes: its UTF-8 bytes, plus 5 for each
    character JSON escapes (a control character takes six), plus the quotes. Counted in C, column-wide."""
    length = pc.binary_length(texts).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    escaped = pc.count_substring_regex(texts, r'[\x00-\x1f"\\]').fill_null(0)
    return length + 5 * escaped.to_numpy(zero_copy_only=False).astype(np.int64) + 2


def _request_bytes(part: pa.RecordBatch, metadatas: list[dict[str, Any] | None]) -> np.ndarray:
    """What each record adds to an upsert request's JSON body, in bytes (an upper bound, but for the
    embedding: chromadb sends it as base64 of its float32 bytes)."""
    ids = part.column("id")
    texts = part.column("text")
    dims = uniform_dims(part) or 0
    embedding = 4 * -(-4 * dims // 3) + 3
    meta = np.fromiter((len(orjson.dumps(entry)) for entry in metadatas), dtype=np.int64, count=len(metadatas))
    return _json_text_bytes(ids) + _json_text_bytes(texts) + meta + embedding + 8


def _refusals(
    part: pa.RecordBatch, metadatas: list[dict[str, Any] | None], sizes: np.ndarray, server: bool
) -> list[str | None]:
    """Why Chroma cannot hold each record (None where it can), checked before anything is sent: some of
    these Chroma accepts and then cannot apply, which breaks the whole collection (`MAX_METADATA_KEYS`)."""
    ids = part.column("id").to_pylist()
    has_document = part.column("text").is_valid().to_numpy(zero_copy_only=False)
    limit, holder = (
        (MAX_REQUEST_BYTES, "one request to a Chroma server may carry")
        if server
        else (MAX_EMBEDDED_RECORD_BYTES, "vex stores as one record in an embedded Chroma")
    )
    reasons: list[str | None] = []
    for record_id, entry, document, size in zip(ids, metadatas, has_document, sizes, strict=True):
        reason = _refusal(record_id, entry or {}, bool(document))
        if reason is None and size > limit:
            reason = f"{size:,} bytes as JSON, more than the {limit:,} {holder}"
        reasons.append(reason)
    return reasons


def _refusal(record_id: str, entry: dict[str, Any], has_document: bool) -> str | None:
    """Why Chroma cannot hold a record's id or metadata, or None."""
    if not record_id:
        return "an empty id: Chroma needs at least one character"
    keys = len(entry) + has_document
    if keys > MAX_METADATA_KEYS:
        return (
            f"{keys:,} metadata keys (with the document and vex's own fields), more than the {MAX_METADATA_KEYS:,} "
            "vex sends to Chroma: Chroma accepts more than 5,461 and then cannot apply them, "
            "which breaks the whole collection"
        )
    for key in entry:
        if not key or key[0] in "#$":
            return f"metadata key {key!r}: Chroma refuses a key that is empty or starts with '#' or '$'"
        if key == _CHROMA_DOCUMENT:
            return f"metadata key {key!r}: Chroma keeps the document under that name and refuses it"
    return None


def _requests(rows: np.ndarray, sizes: np.ndarray, max_rows: int, max_bytes: int) -> Iterator[np.ndarray]:
    """`rows` cut into runs of at most `max_rows` records and `max_bytes` (a larger record goes alone)."""
    start = 0
    while start < len(rows):
        cumulative = np.cumsum(sizes[rows[start : start + max_rows]])
        count = max(1, int(np.searchsorted(cumulative, max_bytes, side="right")))
        yield rows[start : start + count]
        start += count


def _result_to_batch(result: dict[str, Any]) -> pa.RecordBatch:
    metadatas = result.get("metadatas") or [None] * len(result["ids"])
    records = RecordColumns()
    for record_id, raw in zip(result["ids"], metadatas, strict=True):
        fields, metadata = restore(raw, CHROMA_METADATA)
        fields.pop("text", None)
        if fields["source_store"] is None:
            fields["source_store"] = "chroma"
        records.add(record_id, metadata=metadata, **fields)
    embeddings = result.get("embeddings")
    vectors = None if embeddings is None else np.asarray(embeddings, dtype=np.float32)
    return records.build(vectors=vectors, texts=result.get("documents"))
