"""Qdrant, embedded (local mode, `--path DIR`) or remote (`--url`, `--api-key`), both directions.

Points carry the record in their payload: `text`, `namespace`, `model`,
`created_at` (ISO-8601), `metadata` (a nested object: Qdrant holds nested
payload as it is), and `score`, `source_store`, `extra` when set. Qdrant takes
only unsigned integers and UUIDs as ids; any other id becomes a deterministic
UUIDv5, and the original id is always kept in the payload as `_vex_id`, so an
export returns the ids that were imported. For the cosine metric a Qdrant server
stores vectors normalised to unit length (`stored_form`; local mode keeps them
as given); use `--metric dot` to keep them as they are on a server too.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np
import pyarrow as pa
from pydantic import SecretStr, model_validator

from connectors.base import Capabilities, Connector, Cursor, LoadResult, Location, Page, StoreInfo, StoreOptions
from connectors.clients import ClientLibrary, is_network_error, network_reason
from connectors.ids import uuid_for
from vmig import metadata as md
from vmig.batch import RecordColumns, uniform_dims, vector_matrix
from vmig.errors import AccessError, StoreError, TransientError, UsageError
from vmig.rejects import Reject
from vmig.timefmt import TimestampError, format_micros, to_micros

ID_FIELD = "_vex_id"
_DISTANCES = {"cosine": "Cosine", "dot": "Dot", "euclid": "Euclid", "manhattan": "Manhattan"}
_UINT64_MAX = 2**64 - 1


class QdrantOptions(StoreOptions):
    path: Path | None = None
    """Folder of Qdrant's local mode (embedded, no server)."""
    url: str | None = None
    """A Qdrant server, `http://host:6333`."""
    api_key: SecretStr | None = None
    """API key of a server that asks for one."""
    collection: str = "memories"
    """Collection to read or write; created on import when missing."""
    metric: Literal["cosine", "dot", "euclid", "manhattan"] | None = None
    """Distance of a new collection (default cosine); checked against an existing one."""
    vector_name: str | None = None
    """Named vector to read and write; default: the collection's unnamed vector."""
    timeout: int = 60
    """Seconds one request to a server may take."""

    @model_validator(mode="after")
    def _one_location(self) -> QdrantOptions:
        if self.path is not None and self.url is not None:
            raise ValueError("give --path (embedded) or --url (server), not both")
        return self


def point_id(record_id: str) -> int | str:
    """The id Qdrant stores: the id itself when it is a uint or a UUID, else its UUIDv5.

    Several ids can map to one point: a UUID in any spelling `uuid.UUID` takes (case, braces, `urn:uuid:`,
    no hyphens), a number in other decimal digits (`١٢٣` is 123), an id equal to another's UUIDv5. `load`
    refuses the second of them instead of letting it overwrite the first."""
    if _is_uint(record_id):
        return int(record_id)
    return str(uuid_for(record_id))


def _is_uint(record_id: str) -> bool:
    """Decimal digits without a leading zero, within 64 bits. `isdecimal`, not `isdigit`: `int()` refuses
    digits such as `²`; the length test comes first, as `int()` refuses a string of over 4,300 digits."""
    if not record_id.isdecimal() or len(record_id) > len(str(_UINT64_MAX)):
        return False
    return (record_id == "0" or not record_id.startswith("0")) and int(record_id) <= _UINT64_MAX


class QdrantConnector(Connector[QdrantOptions]):
    name: ClassVar[str] = "qdrant"
    Options: ClassVar[type[StoreOptions]] = QdrantOptions
    capabilities: ClassVar[Capabilities] = Capabilities(
        deletes=True, metrics=tuple(_DISTANCES), vector_tolerance=1e-6, embedded=True, max_dims=65_536
    )
    client_library: ClassVar[ClientLibrary | None] = ClientLibrary("qdrant", "qdrant_client", "qdrant-client")
    _client: Any = None

    @property
    def collection(self) -> str:
        return self.opts.collection

    def label(self) -> str:
        where = f"{self.opts.path.name}" if self.opts.path is not None else "server"
        return f"qdrant:{where}/{self.collection}"

    def locations(self) -> list[Location]:
        if self.opts.path is None:
            return []
        return [Location(self.opts.path, "the qdrant folder", self.collection)]

    @property
    def _where(self) -> str:
        return str(self.opts.path) if self.opts.path is not None else (self.opts.url or "http://localhost:6333")

    # -- client and errors ------------------------------------------------------

    def client(self) -> Any:
        if self._client is not None:
            return self._client
        module = self.client_package()
        try:
            if self.opts.path is not None:
                self.opts.path.mkdir(parents=True, exist_ok=True)
                # Its advice for large collections would otherwise break vex's one-line output; the README
                # says it: local mode holds the whole collection in memory, a server scales.
                warnings.filterwarnings("ignore", message="Local mode is not recommended", category=UserWarning)
                self._client = module.QdrantClient(path=str(self.opts.path))
            else:
                key = self.opts.api_key.get_secret_value() if self.opts.api_key else None
                self._client = module.QdrantClient(
                    url=self.opts.url or "http://localhost:6333",
                    api_key=key,
                    timeout=self.opts.timeout,
                    check_compatibility=False,
                )
        except RuntimeError as exc:
            if "already accessed" in str(exc):
                raise UsageError(
                    f"qdrant {self._where} is open in another process (local mode allows one client per --path)"
                ) from None
            raise
        return self._client

    def classify(self, exc: Exception, doing: str) -> Exception:
        """Sort the client's exceptions into transient (retried) and permanent."""
        from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

        if isinstance(exc, UnexpectedResponse):
            status = exc.status_code
            detail = f"qdrant {self._where} answered {status} while {doing}"
            if status in (401, 403):
                return AccessError(f"{detail}: the API key was refused (check --api-key)")
            if status == 404:
                return UsageError(f"{detail}: collection '{self.collection}' not found")
            if status is None or status == 429 or status >= 500:
                return TransientError(detail)
            return StoreError(f"{detail}: {exc.content[:200]!r}")
        if isinstance(exc, ResponseHandlingException) or is_network_error(exc):
            return TransientError(f"qdrant {self._where} unreachable while {doing} ({network_reason(exc)})")
        if isinstance(exc, ValueError) and "not found" in str(exc).lower():
            return UsageError(f"qdrant {self._where}: collection '{self.collection}' not found")
        return StoreError(f"qdrant {self._where}: {doing} failed: {exc}")

    # -- describe ---------------------------------------------------------------

    def _vector_params(self, info: Any) -> Any:
        vectors = info.config.params.vectors
        if isinstance(vectors, dict):
            name = self.opts.vector_name
            if name is None:
                if len(vectors) != 1:
                    raise UsageError(
                        f"qdrant collection '{self.collection}' has named vectors {sorted(vectors)}: pass --vector-name"
                    )
                name = next(iter(vectors))
                self.opts = self.opts.model_copy(update={"vector_name": name})
            if name not in vectors:
                raise UsageError(f"qdrant collection '{self.collection}' has no vector named '{name}'")
            return vectors[name]
        if self.opts.vector_name is not None:
            raise UsageError(f"qdrant collection '{self.collection}' has one unnamed vector; drop --vector-name")
        return vectors

    def describe(self) -> StoreInfo:
        client = self.client()
        if not self.guarded("looking up the collection", client.collection_exists, self.collection):
            return StoreInfo(exists=False)
        info = self.guarded("reading the collection config", client.get_collection, self.collection)
        params = self._vector_params(info)
        count = self.guarded("counting points", client.count, self.collection, exact=True).count
        metric = {v: k for k, v in _DISTANCES.items()}.get(str(getattr(params.distance, "value", params.distance)))
        return StoreInfo(exists=True, dims=int(params.size), metric=metric, count=int(count))

    def stored_form(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if self.opts.path is not None:
            return batch  # local mode gives vectors back as they were given
        metric = self.opts.metric or self._existing_metric() or "cosine"
        if metric != "cosine" or batch.num_rows == 0 or uniform_dims(batch) is None:
            return batch
        matrix = vector_matrix(batch).astype(np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        normalised = np.where(norms > 0, matrix / np.where(norms > 0, norms, 1), matrix).astype(np.float32)
        from vmig.batch import vector_array

        return batch.set_column(
            batch.schema.get_field_index("vector"), "vector", vector_array(normalised, batch.num_rows)
        )

    def _existing_metric(self) -> str | None:
        try:
            return self.describe().metric
        except UsageError:
            return None

    # -- extract ----------------------------------------------------------------

    def extract(self, namespace: str | None, cursor: Cursor | None) -> Iterator[Page]:
        from qdrant_client import models

        client = self.client()
        if not self.guarded("looking up the collection", client.collection_exists, self.collection):
            raise UsageError(f"qdrant {self._where}: collection '{self.collection}' not found (check --collection)")
        self._vector_params(self.guarded("reading the collection config", client.get_collection, self.collection))
        flt = None
        if namespace is not None:
            flt = models.Filter(must=[models.FieldCondition(key="namespace", match=models.MatchValue(value=namespace))])
        with_vectors: Any = [self.opts.vector_name] if self.opts.vector_name else True
        offset = cursor
        while True:
            points, next_offset = self.guarded(
                "scrolling points",
                client.scroll,
                self.collection,
                scroll_filter=flt,
                limit=self.page_size,
                offset=offset,
                with_payload=True,
                with_vectors=with_vectors,
            )
            done = next_offset is None
            if points:
                batch, rejects = self._points_to_batch(points)
                yield Page(batch, None if done else _json_cursor(next_offset), rejects)
            if done or not points:
                return
            offset = next_offset

    def _points_to_batch(self, points: list[Any]) -> tuple[pa.RecordBatch, list[Reject]]:
        """The points as a batch, and those whose payload vex cannot carry unchanged as rejects."""
        records = RecordColumns()
        rejects: list[Reject] = []
        name = self.opts.vector_name
        for point in points:
            try:
                fields = _payload_fields(point.payload or {}, self.name)
            except md.WideIntegerError as exc:
                rejects.append(Reject(None, f"qdrant point {point.id}: payload {exc}", b"", id=_original_id(point)))
                continue
            vector = point.vector.get(name) if isinstance(point.vector, dict) and name else point.vector
            vector_array = None if vector is None else np.asarray(vector, dtype=np.float32)
            records.add(_original_id(point), vector_array, **fields._asdict())
        batch = records.build()
        return batch, rejects

    # -- load -------------------------------------------------------------------

    def ensure_target(self, dims: int | None, metric: str | None) -> None:
        from qdrant_client import models

        client = self.client()
        wanted = self.opts.metric or metric
        if self.guarded("looking up the collection", client.collection_exists, self.collection):
            what = f"qdrant collection '{self.collection}'"
            self.refuse_mismatch(self.describe(), dims, wanted, what, "--collection")
            return
        if dims is None:
            raise UsageError("qdrant needs a dimension to create a collection: pass --dims N")
        params = models.VectorParams(size=dims, distance=models.Distance(_DISTANCES[wanted or "cosine"]))
        config: Any = {self.opts.vector_name: params} if self.opts.vector_name else params
        self.guarded("creating the collection", client.create_collection, self.collection, vectors_config=config)

    def load(self, batch: pa.RecordBatch) -> LoadResult:
        from qdrant_client import models

        if batch.num_rows == 0:
            return LoadResult(written=0)
        record_ids = batch.column("id").to_pylist()
        point_ids: list[Any] = [point_id(i) for i in record_ids]  # int | str; the client wants its own union
        keep, failed = _claims(record_ids, point_ids, self._holders(point_ids))
        if failed:
            batch = batch.filter(pa.array(keep))
            point_ids = [pid for pid, kept in zip(point_ids, keep, strict=True) if kept]
        if batch.num_rows:
            vectors: Any = vector_matrix(batch).tolist()
            if self.opts.vector_name:
                vectors = {self.opts.vector_name: vectors}
            points = models.Batch(ids=point_ids, vectors=vectors, payloads=_payloads(batch))
            self.guarded("upserting points", self.client().upsert, self.collection, points=points, wait=True)
        return LoadResult(written=batch.num_rows, failed=failed)

    def takes_concurrent_writers(self) -> bool:
        return self.opts.url is not None  # a server does; the embedded store is one process's

    def delete(self, namespace: str | None, ids: list[str]) -> None:
        from qdrant_client import models

        points: list[Any] = [point_id(record_id) for record_id in ids]
        selector = models.PointIdsList(points=points)
        self.guarded("deleting points", self.client().delete, self.collection, points_selector=selector, wait=True)

    def _holders(self, point_ids: list[int | str]) -> dict[int | str, str]:
        """The original id each of these points already holds, for those that exist: one request, the
        `_vex_id` field only (no vectors), so a re-import costs little more than an import."""
        found = self.guarded(
            "looking up the points' ids",
            self.client().retrieve,
            self.collection,
            ids=list(dict.fromkeys(point_ids)),
            with_payload=[ID_FIELD],
            with_vectors=False,
        )
        return {point.id: _original_id(point) for point in found}

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            finally:
                self._client = None


def _original_id(point: Any) -> str:
    """The record id a point holds: its `_vex_id`, or, for a point another tool wrote, the point id itself
    (a UUID in Qdrant's lower-case spelling). Export and the checks before an upsert agree on it."""
    payload = point.payload or {}
    return str(payload[ID_FIELD] if ID_FIELD in payload else point.id)


def _claims(
    record_ids: list[str], point_ids: list[int | str], holders: dict[int | str, str]
) -> tuple[list[bool], list[tuple[str, str]]]:
    """Which records may be written: a point belongs to the id it already holds (`holders`), else to the
    first id of the batch that maps to it. Any other id mapping there is a failed record naming that
    holder, never an overwrite; the holder's own id again (a re-import) is an ordinary update."""
    holders = dict(holders)
    keep = [True] * len(record_ids)
    failed: list[tuple[str, str]] = []
    for row, (record_id, pid) in enumerate(zip(record_ids, point_ids, strict=True)):
        holder = holders.setdefault(pid, record_id)
        if holder != record_id:
            keep[row] = False
            reason = f"id '{record_id}' maps to the same Qdrant point ({pid}) as id '{holder}', which is stored there"
            failed.append((record_id, reason + ": it is not replaced"))
    return keep, failed


def _json_cursor(offset: Any) -> Any:
    return offset if isinstance(offset, (int, str)) else str(offset)


def _payloads(batch: pa.RecordBatch) -> list[dict[str, Any]]:
    columns = {
        name: batch.column(name).to_pylist()
        for name in ("id", "text", "namespace", "model", "metadata", "score", "source_store", "extra")
    }
    created = batch.column("created_at").cast(pa.int64()).to_pylist()
    payloads = []
    for i in range(batch.num_rows):
        payload: dict[str, Any] = {
            ID_FIELD: columns["id"][i],
            "text": columns["text"][i],
            "namespace": columns["namespace"][i],
            "model": columns["model"][i],
            "created_at": None if created[i] is None else format_micros(created[i]),
            "metadata": md.loads(columns["metadata"][i]),
        }
        for optional in ("score", "source_store"):
            if columns[optional][i] is not None:
                payload[optional] = columns[optional][i]
        if columns["extra"][i]:
            payload["extra"] = md.loads(columns["extra"][i])
        payloads.append(payload)
    return payloads


class _Fields(NamedTuple):
    """A point's payload as the fields of a record (`metadata`, `extra`: JSON text)."""

    text: str | None
    namespace: str | None
    model: str | None
    source_store: str | None
    created_at: int | None
    score: float | None
    metadata: str
    extra: str | None


_TEXT_KEYS = ("text", "page_content", "document")
"""Where vex, LangChain and LlamaIndex keep a point's text; the first that holds a string is the text."""
_EARLIEST, _LATEST = -62_135_596_800_000_000, 253_402_300_799_999_999
"""created_at in µs from 0001-01-01 to 9999-12-31: what the format can write."""


def _payload_fields(payload: dict[str, Any], origin: str) -> _Fields:
    """A point's record fields. vex's own payload fits them as it is. A payload another tool wrote may
    use the same names for other things: a value that does not fit its field (a text that is no string,
    a created_at that is no time, a `metadata` that is no object) is kept in the metadata under its own
    key instead of failing the export or being dropped, and so is every other top-level key. The nested
    `metadata` object keeps its keys; a top-level key of the same name goes in as `payload:<key>`.
    `origin` is the source_store of a point that names none. `md.WideIntegerError` for an integer beyond
    64 bits (the local client keeps Python's integers; JSON text would change it)."""
    nested = payload.get("metadata")
    meta: dict[str, Any] = dict(nested) if isinstance(nested, dict) else {}
    text_key = next((key for key in _TEXT_KEYS if isinstance(payload.get(key), str)), None)
    stamp = _stamp(payload.get("created_at"))
    score: Any = payload.get("score")
    score_fits = type(score) is float or (type(score) is int and abs(score) <= 2**53)
    extra = payload.get("extra")
    taken = {
        ID_FIELD: True,
        "metadata": isinstance(nested, dict) or nested is None,
        "text": text_key == "text" or payload.get("text") is None,
        "created_at": stamp is not None or payload.get("created_at") is None,
        "score": score_fits or score is None,
        "extra": isinstance(extra, dict) or extra is None,
    }
    if text_key is not None:
        taken[text_key] = True
    for key in ("namespace", "model", "source_store"):
        taken[key] = payload.get(key) is None or isinstance(payload[key], str)
    for key, value in payload.items():
        if not taken.get(key, False):
            _keep(meta, key, value)
    return _Fields(
        text=payload[text_key] if text_key is not None else None,
        namespace=payload.get("namespace") if taken["namespace"] else None,
        model=payload.get("model") if taken["model"] else None,
        source_store=payload.get("source_store", origin) if taken["source_store"] else origin,
        created_at=stamp,
        score=float(score) if score_fits else None,
        metadata=md.dumps(meta) or "{}",
        extra=md.dumps(extra) if isinstance(extra, dict) and extra else None,
    )


def _stamp(value: Any) -> int | None:
    """created_at in µs, or None where the value is no time the format can write."""
    try:
        stamp = to_micros(value)
    except (TimestampError, OverflowError):
        return None
    return stamp if stamp is not None and _EARLIEST <= stamp <= _LATEST else None


def _keep(meta: dict[str, Any], key: str, value: Any) -> None:
    """Put a top-level payload value into the metadata without replacing a key it already has."""
    while key in meta:
        key = "payload:" + key
    meta[key] = value
