"""Faults injected between vex and real servers: every run ends verified, or fails fast and clearly.

A TCP proxy sits between vex and PostgreSQL (its Unix socket) or the `chroma run`
server and resets, stalls or slows connections mid-batch; an HTTP proxy in front
of the Chroma server answers bursts of 429 and 503. After each run, `vex verify`
compares the target with the source file record by record.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chroma_server import ChromaServer
from tests.conftest import run_vex
from tests.faults import HttpFaultProxy, TcpFaultProxy, http_fault_proxy, tcp_fault_proxy
from tests.pg_server import PgServer
from tests.records import sample_records, write_vmig

RECORDS = 6000


@pytest.fixture(scope="module")
def source_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "source.vmig.jsonl"
    return write_vmig(path, sample_records(count=RECORDS, dims=64, odd_ones=False))


@pytest.fixture
def pg_proxy(pg_server: PgServer) -> Iterator[TcpFaultProxy]:
    if pg_server.socket_dir is None:
        with tcp_fault_proxy(upstream_port=pg_server.port) as proxy:
            yield proxy
        return
    socket_path = glob.glob(f"{pg_server.socket_dir}/.s.PGSQL.*")[0]
    with tcp_fault_proxy(upstream_unix=socket_path) as proxy:
        yield proxy


@pytest.fixture
def chroma_tcp(chroma_server: ChromaServer) -> Iterator[TcpFaultProxy]:
    with tcp_fault_proxy(upstream_port=chroma_server.port) as proxy:
        yield proxy


@pytest.fixture
def chroma_http(chroma_server: ChromaServer) -> Iterator[HttpFaultProxy]:
    with http_fault_proxy(chroma_server.port) as proxy:
        yield proxy


def _import(source: Path, store: str, *options: str):  # type: ignore[no-untyped-def]
    return run_vex("import", "--from", str(source), "--to", store, *options, "--chunk-rows", "1000", "--json")


def _verified(source: Path, store: str, *target_options: str) -> dict:  # type: ignore[type-arg]
    report = source.parent / f"verify-{store}.json"
    result = run_vex("verify", "--from", "jsonl", "--to", store, "--source-path", str(source), *target_options,
                     "--report", str(report))  # fmt: skip
    payload = json.loads(report.read_text())
    assert result.returncode == 0, payload
    return payload


def _pg_target(pg_server: PgServer, table: str) -> list[str]:
    return ["--target-url", pg_server.dsn(), "--table", table]


@pytest.mark.parametrize(
    ("fault", "after_bytes", "stall"),
    [("reset", 1_500_000, 0.0), ("stall", 1_500_000, 60.0)],
    ids=["connection-reset-mid-batch", "stalled-server"],
)
def test_pgvector_survives(fault: str, after_bytes: int, stall: float, source_file: Path, pg_server: PgServer,
                           pg_proxy: TcpFaultProxy) -> None:  # fmt: skip
    table = f"faults_{fault}"
    pg_proxy.plan.arm(fault, after_bytes=after_bytes, stall_seconds=stall)
    url = pg_server.dsn(host="127.0.0.1", port=pg_proxy.port)
    result = _import(source_file, "pgvector", "--url", url, "--table", table, "--timeout", "3")
    assert pg_proxy.plan.hits == 1, "the fault was injected"
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["upserted"] == RECORDS
    assert _verified(source_file, "pgvector", *_pg_target(pg_server, table))["matched"] == RECORDS
    assert pg_server.password not in result.stdout + result.stderr


def test_a_llamaindex_reimport_survives_a_reset(source_file: Path, pg_server: PgServer,
                                                pg_proxy: TcpFaultProxy) -> None:  # fmt: skip
    """A re-import into a LlamaIndex table deletes by the row keys it listed in a temporary table; a reset
    takes that table with the connection, and the retry lists the rows again: no row twice, none lost."""
    from tests.test_pgvector import make_llamaindex_table

    make_llamaindex_table(pg_server, "resets", dims=64)
    options = ("--layout", "llamaindex", "--collection", "resets")
    assert _import(source_file, "pgvector", "--url", pg_server.dsn(), *options).returncode == 0
    pg_proxy.plan.arm("reset", after_bytes=2_750_000)  # in the second batch: the first one listed the rows
    url = pg_server.dsn(host="127.0.0.1", port=pg_proxy.port)
    result = _import(source_file, "pgvector", "--url", url, *options, "--timeout", "3")
    assert pg_proxy.plan.hits == 1, "the fault was injected"
    assert result.returncode == 0, result.stderr
    with pg_server.admin("vexdb") as conn:
        counts = conn.execute("SELECT count(*), count(DISTINCT node_id) FROM data_resets").fetchone()
    assert counts == (RECORDS, RECORDS)
    verify = ["--target-url", pg_server.dsn(), "--layout", "llamaindex", "--collection", "resets"]
    assert _verified(source_file, "pgvector", *verify)["matched"] == RECORDS


@pytest.mark.parametrize(
    ("fault", "after_bytes", "stall"),
    [("reset", 1_000_000, 0.0), ("stall", 1_000_000, 60.0)],
    ids=["connection-reset-mid-batch", "stalled-server"],
)
def test_chroma_server_survives(fault: str, after_bytes: int, stall: float, source_file: Path,
                                chroma_server: ChromaServer, chroma_tcp: TcpFaultProxy) -> None:  # fmt: skip
    collection = f"faults_{fault}"
    chroma_tcp.plan.arm(fault, after_bytes=after_bytes, stall_seconds=stall)
    url = f"http://127.0.0.1:{chroma_tcp.port}"
    result = _import(source_file, "chroma", "--url", url, "--collection", collection, "--timeout", "3")
    assert chroma_tcp.plan.hits == 1
    assert result.returncode == 0, result.stderr
    report = _verified(source_file, "chroma", "--target-url", chroma_server.url, "--target-collection", collection)
    assert report["matched"] == RECORDS


def test_slow_network_still_completes(
    source_file: Path, chroma_server: ChromaServer, chroma_tcp: TcpFaultProxy
) -> None:
    chroma_tcp.plan.bytes_per_second = 20_000_000
    url = f"http://127.0.0.1:{chroma_tcp.port}"
    result = _import(source_file, "chroma", "--url", url, "--collection", "faults_slow")
    assert result.returncode == 0, result.stderr
    _verified(source_file, "chroma", "--target-url", chroma_server.url, "--target-collection", "faults_slow")


@pytest.mark.parametrize("status", [429, 503])
def test_chroma_server_answers_a_burst_of(status: int, source_file: Path, chroma_server: ChromaServer,
                                          chroma_http: HttpFaultProxy) -> None:  # fmt: skip
    collection = f"faults_{status}"
    chroma_http.plan.burst(status, count=2, after=6)
    result = _import(source_file, "chroma", "--url", chroma_http.url, "--collection", collection)
    assert chroma_http.plan.answered == 2
    assert result.returncode == 0, result.stderr
    report = _verified(source_file, "chroma", "--target-url", chroma_server.url, "--target-collection", collection)
    assert report["matched"] == RECORDS


def test_permanent_errors_fail_fast_without_a_retry_storm(source_file: Path, chroma_http: HttpFaultProxy) -> None:
    chroma_http.plan.burst(401, count=1000, after=6)
    result = _import(source_file, "chroma", "--url", chroma_http.url, "--collection", "faults_401")
    assert result.returncode == 4 and "not authorised" in result.stderr and "Traceback" not in result.stderr
    assert chroma_http.plan.answered == 1, "a permanent error is not retried"
