"""The pipeline's verbs as plain functions.

The Prefect tasks in `tasks/` wrap exactly these, and local mode calls them
directly, so both modes move data through the same code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from connectors.base import Connector, Cursor, LoadResult, Page
from engine.summary import SKIP_DIMS, SKIP_NULL_VECTOR
from vmig.batch import concat_batches
from vmig.errors import TransientError
from vmig.lines import count_lines
from vmig.paths import compression_of
from vmig.rejects import Reject
from vmig.schema import RECORD_SCHEMA
from vmig.sidecar import ImportEntry, Sidecar, build_sidecar, read_sidecar, record_import, verify_against_sidecar
from vmig.stats import RecordStats


@dataclass
class Chunk:
    """A run of records from the source, and where the next chunk starts."""

    batch: pa.RecordBatch
    rejects: list[Reject] = field(default_factory=list)
    next_cursor: Cursor = None
    done: bool = False


@dataclass(frozen=True)
class TargetRule:
    """What the target can hold, decided once from its capabilities and dims."""

    dims: int | None
    needs_vector: bool


@dataclass
class Filtered:
    batch: pa.RecordBatch
    skipped: Counter[str]


class ChunkReader:
    """Keeps one extract generator alive across chunks; reopens at the last cursor after a transient error."""

    def __init__(self, source: Connector, namespace: str | None, limit: int | None, cursor: Cursor = None) -> None:
        self.source = source
        self.namespace = namespace
        self.remaining = limit
        self.cursor = cursor
        self._pages: Iterator[Page] | None = None
        self.finished = False

    def next_chunk(self, rows: int) -> Chunk:
        """Up to `rows` records; a transient error puts the reader back where the chunk began, so the retry
        reads the chunk's pages again (those read before the error would otherwise be lost with it)."""
        batches: list[pa.RecordBatch] = []
        rejects: list[Reject] = []
        count = 0
        start = (self.cursor, self.remaining)
        while count < rows and not self.finished:
            if self._pages is None:
                self._pages = iter(self.source.extract(self.namespace, self.remaining, self.cursor))
            try:
                page = next(self._pages)
            except StopIteration:
                self.finished = True
                break
            except TransientError:
                self._pages = None
                self.cursor, self.remaining = start
                raise
            batches.append(page.batch)
            rejects.extend(page.rejects)
            count += page.batch.num_rows
            self.cursor = page.next_cursor
            if self.remaining is not None:
                self.remaining -= page.batch.num_rows
            if page.next_cursor is None or self.remaining == 0:
                self.finished = True
        return Chunk(concat_batches(batches), rejects, self.cursor, self.finished)


def extract(reader: ChunkReader, rows: int) -> Chunk:
    return reader.next_chunk(rows)


def filter_dimensions(batch: pa.RecordBatch, rule: TargetRule) -> Filtered:
    """Drop what the target cannot hold, counting each drop by reason."""
    skipped: Counter[str] = Counter()
    if batch.num_rows == 0:
        return Filtered(batch, skipped)
    vectors = batch.column("vector")
    keep = pc.is_valid(vectors)
    if rule.needs_vector:
        nulls = batch.num_rows - pc.sum(keep).as_py() if vectors.null_count else 0
        if nulls:
            skipped[SKIP_NULL_VECTOR] = nulls
    else:
        keep = pa.array([True] * batch.num_rows)
    if rule.dims is not None:
        wrong = pc.and_(pc.is_valid(vectors), pc.not_equal(batch.column("dims"), pa.scalar(rule.dims, pa.int32())))
        mismatched = pc.sum(wrong).as_py() or 0
        if mismatched:
            skipped[SKIP_DIMS] = mismatched
            keep = pc.and_(keep, pc.invert(wrong))
    if not skipped:
        return Filtered(batch, skipped)
    return Filtered(batch.filter(keep), skipped)


def load(target: Connector, batch: pa.RecordBatch) -> LoadResult:
    """Load in slices the store accepts; the result accounts for every record."""
    step = max(1, target.capabilities.max_batch)
    written = 0
    failed: list[tuple[str, str]] = []
    for start in range(0, batch.num_rows, step):
        result = target.load(batch.slice(start, step))
        written += result.written
        failed.extend(result.failed)
    return LoadResult(written, failed)


def validate_input(path: Path, verify: bool) -> tuple[Sidecar | None, list[str]]:
    """Check a data file against its sidecar before anything is written; returns warnings."""
    sidecar = read_sidecar(path)
    if sidecar is None:
        if compression_of(path) is not None:
            count_lines(path)  # a truncated archive fails here, before the first write
        return None, [f"{path.name} has no sidecar: checksum and record count could not be verified"]
    if not verify:
        return sidecar, ["--no-verify: checksum and record count were not checked"]
    verify_against_sidecar(path, sidecar)
    return sidecar, []


def write_sidecar(output: Path, source_store: str, checksum: str, stats: RecordStats, with_data: bool = False) -> Path:
    """The sidecar of a written data file; `with_data` puts the data file (still under its temporary name)
    in place with it."""
    from vmig.sidecar import write_sidecar as write

    return write(output, build_sidecar(source_store, checksum, stats), with_data=with_data)


def record_import_entry(path: Path, entry: ImportEntry) -> None:
    record_import(path, entry)


def empty() -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=RECORD_SCHEMA)
