"""Load: idempotent upserts of one chunk, acknowledged by the store."""

from __future__ import annotations

import pyarrow as pa
from prefect import task
from prefect.cache_policies import NONE

from connectors.base import Connector, LoadResult
from engine import steps
from tasks._policy import RETRY_OPTIONS


@task(name="load", cache_policy=NONE, **RETRY_OPTIONS)
def load(target: Connector, batch: pa.RecordBatch) -> LoadResult:
    """A replayed chunk is harmless: every connector upserts by id."""
    return steps.load(target, batch)
