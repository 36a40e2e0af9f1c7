"""`--workers`: a migrate cut into partitions that a local Dask cluster moves at once, as Prefect task runs.

The source is a VEKTOR database (cut by rowid ranges), the target a real PostgreSQL with pgvector, which takes
writers from several processes; the run is verified record by record. The refusals are one line each.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from bench.bench_core import make_vektor
from tests.conftest import run_vex
from tests.pg_server import PgServer

RECORDS = 6_000


@pytest.fixture
def tracked(prefect_api: None) -> dict[str, str]:
    """The environment that points a `vex` process at the test's Prefect API."""
    from prefect.settings import PREFECT_API_URL

    return {"PREFECT_API_URL": str(PREFECT_API_URL.value())}


def _summary(result: Any) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_a_migrate_on_a_local_dask_cluster_moves_every_record(
    tmp_path: Path, pg_server: PgServer, tracked: dict[str, str]
) -> None:
    source = tmp_path / "source.db"
    make_vektor(source, RECORDS)
    result = run_vex(
        "migrate", "--from", "vektor", "--to", "pgvector", "--db", str(source), "--url", pg_server.dsn(),
        "--table", "scaled_out", "--workers", "2", "--chunk-rows", "1000", "--verify", "--json",
        cwd=tmp_path, env=tracked, timeout=600,
    )  # fmt: skip
    summary = _summary(result)
    assert (summary["total"], summary["upserted"], summary["failed"]) == (RECORDS, RECORDS, 0)
    assert summary["verify"]["matched"] == RECORDS and summary["verify"]["ok"]
    assert "moved by 2 partitions at once (--workers 2)" in " ".join(summary["warnings"])


def test_what_workers_cannot_do_is_refused_in_one_line(tmp_path: Path) -> None:
    """Refused before Prefect starts: no API is set, and none is started for a run that cannot happen."""
    tracked = {"PREFECT_API_URL": ""}
    source = tmp_path / "source.db"
    make_vektor(source, 50)
    embedded = run_vex("migrate", "--from", "vektor", "--to", "qdrant", "--db", str(source), "--path",
                       str(tmp_path / "q"), "--workers", "2", cwd=tmp_path, env=tracked)  # fmt: skip
    assert embedded.returncode == 2
    assert "takes one writer at a time (an embedded store or a file)" in embedded.stderr
    assert not (tmp_path / "q").exists()

    data = tmp_path / "in.vmig.jsonl.gz"
    assert (
        run_vex("export", "--from", "vektor", "--db", str(source), "--output", str(data), cwd=tmp_path).returncode == 0
    )
    unsplittable = run_vex("migrate", "--from", "jsonl", "--to", "vektor", "--source-path", str(data), "--db",
                           str(tmp_path / "t.db"), "--workers", "2", cwd=tmp_path, env=tracked)  # fmt: skip
    assert unsplittable.returncode == 2, unsplittable.stderr
    assert "gzip-compressed and cannot be cut into byte ranges" in unsplittable.stderr
    assert not (tmp_path / "t.db").exists()

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    silent = run_vex("migrate", "--from", "vektor", "--to", "vektor", "--source-db", str(source), "--target-db",
                     str(tmp_path / "u.db"), "--workers", "2", "--dask-address", f"tcp://127.0.0.1:{port}",
                     cwd=tmp_path, env=tracked)  # fmt: skip
    assert silent.returncode == 4, silent.stderr
    assert f"dask scheduler tcp://127.0.0.1:{port} did not answer" in silent.stderr
    assert len(silent.stderr.strip().splitlines()) == 1 and not (tmp_path / "u.db").exists()
