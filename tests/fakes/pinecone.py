"""A local Pinecone: the control plane and each index's data plane over HTTP, as the official `pinecone` SDK (10.x,
API version 2026-07) calls them, with Pinecone's documented limits and injectable failures.

No Pinecone server installs here, so vex's Pinecone connector is tested against this. It follows the REST API the
SDK speaks: `GET/POST /indexes`, `GET/DELETE /indexes/{name}` on the control plane; `POST /vectors/upsert`,
`GET /vectors/fetch`, `GET /vectors/list`, `POST /vectors/delete`, `POST /describe_index_stats` and a brute-force
`POST /query` (no filters) on the index's own host (here: its own port, as Pinecone Local does). Limits enforced as
Pinecone documents them: at most 1,000 vectors and 2 MB per upsert request, ids of 1-512 ASCII characters, metadata
of at most 40 KB per record whose values are strings, numbers, booleans or lists of strings (no nulls, no nesting),
vectors of the index's dimension, at most 1,000 ids per fetch, 100 per list page. Numbers come back as doubles
(`5` reads `5.0`), vector values as float32, as Pinecone stores them. A pod-based index cannot list ids, as on
Pinecone.

Run it standalone to try the CLI against it: `python -m tests.fakes.pinecone --port 5080`.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import itertools
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np
import orjson

from tests.fakes.json_http import JsonHandler, QuietServer, serve

MAX_UPSERT_VECTORS = 1000
MAX_REQUEST_BYTES = 2 * 1024 * 1024
MAX_METADATA_BYTES = 40 * 1024
MAX_ID_LENGTH = 512
MAX_FETCH_IDS = 1000
MAX_LIST_LIMIT = 100
MAX_TOP_K = 10_000
DEFAULT_NAMESPACE = "__default__"


class ApiFailure(Exception):
    def __init__(self, status: int, message: str, code: str = "INVALID_ARGUMENT", retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.retry_after = retry_after


@dataclass
class Fault:
    status: int
    plane: str
    """"data", "control" or "any"."""
    retry_after: float | None
    path: str | None
    after: int = 0
    """Matching requests still to answer normally before this fault."""


@dataclass
class FakeIndex:
    name: str
    dimension: int
    metric: str
    pod: bool = False
    namespaces: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    writes: Counter[str] = field(default_factory=Counter)
    """How many times each id was written by an upsert that succeeded."""
    server: ThreadingHTTPServer | None = None
    version: int = 0
    """Bumped by every write, so `list` sorts a namespace's ids once per change, not once per page."""
    sorted_ids: dict[str, tuple[int, list[str]]] = field(default_factory=dict)

    def ids_in_order(self, namespace: str) -> list[str]:
        """The namespace's ids sorted (the caller holds the fake's lock)."""
        cached = self.sorted_ids.get(namespace)
        if cached is None or cached[0] != self.version:
            cached = (self.version, sorted(self.namespaces.get(namespace, {})))
            self.sorted_ids[namespace] = cached
        return cached[1]

    @property
    def host(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"


class FakePinecone:
    """The fake's state, servers and fault switches; a context manager that starts and stops it."""

    def __init__(self, api_key: str = "pclocal-test-key", port: int = 0, latency: float = 0.0) -> None:
        self.api_key = api_key
        self.latency = latency
        """Seconds each data-plane request waits before it is answered: a stand-in for the network and the
        server's own time, which a local fake otherwise lacks (0: answer as fast as the fake can)."""
        self.indexes: dict[str, FakeIndex] = {}
        self.lock = threading.Lock()
        self.faults: deque[Fault] = deque()
        self.failing_ids: dict[str, str] = {}
        self.requests: Counter[str] = Counter()
        self._port = port
        self.control: ThreadingHTTPServer | None = None

    # -- switches tests use ------------------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        times: int = 1,
        plane: str = "data",
        retry_after: float | None = 0,
        path: str | None = None,
        after: int = 0,
    ) -> None:
        """The next `times` requests (of a plane, or to a path), once `after` more of them have been answered,
        answer `status` (with `Retry-After`)."""
        with self.lock:
            self.faults.extend(Fault(status, plane, retry_after, path, after if n == 0 else 0) for n in range(times))

    def fail_requests_with(self, record_id: str, message: str = "simulated refusal") -> None:
        """Every upsert request that carries this id answers 400 with `message` (a per-request failure)."""
        self.failing_ids[record_id] = message

    def create_index(self, name: str, dimension: int, metric: str = "cosine", pod: bool = False) -> FakeIndex:
        with self.lock:
            index = FakeIndex(name, dimension, metric, pod)
            self._serve_index(index)
            self.indexes[name] = index
            return index

    # -- lifecycle ---------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self.control is not None
        return f"http://127.0.0.1:{self.control.server_address[1]}"

    def start(self) -> FakePinecone:
        self.control = _server(self, "control", None, self._port)
        return self

    def stop(self) -> None:
        servers = [self.control, *(index.server for index in self.indexes.values())]
        for server in servers:
            if server is not None:
                server.shutdown()
                server.server_close()

    def __enter__(self) -> FakePinecone:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve_index(self, index: FakeIndex) -> None:
        index.server = _server(self, "data", index, 0)

    # -- request handling --------------------------------------------------------------------------------

    def check(self, plane: str, path: str, headers: Any) -> None:
        if headers.get("Api-Key") != self.api_key:
            raise ApiFailure(401, "Invalid API Key", "UNAUTHENTICATED")
        with self.lock:
            self.requests[f"{plane} {path}"] += 1
            if self.faults:
                fault = self.faults[0]
                if fault.plane in (plane, "any") and (fault.path is None or fault.path == path):
                    if fault.after > 0:
                        fault.after -= 1
                        return
                    self.faults.popleft()
                    reason = "Too Many Requests" if fault.status == 429 else "Service Unavailable"
                    raise ApiFailure(fault.status, f"simulated {reason}", "UNAVAILABLE", fault.retry_after)
        if plane == "data" and self.latency > 0:
            time.sleep(self.latency)

    def control_request(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        parts = [unquote(part) for part in path.strip("/").split("/")]
        if parts == ["indexes"] and method == "GET":
            with self.lock:
                return 200, {"indexes": [_model(index) for index in self.indexes.values()]}
        if parts == ["indexes"] and method == "POST":
            return 201, _model(self._create(body))
        if len(parts) == 2 and parts[0] == "indexes":
            index = self.indexes.get(parts[1])
            if index is None:
                raise ApiFailure(404, f"Resource {parts[1]} not found", "NOT_FOUND")
            if method == "GET":
                return 200, _model(index)
            if method == "DELETE":
                with self.lock:
                    del self.indexes[parts[1]]
                assert index.server is not None
                threading.Thread(target=index.server.shutdown, daemon=True).start()
                return 202, None
        raise ApiFailure(404, f"no route {method} {path}", "NOT_FOUND")

    def _create(self, body: dict[str, Any]) -> FakeIndex:
        name = body.get("name")
        fields = (body.get("schema") or {}).get("fields") or {}
        dense = fields.get("_values") or {}
        deployment = body.get("deployment") or {}
        if not isinstance(name, str) or not name:
            raise ApiFailure(400, "name is required")
        if dense.get("type") != "dense_vector" or not isinstance(dense.get("dimension"), int):
            raise ApiFailure(400, "this fake makes dense vector indexes only (schema field _values)")
        if name in self.indexes:
            raise ApiFailure(409, f"Resource {name} already exists", "ALREADY_EXISTS")
        metric = dense.get("metric") or "cosine"
        if metric not in ("cosine", "dotproduct", "euclidean"):
            raise ApiFailure(400, f"unknown metric {metric}")
        return self.create_index(name, dense["dimension"], metric, pod=deployment.get("deployment_type") == "pod")

    def data_request(self, index: FakeIndex, method: str, path: str, query: dict[str, list[str]], raw: bytes) -> Any:
        if path == "/vectors/upsert" and method == "POST":
            return self._upsert(index, raw)
        if path == "/vectors/fetch" and method == "GET":
            return self._fetch(index, query)
        if path == "/vectors/list" and method == "GET":
            return self._list(index, query)
        if path == "/query" and method == "POST":
            return self._query(index, orjson.loads(raw or b"{}"))
        if path == "/vectors/delete" and method == "POST":
            return self._delete(index, orjson.loads(raw or b"{}"))
        if path == "/describe_index_stats" and method == "POST":
            with self.lock:
                spaces = {ns: {"vectorCount": len(rows)} for ns, rows in index.namespaces.items() if rows}
            total = sum(entry["vectorCount"] for entry in spaces.values())
            return {"namespaces": spaces, "dimension": index.dimension, "indexFullness": 0.0,
                    "totalVectorCount": total, "metric": index.metric, "vectorType": "dense"}  # fmt: skip
        raise ApiFailure(404, f"no route {method} {path}", "NOT_FOUND")

    def _upsert(self, index: FakeIndex, raw: bytes) -> Any:
        if len(raw) > MAX_REQUEST_BYTES:
            raise ApiFailure(400, f"Request size {len(raw)} bytes exceeds the maximum supported size of 2MB")
        body = orjson.loads(raw)
        vectors = body.get("vectors") or []
        if len(vectors) > MAX_UPSERT_VECTORS:
            raise ApiFailure(400, f"Request contains {len(vectors)} vectors: at most {MAX_UPSERT_VECTORS} per upsert")
        rows = {}
        for vector in vectors:
            record_id = vector.get("id")
            if record_id in self.failing_ids:
                raise ApiFailure(400, self.failing_ids[record_id])
            rows[record_id] = _checked(index, vector)
        namespace = body.get("namespace") or DEFAULT_NAMESPACE
        with self.lock:
            space = index.namespaces.setdefault(namespace, {})
            space.update(rows)
            index.writes.update(rows.keys())
            index.version += 1
        return {"upsertedCount": len(rows)}

    def _fetch(self, index: FakeIndex, query: dict[str, list[str]]) -> Any:
        ids = query.get("ids", [])
        if len(ids) > MAX_FETCH_IDS:
            raise ApiFailure(400, f"fetch takes at most {MAX_FETCH_IDS} ids, got {len(ids)}")
        namespace = (query.get("namespace") or [""])[0] or DEFAULT_NAMESPACE
        with self.lock:
            space = index.namespaces.get(namespace, {})
            found = {record_id: _shown(record_id, space[record_id]) for record_id in ids if record_id in space}
        return {"vectors": found, "namespace": "" if namespace == DEFAULT_NAMESPACE else namespace,
                "usage": {"readUnits": 1}}  # fmt: skip

    def _list(self, index: FakeIndex, query: dict[str, list[str]]) -> Any:
        if index.pod:
            raise ApiFailure(400, "List operation is not supported for pod-based indexes")
        limit = int((query.get("limit") or [str(MAX_LIST_LIMIT)])[0])
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise ApiFailure(400, f"limit must be between 1 and {MAX_LIST_LIMIT}")
        namespace = (query.get("namespace") or [""])[0] or DEFAULT_NAMESPACE
        prefix = (query.get("prefix") or [""])[0]
        token = (query.get("paginationToken") or [None])[0]
        after = base64.urlsafe_b64decode(token.encode()).decode() if token else None
        with self.lock:
            ordered = index.ids_in_order(namespace)
            start = bisect.bisect_right(ordered, after) if after is not None else 0
            page, more = [], False
            for record_id in itertools.islice(ordered, start, None):
                if not record_id.startswith(prefix):
                    continue
                if len(page) == limit:
                    more = True
                    break
                page.append(record_id)
        answer: dict[str, Any] = {"vectors": [{"id": i} for i in page], "namespace": query.get("namespace", [""])[0],
                                  "usage": {"readUnits": 1}}  # fmt: skip
        if more:
            answer["pagination"] = {"next": base64.urlsafe_b64encode(page[-1].encode()).decode()}
        return answer

    def _query(self, index: FakeIndex, body: dict[str, Any]) -> Any:
        """A brute-force nearest-neighbour search of one namespace, without metadata filters: enough to see that
        what was written is searchable. Scores as Pinecone gives them: cosine similarity, dot product (higher is
        closer), squared euclidean distance (lower is closer)."""
        top_k = body.get("topK")
        if not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
            raise ApiFailure(400, f"topK must be between 1 and {MAX_TOP_K}")
        if body.get("filter"):
            raise ApiFailure(400, "this fake does not evaluate metadata filters")
        namespace = body.get("namespace") or DEFAULT_NAMESPACE
        with self.lock:
            space = dict(index.namespaces.get(namespace, {}))
        if isinstance(body.get("id"), str):
            stored = space.get(body["id"])
            query = None if stored is None else stored["values"]
        elif isinstance(body.get("vector"), list):
            query = np.asarray(body["vector"], dtype=np.float32)
            if len(query) != index.dimension:
                raise ApiFailure(400, f"Vector dimension {len(query)} does not match the dimension of the index "
                                      f"{index.dimension}")  # fmt: skip
        else:
            raise ApiFailure(400, "a query needs a vector or an id")
        matches: list[dict[str, Any]] = []
        if query is not None and space:
            ids = list(space)
            matrix = np.stack([space[record_id]["values"] for record_id in ids]).astype(np.float64)
            scores = _scores(index.metric, matrix, np.asarray(query, dtype=np.float64))
            order = np.argsort(scores if index.metric == "euclidean" else -scores, kind="stable")[:top_k]
            for row in order:
                shown = _shown(ids[row], space[ids[row]])
                match: dict[str, Any] = {"id": ids[row], "score": float(scores[row])}
                if body.get("includeValues"):
                    match["values"] = shown["values"]
                    if "sparseValues" in shown:
                        match["sparseValues"] = shown["sparseValues"]
                if body.get("includeMetadata") and "metadata" in shown:
                    match["metadata"] = shown["metadata"]
                matches.append(match)
        return {"matches": matches, "namespace": "" if namespace == DEFAULT_NAMESPACE else namespace,
                "usage": {"readUnits": 1}}  # fmt: skip

    def _delete(self, index: FakeIndex, body: dict[str, Any]) -> Any:
        namespace = body.get("namespace") or DEFAULT_NAMESPACE
        with self.lock:
            space = index.namespaces.get(namespace, {})
            if body.get("deleteAll"):
                space.clear()
            for record_id in body.get("ids") or []:
                space.pop(record_id, None)
            index.version += 1
        return {}


def _checked(index: FakeIndex, vector: dict[str, Any]) -> dict[str, Any]:
    """A vector as Pinecone would store it, or the 400 Pinecone answers for it."""
    record_id = vector.get("id")
    if not isinstance(record_id, str) or not record_id:
        raise ApiFailure(400, "Vector ID must be a non-empty string")
    if len(record_id) > MAX_ID_LENGTH or not record_id.isascii() or "\x00" in record_id:
        raise ApiFailure(400, f"Vector ID must be ASCII and at most {MAX_ID_LENGTH} characters: {record_id[:40]!r}")
    values = vector.get("values") or []
    if len(values) != index.dimension:
        raise ApiFailure(400, f"Vector dimension {len(values)} does not match the dimension of the index "
                              f"{index.dimension}")  # fmt: skip
    stored: dict[str, Any] = {"values": np.asarray(values, dtype=np.float32)}
    sparse = vector.get("sparseValues")
    if sparse is not None:
        indices, sparse_values = sparse.get("indices") or [], sparse.get("values") or []
        if len(indices) != len(sparse_values):
            raise ApiFailure(400, "Sparse vector indices and values must have the same length")
        stored["sparse"] = (list(map(int, indices)), np.asarray(sparse_values, dtype=np.float32))
    metadata = vector.get("metadata")
    if metadata is not None:
        size = len(orjson.dumps(metadata))
        if size > MAX_METADATA_BYTES:
            raise ApiFailure(400, f"Metadata size is {size} bytes, which exceeds the limit of {MAX_METADATA_BYTES} "
                                  "bytes per vector")  # fmt: skip
        kept: dict[str, Any] = {}
        for key, value in metadata.items():
            if isinstance(value, bool) or isinstance(value, str):
                kept[key] = value
            elif isinstance(value, (int, float)):
                kept[key] = float(value)  # Pinecone keeps numbers as doubles
            elif isinstance(value, list) and all(isinstance(item, str) for item in value):
                kept[key] = list(value)
            else:
                shown = "null" if value is None else type(value).__name__
                raise ApiFailure(400, f"Metadata value must be a string, number, boolean or list of strings, got "
                                      f"'{shown}' for field '{key}'")  # fmt: skip
        stored["metadata"] = kept
    return stored


def _scores(metric: str, matrix: np.ndarray, query: np.ndarray) -> np.ndarray:
    if metric == "dotproduct":
        return matrix @ query
    if metric == "euclidean":
        return np.sum((matrix - query) ** 2, axis=1)
    norms = np.linalg.norm(matrix, axis=1) * np.linalg.norm(query)
    return np.divide(matrix @ query, norms, out=np.zeros(len(matrix)), where=norms > 0)


def _shown(record_id: str, stored: dict[str, Any]) -> dict[str, Any]:
    # float32 arrays, printed in float32's shortest form as Pinecone prints them (`0.1`, not float64's
    # `0.10000000149011612`)
    shown: dict[str, Any] = {"id": record_id, "values": stored["values"]}
    if "sparse" in stored:
        indices, values = stored["sparse"]
        shown["sparseValues"] = {"indices": indices, "values": values}
    if "metadata" in stored:
        shown["metadata"] = stored["metadata"]
    return shown


def _model(index: FakeIndex) -> dict[str, Any]:
    deployment: dict[str, Any] = (
        {"deployment_type": "pod", "environment": "local", "pod_type": "p1.x1", "replicas": 1, "shards": 1, "pods": 1}
        if index.pod
        else {"deployment_type": "managed", "cloud": "aws", "region": "us-east-1"}
    )
    return {
        "name": index.name,
        "status": {"ready": True, "state": "Ready"},
        "schema": {
            "fields": {"_values": {"type": "dense_vector", "dimension": index.dimension, "metric": index.metric}}
        },
        "deployment": deployment,
        "deletion_protection": "disabled",
        "host": index.host,
    }


def _server(fake: FakePinecone, plane: str, index: FakeIndex | None, port: int) -> ThreadingHTTPServer:
    class Handler(JsonHandler):
        disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall

        def respond(self, method: str) -> None:
            url = urlsplit(self.path)
            raw = self.read_body()
            try:
                fake.check(plane, url.path, self.headers)
                if index is None:
                    status, answer = fake.control_request(method, url.path, orjson.loads(raw) if raw else {})
                else:
                    status, answer = 200, fake.data_request(index, method, url.path, parse_qs(url.query), raw)
                self.send_json(status, answer)
            except ApiFailure as failure:
                extra = {} if failure.retry_after is None else {"Retry-After": str(failure.retry_after)}
                body = {"error": {"code": failure.code, "message": failure.message}, "status": failure.status}
                self.send_json(failure.status, body, extra)

    return serve(Handler, port, QuietServer)


def main() -> None:
    parser = argparse.ArgumentParser(description="A local fake of Pinecone's API for trying vex")
    parser.add_argument("--port", type=int, default=5080)
    parser.add_argument("--api-key", default="pclocal-test-key")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="wait this long before each data-plane answer")
    args = parser.parse_args()
    with FakePinecone(args.api_key, args.port, args.latency_ms / 1000) as fake:
        print(f"fake Pinecone at {fake.url} (api key {fake.api_key}); each index gets its own port. Ctrl-C stops.")
        print(f"try: vex import --from FILE --to pinecone --index demo --controller-host {fake.url} "
              f"--api-key {fake.api_key} --cloud aws --region us-east-1", flush=True)  # fmt: skip
        try:
            threading.Event().wait()  # until Ctrl-C
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
