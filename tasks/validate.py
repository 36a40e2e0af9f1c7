"""Validate: a data file against its sidecar (checksum, record count) before any write."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NONE

from engine import steps
from vmig.sidecar import Sidecar


@task(name="validate", cache_policy=NONE)
def validate_input(path: Path, verify: bool) -> tuple[Sidecar | None, list[str]]:
    return steps.validate_input(path, verify)
