"""`vex migrate` from a store into a hub store and back out into a fresh one, each run verified.

tests/test_pinecone_migrate.py, tests/test_weaviate_migrate.py and tests/test_milvus_migrate.py run this with
their store as the hub
and every other store on the far side; what differs between them is only the hub's options.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import run_vex
from tests.records import write_vmig


def store_options(store: str, where: Path, name: str, server: Any, tag: str) -> dict[str, str]:
    """Options for a store named `name`, in `where` or on `server` (pg_server, pinecone_fake, weaviate_fake).

    `tag` keeps the names on a shared server apart from those of another test module's.
    """
    if store == "pgvector":
        return {"url": server.dsn(), "table": f"{tag}_{name}_{where.name[-10:]}"}
    if store == "pinecone":
        return {"index": f"{tag}-{name}", "api_key": server.api_key, "controller_host": server.url, "cloud": "aws",
                "region": "us-east-1"}  # fmt: skip
    if store == "weaviate":
        return {"url": server.url, "grpc_port": str(server.grpc_port), "api_key": server.api_key,
                "collection": f"{tag.capitalize()}_{name}_{where.name[-10:]}"}  # fmt: skip
    return {
        "vektor": {"db": str(where / f"{name}.db")},
        "jsonl": {"path": str(where / f"{name}.vmig.jsonl")},
        "qdrant": {"path": str(where / f"q-{name}"), "collection": "mem"},
        "chroma": {"path": str(where / f"c-{name}"), "collection": "mem"},
    }[store]


def side_flags(options: dict[str, str], side: str) -> list[str]:
    """`{"api_key": K}` on the source side is `--source-api-key K`."""
    return [item for key, value in options.items() for item in (f"--{side}-{key.replace('_', '-')}", value)]


def migrate_both_ways(
    store: str, hub: str, hub_options: dict[str, str], records: list[dict[str, Any]], where: Path, server: Any, tag: str
) -> None:
    """`records` into `store`, migrated into `hub` and from there into a second `store`, both runs verified."""
    source = write_vmig(where / "s.vmig.jsonl", records)
    first = store_options(store, where, "first", server, tag)
    if store == "jsonl":
        first = {"path": str(source)}
    else:
        plain = [item for key, value in first.items() for item in (f"--{key.replace('_', '-')}", value)]
        imported = run_vex("import", "--from", str(source), "--to", store, *plain, cwd=where)
        assert imported.returncode == 0, imported.stderr
    into = run_vex("migrate", "--from", store, "--to", hub, *side_flags(first, "source"),
                   *side_flags(hub_options, "target"), "--verify", "--json", cwd=where)  # fmt: skip
    assert into.returncode == 0, into.stderr
    assert json.loads(into.stdout)["verify"]["matched"] == len(records)
    second = store_options(store, where, "second", server, tag)
    out = run_vex("migrate", "--from", hub, "--to", store, *side_flags(hub_options, "source"),
                  *side_flags(second, "target"), "--verify", "--json", cwd=where)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["verify"]["matched"] == len(records)
