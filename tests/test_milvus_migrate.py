"""`vex migrate` to and from Milvus Lite with every other store, each run verified record by record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_vex
from tests.records import sample_records, write_vmig

pytest.importorskip("pymilvus")


def _store(store: str, where: Path, server: Any, name: str) -> dict[str, str]:
    if store == "pgvector":
        return {"url": server.dsn(), "table": f"mv_{name}_{where.name[-10:]}"}
    if store == "pinecone":
        return {"index": f"mv-{name}", "api_key": server.api_key, "controller_host": server.url, "cloud": "aws",
                "region": "us-east-1"}  # fmt: skip
    if store == "weaviate":
        return {"url": server.url, "grpc_port": str(server.grpc_port), "api_key": server.api_key,
                "collection": f"Mv_{name}_{where.name[-10:]}"}  # fmt: skip
    return {
        "vektor": {"db": str(where / f"{name}.db")},
        "jsonl": {"path": str(where / f"{name}.vmig.jsonl")},
        "qdrant": {"path": str(where / f"q-{name}"), "collection": "mem"},
        "chroma": {"path": str(where / f"c-{name}"), "collection": "mem"},
    }[store]


def _flags(options: dict[str, str], side: str) -> list[str]:
    return [item for key, value in options.items() for item in (f"--{side}-{key.replace('_', '-')}", value)]


@pytest.mark.parametrize("store", ["vektor", "jsonl", "qdrant", "chroma", "pgvector", "pinecone", "weaviate"])
def test_migrate_both_ways_with_verify(store: str, tmp_path: Path, request: Any) -> None:
    server = {"pgvector": "pg_server", "pinecone": "pinecone_fake", "weaviate": "weaviate_fake"}.get(store)
    other = request.getfixturevalue(server) if server else None
    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=25, odd_ones=False))
    first = _store(store, tmp_path, other, "first")
    if store == "jsonl":
        first = {"path": str(source)}
    else:
        plain = [item for key, value in first.items() for item in (f"--{key.replace('_', '-')}", value)]
        imported = run_vex("import", "--from", str(source), "--to", store, *plain, cwd=tmp_path)
        assert imported.returncode == 0, imported.stderr
    milvus = {"path": str(tmp_path / "m.db"), "collection": f"from_{store}"}
    into = run_vex("migrate", "--from", store, "--to", "milvus", *_flags(first, "source"), *_flags(milvus, "target"),
                   "--verify", "--json", cwd=tmp_path)  # fmt: skip
    assert into.returncode == 0, into.stderr
    assert json.loads(into.stdout)["verify"]["matched"] == 25
    second = _store(store, tmp_path, other, "second")
    out = run_vex("migrate", "--from", "milvus", "--to", store, *_flags(milvus, "source"), *_flags(second, "target"),
                  "--verify", "--json", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["verify"]["matched"] == 25
