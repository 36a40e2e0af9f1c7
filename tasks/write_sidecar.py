"""Write sidecar: the `.vmig.meta.json` of an export, and the audit entry of an import."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NONE

from engine import steps
from vmig.sidecar import ImportEntry
from vmig.stats import RecordStats


@task(name="write-sidecar", cache_policy=NONE)
def write_sidecar(output: Path, source_store: str, checksum: str, stats: RecordStats, with_data: bool = False) -> Path:
    return steps.write_sidecar(output, source_store, checksum, stats, with_data)


@task(name="record-import", cache_policy=NONE)
def record_import(path: Path, entry: ImportEntry) -> None:
    steps.record_import_entry(path, entry)
