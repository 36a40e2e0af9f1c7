"""`vex migrate` to and from Pinecone with every other store, each run verified record by record (sparse
vectors included)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_vex
from tests.fakes.pinecone import FakePinecone
from tests.records import sample_records, write_vmig


def _store(store: str, where: Path, pg_server: Any, name: str) -> dict[str, str]:
    return {
        "vektor": {"db": str(where / f"{name}.db")},
        "jsonl": {"path": str(where / f"{name}.vmig.jsonl")},
        "qdrant": {"path": str(where / f"q-{name}"), "collection": "mem"},
        "chroma": {"path": str(where / f"c-{name}"), "collection": "mem"},
        "pgvector": {"url": pg_server.dsn(), "table": f"pc_{name}_{where.name[-10:]}"},
    }[store]


def _flags(options: dict[str, str], side: str) -> list[str]:
    return [item for key, value in options.items() for item in (f"--{side}-{key.replace('_', '-')}", value)]


@pytest.mark.parametrize("store", ["vektor", "jsonl", "qdrant", "chroma", "pgvector"])
def test_migrate_both_ways_with_verify(store: str, pinecone_fake: FakePinecone, tmp_path: Path, pg_server: Any) -> None:
    records = sample_records(count=25, odd_ones=False)
    for i, record in enumerate(records[::2]):  # sparse vectors too: verify compares them on both sides
        record["sparse_vector"] = {"indices": [i, 1000 + i, 2**32 - 1 - i], "values": [0.5, -1.25, 1e-7 * (i + 1)]}
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    first = _store(store, tmp_path, pg_server, "first")
    if store == "jsonl":
        first = {"path": str(source)}
    else:
        plain = [item for key, value in first.items() for item in (f"--{key}", value)]
        assert run_vex("import", "--from", str(source), "--to", store, *plain, cwd=tmp_path).returncode == 0
    pinecone = {"index": f"m-{store}", "api_key": pinecone_fake.api_key, "controller_host": pinecone_fake.url,
                "cloud": "aws", "region": "us-east-1"}  # fmt: skip
    into = run_vex("migrate", "--from", store, "--to", "pinecone", *_flags(first, "source"),
                   *_flags(pinecone, "target"), "--verify", "--json", cwd=tmp_path)  # fmt: skip
    assert into.returncode == 0, into.stderr
    assert json.loads(into.stdout)["verify"]["matched"] == 25
    second = _store(store, tmp_path, pg_server, "second")
    out = run_vex("migrate", "--from", "pinecone", "--to", store, *_flags(pinecone, "source"),
                  *_flags(second, "target"), "--verify", "--json", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["verify"]["matched"] == 25
