"""The record hashes of a data file, in file order: what a `.vmig.sig` lists and `vex validate` recomputes.

Canonicalising a record (`vmig.canonical`) costs more than hashing it, so a large file is hashed by
worker processes: an uncompressed one in byte ranges each worker reads itself (as `vmig.reader`
parses them), a compressed one in blocks of lines this process decompressed. Results come back in
order with each record's line number and id, so a mismatch can be named.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmig.canonical import Canonicaliser
from vmig.decompress import DECOMPRESSION_ERRORS, READ_BUFFER, open_data
from vmig.errors import IntegrityError
from vmig.parallel import OrderedWorkers, worker_count
from vmig.paths import compression_of
from vmig.signing import HASH_PREFIX, blake3_module

RANGE_BYTES = 8 << 20
"""Share of a file one worker hashes at a time."""
PARALLEL_FROM_BYTES = 64 << 20
"""Files smaller than this are hashed in-process: starting workers would cost more than it saves."""
_LINES_PER_CALL = 2048


@dataclass
class HashedLines:
    """The hashed records of a run of lines: one entry per line the JavaScript vex hashes (not blank)."""

    hashes: list[str | None] = field(default_factory=list)
    """`blake3:<hex>`, or None for a line that is not a JSON object (its reason in `problems`)."""
    lines: list[int] = field(default_factory=list)
    """Line numbers, from 1 at the run's first line (made file line numbers by the caller)."""
    ids: list[Any] = field(default_factory=list)
    problems: dict[int, str] = field(default_factory=dict)
    """Position in `hashes` -> why that line has no hash."""
    line_count: int = 0
    """Lines in the run, blank ones included."""

    def renumbered(self, before: int) -> HashedLines:
        self.lines = [line + before for line in self.lines]
        return self


def hash_lines(raws: list[bytes], first_line: int = 1) -> HashedLines:
    """Hash each non-blank line (in this process)."""
    blake3 = blake3_module().blake3
    canonical = Canonicaliser()
    done = HashedLines(line_count=len(raws))
    for start in range(0, len(raws), _LINES_PER_CALL):
        found = canonical.lines(raws[start : start + _LINES_PER_CALL])
        for position, line in enumerate(found):
            if line.text is None:
                done.problems[len(done.hashes) + position] = line.problem or "not a record"
        done.hashes += [None if line.text is None else HASH_PREFIX + blake3(line.text).hexdigest() for line in found]
        done.lines += [first_line + start + line.position for line in found]
        done.ids += [line.id for line in found]
    return done


@dataclass(frozen=True)
class _Range:
    path: Path
    start: int
    end: int


def _hash_range(job: _Range) -> HashedLines:
    """The lines that start in [start, end) of an uncompressed file, hashed (in a worker)."""
    with open(job.path, "rb", buffering=READ_BUFFER) as stream:
        offset = job.start
        if offset > 0:
            stream.seek(offset - 1)
            if stream.read(1) != b"\n":
                offset += len(stream.readline())  # the end of a line that began in the previous range
        raws: list[bytes] = []
        while offset < job.end:
            raw = stream.readline()
            if not raw:
                break
            offset += len(raw)
            raws.append(raw)
    return hash_lines(raws)


def _hash_block(block: bytes) -> HashedLines:
    return hash_lines(block.split(b"\n"))


def _blocks(path: Path) -> Iterator[bytes]:
    """A (decompressed) file in runs of whole lines, without their last newline."""
    stream = open_data(path)
    rest = b""
    try:
        while chunk := stream.read(RANGE_BYTES):
            cut = chunk.rfind(b"\n")
            if cut < 0:
                rest += chunk
                continue
            yield rest + chunk[:cut]
            rest = chunk[cut + 1 :]
    except DECOMPRESSION_ERRORS as exc:
        raise IntegrityError(f"{path}: the compressed data is damaged or truncated ({exc})") from None
    finally:
        stream.close()
    if rest:
        yield rest


def hashed_runs(path: Path, workers: int | None = None) -> Iterator[HashedLines]:
    """The whole file's record hashes, run by run in file order, line numbers counted from the file's start."""
    path = Path(path)
    size = path.stat().st_size
    if workers is None:
        workers = worker_count() if size >= PARALLEL_FROM_BYTES else 0
    pool: OrderedWorkers[Any, HashedLines]
    items: Iterator[Any]
    if compression_of(path) is None:
        pool = OrderedWorkers(_hash_range, workers, ahead_per_worker=4)
        items = (_Range(path, start, min(start + RANGE_BYTES, size)) for start in range(0, size, RANGE_BYTES))
    else:
        pool = OrderedWorkers(_hash_block, workers)
        items = _blocks(path)
    before = 0
    for run in pool.map(items):
        yield run.renumbered(before)
        before += run.line_count
