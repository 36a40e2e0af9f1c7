"""The lines of a data file, before parsing: bounded in length, numbered, and cut into batches."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from vmig.decompress import DECOMPRESSION_ERRORS, open_data
from vmig.errors import IntegrityError
from vmig.rejects import Reject

MAX_LINE_BYTES = 16 * 1024 * 1024
"""Longest line accepted; a record of 100k float32 dims fits comfortably."""

_BOM = b"\xef\xbb\xbf"


def read_line(stream: IO[bytes]) -> tuple[bytes, int, bool]:
    """Next line (without its content past the limit), its byte length, and whether it was too long."""
    line = stream.readline(MAX_LINE_BYTES + 1)
    size = len(line)
    if size <= MAX_LINE_BYTES or line.endswith(b"\n"):
        return line, size, False
    while line and not line.endswith(b"\n"):
        line = stream.readline(1024 * 1024)
        size += len(line)
    return b"", size, True


@dataclass
class LineChunk:
    """The non-blank lines of one batch as read, before parsing (which may happen in a worker)."""

    raws: list[bytes]
    numbers: list[int]
    rejects: list[Reject]
    """Lines refused before parsing (too long)."""
    next_offset: int
    next_line: int


def line_chunks(
    path: Path, stream: IO[bytes], batch_rows: int, offset: int, line_no: int, stop_at: int | None = None
) -> Iterator[LineChunk]:
    """Split the stream into runs of `batch_rows` non-blank lines, keeping byte offsets and line numbers.

    Stops before the first line that starts at or after `stop_at`. The last run is given
    even when empty, so that a caller learns where reading stopped.
    """
    strip_bom = offset == 0
    chunk = LineChunk([], [], [], offset, line_no)
    while stop_at is None or offset < stop_at:
        try:
            raw, size, too_long = read_line(stream)
        except DECOMPRESSION_ERRORS as exc:
            raise IntegrityError(
                f"{path}: the compressed data is damaged or truncated after line {line_no - 1} ({exc})"
            ) from None
        if size == 0:
            break
        offset += size
        current = line_no
        line_no += 1
        if strip_bom and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        strip_bom = False
        if too_long:
            chunk.rejects.append(Reject(current, f"line is longer than {MAX_LINE_BYTES} bytes", b""))
        elif raw.strip():
            chunk.raws.append(raw)
            chunk.numbers.append(current)
        chunk.next_offset, chunk.next_line = offset, line_no
        if len(chunk.raws) >= batch_rows:
            yield chunk
            chunk = LineChunk([], [], [], offset, line_no)
    yield chunk


def has_lines(chunk: LineChunk) -> bool:
    return bool(chunk.raws or chunk.rejects)


def skip_bytes(stream: IO[bytes], count: int) -> None:
    """Move `count` bytes into the stream: a seek where it can, else reading them (compressed data)."""
    if hasattr(stream, "seekable") and stream.seekable() and not isinstance(stream, gzip.GzipFile):
        stream.seek(count)
        return
    remaining = count
    while remaining:
        chunk = stream.read(min(remaining, 1 << 20))
        if not chunk:
            break
        remaining -= len(chunk)


def count_lines(path: Path) -> int:
    """Non-blank lines of a data file, streamed (used to check a sidecar's count)."""
    stream = open_data(path)
    count = 0
    try:
        while True:
            raw, size, _too_long = read_line(stream)
            if size == 0:
                return count
            if _too_long or raw.strip():
                count += 1
    except DECOMPRESSION_ERRORS as exc:
        raise IntegrityError(f"{path}: the compressed data is damaged or truncated ({exc})") from None
    finally:
        stream.close()


def line_starts(path: Path, parts: int) -> list[tuple[int, int]]:
    """Where `parts` byte ranges of about equal size begin in an uncompressed file, each at the start of a line:
    (byte offset, line number) pairs, the first (0, 1). A range that would begin inside the last line, or where
    the one before it began, is left out, so a small file gives fewer ranges. The line numbers come from one
    pass counting newlines (bytes.count: memory-speed), so that a worker's rejects name the file's lines."""
    offsets = [0]
    with open_data(path) as stream:  # uncompressed: the caller refuses a compressed file
        size = path.stat().st_size
        for k in range(1, max(1, parts)):
            stream.seek(max(size * k // parts - 1, offsets[-1]))
            stream.readline()  # to the end of the line the cut falls in
            offset = stream.tell()
            if offset >= size:
                break
            if offset > offsets[-1]:
                offsets.append(offset)
        starts, newlines, position = [(0, 1)], 0, 0
        stream.seek(0)
        for offset in offsets[1:]:
            while position < offset:
                block = stream.read(min(1 << 23, offset - position))
                newlines += block.count(b"\n")
                position += len(block)
            starts.append((offset, newlines + 1))
    return starts
