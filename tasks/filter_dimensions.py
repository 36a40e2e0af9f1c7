"""Filter dimensions: drop what the target cannot hold, counted by reason."""

from __future__ import annotations

import pyarrow as pa
from prefect import task
from prefect.cache_policies import NONE

from engine import steps
from engine.steps import Filtered, TargetRule


@task(name="filter-dimensions", cache_policy=NONE)
def filter_dimensions(batch: pa.RecordBatch, rule: TargetRule) -> Filtered:
    return steps.filter_dimensions(batch, rule)
