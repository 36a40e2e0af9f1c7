"""Local mode: the pipeline's steps called directly, without a Prefect API.

A 1,000-record job then costs well under a second instead of the seconds a
Prefect API needs to start; `--prefect` (or PREFECT_API_URL) switches to the
tracked flows, which call the very same step functions as tasks.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from connectors.base import Connector, LoadResult
from engine import steps
from engine.retry import with_retries
from engine.steps import Chunk, ChunkReader, Filtered, TargetRule
from vmig.sidecar import ImportEntry, Sidecar
from vmig.stats import RecordStats


class LocalSteps:
    """Direct calls with the same retry policy the Prefect tasks declare."""

    def extract(self, reader: ChunkReader, rows: int) -> Chunk:
        return with_retries(steps.extract)(reader, rows)

    def filter_dimensions(self, batch: pa.RecordBatch, rule: TargetRule) -> Filtered:
        return steps.filter_dimensions(batch, rule)

    def load(self, target: Connector, batch: pa.RecordBatch) -> LoadResult:
        return with_retries(steps.load)(target, batch)

    def validate_input(self, path: Path, verify: bool) -> tuple[Sidecar | None, list[str]]:
        return steps.validate_input(path, verify)

    def write_sidecar(
        self, output: Path, source_store: str, checksum: str, stats: RecordStats, with_data: bool = False
    ) -> Path:
        return steps.write_sidecar(output, source_store, checksum, stats, with_data)

    def record_import(self, path: Path, entry: ImportEntry) -> None:
        steps.record_import_entry(path, entry)
