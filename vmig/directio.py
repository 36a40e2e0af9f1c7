"""Writing a large file around the page cache (O_DIRECT), where the filesystem allows it.

An export writes gigabytes that nothing reads back soon. Through the page cache every byte
is first copied into kernel pages taken fresh from free memory: system time, many times what
the copy into an aligned buffer costs (`bench/bench_write.py` measures both), taken from the
CPU that the formatting and the database server need.

Direct writes need an aligned buffer, offsets and lengths: bytes collect in one reused,
page-aligned buffer that goes out in whole blocks; the last, partial block is written
padded and the file cut back to its true length. A filesystem that refuses O_DIRECT
(EINVAL, at open or at a write) gets ordinary writes of the same bytes instead.
"""

from __future__ import annotations

import errno
import mmap
import os
from contextlib import suppress
from typing import Any

BLOCK = 4096
"""Alignment of direct writes: the page size, a multiple of every usual logical block size."""

BUFFER_BYTES = 8 << 20
"""Bytes collected before a write: a multiple of BLOCK, large enough that syscalls do not count."""

_O_DIRECT: int = getattr(os, "O_DIRECT", 0)


class DirectFile:
    """A new write-only binary file (truncated if it exists), written with O_DIRECT when possible.

    Offers what a writer needs of a file object: `write`, `flush` (the bytes so far reach the
    file, the tail included), `fileno` (for fsync), `close` and `closed`.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
        self.direct = bool(_O_DIRECT)
        try:
            self._fd = os.open(path, flags | _O_DIRECT, 0o666)
        except OSError as exc:
            if not self.direct or exc.errno != errno.EINVAL:
                raise
            self._fd = os.open(path, flags, 0o666)
            self.direct = False
        self._buffer = mmap.mmap(-1, BUFFER_BYTES)
        self._view = memoryview(self._buffer)
        self._fill = 0
        """Bytes in the buffer not yet written out for good."""
        self._offset = 0
        """Where the buffer's first byte goes in the file (a multiple of BLOCK while direct)."""
        self.closed = False

    def write(self, data: Any) -> int:
        source = memoryview(data).cast("B")
        done = 0
        while done < len(source):
            take = min(len(source) - done, BUFFER_BYTES - self._fill)
            self._view[self._fill : self._fill + take] = source[done : done + take]
            self._fill += take
            done += take
            if self._fill == BUFFER_BYTES:
                self._write_out(BUFFER_BYTES)
        return done

    def flush(self) -> None:
        """Everything written so far into the file; a partial last block stays buffered for later writes."""
        if self.closed or not self._fill:
            return
        whole = self._fill - self._fill % BLOCK if self.direct else self._fill
        if whole:
            self._write_out(whole)
        if self._fill:  # direct only: the tail, padded to a block, then the file cut to size
            padded = -(-self._fill // BLOCK) * BLOCK
            self._view[self._fill : padded] = bytes(padded - self._fill)
            if self._pwrite(padded):
                os.ftruncate(self._fd, self._offset + self._fill)
            else:  # direct writes were refused: the tail went out as it is
                self._offset += self._fill
                self._fill = 0

    def _write_out(self, length: int) -> None:
        """The buffer's first `length` bytes to the file; what follows them moves to the front."""
        self._pwrite(length)
        self._offset += length
        rest = self._fill - length
        if rest:
            self._view[:rest] = self._view[length : self._fill]
        self._fill = rest

    def _pwrite(self, length: int) -> bool:
        """Write the buffer's first `length` bytes at the buffer's offset; False if direct writes were
        just refused and the buffer's real bytes (not `length`) went out the ordinary way instead."""
        try:
            self._pwrite_all(self._view[:length])
        except OSError as exc:
            if not self.direct or exc.errno != errno.EINVAL:
                raise
            self._stop_direct()
            if length > self._fill:  # a padded tail: write only the real bytes
                self._pwrite_all(self._view[: self._fill])
                return False
            self._pwrite_all(self._view[:length])
        return True

    def _pwrite_all(self, data: memoryview) -> None:
        written = 0
        while written < len(data):
            written += os.pwrite(self._fd, data[written:], self._offset + written)

    def _stop_direct(self) -> None:
        """This filesystem takes O_DIRECT at open but not the writes: ordinary writes from here on."""
        import fcntl  # POSIX only, as O_DIRECT is

        fcntl.fcntl(self._fd, fcntl.F_SETFL, fcntl.fcntl(self._fd, fcntl.F_GETFL) & ~_O_DIRECT)
        self.direct = False

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        if self.closed:
            return
        try:
            self.flush()
        finally:
            self.closed = True
            os.close(self._fd)
            self._view.release()
            with suppress(BufferError):  # a view still held by an error's traceback: unmapped with it
                self._buffer.close()
