"""Pinecone, on the official `pinecone` SDK (10.x), both directions; namespaces are Pinecone namespaces.

An index is found by `--index` (its data-plane host looked up from its description, or given with `--host`);
a missing one is created serverless on import with `--cloud` and `--region`. Metadata is flat in Pinecone
(strings, numbers, booleans, lists of strings; no nulls), so a record's metadata travels as
`connectors.flatmeta` stores it: nested values, nulls, other lists and integers (which Pinecone returns as
doubles) restored exactly on export; the text is kept under the metadata key `text`, as LangChain and most
Pinecone tools keep it, so their indexes export with their text. Ids Pinecone cannot take (non-ASCII, a NUL,
or starting with `vex:u:`) are stored as `vex:u:<UUIDv5>` with the original under `_vex_id`; an id longer than
Pinecone's 512 characters, or a record whose metadata passes 40 KB, is a failed record with that reason
(`--truncate-text` cuts the text to fit instead, and the summary counts it). Sparse values are the
records' `sparse_vector`.

Export walks every namespace (or `--namespace`) through the paginated `list` endpoint and fetches the ids it
gives, at most 1,000 a request; the cursor is the namespace and the page token, so a run resumes where it
stopped. A pod-based index cannot list its ids: `--ids-from FILE` (one id per line) enumerates them.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import orjson
import pyarrow as pa
from pydantic import SecretStr

from connectors.base import Capabilities, Connector, Cursor, LoadResult, Page, StoreInfo, StoreOptions
from connectors.clients import ClientLibrary, is_network_error, network_reason
from connectors.flatmeta import FlatRule, flatten, restore
from connectors.ids import uuid_for
from vmig.backoff import base_delay
from vmig.batch import RecordColumns
from vmig.errors import AccessError, StoreError, TransientError, UsageError
from vmig.parallel import read_ahead
from vmig.sparse import sparse_rows

Item = tuple[str, bytes]
"""A record on its way: its id and its upsert JSON object, encoded."""
Run = tuple[str, list[str], Cursor]
"""Ids an export fetches in one request: their namespace, the ids, the cursor after them."""
METRICS = {"cosine": "cosine", "dot": "dotproduct", "euclid": "euclidean"}
"""vex's metric names and Pinecone's."""
MAX_VECTORS_PER_REQUEST = 1000
MAX_REQUEST_BYTES = 2 * 1024 * 1024
REQUEST_BUDGET = MAX_REQUEST_BYTES - 64 * 1024
"""Bytes of encoded records one upsert carries: Pinecone's 2 MB less room for the envelope."""
MAX_METADATA_BYTES = 40 * 1024
MAX_ID_LENGTH = 512
REQUESTS_IN_FLIGHT = 4
"""Upsert requests sent at once."""
FETCHES_IN_FLIGHT = 3
"""Fetch requests an export keeps going at once."""
LIST_PAGE = 100
LISTS_AHEAD = 2
"""Runs of listed ids (one fetch each) an export lists ahead of the fetches."""
"""Most ids one `list` page returns."""
MAPPED_PREFIX = "vex:u:"
ORIGINAL_ID_KEY = "_vex_id"
PINECONE_METADATA = FlatRule(
    int_range=(-(2**53), 2**53), ints_come_back_as_floats=True, string_lists=True, text_key="text",
    namespace_native=True,
)  # fmt: skip
"""Pinecone keeps numbers as doubles: integers within ±2**53 come back exactly (as floats, turned back into
integers by `_vex_int_keys`), larger ones travel as JSON text."""


class PineconeOptions(StoreOptions):
    index: str
    """Name of the index to read or write."""
    api_key: SecretStr | None = None
    """API key (default: the PINECONE_API_KEY environment variable)."""
    host: str | None = None
    """The index's data-plane host; looked up from the index description when omitted."""
    controller_host: str | None = None
    """The control-plane URL (default: Pinecone's, or PINECONE_CONTROLLER_HOST); a local fake's for tests."""
    cloud: str | None = None
    """Cloud of a serverless index an import creates when it is missing (aws, gcp, azure)."""
    region: str | None = None
    """Region of a serverless index an import creates when it is missing (e.g. us-east-1)."""
    metric: Literal["cosine", "dot", "euclid"] | None = None
    """Metric of a new index (default: the source's, else cosine); checked against an existing one."""
    ids_from: Path | None = None
    """Export the ids listed in this file (one a line): for a pod-based index, which cannot list its ids."""
    truncate_text: bool = False
    """Cut a record's text so its metadata fits Pinecone's 40 KB (counted in the summary) instead of failing it."""
    timeout: float = 30.0
    """Seconds one request may take."""


class PineconeConnector(Connector[PineconeOptions]):
    name: ClassVar[str] = "pinecone"
    Options = PineconeOptions
    capabilities: ClassVar[Capabilities] = Capabilities(
        deletes=True,
        max_batch=10_000,  # one load call cuts its requests by bytes (fewer part-filled requests than 1,000s would)
        metrics=tuple(METRICS),
        namespaces="native",
        max_dims=20_000,
        sparse_vectors=True,
        sparse_column=True,
    )
    client_library: ClassVar[ClientLibrary | None] = ClientLibrary("pinecone", "pinecone", "pinecone")

    def __init__(self, options: PineconeOptions) -> None:
        super().__init__(options)
        self._pc: Any = None
        self._index: Any = None
        self._model: Any = None
        self.truncated = 0
        """Records whose text `--truncate-text` cut to fit."""

    def label(self) -> str:
        return f"pinecone:{self.opts.index}"

    # -- client and errors ------------------------------------------------------

    def _control(self) -> Any:
        if self._pc is None:
            module = self.client_package()
            key = self.opts.api_key.get_secret_value() if self.opts.api_key else os.environ.get("PINECONE_API_KEY")
            if not key:
                raise UsageError("pinecone needs an API key: pass --api-key or set PINECONE_API_KEY")
            # The SDK's own control-plane backoff (0.25 s floor, 4 attempts) scales with vex's retry knob.
            retries = module.RetryConfig(backoff_factor=0.25 * base_delay(), max_wait=60.0 * base_delay())
            self._pc = module.Pinecone(api_key=key, host=self.opts.controller_host, timeout=self.opts.timeout,
                                       retry_config=retries)  # fmt: skip
        return self._pc

    def _describe_model(self) -> Any:
        """The index's description; None when there is no such index."""
        if self._model is None:
            from pinecone.errors.exceptions import NotFoundError

            with self.translated("describing the index"):
                try:
                    self._model = self._control().indexes.describe(self.opts.index)
                except NotFoundError:
                    return None
        return self._model

    def _data(self) -> Any:
        if self._index is None:
            host = self.opts.host
            if host is None:
                model = self._describe_model()
                if model is None:
                    raise UsageError(f"pinecone index '{self.opts.index}' not found (check --index)")
                host = model.host
            self._index = self.guarded("opening the index", self._control().index, host=host)
        return self._index

    def classify(self, exc: Exception, doing: str) -> Exception:
        from pinecone.errors import exceptions as errors

        where = f"pinecone index '{self.opts.index}'"
        status = getattr(exc, "status_code", None)
        message = str(getattr(exc, "message", "") or exc).strip().splitlines()[0][:300] if str(exc) else ""
        if isinstance(exc, (errors.UnauthorizedError, errors.ForbiddenError)):
            return AccessError(f"{where}: the API key was refused while {doing} (check --api-key)")
        if isinstance(exc, errors.NotFoundError):
            return UsageError(f"{where}: not found while {doing} (check --index and --host)")
        if isinstance(exc, (errors.PineconeConnectionError, errors.PineconeTimeoutError)) or is_network_error(exc):
            return TransientError(f"{where} unreachable while {doing} ({network_reason(exc)})")
        if status is not None and (status == 429 or status >= 500):
            return TransientError(f"{where}: Pinecone answered {status} while {doing} ({message})")
        return StoreError(f"{where}: {doing} failed: {message}")

    # -- describe ---------------------------------------------------------------

    def describe(self) -> StoreInfo:
        model = self._describe_model()
        if model is None:
            return StoreInfo(exists=False)
        stats = self.guarded("reading the index stats", self._data().describe_index_stats)
        by_namespace = {_api_namespace(name): int(entry.vector_count) for name, entry in stats.namespaces.items()}
        metric = _vex_metric(model.metric)
        kind = "pod-based" if _is_pod(model) else "serverless"
        return StoreInfo(
            exists=True,
            dims=model.dimension,
            metric=metric,
            count=int(stats.total_vector_count),
            count_by_namespace=by_namespace,
            layout=f"{kind} index, dense {model.dimension}-d, {model.metric}",
        )

    # -- import -----------------------------------------------------------------

    def ensure_target(self, dims: int | None, metric: str | None) -> None:
        model = self._describe_model()
        wanted = self.opts.metric or metric or "cosine"
        if model is not None:
            info = StoreInfo(exists=True, dims=model.dimension, metric=_vex_metric(model.metric))
            self.refuse_mismatch(info, dims, self.opts.metric, f"pinecone index '{self.opts.index}'", "--index")
            return
        if self.opts.cloud is None or self.opts.region is None:
            raise UsageError(
                f"pinecone index '{self.opts.index}' not found: pass --cloud and --region to create it serverless"
            )
        if dims is None:
            raise UsageError("pinecone needs a dimension to create an index: pass --dims N")
        deployment = {"deployment_type": "managed", "cloud": self.opts.cloud, "region": self.opts.region}
        self._model = self.guarded(
            "creating the index", self._control().indexes.create, name=self.opts.index, dimension=dims,
            metric=METRICS[wanted], deployment=deployment,
        )  # fmt: skip

    def load(self, batch: pa.RecordBatch) -> LoadResult:
        """Requests go out from a few threads while the next records are made ready: the client's work overlaps
        the server's, as Pinecone advises for bulk upserts. Every request is waited for before returning."""
        if batch.num_rows == 0:
            return LoadResult(written=0)
        index = self._data()
        truncated_before = self.truncated
        failed: list[tuple[str, str]] = []
        sent: list[Future[tuple[int, list[Any]]]] = []
        namespaces = batch.column("namespace").to_pylist()
        with ThreadPoolExecutor(max_workers=REQUESTS_IN_FLIGHT) as pool:
            for start in range(0, batch.num_rows, MAX_VECTORS_PER_REQUEST):
                vectors, refused = self._wire_vectors(batch.slice(start, MAX_VECTORS_PER_REQUEST))
                failed.extend(refused)
                by_namespace: dict[str, list[Item]] = {}
                for row, item in vectors.items():
                    by_namespace.setdefault(namespaces[start + row] or "", []).append(item)
                for namespace, items in by_namespace.items():
                    sent.extend(pool.submit(self._upsert, index, namespace, part) for part in _requests(items))
        written = 0
        for future in sent:
            ok, refused = future.result()  # the first error, once every request has ended
            written += ok
            failed.extend(refused)
        cut = self.truncated - truncated_before
        return LoadResult(written, failed, {"text truncated to fit 40 KB of metadata": cut} if cut else {})

    def _wire_vectors(self, batch: pa.RecordBatch) -> tuple[dict[int, Item], list[Any]]:
        """Each record as the upsert's JSON object, encoded here, or a failed record with the reason.

        Encoding here, from the float32 column, is what makes the import keep up: the SDK's `upsert` takes
        Python float lists (turning 20,000 x 384 values into floats costs more than everything else vex does
        with them) and prints each as a float64 (`0.10000000149011612`, where float32's shortest form is
        `0.1`), so its requests are nearly twice the size. Sizes are exact, for packing requests under 2 MB."""
        ids = batch.column("id").to_pylist()
        vectors = batch.column("vector")
        values = vectors.values.to_numpy(zero_copy_only=False)
        offsets = vectors.offsets.to_numpy()
        sparse = sparse_rows(batch.column("sparse_vector"))
        metadatas = flatten(batch, PINECONE_METADATA)
        out: dict[int, Item] = {}
        failed: list[tuple[str, str]] = []
        for row, record_id in enumerate(ids):
            stored_id = pinecone_id(record_id)
            if stored_id is None:
                failed.append((record_id, f"id is {len(record_id)} characters: Pinecone takes at most {MAX_ID_LENGTH}"))
                continue
            metadata = metadatas[row] or {}
            if stored_id != record_id:
                metadata[ORIGINAL_ID_KEY] = record_id
            vector: dict[str, Any] = {"id": stored_id, "values": values[offsets[row] : offsets[row + 1]]}
            if metadata:
                vector["metadata"] = metadata
            own_sparse = sparse[row]
            if own_sparse is not None:
                vector["sparseValues"] = own_sparse
            encoded = orjson.dumps(vector, option=orjson.OPT_SERIALIZE_NUMPY)
            if len(encoded) > MAX_METADATA_BYTES:  # only then can the metadata alone be over Pinecone's limit
                reason = self._fit_metadata(metadata)
                if reason is not None:
                    failed.append((record_id, reason))
                    continue
                encoded = orjson.dumps(vector, option=orjson.OPT_SERIALIZE_NUMPY)
            out[row] = (record_id, encoded)
        return out, failed

    def _fit_metadata(self, metadata: dict[str, Any]) -> str | None:
        """None when the metadata fits 40 KB (cutting the text where `--truncate-text` allows), else why not."""
        size = len(orjson.dumps(metadata))
        if size <= MAX_METADATA_BYTES:
            return None
        text = metadata.get("text")
        if self.opts.truncate_text and isinstance(text, str):
            over = size - MAX_METADATA_BYTES
            cut = text.encode()[: max(0, len(text.encode()) - over - 16)].decode(errors="ignore")
            while cut and len(orjson.dumps({**metadata, "text": cut})) > MAX_METADATA_BYTES:
                cut = cut[: len(cut) * 9 // 10]
            if len(orjson.dumps({**metadata, "text": cut})) <= MAX_METADATA_BYTES:
                metadata["text"] = cut
                self.truncated += 1
                return None
        return (
            f"metadata is {size:,} bytes: Pinecone takes at most {MAX_METADATA_BYTES:,} a record "
            "(--truncate-text cuts the text to fit)"
        )

    def _upsert(self, index: Any, namespace: str, items: list[Item]) -> tuple[int, list[Any]]:
        """One request; a request Pinecone refuses as a whole (a 4xx) is sent record by record, so only the
        records it refuses fail, each with Pinecone's reason."""
        try:
            answer = self.guarded("upserting vectors", _post_upsert, index, namespace, [v for _, v in items])
        except StoreError as exc:
            if len(items) == 1:
                return 0, [(items[0][0], str(exc))]
            written, failed = 0, []
            for item in items:
                ok, refused = self._upsert(index, namespace, [item])
                written += ok
                failed.extend(refused)
            return written, failed
        if int(answer.upserted_count) != len(items):
            raise StoreError(
                f"pinecone index '{self.opts.index}': {answer.upserted_count} of {len(items)} vectors acknowledged"
            )
        return len(items), []

    def delete(self, namespace: str | None, ids: list[str]) -> None:
        index = self._data()
        stored = [stored_id for stored_id in map(pinecone_id, ids) if stored_id is not None]
        for start in range(0, len(stored), MAX_VECTORS_PER_REQUEST):
            part = stored[start : start + MAX_VECTORS_PER_REQUEST]
            self.guarded("deleting vectors", index.delete, ids=part, namespace=_api_namespace(namespace or ""))

    # -- export -----------------------------------------------------------------

    def extract(self, namespace: str | None, cursor: Cursor | None) -> Iterator[Page]:
        model = self._describe_model()
        if model is None:
            raise UsageError(f"pinecone index '{self.opts.index}' not found (check --index)")
        if self.opts.ids_from is not None:
            yield from self._extract_listed(namespace, cursor)
            return
        if _is_pod(model):
            raise UsageError(
                f"pinecone index '{self.opts.index}' is pod-based and cannot list its ids: "
                "pass --ids-from FILE (one id per line) to export them"
            )
        index = self._data()
        if namespace is not None:
            spaces = [namespace]
        else:
            stats = self.guarded("reading the index stats", index.describe_index_stats)
            spaces = sorted(_api_namespace(name) for name in stats.namespaces)
        # The ids are listed by a thread of their own, so listing goes on while the pages before are written.
        yield from self._fetched_in_flight(index, read_ahead(self._listed_runs(index, spaces, cursor), LISTS_AHEAD))

    def _listed_runs(self, index: Any, spaces: list[str], cursor: Cursor | None) -> Iterator[Run]:
        """Each namespace's ids through `list`, in runs of at most one fetch, each with the cursor after it."""
        start_space, token = (cursor["namespace"], cursor["token"]) if cursor else (None, None)
        if start_space is not None:
            spaces = [space for space in spaces if space >= start_space]
        per_fetch = max(1, min(MAX_VECTORS_PER_REQUEST, self.page_size))
        per_list = min(LIST_PAGE, per_fetch)
        for position, space in enumerate(spaces):
            token = token if space == start_space else None
            while True:
                ids: list[str] = []
                while len(ids) + per_list <= per_fetch:
                    listed = self.guarded(
                        "listing ids", index.list_paginated, namespace=space, limit=per_list, pagination_token=token
                    )
                    ids.extend(item.id for item in listed.vectors)
                    token = listed.pagination.next if listed.pagination else None
                    if token is None:
                        break
                if token is not None:
                    yield space, ids, {"namespace": space, "token": token}
                    continue
                later = spaces[position + 1 :]
                yield space, ids, {"namespace": later[0], "token": None} if later else None
                break

    def _extract_listed(self, namespace: str | None, cursor: Cursor | None) -> Iterator[Page]:
        assert self.opts.ids_from is not None
        if not self.opts.ids_from.exists():
            raise UsageError(f"--ids-from {self.opts.ids_from}: file not found")
        ids = [line.strip() for line in self.opts.ids_from.read_text().splitlines() if line.strip()]
        index, space = self._data(), namespace or ""
        start = int(cursor or 0)
        step = max(1, min(self.page_size, MAX_VECTORS_PER_REQUEST))
        runs: list[Run] = [
            (space, ids[begin : begin + step], begin + step if begin + step < len(ids) else None)
            for begin in range(start, len(ids), step)
        ]
        yield from self._fetched_in_flight(index, runs or [(space, [], None)])

    def _fetched_in_flight(self, index: Any, runs: Iterable[Run]) -> Iterator[Page]:
        """A page per run, fetched by a few threads while the next ids are listed and the pages before are written:
        the SDK's and the server's work overlap, as for the upserts. Pages come out in order, each with its
        cursor, so a stop resumes after the last page written; pages fetched ahead of a stop are dropped."""
        pending: deque[tuple[Future[pa.RecordBatch], Cursor]] = deque()
        pool = ThreadPoolExecutor(max_workers=FETCHES_IN_FLIGHT)
        try:
            for space, ids, after in runs:
                pending.append((pool.submit(self._fetched, index, space, ids), after))
                if len(pending) >= FETCHES_IN_FLIGHT:
                    fetched, cursor = pending.popleft()
                    yield Page(fetched.result(), cursor)
            while pending:
                fetched, cursor = pending.popleft()
                yield Page(fetched.result(), cursor)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            close = getattr(runs, "close", None)
            if close is not None:
                close()  # the listing thread stops and is joined

    def _fetched(self, index: Any, space: str, ids: list[str]) -> pa.RecordBatch:
        records = RecordColumns()
        found: dict[str, Any] = {}
        for begin in range(0, len(ids), MAX_VECTORS_PER_REQUEST):
            part = ids[begin : begin + MAX_VECTORS_PER_REQUEST]
            found.update(self.guarded("fetching vectors", _get_fetched, index, part, space))
        rows: list[list[float]] = []
        for stored_id in ids:
            vector = found.get(stored_id)
            if vector is None:
                continue  # deleted between list and fetch
            metadata = dict(vector.get("metadata") or {})
            record_id = metadata.pop(ORIGINAL_ID_KEY, None)
            fields, meta_text = restore(metadata, PINECONE_METADATA)
            sparse = vector.get("sparseValues")
            if sparse is not None:
                fields["sparse_vector"] = {"indices": list(sparse["indices"]), "values": list(sparse["values"])}
            if fields["source_store"] is None:
                fields["source_store"] = "pinecone"
            fields["namespace"] = space or None
            text = fields.pop("text")
            records.add(
                record_id if isinstance(record_id, str) else stored_id, None, text, metadata=meta_text, **fields
            )
            rows.append(vector.get("values") or [])
        if rows and len({len(row) for row in rows}) == 1:
            return records.build(vectors=np.array(rows, dtype=np.float32))  # one matrix: no per-row arrays
        return records.build(vectors=[np.asarray(row, dtype=np.float32) for row in rows])

    def close(self) -> None:
        self._index = None
        self._pc = None


def pinecone_id(record_id: str) -> str | None:
    """The id Pinecone keeps a record under: the id itself where Pinecone takes it, `vex:u:<UUIDv5>` where it
    does not (non-ASCII, a NUL, or our own prefix), None where the id is longer than Pinecone allows."""
    if len(record_id) > MAX_ID_LENGTH:
        return None
    if record_id and record_id.isascii() and "\x00" not in record_id and not record_id.startswith(MAPPED_PREFIX):
        return record_id
    return MAPPED_PREFIX + str(uuid_for(record_id))


def _requests(items: list[Item]) -> Iterator[list[Item]]:
    """Items cut into upsert requests within Pinecone's limits: 1,000 vectors and 2 MB (by each one's real size)."""
    request: list[Item] = []
    size = 0
    for item in items:
        if request and (len(request) == MAX_VECTORS_PER_REQUEST or size + len(item[1]) > REQUEST_BUDGET):
            yield request
            request, size = [], 0
        request.append(item)
        size += len(item[1]) + 1
    if request:
        yield request


def _post_upsert(index: Any, namespace: str, vectors: list[bytes]) -> Any:
    """An upsert of records vex encoded, through the SDK's own HTTP client (its authentication, connection
    pool, retries with backoff and Retry-After, and errors) and its own reading of the answer. Only the
    request body is ours: `orjson.Fragment` puts the encoded records in it as they are. An SDK without these
    parts (not the pinned one) gets the records through its public `upsert`, slower but the same."""
    http, adapter = getattr(index, "_http", None), getattr(index, "_adapter", None)
    if http is None or adapter is None:
        return index.upsert(vectors=[orjson.loads(vector) for vector in vectors], namespace=namespace)
    body: dict[str, Any] = {"vectors": [orjson.Fragment(vector) for vector in vectors]}
    if namespace:
        body["namespace"] = namespace
    return adapter.to_upsert_response(http.post("/vectors/upsert", json=body).content)


def _get_fetched(index: Any, ids: list[str], namespace: str) -> dict[str, Any]:
    """`fetch` through the SDK's own HTTP client (authentication, pool, retries, errors), its answer read by
    orjson into plain values: the SDK's typed reading of it (a validated object per vector) cost the export a
    sixth of its time. The answer as the REST API gives it: id -> {values, metadata, sparseValues}. An SDK
    without that client (not the pinned one) is read through its public `fetch`."""
    http = getattr(index, "_http", None)
    if http is None:
        answer = index.fetch(ids=ids, namespace=namespace).vectors
        return {
            key: {"values": vector.values, "metadata": vector.metadata,
                  "sparseValues": None if vector.sparse_values is None else {
                      "indices": vector.sparse_values.indices, "values": vector.sparse_values.values}}
            for key, vector in answer.items()
        }  # fmt: skip
    params: dict[str, Any] = {"ids": ids}
    if namespace:
        params["namespace"] = namespace
    return dict(orjson.loads(http.get("/vectors/fetch", params=params).content).get("vectors") or {})


def _vex_metric(name: Any) -> str | None:
    return {pinecone: vex for vex, pinecone in METRICS.items()}.get(str(name))


def _is_pod(model: Any) -> bool:
    return getattr(model.spec, "pod", None) is not None


def _api_namespace(name: str) -> str:
    """A namespace as the data-plane calls take it: the default one is ""."""
    return "" if name == "__default__" else name
