"""Milvus as a server (`--url`): Milvus Lite's gRPC server, the one pymilvus talks to for `--path`, started here
on 127.0.0.1 and reached the way a Milvus server is; a connection reset on the way, and a server that is not there."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_vex
from tests.faults import tcp_fault_proxy
from tests.records import read_vmig, sample_records, write_vmig


@pytest.fixture
def milvus_server(tmp_path: Path) -> Iterator[int]:
    """A Milvus Lite gRPC server on 127.0.0.1 for one test, stopped by it; yields its port."""
    from milvus_lite.adapter.grpc.server import start_server_in_thread

    server, db, port = start_server_in_thread(str(tmp_path / "served.db"), host="127.0.0.1", port=0)
    try:
        yield port
    finally:
        server.stop(grace=2)
        db.close()


def _summary(result: Any) -> dict[str, Any]:
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_import_and_export_through_a_server(milvus_server: int, tmp_path: Path) -> None:
    records = sample_records(count=30, odd_ones=False)
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    server = ["--url", f"http://127.0.0.1:{milvus_server}", "--collection", "served"]
    result = run_vex("import", "--from", str(source), "--to", "milvus", *server, "--json")
    assert result.returncode == 0, result.stderr
    assert _summary(result)["upserted"] == 30
    out = tmp_path / "back.vmig.jsonl"
    assert run_vex("export", "--from", "milvus", *server, "--output", str(out)).returncode == 0
    back, sent = read_vmig(out), read_vmig(source)
    assert sorted(back) == sorted(sent)
    for record_id, record in sent.items():
        assert {k: back[record_id][k] for k in ("text", "namespace", "metadata", "vector", "created_at")} == {
            k: record[k] for k in ("text", "namespace", "metadata", "vector", "created_at")
        }
    verify = run_vex("verify", "--from", "jsonl", "--to", "milvus", "--source-path", str(source), "--target-url",
                     f"http://127.0.0.1:{milvus_server}", "--target-collection", "served")  # fmt: skip
    assert verify.returncode == 0, verify.stdout


def test_a_connection_reset_during_the_import_is_retried(milvus_server: int, tmp_path: Path) -> None:
    """The connection is cut (RST) in the middle of an upsert: the request is sent again and every record is
    there once."""
    records = sample_records(count=3_000, dims=64, odd_ones=False)
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    with tcp_fault_proxy(milvus_server) as proxy:
        proxy.plan.arm("reset", after_bytes=400_000)
        server = ["--url", f"http://127.0.0.1:{proxy.port}", "--collection", "reset"]
        result = run_vex("import", "--from", str(source), "--to", "milvus", *server, "--json")
        assert result.returncode == 0, result.stderr
        assert proxy.plan.hits == 1, "the reset struck"
        assert _summary(result)["upserted"] == 3_000
        out = tmp_path / "back.vmig.jsonl"
        assert run_vex("export", "--from", "milvus", *server, "--output", str(out)).returncode == 0
    assert sorted(read_vmig(out)) == sorted(r["id"] for r in records)


def test_a_server_that_is_not_there_is_exit_4_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    out = tmp_path / "o.vmig.jsonl"
    result = run_vex("export", "--from", "milvus", "--url", f"http://127.0.0.1:{port}", "--output", str(out),
                     "--token", "secret-token-value")  # fmt: skip
    assert result.returncode == 4, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "unreachable" in lines[0], result.stderr
    assert "Traceback" not in result.stderr and "secret-token-value" not in result.stderr + result.stdout
    assert not out.exists()
