"""Extract: the next chunk of records from the source (one task run per chunk)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NONE

from engine import steps
from engine.steps import Chunk, ChunkReader
from tasks._policy import RETRY_OPTIONS


@task(name="extract", cache_policy=NONE, **RETRY_OPTIONS)
def extract(reader: ChunkReader, rows: int) -> Chunk:
    """Coarse on purpose: thousands of records per run keep Prefect's overhead negligible."""
    return steps.extract(reader, rows)
