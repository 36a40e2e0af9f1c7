"""`vex migrate` to and from Weaviate (the local fake) with every other store, each run verified record by record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.both_ways import migrate_both_ways
from tests.records import sample_records

pytest.importorskip("weaviate")


@pytest.mark.parametrize("store", ["vektor", "jsonl", "qdrant", "chroma", "pgvector", "pinecone"])
def test_migrate_both_ways_with_verify(store: str, weaviate_fake: Any, tmp_path: Path, request: Any) -> None:
    server = {"pgvector": "pg_server", "pinecone": "pinecone_fake"}.get(store)
    other = request.getfixturevalue(server) if server else None
    mode = "tenant" if store in ("qdrant", "pgvector", "pinecone") else "property"  # both modes, across the stores
    weaviate = {"url": weaviate_fake.url, "grpc_port": str(weaviate_fake.grpc_port), "api_key": weaviate_fake.api_key,
                "collection": f"M_{store}", "namespace_mode": mode}  # fmt: skip
    records = sample_records(count=25, odd_ones=False)
    migrate_both_ways(store, "weaviate", weaviate, records, tmp_path, other, tag="wv")
