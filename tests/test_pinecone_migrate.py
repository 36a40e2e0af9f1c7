"""`vex migrate` to and from Pinecone with every other store, each run verified record by record (sparse
vectors included)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.both_ways import migrate_both_ways
from tests.fakes.pinecone import FakePinecone
from tests.records import sample_records


@pytest.mark.parametrize("store", ["vektor", "jsonl", "qdrant", "chroma", "pgvector"])
def test_migrate_both_ways_with_verify(store: str, pinecone_fake: FakePinecone, tmp_path: Path, pg_server: Any) -> None:
    records = sample_records(count=25, odd_ones=False)
    for i, record in enumerate(records[::2]):  # sparse vectors too: verify compares them on both sides
        record["sparse_vector"] = {"indices": [i, 1000 + i, 2**32 - 1 - i], "values": [0.5, -1.25, 1e-7 * (i + 1)]}
    pinecone = {"index": f"m-{store}", "api_key": pinecone_fake.api_key, "controller_host": pinecone_fake.url,
                "cloud": "aws", "region": "us-east-1"}  # fmt: skip
    migrate_both_ways(store, "pinecone", pinecone, records, tmp_path, pg_server, tag="pc")
