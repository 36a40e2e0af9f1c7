"""Streaming `.vmig.jsonl` reader: a data file as batches of valid records, with its damaged lines.

Damage is never counted as a record: each damaged line comes back as a `Reject` with
its line number and reason (`vmig.parse` says which lines are damaged). Large files
are parsed in worker processes: an uncompressed one in byte ranges each worker reads
itself, a compressed one in runs of lines this process decompressed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from vmig.decompress import READ_BUFFER, open_data
from vmig.lines import LineChunk, has_lines, line_chunks, read_line, skip_bytes
from vmig.parallel import OrderedWorkers, read_ahead, warm_up, worker_count
from vmig.parse import FastParser, LineRejected, rows_to_batch
from vmig.paths import compression_of
from vmig.rejects import Reject


@dataclass
class ReadBatch:
    """Valid records of a run of lines, the damaged lines among them, and where to resume."""

    batch: pa.RecordBatch
    rejects: list[Reject] = field(default_factory=list)
    next_offset: int = 0
    next_line: int = 1
    lines_read: int = 0
    row_lines: list[int] = field(default_factory=list)
    """The line number of each row of `batch`."""


def _parse_lines(chunk: LineChunk) -> ReadBatch:
    """Parse and check one batch's lines: the CPU-heavy half of reading."""
    parse = FastParser()
    rows: list[tuple[Any, ...]] = []
    lines: list[int] = []
    raws: list[bytes] = []
    rejects = list(chunk.rejects)
    for number, raw in zip(chunk.numbers, chunk.raws, strict=True):
        try:
            rows.append(parse.row(raw))
        except LineRejected as exc:
            rejects.append(Reject(number, str(exc), raw.rstrip(b"\r\n")))
        else:
            lines.append(number)
            raws.append(raw)
    batch, vector_rejects, row_lines = rows_to_batch(rows, lines, raws)
    found = sorted(rejects + vector_rejects, key=lambda r: r.line or 0)
    return ReadBatch(batch, found, chunk.next_offset, chunk.next_line, len(chunk.raws), row_lines)


@dataclass(frozen=True)
class _Range:
    """The lines of an uncompressed file that start in [start, end): one worker's share."""

    path: Path
    start: int
    end: int
    batch_rows: int


@dataclass
class _RangeRead:
    batches: list[ReadBatch]
    lines: int
    """Lines that start in the range, blank ones included: where the next range's numbering begins."""


def _parse_range(job: _Range) -> _RangeRead:
    """Read and parse one range in a worker; line numbers count from 1 at the range's first line."""
    with open(job.path, "rb", buffering=READ_BUFFER) as stream:
        offset = job.start
        if offset > 0:
            stream.seek(offset - 1)
            if stream.read(1) != b"\n":
                offset += read_line(stream)[1]  # the end of a line that began in the previous range
        batches: list[ReadBatch] = []
        last = None
        for last in line_chunks(job.path, stream, job.batch_rows, offset, 1, stop_at=job.end):
            if has_lines(last):
                batches.append(_parse_lines(last))
        assert last is not None, "line_chunks always gives a last run"
        return _RangeRead(batches, last.next_line - 1)


def _renumber(read: ReadBatch, before: int) -> ReadBatch:
    """Make a range's own line numbers file line numbers (`before`: lines ahead of the range)."""
    read.rejects = [r if r.line is None else replace(r, line=r.line + before) for r in read.rejects]
    read.row_lines = [line + before for line in read.row_lines]
    read.next_line += before
    return read


IN_PROCESS_AHEAD = 2
"""Batches a file parsed in this process is read ahead of its consumer: while a load waits on the network
(a store's answer), the next batches are parsed instead of after it."""

RANGE_BYTES = 8 << 20
"""Share of an uncompressed file one worker reads and parses at a time."""

RANGES_AHEAD_PER_WORKER = 8
"""Ranges queued per worker. A range job is a path and two offsets, its result about a third
of its bytes; while this process loads a chunk into the store (and pulls no results) the
workers go on parsing the next chunks instead of waiting: at most 8 x 8 MiB read ahead per worker."""

PARALLEL_FROM_BYTES = 256 << 20
"""Inputs smaller than this are parsed in-process: starting workers would cost more than it saves.
Measured on jsonl -> pgvector: one process was faster up to about 190 MiB on 2 cores and on 16."""


def _auto_workers(path: Path, start_offset: int, stop_offset: int | None = None) -> int:
    """Workers for the bytes a read covers: from `start_offset` to `stop_offset` (a share) or the end."""
    try:
        end = path.stat().st_size if stop_offset is None else stop_offset
    except OSError:
        return 0
    return worker_count() if end - start_offset >= PARALLEL_FROM_BYTES else 0


def start_workers_for(path: Path) -> None:
    """Spawn the workers a read of `path` will use, so they start while other work (a checksum) runs."""
    path = Path(path)
    workers = _auto_workers(path, 0)
    if workers > 1 and compression_of(path) is None:
        warm_up(workers, "vmig.reader")


def read_batches(
    path: Path,
    batch_rows: int = 4096,
    start_offset: int = 0,
    start_line: int = 1,
    workers: int | None = None,
    stop_offset: int | None = None,
) -> Iterator[ReadBatch]:
    """Stream a data file as canonical batches, starting at a byte offset (resume) and, with `stop_offset`,
    ending before the first line that starts there (a worker's share of an uncompressed file).

    Each batch holds the records of up to `batch_rows` non-blank lines, in file order.
    Large files are parsed by `workers` processes (default `vmig.parallel.worker_count()`
    for a file of `PARALLEL_FROM_BYTES` or more, none for a smaller one): each reads its
    own byte ranges of an uncompressed file, or parses lines this process decompressed.
    """
    path = Path(path)
    stream = open_data(path)
    try:
        if workers is None:
            workers = _auto_workers(path, start_offset, stop_offset)
        if workers > 1 and compression_of(path) is None:
            stream.close()
            size = path.stat().st_size
            end = size if stop_offset is None else min(stop_offset, size)
            yield from _parallel_ranges(path, end, batch_rows, start_offset, start_line, workers)
            return
        if start_offset:
            skip_bytes(stream, start_offset)
        chunks = filter(has_lines, line_chunks(path, stream, batch_rows, start_offset, start_line, stop_offset))
        parsed: Iterator[ReadBatch]
        if workers > 1:
            parsed = OrderedWorkers(_parse_lines, workers).map(chunks)
        else:  # a thread parses the next batches while the consumer waits on its store
            parsed = read_ahead(map(_parse_lines, chunks), depth=IN_PROCESS_AHEAD)
        try:
            yield from parsed
        finally:
            parsed.close()  # type: ignore[attr-defined]
    finally:
        stream.close()


def _parallel_ranges(
    path: Path, size: int, batch_rows: int, start_offset: int, start_line: int, workers: int
) -> Iterator[ReadBatch]:
    ranges = (
        _Range(path, start, min(start + RANGE_BYTES, size), batch_rows)
        for start in range(start_offset, size, RANGE_BYTES)
    )
    parsed = OrderedWorkers(_parse_range, workers, RANGES_AHEAD_PER_WORKER).map(ranges)
    before = start_line - 1
    try:
        for share in parsed:
            for read in share.batches:
                yield _renumber(read, before)
            before += share.lines
    finally:
        parsed.close()
