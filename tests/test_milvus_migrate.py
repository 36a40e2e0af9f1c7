"""`vex migrate` to and from Milvus Lite with every other store, each run verified record by record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.both_ways import migrate_both_ways
from tests.records import sample_records

pytest.importorskip("pymilvus")


@pytest.mark.parametrize("store", ["vektor", "jsonl", "qdrant", "chroma", "pgvector", "pinecone", "weaviate"])
def test_migrate_both_ways_with_verify(store: str, tmp_path: Path, request: Any) -> None:
    server = {"pgvector": "pg_server", "pinecone": "pinecone_fake", "weaviate": "weaviate_fake"}.get(store)
    other = request.getfixturevalue(server) if server else None
    milvus = {"path": str(tmp_path / "m.db"), "collection": f"from_{store}"}
    migrate_both_ways(store, "milvus", milvus, sample_records(count=25, odd_ones=False), tmp_path, other, tag="mv")
