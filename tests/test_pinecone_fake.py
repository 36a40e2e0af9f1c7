"""The local fake of Pinecone (tests/fakes/pinecone.py) as the official SDK sees it: what vex's Pinecone tests rest
on. The SDK makes an index, writes, lists, fetches and queries through it unchanged; a wrong key is a 401; the
limits are the fake's own (sent as raw HTTP where the SDK would refuse them before sending); the injected faults
reach the SDK as Pinecone's would; and it runs standalone."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.chroma_server import free_port
from tests.conftest import ROOT
from tests.fakes.pinecone import FakePinecone

pinecone = pytest.importorskip("pinecone")
from pinecone.errors import exceptions as errors  # noqa: E402 - only once the SDK is known to be installed

SERVERLESS = {"deployment_type": "managed", "cloud": "aws", "region": "us-east-1"}


@pytest.fixture
def fake() -> Iterator[FakePinecone]:
    """A fake of its own, so the faults and counters one test sets reach no other."""
    with FakePinecone(api_key="fake-test-key") as own:
        yield own


def _client(fake: FakePinecone, key: str | None = None) -> Any:
    return pinecone.Pinecone(api_key=key or fake.api_key, host=fake.url)


def _index(fake: FakePinecone, name: str = "docs", dims: int = 4, metric: str = "cosine") -> Any:
    pc = _client(fake)
    model = pc.indexes.create(name=name, dimension=dims, metric=metric, deployment=SERVERLESS)
    return pc.index(host=model.host)


def _raw(url: str, body: dict[str, Any], key: str) -> tuple[int, dict[str, Any]]:
    """A POST as the SDK would send it, for what the SDK checks before sending."""
    request = urllib.request.Request(
        url, data=orjson.dumps(body), method="POST", headers={"Api-Key": key, "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, orjson.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, orjson.loads(refused.read())


def test_the_sdk_makes_an_index_writes_lists_fetches_and_queries(fake: FakePinecone) -> None:
    pc = _client(fake)
    model = pc.indexes.create(name="docs", dimension=4, metric="cosine", deployment=SERVERLESS)
    assert model.host.startswith("http://127.0.0.1:") and model.host != fake.url  # the index's own data plane
    assert [index.name for index in pc.indexes.list()] == ["docs"]
    described = pc.indexes.describe("docs")
    assert (described.dimension, described.metric, described.host) == (4, "cosine", model.host)
    index = pc.index(host=model.host)
    vectors = [(f"doc-{i:03d}", [1.0, float(i), 0.0, 0.5], {"n": i, "tag": ["a", "b"], "ok": True}) for i in range(250)]
    assert index.upsert(vectors=vectors[:200], namespace="left").upserted_count == 200
    assert index.upsert(vectors=vectors[200:]).upserted_count == 50  # the default namespace
    stats = index.describe_index_stats()
    assert stats.total_vector_count == 250
    assert {name: entry.vector_count for name, entry in stats.namespaces.items()} == {"left": 200, "__default__": 50}
    listed, token = [], None
    for _ in range(10):
        page = index.list_paginated(namespace="left", prefix="doc-1", limit=30, pagination_token=token)
        listed += [item.id for item in page.vectors]
        token = page.pagination.next if page.pagination else None
        if token is None:
            break
    assert listed == [f"doc-{i:03d}" for i in range(100, 200)]
    fetched = index.fetch(ids=["doc-007", "doc-999"], namespace="left").vectors
    assert list(fetched) == ["doc-007"]
    assert fetched["doc-007"].values == [1.0, 7.0, 0.0, 0.5]
    assert fetched["doc-007"].metadata == {"n": 7.0, "tag": ["a", "b"], "ok": True}  # numbers come back as doubles
    found = index.query(vector=[1.0, 7.0, 0.0, 0.5], top_k=3, namespace="left", include_metadata=True)
    assert found.matches[0].id == "doc-007" and found.matches[0].score == pytest.approx(1.0)
    assert found.matches[0].metadata["n"] == 7.0 and len(found.matches) == 3
    by_id = index.query(id="doc-210", top_k=1, include_values=True)
    assert by_id.matches[0].id == "doc-210" and by_id.matches[0].values == [1.0, 210.0, 0.0, 0.5]
    index.delete(ids=["doc-007"], namespace="left")
    assert index.fetch(ids=["doc-007"], namespace="left").vectors == {}
    pc.indexes.delete("docs", timeout=-1)
    assert not pc.indexes.exists("docs")


def test_sparse_values_and_the_other_metrics(fake: FakePinecone) -> None:
    index = _index(fake, "dots", dims=2, metric="dotproduct")
    sparse = {"indices": [3, 40_000], "values": [0.5, -1.25]}
    index.upsert(vectors=[{"id": "s", "values": [1.0, 0.0], "sparse_values": sparse}, ("t", [3.0, 0.0])])
    back = index.fetch(ids=["s"]).vectors["s"].sparse_values
    assert (back.indices, back.values) == ([3, 40_000], [0.5, -1.25])
    assert [m.id for m in index.query(vector=[1.0, 0.0], top_k=2).matches] == ["t", "s"]  # larger dot first
    near = _index(fake, "near", dims=2, metric="euclidean")
    near.upsert(vectors=[("a", [0.0, 0.0]), ("b", [3.0, 4.0])])
    matches = near.query(vector=[3.0, 3.0], top_k=2).matches
    assert [(m.id, m.score) for m in matches] == [("b", 1.0), ("a", 18.0)]  # squared distance, nearest first


def test_a_wrong_key_is_a_401_on_both_planes(fake: FakePinecone) -> None:
    _index(fake)
    wrong = _client(fake, key="not-the-key")
    with pytest.raises(errors.UnauthorizedError):
        list(wrong.indexes.list())
    with pytest.raises(errors.UnauthorizedError):
        wrong.index(host=fake.indexes["docs"].host).describe_index_stats()


def test_the_limits_are_the_fake_s_own(fake: FakePinecone) -> None:
    index = _index(fake, dims=4)
    url = fake.indexes["docs"].host + "/vectors/upsert"
    one = {"id": "x", "values": [0.0] * 4}
    refusals = {
        "1,001 vectors": [{**one, "id": f"v{i}"} for i in range(1001)],
        "2 MB": [{**one, "id": f"v{i}", "metadata": {"t": "y" * 39_000}} for i in range(60)],
        "other dims": [{**one, "values": [0.0] * 5}],
        "40 KB of metadata": [{**one, "metadata": {"t": "y" * 41_000}}],
        "an id of 600 bytes": [{**one, "id": "i" * 600}],
        "a non-ASCII id": [{**one, "id": "naïve"}],
        "a null": [{**one, "metadata": {"k": None}}],
        "a nested value": [{**one, "metadata": {"k": {"a": 1}}}],
        "a list of numbers": [{**one, "metadata": {"k": [1, 2]}}],
    }
    for name, vectors in refusals.items():
        status, body = _raw(url, {"vectors": vectors, "namespace": "n"}, fake.api_key)
        assert status == 400 and body["error"]["message"], (name, status, body)
    assert (
        "Metadata value must be a string, number, boolean or list of strings, got 'null' for field 'k'"
        in _raw(url, {"vectors": refusals["a null"]}, fake.api_key)[1]["error"]["message"]
    )
    assert fake.indexes["docs"].namespaces.get("n", {}) == {}  # a refused request writes nothing
    with pytest.raises(errors.ApiError) as too_big:  # what the SDK does not check itself reaches the fake
        index.upsert(vectors=[("m", [0.0] * 4, {"t": "y" * 41_000})])
    assert too_big.value.status_code == 400 and "exceeds the limit of 40960" in str(too_big.value)
    index.upsert(vectors=[(f"v{i:04d}", [0.0] * 4) for i in range(1000)])
    with pytest.raises(errors.ApiError) as many:
        index.fetch(ids=[f"v{i:04d}" for i in range(1001)])
    assert many.value.status_code == 400
    fetch = urllib.request.Request(fake.indexes["docs"].host + "/vectors/list?limit=101", headers={"Api-Key": "k"})
    with pytest.raises(urllib.error.HTTPError) as unauthorized:
        urllib.request.urlopen(fetch, timeout=10)
    assert unauthorized.value.code == 401
    fetch.add_header("Api-Key", fake.api_key)
    with pytest.raises(urllib.error.HTTPError) as over:
        urllib.request.urlopen(fetch, timeout=10)
    assert over.value.code == 400


def test_injected_faults_reach_the_sdk_as_pinecone_s_would(fake: FakePinecone) -> None:
    index = _index(fake)
    fake.fail_next(429, times=3, retry_after=0, path="/vectors/upsert")
    assert index.upsert(vectors=[("a", [0.0] * 4)]).upserted_count == 1  # the SDK's 3 retries absorb them
    assert fake.requests["data /vectors/upsert"] == 4
    fake.fail_next(503, times=4, retry_after=0)
    with pytest.raises(errors.ServiceError) as unavailable:
        index.describe_index_stats()
    assert unavailable.value.status_code == 503
    fake.fail_next(429, times=4, retry_after=0, plane="control")
    with pytest.raises(errors.RateLimitError):
        _client(fake).indexes.describe("docs")
    fake.fail_requests_with("poison", "simulated per-request refusal")
    with pytest.raises(errors.ApiError) as refused:
        index.upsert(vectors=[("fine", [0.0] * 4), ("poison", [0.0] * 4)])
    assert refused.value.status_code == 400 and "simulated per-request refusal" in str(refused.value)
    assert "fine" not in fake.indexes["docs"].namespaces.get("__default__", {})
    assert index.upsert(vectors=[("fine", [0.0] * 4)]).upserted_count == 1


def test_a_pod_index_cannot_list(fake: FakePinecone) -> None:
    fake.create_index("pods", dimension=4, pod=True)
    index = _client(fake).index(host=fake.indexes["pods"].host)
    index.upsert(vectors=[("a", [0.0] * 4)])
    with pytest.raises(errors.ApiError) as refused:
        index.list_paginated(limit=10)
    assert refused.value.status_code == 400 and "not supported for pod-based indexes" in str(refused.value)
    assert list(index.fetch(ids=["a"]).vectors) == ["a"]


def test_it_runs_standalone() -> None:
    port = free_port()
    env = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}  # as a pipe gets it
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.pinecone", "--port", str(port), "--api-key", "standalone-key"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert f"http://127.0.0.1:{port}" in first and "standalone-key" in first, first
        pc = pinecone.Pinecone(api_key="standalone-key", host=f"http://127.0.0.1:{port}")
        model = pc.indexes.create(name="tried", dimension=3, metric="cosine", deployment=SERVERLESS)
        assert pc.index(host=model.host).upsert(vectors=[("a", [1.0, 0.0, 0.0])]).upserted_count == 1
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_latency_stands_in_for_the_network() -> None:
    import time

    with FakePinecone(latency=0.2) as slow:
        index = _index(slow)
        started = time.perf_counter()
        index.describe_index_stats()
        assert time.perf_counter() - started >= 0.2
