"""Formatting output lines in worker processes, handed back through shared memory.

Printing the vectors' numbers is most of an export's CPU, and one process does it on one
core. With workers, slices of each batch go to worker processes, which print their lines
into a slot: a file in /dev/shm (memory, not disk) that every process maps. The writer's
I/O thread hashes and writes each slot's bytes in order and hands the slot back for another
slice. Slots are made once per export and reused, so their memory is touched once: fresh
pages (a new file, or a new buffer, per slice) cost as much again as the formatting on the
virtual machines vex is measured on, and sending the lines through a pipe cost the main
process about as much as formatting them (both measured). Lines that do not fit a slot, or
a worker that cannot map it, come back through the pipe instead: slower, never a failed
export. The lines are those `record_lines` gives in one process, byte for byte.
"""

from __future__ import annotations

import mmap
import os
import queue
import shutil
import tempfile
from collections import deque
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa

from vmig.parallel import OrderedWorkers, warm_up

SLICE_ROWS = 1024
"""Rows formatted at a time, by a worker or by the writer itself: about 5 MB of lines at 384
dims. Buffers that size are reused by the allocator; one for a whole chunk (tens of MB) is
mapped fresh from the kernel each time, and its page faults cost more than the join itself."""

WARM_FROM_ROWS = 10_000
SPOOL_FROM_ROWS = 20_000
"""An export starts its formatting workers after WARM_FROM_ROWS records and uses them from
SPOOL_FROM_ROWS on: starting them costs about half a second of a run, which a small export
would not win back."""

_PREFIX = "vex-lines-"


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
    path: str | None
    batch_bytes: int
    batch: pa.RecordBatch | None
    default_source: str | None


_mapped: dict[str, mmap.mmap] = {}
"""In a worker: the slots it has mapped, for the export under way (one folder)."""


def _slot(path: str) -> mmap.mmap:
    """In a worker: the slot at `path`, mapped on first use; mappings of an earlier export are let go."""
    found = _mapped.get(path)
    if found is None:
        folder = os.path.dirname(path)
        for old in [name for name in _mapped if os.path.dirname(name) != folder]:
            _mapped.pop(old).close()
        with open(path, "r+b") as handle:
            found = _mapped[path] = mmap.mmap(handle.fileno(), 0)
    return found


def _format_slice(job: SliceJob) -> tuple[int, int | bytes | None]:
    """In a worker: one slice's lines into its slot. Returns the slot's number with the lines' length,
    or with the lines themselves when they do not fit or there is no slot, or with None when the
    slice lies in a slot this worker cannot map (the writer then formats it itself)."""
    from vmig.writer import record_lines

    slot = None
    if job.path is not None:
        try:
            slot = _slot(job.path)
        except OSError:
            if job.batch is None:
                return job.number, None
    if job.batch is not None:
        lines = record_lines(job.batch, job.default_source)
    else:
        assert slot is not None
        ipc = pa.py_buffer(memoryview(slot)[LINES_BYTES : LINES_BYTES + job.batch_bytes])
        lines = record_lines(pa.ipc.open_stream(ipc).read_next_batch(), job.default_source)
    size = sum(map(len, lines))
    if slot is None or size > LINES_BYTES:
        return job.number, b"".join(lines)
    position = 0
    for line in lines:
        end = position + len(line)
        slot[position:end] = line
        position = end
    return job.number, size


@dataclass
class SlotLines:
    """A finished slice's lines, still in its slot: written out, then the slot goes back for reuse."""

    spool: LineSpool
    number: int
    size: int

    def write_to(self, sink: Any) -> None:
        view = memoryview(self.spool.slots[self.number])[: self.size]
        try:
            sink.write(view)
        finally:
            view.release()
            self.spool.release(self.number)


Lines = SlotLines | bytes


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


def _root() -> str | None:
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


def _remove_orphans(root: Path) -> None:
    """Folders of runs that were killed outright (their process is gone): their files would stay in memory."""
    for folder in root.glob(f"{_PREFIX}*-*"):
        try:
            pid = int(folder.name[len(_PREFIX) :].split("-", 1)[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (ValueError, PermissionError):
            continue


class LineSpool:
    """Slices of batches out to workers, their lines back in order (see `write_lines`)."""

    def __init__(self, workers: int, default_source: str | None) -> None:
        root = _root()
        if root is not None:
            _remove_orphans(Path(root))
        self.folder = tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=root)
        self.default_source = default_source
        warm_up(workers)
        self._workers: OrderedWorkers[SliceJob, tuple[int, int | bytes | None]] = OrderedWorkers(_format_slice, workers)
        self._sent: deque[pa.RecordBatch] = deque()
        """The slices in flight, oldest first, for one a worker hands back unformatted."""
        self.slots: list[mmap.mmap] = []
        self._inputs: list[pa.Buffer] = []
        self._free: queue.Queue[int] = queue.Queue()
        # Every slice in flight, the one being written and the one being handed out hold a slot:
        # with fewer, handing out would wait on itself, so then the pipe carries every slice.
        self._make_slots(self._workers.window + 2)

    def _make_slots(self, count: int) -> None:
        """Files reserved in full now (a full /dev/shm fails here, not as a crash in a worker's write)."""
        try:
            for number in range(count):
                descriptor = os.open(self._slot_path(number), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
                try:
                    os.posix_fallocate(descriptor, 0, SLOT_BYTES)
                    self.slots.append(mmap.mmap(descriptor, SLOT_BYTES))
                finally:
                    os.close(descriptor)
        except OSError:
            self._close_slots()
            for number in range(count):
                with suppress(FileNotFoundError):
                    os.unlink(self._slot_path(number))
            return
        self._inputs = [pa.py_buffer(memoryview(slot)[LINES_BYTES:]) for slot in self.slots]
        for number in range(count):
            self._free.put(number)

    def _slot_path(self, number: int) -> str:
        return os.path.join(self.folder, f"slot-{number}")

    def release(self, number: int) -> None:
        self._free.put(number)

    def submit(self, batch: pa.RecordBatch) -> Iterator[Lines]:
        """Queue a batch's slices; yields those now done, in order."""
        rows = _slice_rows(batch)
        for start in range(0, batch.num_rows, rows):
            piece = batch.slice(start, rows)
            job = self._job(piece)
            self._sent.append(piece)
            yield from map(self._lines, self._workers.submit(job))

    def _job(self, piece: pa.RecordBatch) -> SliceJob:
        if not self.slots:
            # concat_batches copies the slice out: a pickled slice would carry the whole batch's buffers.
            return SliceJob(-1, None, 0, pa.concat_batches([piece]), self.default_source)
        number = self._free.get(timeout=_SLOT_WAIT_SECONDS)
        sink = pa.FixedSizeBufferWriter(self._inputs[number])
        try:
            with pa.ipc.new_stream(sink, piece.schema) as stream:
                stream.write_batch(piece)
        except (OSError, pa.ArrowException):  # larger than the slot's room: it goes pickled
            return SliceJob(number, self._slot_path(number), 0, pa.concat_batches([piece]), self.default_source)
        return SliceJob(number, self._slot_path(number), sink.tell(), None, self.default_source)

    def drain(self) -> Iterator[Lines]:
        yield from map(self._lines, self._workers.drain())

    def _lines(self, result: tuple[int, int | bytes | None]) -> Lines:
        piece = self._sent.popleft()
        number, lines = result
        if isinstance(lines, int):
            return SlotLines(self, number, lines)
        if number >= 0:
            self.release(number)
        if lines is None:
            from vmig.writer import record_lines

            return b"".join(record_lines(piece, self.default_source))
        return lines

    def close(self) -> None:
        """Stop handing out work and remove the folder with whatever it still holds."""
        self._workers.close()
        self._sent.clear()
        self._close_slots()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _close_slots(self) -> None:
        self._inputs = []
        for slot in self.slots:
            with suppress(BufferError):  # a view still out: the mapping goes with the process
                slot.close()
        self.slots = []


_SLOT_WAIT_SECONDS = 600
"""A slot comes free as soon as the I/O thread has written the slice in it; waiting longer means a bug."""
