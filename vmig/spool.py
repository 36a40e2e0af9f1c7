"""Formatting output lines in worker processes, handed over through shared memory.

Printing the vectors' numbers is most of an export's CPU. Each slice of a batch goes to a
worker as Arrow IPC in a slot of memory every process maps (one memfd per export, opened by
the workers through /proc); the worker prints the slice's lines into the same slot, and the
writer's I/O thread hashes and writes them in order, then hands the slot back. Slots are made
once per export and reused, so their pages are touched once: fresh memory for every slice (a
new /dev/shm file, or pickling through the workers' pipes) costs the workers as much CPU again
as the formatting. A memfd needs no file system: /dev/shm may be small (64 MB in a default
container) or absent, and a run killed outright leaves nothing behind.

Where slots cannot be made (no memfd, not enough memory), or a slice or its lines do not
fit one, they travel through the pipe instead: slower, never a failed export. The lines are
those `record_lines` gives in one process, byte for byte.
"""

from __future__ import annotations

import mmap
import os
import queue
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, NamedTuple

import pyarrow as pa

from vmig.parallel import OrderedWorkers

SLICE_ROWS = 1024
"""Rows formatted at a time, by a worker or by the writer itself: about 5 MB of lines at 384
dims. Buffers that size are reused by the allocator; one for a whole chunk (tens of MB) is
mapped fresh from the kernel each time, and its page faults cost more than the join itself."""

WARM_FROM_ROWS = 10_000
SPOOL_FROM_ROWS = 20_000
"""An export starts its formatting workers after WARM_FROM_ROWS records and uses them from
SPOOL_FROM_ROWS on: starting them costs about half a second of a run, which a small export
would not win back."""

LINES_BYTES = 8 << 20
"""A slot's room for one slice's lines; slices are cut to fit it (see `_slice_rows`)."""
BATCH_BYTES = 4 << 20
"""A slot's room for the slice itself, as Arrow IPC, read by the worker where it lies."""
SLOT_BYTES = LINES_BYTES + BATCH_BYTES

_LINES_PER_ARROW_BYTE = 4
"""Bytes of lines per byte of Arrow data, at most in practice: a float32 takes 4 bytes and
prints in 8 to 15 characters with its comma; text and metadata print about as long as they are."""


class SliceJob(NamedTuple):
    """One slice for a worker: in its slot (`batch_bytes` of Arrow IPC), or pickled in `batch`."""

    number: int
    """The slot's number; -1 without slots."""
    memory: str | None
    """Where the worker opens the slots' memory."""
    run: str
    """This export's slots: a later export's memory may be opened through the same path."""
    offset: int
    """Where the slot starts in that memory: its lines, then from LINES_BYTES on the slice."""
    batch_bytes: int
    batch: pa.RecordBatch | None
    default_source: str | None
    sign: bool = False
    """Hash each record as `vmig.recordhash` does, for the file's signature (`vex export --sign`)."""


_mapped: tuple[str, mmap.mmap] | None = None
"""In a worker: the slots' memory of the export under way, with its run."""


def _slots_memory(job: SliceJob) -> mmap.mmap:
    """In a worker: the job's slots, mapped on first use; the mapping of an earlier export is let go."""
    global _mapped
    if _mapped is None or _mapped[0] != job.run:
        if _mapped is not None:
            with suppress(BufferError):
                _mapped[1].close()
            _mapped = None
        assert job.memory is not None
        with open(job.memory, "r+b") as handle:
            _mapped = (job.run, mmap.mmap(handle.fileno(), 0))
    return _mapped[1]


Formatted = tuple[int, int | bytes | None, list[str] | None]
"""A worker's answer: the slot's number, the lines' length in it (or the lines, or None), the record hashes."""


def _format_slice(job: SliceJob) -> Formatted:
    """In a worker: one slice's lines into its slot. Returns the slot's number with the lines' length,
    or with the lines themselves when they do not fit or there is no slot, or with None when the
    slice lies in a slot this worker cannot map (the writer then formats it itself); and, when the
    file is signed, the hashes of the records as these lines hold them."""
    from vmig.writer import record_lines

    memory = None
    if job.memory is not None:
        try:
            memory = _slots_memory(job)
        except OSError:
            if job.batch is None:
                return job.number, None, None
    hashes: list[str] | None = [] if job.sign else None
    if job.batch is not None:
        lines = record_lines(job.batch, job.default_source, hashes)
    else:
        assert memory is not None
        start = job.offset + LINES_BYTES
        ipc = pa.py_buffer(memoryview(memory)[start : start + job.batch_bytes])
        lines = record_lines(pa.ipc.open_stream(ipc).read_next_batch(), job.default_source, hashes)
    size = sum(map(len, lines))
    if memory is None or size > LINES_BYTES:
        return job.number, b"".join(lines), hashes
    position = job.offset
    for line in lines:
        end = position + len(line)
        memory[position:end] = line
        position = end
    return job.number, size, hashes


@dataclass
class SlotLines:
    """A finished slice's lines, still in its slot: written out, then the slot goes back for reuse."""

    spool: LineSpool
    number: int
    size: int

    def write_to(self, sink: Any) -> None:
        start, memory = self.spool.offset(self.number), self.spool.memory
        assert memory is not None, "a slot's lines are written before the spool closes"
        view = memoryview(memory)[start : start + self.size]
        try:
            sink.write(view)
        finally:
            view.release()
            self.spool.release(self.number)


Lines = SlotLines | bytes
Hashes = list[str] | None
"""The record hashes of a slice's lines, when the file is signed."""


def write_lines(item: Lines, sink: Any) -> None:
    """In the writer's I/O thread: a finished slice to `sink`, its slot then free again."""
    if isinstance(item, bytes):
        sink.write(item)
    else:
        item.write_to(sink)


def _slice_rows(batch: pa.RecordBatch) -> int:
    """Rows per slice: SLICE_ROWS, fewer where the rows are large, so that a slice's lines fit a slot."""
    per_row = batch.nbytes / max(batch.num_rows, 1) * _LINES_PER_ARROW_BYTE
    return max(1, min(SLICE_ROWS, int(LINES_BYTES // max(per_row, 1))))


class LineSpool:
    """Slices of batches out to workers, their lines back in order (see `write_lines`)."""

    def __init__(self, workers: int, default_source: str | None, sign: bool = False) -> None:
        self.default_source = default_source
        self.sign = sign
        self.run = uuid.uuid4().hex
        self._workers: OrderedWorkers[SliceJob, Formatted] = OrderedWorkers(_format_slice, workers)
        self._sent: deque[pa.RecordBatch] = deque()
        """The slices in flight, oldest first, for one a worker hands back unformatted."""
        self.memory: mmap.mmap | None = None
        self.memory_path: str | None = None
        self._descriptor = -1
        self._inputs: list[pa.Buffer] = []
        self._free: queue.Queue[int] = queue.Queue()
        # Every slice in flight, the one being written and the one being handed out hold a slot:
        # with fewer, handing out would wait on itself, so then the pipe carries every slice.
        self._make_slots(self._workers.window + 2)

    def _make_slots(self, count: int) -> None:
        """The slots' memory, reserved in full now: too little of it fails here, not as a crash in a worker."""
        make = getattr(os, "memfd_create", None)
        if make is None:
            return
        try:
            descriptor = make("vex-lines", os.MFD_CLOEXEC)
        except OSError:
            return
        try:
            os.posix_fallocate(descriptor, 0, count * SLOT_BYTES)
            self.memory = mmap.mmap(descriptor, count * SLOT_BYTES)
        except OSError:
            os.close(descriptor)
            return
        self._descriptor = descriptor
        self.memory_path = f"/proc/{os.getpid()}/fd/{descriptor}"
        view = memoryview(self.memory)
        self._inputs = [pa.py_buffer(view[self.offset(n) + LINES_BYTES : self.offset(n + 1)]) for n in range(count)]
        for number in range(count):
            self._free.put(number)

    @staticmethod
    def offset(number: int) -> int:
        return number * SLOT_BYTES

    def release(self, number: int) -> None:
        self._free.put(number)

    def submit(self, batch: pa.RecordBatch) -> Iterator[tuple[Lines, Hashes]]:
        """Queue a batch's slices; yields those now done, in order."""
        rows = _slice_rows(batch)
        for start in range(0, batch.num_rows, rows):
            piece = batch.slice(start, rows)
            job = self._job(piece)
            self._sent.append(piece)
            yield from map(self._lines, self._workers.submit(job))

    def _job(self, piece: pa.RecordBatch) -> SliceJob:
        number, written = -1, 0
        if self.memory is not None:
            number = self._free.get(timeout=_SLOT_WAIT_SECONDS)
            written = self._write_input(number, piece)
        # concat_batches copies the slice out: a pickled slice would carry the whole batch's buffers.
        pickled = None if written else pa.concat_batches([piece])
        offset = self.offset(number) if number >= 0 else 0
        return SliceJob(number, self.memory_path, self.run, offset, written, pickled, self.default_source, self.sign)

    def _write_input(self, number: int, piece: pa.RecordBatch) -> int:
        """The slice as Arrow IPC into its slot; the bytes written, or 0 when it is larger than the room."""
        sink = pa.FixedSizeBufferWriter(self._inputs[number])
        try:
            with pa.ipc.new_stream(sink, piece.schema) as stream:
                stream.write_batch(piece)
        except (OSError, pa.ArrowException):
            return 0
        return int(sink.tell())

    def drain(self) -> Iterator[tuple[Lines, Hashes]]:
        yield from map(self._lines, self._workers.drain())

    def _lines(self, result: Formatted) -> tuple[Lines, Hashes]:
        piece = self._sent.popleft()
        number, lines, hashes = result
        if isinstance(lines, int):
            return SlotLines(self, number, lines), hashes
        if number >= 0:
            self.release(number)
        if lines is None:
            from vmig.writer import record_lines

            hashes = [] if self.sign else None
            return b"".join(record_lines(piece, self.default_source, hashes)), hashes
        return lines, hashes

    def close(self) -> None:
        """Stop handing out work and give the slots' memory back."""
        self._workers.close()
        self._sent.clear()
        self._inputs = []
        if self.memory is not None:
            with suppress(BufferError):  # a view still out: the mapping goes with the process
                self.memory.close()
            self.memory = None
        if self._descriptor >= 0:
            os.close(self._descriptor)
            self._descriptor = -1


_SLOT_WAIT_SECONDS = 600
"""A slot comes free as soon as the I/O thread has written the slice in it; waiting longer means a bug."""
