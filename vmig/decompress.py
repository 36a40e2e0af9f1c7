"""Opening a data file for reading, plain or compressed (chosen by its name)."""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path
from typing import IO, Any

from vmig.errors import UsageError
from vmig.paths import compression_of

READ_BUFFER = 1 << 20
"""Read buffer of a data file: records are kilobytes long, and the default 8 KiB would cost a system call
per line."""


def _decompression_errors() -> tuple[type[BaseException], ...]:
    errors: tuple[type[BaseException], ...] = (EOFError, zlib.error, OSError)
    try:
        import zstandard

        errors += (zstandard.ZstdError,)
    except ImportError:
        pass
    return errors


DECOMPRESSION_ERRORS = _decompression_errors()
"""What reading a damaged or truncated compressed file raises."""


def open_data(path: Path) -> IO[bytes]:
    """Open a data file for reading, decompressing by its name."""
    if not path.exists():
        raise UsageError(f"input file not found: {path}")
    if path.is_dir():
        raise UsageError(f"input is a directory, not a .vmig.jsonl file: {path}")
    try:
        compression = compression_of(path)
        if compression == "gzip":
            return gzip.open(path, "rb")  # type: ignore[return-value]
        if compression == "zstd":
            import zstandard

            raw = _ZstdRaw(open(path, "rb"), lambda: zstandard.ZstdDecompressor().decompressobj())
            return io.BufferedReader(raw, buffer_size=READ_BUFFER)
        return open(path, "rb", buffering=READ_BUFFER)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc


class _ZstdRaw(io.RawIOBase):
    """zstd decompression that fails on a truncated frame (the library's stream reader ends quietly)."""

    def __init__(self, raw: IO[bytes], new_decompressor: Any) -> None:
        self._raw = raw
        self._new = new_decompressor
        self._decompressor = new_decompressor()
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            compressed = self._raw.read(1 << 16)
            if not compressed:
                if not self._decompressor.eof:
                    raise EOFError("zstd stream ends before its frame is complete")
                return 0
            self._pending = self._decompressor.decompress(compressed)
            while self._decompressor.eof and self._decompressor.unused_data:  # the next frame of a multi-frame file
                leftover = self._decompressor.unused_data
                self._decompressor = self._new()
                self._pending += self._decompressor.decompress(leftover)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def close(self) -> None:
        self._raw.close()
        super().close()
