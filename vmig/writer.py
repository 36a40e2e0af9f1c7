"""Streaming `.vmig.jsonl` writer: bounded memory, atomic, checksummed.

Lines go to a hidden temporary file beside the target; only `commit()` renames
it into place, so a crash never leaves a partial file that looks complete. The
SHA-256 of the exact bytes on disk is computed as they are written.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from vmig import metadata as md
from vmig.batch import vector_rows
from vmig.canonical import Encoded, canonical_record, js_array_text, whole_rows
from vmig.directio import DirectFile
from vmig.errors import StoreError
from vmig.parallel import OneInFlight, warm_up, worker_count
from vmig.paths import compression_of, temporary_path
from vmig.schema import FORMAT_VERSION, KNOWN_KEYS
from vmig.signing import record_hash
from vmig.sparse import KEY as SPARSE_KEY
from vmig.sparse import sparse_rows
from vmig.spool import SLICE_ROWS, SPOOL_FROM_ROWS, WARM_FROM_ROWS, Lines, LineSpool, write_lines
from vmig.stats import RecordStats
from vmig.timefmt import format_micros_column

_DUMP_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE


class _HashingFile:
    """A binary sink that hashes every byte it passes to the real file."""

    def __init__(self, raw: DirectFile) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


def record_lines(
    batch: pa.RecordBatch, default_source: str | None = None, hashes: list[str] | None = None
) -> list[bytes]:
    """Serialise a canonical batch as format-valid JSON lines (flat metadata).

    Given `hashes`, each record's signature hash (`vmig.signing`) is appended to it, computed from the values
    the line is printed from: the vector's text is printed once, for the line and (in JavaScript's notation)
    for the canonical JSON, so signing adds no parse of the lines."""
    columns = {name: batch.column(name).to_pylist() for name in ("id", "text", "model", "namespace", "score")}
    metas = batch.column("metadata").to_pylist()
    dims = batch.column("dims").to_pylist()
    created = format_micros_column(batch.column("created_at"))
    sources = batch.column("source_store").to_pylist()
    extras = batch.column("extra").to_pylist()
    sparse = sparse_rows(batch.column("sparse_vector"))
    vectors = vector_rows(batch)
    whole = _whole_vectors(vectors) if hashes is not None else None
    lines: list[bytes] = []
    for i in range(batch.num_rows):
        flat, encoded = md.encode_nested(md.loads(metas[i]))
        record: dict[str, Any] = {
            "id": columns["id"][i],
            "text": columns["text"][i],
            "vector": vectors[i],
            "model": columns["model"][i],
            "dims": dims[i],
            "namespace": columns["namespace"][i],
            "score": columns["score"][i],
            "metadata": flat,
            "created_at": created[i],
            "source_store": sources[i] if sources[i] is not None else default_source,
            "vex_version": FORMAT_VERSION,
        }
        if encoded:
            record[md.JSON_KEYS_FIELD] = encoded
        if sparse[i] is not None:
            record[SPARSE_KEY] = sparse[i]
        if extras[i]:
            for key, value in orjson.loads(extras[i]).items():
                if key not in KNOWN_KEYS:
                    record[key] = value
        if whole is None:
            lines.append(orjson.dumps(record, option=_DUMP_OPTIONS))
            continue
        vector = vectors[i]
        text = None if vector is None else orjson.dumps(vector, option=orjson.OPT_SERIALIZE_NUMPY)
        if text is not None:
            record["vector"] = orjson.Fragment(text)
        lines.append(orjson.dumps(record, option=_DUMP_OPTIONS))
        if text is not None:
            record["vector"] = Encoded(js_array_text(text, bool(whole[i])))
        assert hashes is not None
        hashes.append(record_hash(canonical_record(record)))
    return lines


def _whole_vectors(vectors: list[np.ndarray | None]) -> list[bool]:
    """Which vectors hold a whole number (`vmig.canonical.js_array_text` drops its `.0`)."""
    if vectors and all(vector is not None for vector in vectors) and len({len(v) for v in vectors}) == 1:  # type: ignore[arg-type]
        return [bool(flag) for flag in whole_rows(np.stack(vectors))]  # type: ignore[arg-type]
    return [vector is not None and bool(whole_rows(vector.reshape(1, -1))[0]) for vector in vectors]


class VmigWriter:
    """Write canonical batches to a `.vmig.jsonl[.gz|.zst]` file atomically.

    Hashing, compressing and writing the bytes run on a thread of their own (hashlib,
    zlib, zstandard and file writes let go of the GIL), so they overlap the formatting
    of the next batch; one write is in flight at a time, so order and memory are kept.
    With cores to spare, worker processes format the lines (`vmig.spool`).
    """

    def __init__(
        self,
        path: Path,
        default_source: str | None = None,
        workers: int | None = None,
        expected_records: int | None = None,
        sign: bool = False,
    ) -> None:
        self.path = Path(path)
        self.record_hashes: list[str] | None = [] if sign else None
        """With `sign`: each record's hash for the signature (`vmig.signing`), computed from the lines as they
        are made (by the formatting workers where they run), so signing needs no second pass over the file."""
        self.expected_records = expected_records
        """How many records the run expects to write, where known: a large export starts its workers at once."""
        self.default_source = default_source
        self.stats = RecordStats()
        self.temp_path = temporary_path(self.path)
        self.checksum: str | None = None
        self._raw: DirectFile | None = None
        self._hashing: _HashingFile | None = None
        self._stream: Any = None
        self._io = OneInFlight("vex-write")
        self._workers = worker_count() if workers is None else workers
        self._spool: LineSpool | None = None
        self._warming: list[Future[None]] | None = None

    @contextmanager
    def _file_errors(self) -> Iterator[None]:
        """A full disk or a missing permission: one clear error naming the file, not a raw OSError."""
        try:
            yield
        except OSError as exc:
            raise StoreError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def open(self) -> VmigWriter:
        with self._file_errors():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._raw = DirectFile(self.temp_path)
        self._hashing = _HashingFile(self._raw)
        compression = compression_of(self.path)
        if compression == "gzip":
            # mtime=0 and no name: the same records give the same bytes.
            self._stream = gzip.GzipFile(filename="", mode="wb", fileobj=self._hashing, mtime=0)  # type: ignore[arg-type]
        elif compression == "zstd":
            import zstandard

            self._stream = zstandard.ZstdCompressor().stream_writer(self._hashing, closefd=False)  # type: ignore[arg-type]
        else:
            self._stream = self._hashing
        if self._expects_many() and self._warming is None:
            self._warming = warm_up(self._workers, "vmig.writer")  # they start while the source is read
        return self

    def write_batch(self, batch: pa.RecordBatch) -> int:
        """Queue a batch's lines; they reach the file in order, complete by `commit`."""
        if self._stream is None:
            self.open()
        self._start_workers_when_large()
        if self._spool is not None:
            for item, hashes in self._spool.submit(batch):
                self._write_spooled(item, hashes)
        else:
            for start in range(0, batch.num_rows, SLICE_ROWS):
                lines = record_lines(batch.slice(start, SLICE_ROWS), self.default_source, self.record_hashes)
                self._write(b"".join(lines))
        self.stats.add(batch)
        return batch.num_rows

    def _start_workers_when_large(self) -> None:
        """Formatting workers only for an export that is or grows large: a small one never starts them.

        Where the run expects `SPOOL_FROM_ROWS` records or more, they are spawned by `open` and
        used as soon as all have started. Otherwise they are spawned once `WARM_FROM_ROWS` records are
        written and used from `SPOOL_FROM_ROWS` on. Either way this process formats the records
        itself until then, instead of waiting for them.
        """
        if self._workers < 2 or self._spool is not None:
            return
        written = self.stats.record_count
        if self._warming is None and written >= WARM_FROM_ROWS:
            self._warming = warm_up(self._workers, "vmig.writer")
        started = self._warming is not None and all(future.done() for future in self._warming)
        if written >= SPOOL_FROM_ROWS or (self._expects_many() and started):
            self._spool = LineSpool(self._workers, self.default_source, sign=self.record_hashes is not None)

    def _expects_many(self) -> bool:
        return self._workers >= 2 and (self.expected_records or 0) >= SPOOL_FROM_ROWS

    def _write(self, data: bytes) -> None:
        """Hand bytes to the I/O thread (one write in flight, so order and memory are kept)."""
        self._hand_over(self._stream.write, data)

    def _write_spooled(self, item: Lines, hashes: list[str] | None) -> None:
        """Like `_write`, for a worker's slice: the I/O thread writes it from its slot and frees the slot."""
        if self.record_hashes is not None:
            assert hashes is not None, "a signed file's slices come back with their hashes"
            self.record_hashes += hashes
        self._hand_over(write_lines, item, self._stream)

    def _hand_over(self, step: Any, *args: Any) -> None:
        with self._file_errors():
            self._io.submit(step, *args)

    def _settle(self) -> None:
        """Wait for the write in flight; its error, if any, is raised here."""
        with self._file_errors():
            self._io.settle()

    def commit(self, publish: bool = True) -> str:
        """Flush, fsync and rename into place; returns the `sha256:` checksum.

        Without `publish` the complete file stays under its temporary name, for
        `vmig.sidecar.publish` to rename together with its sidecar (or `abort` to remove)."""
        if self._stream is None:
            self.open()
        assert self._raw is not None and self._hashing is not None
        if self._spool is not None:
            for item, hashes in self._spool.drain():
                self._write_spooled(item, hashes)
        self._settle()
        self._io.close()
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        with self._file_errors():
            if self._stream is not self._hashing:
                self._stream.close()
            self._raw.flush()
            os.fsync(self._raw.fileno())
            self._raw.close()
            if publish:
                os.replace(self.temp_path, self.path)
        self.checksum = "sha256:" + self._hashing.digest.hexdigest()
        self._stream = None
        return self.checksum

    def abort(self) -> None:
        """Drop the temporary file; the destination is left as it was."""
        self._io.close(drop=True)
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        if self._raw is not None and not self._raw.closed:
            with suppress(OSError):  # a full disk fails the flush of close; the file goes anyway
                self._raw.close()
        self._stream = None
        self.temp_path.unlink(missing_ok=True)

    def __enter__(self) -> VmigWriter:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()
