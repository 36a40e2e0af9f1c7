"""Formatting output lines in worker processes, handed back through files in memory (/dev/shm).

Printing the vectors' numbers is most of an export's CPU, and one process does it on one
core. On a machine with cores to spare, worker processes format slices of each batch and
write the lines to a file in /dev/shm (memory, not disk); the writer's I/O thread reads
each file in order, hashes and writes its bytes, and deletes it. Only a path crosses back
between the processes: sending the lines themselves through a pipe cost the main process
about as much as formatting them (measured). The lines are those `record_lines` gives in
one process, byte for byte.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pyarrow as pa

from vmig.parallel import WORKERS_ENV, OrderedWorkers, cores, warm_up, worker_count

SLICE_ROWS = 1024
"""Rows formatted at a time, by a worker or by the writer itself: about 5 MB of lines at 384
dims. Buffers that size are reused by the allocator; one for a whole chunk (tens of MB) is
mapped fresh from the kernel each time, and its page faults cost more than the join itself."""

FROM_CORES = 4
"""Fewest cores on which an export formats in workers by default: on two cores the main
process, its I/O thread and the source's server already use both (measured slower)."""

WARM_FROM_ROWS = 10_000
SPOOL_FROM_ROWS = 20_000
"""An export starts its formatting workers after WARM_FROM_ROWS records and uses them from
SPOOL_FROM_ROWS on: starting them costs about half a second of a run, which a small export
would not win back."""

_PREFIX = "vex-lines-"


def spool_workers() -> int:
    """Formatting workers: `VEX_WORKERS` when set, else one per core (at most four) from four cores up."""
    if os.environ.get(WORKERS_ENV, "").strip():
        return worker_count()
    return worker_count() if cores() >= FROM_CORES else 0


def _format_to_file(job: tuple[pa.RecordBatch, str | None, str]) -> str | bytes:
    """In a worker: one slice's lines into their own file, its path returned.

    When the file cannot be written (a small /dev/shm, as containers often have, is full)
    the lines themselves come back instead, through the pipe: slower, never a failed export.
    """
    from vmig.writer import record_lines

    batch, default_source, path = job
    lines = b"".join(record_lines(batch, default_source))
    try:
        with open(path, "wb") as handle:
            handle.write(lines)
    except OSError:
        with suppress(OSError):
            os.unlink(path)
        return lines
    return path


def take(item: str | bytes) -> bytes:
    """The lines of a finished slice; its file, if any, is removed (in the writer's I/O thread)."""
    if isinstance(item, bytes):
        return item
    try:
        with open(item, "rb") as handle:
            return handle.read()
    finally:
        os.unlink(item)


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
    """Slices of batches out to workers, paths of their line files back in order."""

    def __init__(self, workers: int, default_source: str | None) -> None:
        root = _root()
        if root is not None:
            _remove_orphans(Path(root))
        self.folder = tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=root)
        self.default_source = default_source
        self._made = 0
        warm_up(workers)
        self._workers: OrderedWorkers[tuple[pa.RecordBatch, str | None, str], str | bytes] = OrderedWorkers(
            _format_to_file, workers
        )

    def submit(self, batch: pa.RecordBatch) -> Iterator[str | bytes]:
        """Queue a batch's slices; yields those now done, in order (see `take`)."""
        for start in range(0, batch.num_rows, SLICE_ROWS):
            # concat_batches copies the slice out: a pickled slice would carry the whole batch's buffers.
            piece = pa.concat_batches([batch.slice(start, SLICE_ROWS)])
            self._made += 1
            path = os.path.join(self.folder, f"{self._made:09d}.jsonl")
            yield from self._workers.submit((piece, self.default_source, path))

    def drain(self) -> Iterator[str | bytes]:
        yield from self._workers.drain()

    def close(self) -> None:
        """Stop handing out work and remove the folder with whatever it still holds."""
        self._workers.close()
        shutil.rmtree(self.folder, ignore_errors=True)
