"""`.vmig.jsonl` files as a store: the portable archive every other store meets.

As a source it streams the file and reports damaged lines; as a target it
writes through `VmigWriter`, so the file appears only when complete and gets a
sidecar with its checksum.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from connectors.base import (
    Capabilities,
    Connector,
    Cursor,
    LoadResult,
    Location,
    Page,
    Partition,
    StoreInfo,
    StoreOptions,
    WrittenFile,
)
from vmig.errors import UsageError
from vmig.lines import line_starts
from vmig.paths import compression_of, sidecar_path, temporary_path
from vmig.reader import read_batches, start_workers_for
from vmig.sidecar import read_sidecar
from vmig.signing import signature_path
from vmig.validate import is_vmig_file
from vmig.writer import VmigWriter


class JsonlOptions(StoreOptions):
    path: Path
    """The `.vmig.jsonl` file (`.gz`, `.zst` by its name)."""
    force: bool = False
    """Replace an existing file that is not a `.vmig.jsonl` (never done without it)."""


class JsonlConnector(Connector[JsonlOptions]):
    name: ClassVar[str] = "jsonl"
    Options: ClassVar[type[StoreOptions]] = JsonlOptions
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_batch=4096,
        fixed_dims=False,
        needs_vector=False,
        metrics=("cosine", "dot", "euclid"),
        writes_file=True,
        one_record_per_id=False,
        embedded=True,
        sparse_vectors=True,
        sparse_column=True,
    )

    def __init__(self, options: JsonlOptions) -> None:
        super().__init__(options)
        self.path = options.path
        self.force = options.force
        self.writer: VmigWriter | None = None
        self._expected_records: int | None = None
        self.sign = False
        """Hash each record as it is written, for its signature (`vex export --sign` sets it: not a store option)."""

    def label(self) -> str:
        return f"jsonl:{self.path.name}"

    def locations(self) -> list[Location]:
        return [
            Location(self.path, "the .vmig.jsonl file"),
            Location(sidecar_path(self.path), "its sidecar"),
            Location(signature_path(self.path), "its signature"),
            Location(temporary_path(self.path), "its temporary file"),
        ]

    def before_write(self) -> None:
        if self.path.is_dir():
            raise UsageError(f"jsonl output must be a file, got a directory: {self.path}")
        if self.path.exists() and not self.force and not is_vmig_file(self.path):
            raise UsageError(
                f"{self.path} exists and is not a .vmig.jsonl file: it is not replaced (--force replaces it)"
            )

    def describe(self) -> StoreInfo:
        if not self.path.exists():
            return StoreInfo(exists=False)
        sidecar = read_sidecar(self.path)
        if sidecar is None:
            return StoreInfo(exists=True)
        dims = sidecar.counts.get("dims", {})
        common = max((k for k in dims if k != "null"), key=lambda k: dims[k], default=None)
        return StoreInfo(
            exists=True,
            dims=int(common) if common is not None else None,
            count=sidecar.record_count,
            count_by_namespace={k: v for k, v in sidecar.counts.get("namespace", {}).items()},
        )

    def extract(self, namespace: str | None, cursor: Cursor | None) -> Iterator[Page]:
        position = cursor or {"offset": 0, "line": 1}
        for read in read_batches(self.path, self.page_size, position["offset"], position["line"],
                                 stop_offset=self.stop):  # fmt: skip
            batch = read.batch
            if namespace is not None:
                batch = batch.filter(pc.equal(batch.column("namespace"), pa.scalar(namespace)))
            yield Page(batch, {"offset": read.next_offset, "line": read.next_line}, read.rejects)

    def partitions(self, namespace: str | None, parts: int) -> list[Partition] | None:
        """Byte ranges of about equal size, each starting at a line (its number kept for the rejects)."""
        compression = compression_of(self.path)
        if compression is not None:
            raise UsageError(
                f"--workers: {self.path} is {compression}-compressed and cannot be cut into byte ranges; "
                "decompress it, or run without --workers"
            )
        starts = line_starts(self.path, parts)
        stops: list[int | None] = [offset for offset, _ in starts[1:]]
        stops.append(None)
        return [
            Partition({"offset": offset, "line": line}, stop)
            for (offset, line), stop in zip(starts, stops, strict=True)
        ]

    def warm_up(self) -> None:
        start_workers_for(self.path)

    def prepare_write(self, expected_records: int | None) -> None:
        self._expected_records = expected_records  # a large export starts its formatting workers at once

    def ensure_target(self, dims: int | None, metric: str | None) -> None:
        if self.writer is None:
            self.before_write()
            self.writer = VmigWriter(self.path, expected_records=self._expected_records, sign=self.sign).open()

    def load(self, batch: pa.RecordBatch) -> LoadResult:
        if self.writer is None:
            self.ensure_target(None, None)
        assert self.writer is not None
        return LoadResult(written=self.writer.write_batch(batch))

    def finish(self) -> WrittenFile:
        """The complete file, still under its temporary name: it appears only with its sidecar."""
        if self.writer is None:
            self.ensure_target(None, None)  # an empty source still gives a (verifiable) empty file
        assert self.writer is not None
        checksum = self.writer.commit(publish=False)
        return WrittenFile(self.path, checksum, self.writer.stats, record_hashes=self.writer.record_hashes)

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
