"""Prefect tasks: thin, retried wrappers around the engine's step functions."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from connectors.base import Connector, LoadResult
from engine.steps import Chunk, ChunkReader, Filtered, TargetRule
from tasks.extract import extract
from tasks.filter_dimensions import filter_dimensions
from tasks.load import load
from tasks.validate import validate_input
from tasks.write_sidecar import record_import, write_sidecar
from vmig.sidecar import ImportEntry, Sidecar
from vmig.stats import RecordStats


class PrefectSteps:
    """The pipeline's steps as tracked Prefect task runs."""

    def extract(self, reader: ChunkReader, rows: int) -> Chunk:
        return extract(reader, rows)

    def filter_dimensions(self, batch: pa.RecordBatch, rule: TargetRule) -> Filtered:
        return filter_dimensions(batch, rule)

    def load(self, target: Connector, batch: pa.RecordBatch) -> LoadResult:
        return load(target, batch)

    def validate_input(self, path: Path, verify: bool) -> tuple[Sidecar | None, list[str]]:
        return validate_input(path, verify)

    def write_sidecar(
        self, output: Path, source_store: str, checksum: str, stats: RecordStats, with_data: bool = False
    ) -> Path:
        return write_sidecar(output, source_store, checksum, stats, with_data)

    def record_import(self, path: Path, entry: ImportEntry) -> None:
        record_import(path, entry)
