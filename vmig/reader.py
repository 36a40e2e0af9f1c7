"""Streaming `.vmig.jsonl` reader: tolerant of variants, strict about damage.

Variants other vex versions write are read without loss: `created_at` as epoch
seconds or milliseconds, a `source` key, array- or object-valued metadata,
`metadata: null`, extra top-level keys (kept in the `extra` column). Damage is
never counted as a record: each damaged line comes back as a `Reject` with its
line number and reason.
"""

from __future__ import annotations

import gzip
import io
import math
import operator
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
import pyarrow as pa

from vmig import metadata as md
from vmig.batch import build_batch
from vmig.errors import IntegrityError, UsageError
from vmig.parallel import OrderedWorkers, warm_up, worker_count
from vmig.paths import compression_of
from vmig.rejects import Reject
from vmig.schema import KNOWN_KEYS
from vmig.timefmt import TimestampError, to_micros

MAX_LINE_BYTES = 16 * 1024 * 1024
"""Longest line accepted; a record of 100k float32 dims fits comfortably."""

_FLOAT32_MAX = float(np.finfo(np.float32).max)
_NUMBER_TYPES = {int, float}
_BOM = b"\xef\xbb\xbf"
_READ_BUFFER = 1 << 20


def _decompression_errors() -> tuple[type[BaseException], ...]:
    errors: tuple[type[BaseException], ...] = (EOFError, zlib.error, OSError)
    try:
        import zstandard

        errors += (zstandard.ZstdError,)
    except ImportError:
        pass
    return errors


DECOMPRESSION_ERRORS = _decompression_errors()


class LineRejected(ValueError):
    """One line of the file cannot be a record; the message says why."""


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
            return io.BufferedReader(raw, buffer_size=_READ_BUFFER)
        # Records are kilobytes long: the default 8 KiB buffer would cost a system call per line.
        return open(path, "rb", buffering=_READ_BUFFER)
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


def _text(record: dict[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "text":
        return str(value)
    raise LineRejected(f"'{key}' must be a string, got {type(value).__name__}")


def _strict_vector_check(value: list[Any] | np.ndarray) -> None:
    """The exact reason a vector is not a finite float32 array (slow path, per row)."""
    if isinstance(value, np.ndarray):
        if not np.isfinite(value).all() or np.abs(value).max() > _FLOAT32_MAX:
            raise LineRejected("'vector' holds a value that is not a finite float32")
        return
    if not set(map(type, value)) <= _NUMBER_TYPES:
        raise LineRejected("'vector' holds a value that is not a number")
    peak = max(abs(min(value)), abs(max(value)))
    if math.isnan(peak) or peak > _FLOAT32_MAX:
        raise LineRejected("'vector' holds a value that is not a finite float32")


def _vector(record: dict[str, Any], raw: bytes) -> list[float] | np.ndarray | None:
    """Shape checks here; element checks happen for the whole batch in numpy."""
    value = record.get("vector")
    if value is None or isinstance(value, np.ndarray):
        return value  # an ndarray comes from the fast path, which checked its elements already
    if not isinstance(value, list):
        raise LineRejected(f"'vector' must be an array of numbers, got {type(value).__name__}")
    if not value:
        raise LineRejected("'vector' is empty")
    if b"true" in raw or b"false" in raw:
        # numpy would read a JSON boolean as 1.0/0.0: check this line element by element
        _strict_vector_check(value)
    return value


def parse_record(raw: bytes) -> dict[str, Any]:
    """One line to the fields of our model, or `LineRejected` saying what is wrong."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        reason = "not valid UTF-8" if "utf-8" in str(exc).lower() else f"not valid JSON ({exc})"
        raise LineRejected(reason) from None
    if not isinstance(record, dict):
        raise LineRejected(f"line is JSON {type(record).__name__}, not an object")
    return _record_fields(record, raw)


_VECTOR_KEY = b'"vector"'
_PLACEHOLDER = b'"\\u0000vex:vector"'
"""Stands in for the vector array while the rest of a line is parsed (a string no real line holds)."""
_PLACEHOLDER_VALUE = orjson.loads(_PLACEHOLDER)


class FastParser:
    """The vector of a line parsed by simdjson, the rest by orjson; `parse_record` when unsure.

    Parsing the numbers of a vector is most of the cost of reading a data file. Here the
    vector's array is cut out of the line by a byte search, its numbers read by simdjson
    into one float64 buffer (no Python object per number, about four times faster than
    orjson), and the small rest of the line parsed by orjson with a placeholder where
    the array was. The placeholder coming back as the record's `vector` proves the cut
    was the record's vector (not a nested key, not the first of duplicate keys). Any
    doubt (no such array, a `[` inside it, a value simdjson refuses) sends the line to
    `parse_record`, so both paths give the same verdict.
    """

    def __init__(self) -> None:
        try:
            import simdjson
        except ImportError:  # pragma: no cover - a dependency; without it every line takes the orjson path
            self._parser: Any = None
        else:
            self._parser = simdjson.Parser()

    def row(self, raw: bytes) -> tuple[Any, ...]:
        """The line's fields in `_BATCH_FIELDS` order: what a batch is built from.

        The line vex itself writes (its own keys, plain values) is checked in one short
        pass; anything else goes through `_record_fields`, which says exactly what is wrong.
        """
        record = self._fast_record(raw) if self._parser is not None else None
        if record is None:
            return _row_fields(parse_record(raw))
        return _plain_row(record) or _row_fields(_record_fields(record, raw))

    def _fast_record(self, raw: bytes) -> dict[str, Any] | None:
        key = raw.find(_VECTOR_KEY)
        start = raw.find(b"[", key + len(_VECTOR_KEY)) if key >= 0 else -1
        if start < 0 or raw[key + len(_VECTOR_KEY) : start].strip() != b":":
            return None
        end = raw.find(b"]", start)
        if end < 0 or raw.find(b"[", start + 1, end) >= 0:
            return None  # unterminated, or a nested array (simdjson would flatten it)
        try:
            record = orjson.loads(b"".join((raw[:start], _PLACEHOLDER, raw[end + 1 :])))
        except orjson.JSONDecodeError:
            return None
        if not isinstance(record, dict) or record.get("vector") != _PLACEHOLDER_VALUE:
            return None
        values = self._numbers(raw[start : end + 1])
        if values is None or not values.size:
            return None
        record["vector"] = values
        return record

    def _numbers(self, array: bytes) -> np.ndarray | None:
        """A flat JSON array of numbers as float64, or None if simdjson refuses it."""
        proxy = None
        try:
            proxy = self._parser.parse(array)
            return np.frombuffer(proxy.as_buffer(of_type="d"), dtype=np.float64)
        except (ValueError, TypeError, AttributeError, RuntimeError):
            import simdjson

            self._parser = simdjson.Parser()  # a failed parse may leave the parser unusable
            return None
        finally:
            del proxy


_NOT_EXTRA = KNOWN_KEYS | {"source"}


def _record_fields(record: dict[str, Any], raw: bytes) -> dict[str, Any]:
    raw_id = record.get("id")
    if type(raw_id) is float and md.may_hold_wide_integer([raw_id]):
        raw_id = _exact(raw).get("id", raw_id)  # a 128-bit numeric id keeps its digits
    if raw_id is None or isinstance(raw_id, (bool, dict, list, float)):
        raise LineRejected("missing 'id'" if raw_id is None else "'id' must be a string or integer")
    record_id = str(raw_id)
    if not record_id:
        raise LineRejected("'id' is empty")
    vector = _vector(record, raw)
    text = _text(record, "text")
    if vector is None and text is None:
        raise LineRejected("record has neither 'text' nor 'vector'")
    dims = record.get("dims")
    if dims is not None and vector is not None and (isinstance(dims, bool) or dims != len(vector)):
        raise LineRejected(f"'dims' is {dims} but the vector has {len(vector)} values")
    meta = record.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise LineRejected(f"'metadata' must be an object, got {type(meta).__name__}")
    encoded = record.get(md.JSON_KEYS_FIELD)
    if encoded is not None:
        if not isinstance(encoded, list) or not all(isinstance(k, str) for k in encoded):
            raise LineRejected(f"'{md.JSON_KEYS_FIELD}' must be a list of keys")
        try:
            meta = md.decode_nested(meta or {}, encoded)
        except orjson.JSONDecodeError:
            raise LineRejected(f"a metadata value listed in '{md.JSON_KEYS_FIELD}' is not JSON") from None
    try:
        created = to_micros(record.get("created_at"))
    except TimestampError as exc:
        raise LineRejected(str(exc)) from None
    score = record.get("score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
        raise LineRejected("'score' must be a number")
    source = _text(record, "source_store")
    if source is None and isinstance(record.get("source"), str):
        source = record["source"]
    # The set difference is a quick test; the comprehension keeps the line's key order.
    extra = {k: v for k, v in record.items() if k not in _NOT_EXTRA} if record.keys() - _NOT_EXTRA else {}
    if "source" in record and not isinstance(record["source"], str):
        extra["source"] = record["source"]
    if (meta and md.may_hold_wide_integer(meta)) or (extra and md.may_hold_wide_integer(extra)):
        _refuse_wide_integers(raw)
    return {
        "id": record_id,
        "vector": vector,
        "text": text,
        "model": _text(record, "model"),
        "namespace": _text(record, "namespace"),
        "metadata": None if meta is None else md.dumps(meta),
        "created_at": created,
        "score": None if score is None else float(score),
        "source_store": source,
        "extra": orjson.dumps(extra).decode() if extra else None,
    }


def _exact(raw: bytes) -> dict[str, Any]:
    """The line's record with every digit of its integers (`md.exact_json`), or {}."""
    record = md.exact_json(raw)
    return record if isinstance(record, dict) else {}


def _refuse_wide_integers(raw: bytes) -> None:
    """`LineRejected` if the line's metadata or extra keys hold an integer beyond 64 bits: orjson read it as
    the nearest float, and carrying that would change the number without a word."""
    record = _exact(raw)
    meta, encoded = record.get("metadata"), record.get(md.JSON_KEYS_FIELD)
    for key, value in meta.items() if isinstance(meta, dict) else ():
        nested = isinstance(encoded, list) and key in encoded and isinstance(value, str)
        number = md.exact_wide_integer(value) if nested else md.wide_integer(value)
        if number is not None:
            raise LineRejected(f"metadata '{key}' {md.WideIntegerError(number)}")
    for key, value in record.items():
        number = None if key in _NOT_EXTRA else md.wide_integer(value)
        if number is not None:
            raise LineRejected(f"'{key}' {md.WideIntegerError(number)}")


_PLAIN_KEYS = KNOWN_KEYS - {md.JSON_KEYS_FIELD}
"""The keys of a line whose fields need no decoding: what vex writes for flat metadata."""


def _plain_row(record: dict[str, Any]) -> tuple[Any, ...] | None:
    """`_record_fields` for the common line, or None when it needs the full checks.

    Only strings (or null) where strings go, an object or null as metadata, a number
    or null as score, an ISO `created_at`, and a vector from the fast path: for such a
    line both functions give the same fields, this one with a third of the work.
    """
    if not record.keys() <= _PLAIN_KEYS:
        return None
    get = record.get
    record_id, text, model, namespace = get("id"), get("text"), get("model"), get("namespace")
    source, meta, score, dims, created = (
        get("source_store"), get("metadata"), get("score"), get("dims"), get("created_at")
    )  # fmt: skip
    vector = record["vector"]
    if (
        type(record_id) is not str
        or not record_id
        or (text is not None and type(text) is not str)
        or (model is not None and type(model) is not str)
        or (namespace is not None and type(namespace) is not str)
        or (source is not None and type(source) is not str)
        or (meta is not None and (type(meta) is not dict or (meta and md.may_hold_wide_integer(meta))))
        or (score is not None and type(score) is not float and type(score) is not int)
        or (dims is not None and (type(dims) is not int or dims != len(vector)))
        or (created is not None and type(created) is not str)
    ):
        return None
    try:
        micros = to_micros(created)
    except TimestampError:
        return None
    return (
        record_id,
        vector,
        text,
        model,
        namespace,
        None if meta is None else orjson.dumps(meta).decode(),
        micros,
        None if score is None else float(score),
        source,
        None,
    )


def _vector_matrix(vectors: list[Any]) -> tuple[Any, dict[int, str]]:
    """Vectors of a batch as one float32 matrix when uniform, and the rows that are not finite float32."""
    present = [i for i, v in enumerate(vectors) if v is not None]
    if not present:
        return vectors, {}
    width = len(vectors[present[0]])
    matrix = None
    if all(len(vectors[i]) == width for i in present):
        try:
            # No dtype here: numpy would turn the string "0.2" into a float; a string makes a non-numeric array.
            rows = [vectors[i] for i in present]
            if all(isinstance(row, np.ndarray) for row in rows):
                # Row by row into float32: no float64 copy of the whole batch.
                matrix = np.empty((len(rows), width), dtype=np.float32)
                with np.errstate(over="ignore", invalid="ignore"):
                    for index, row in enumerate(rows):
                        matrix[index] = row
            else:
                wide = np.array(rows)
                if wide.dtype.kind in "fi":
                    with np.errstate(over="ignore", invalid="ignore"):
                        matrix = wide.astype(np.float32)
        except (ValueError, TypeError):
            matrix = None
    if matrix is None or matrix.ndim != 2:
        bad: dict[int, str] = {}
        for i in present:
            try:
                _strict_vector_check(vectors[i])
            except LineRejected as exc:
                bad[i] = str(exc)
        return vectors, bad
    finite = np.isfinite(matrix).all(axis=1)
    bad = {present[j]: "'vector' holds a value that is not a finite float32" for j in np.flatnonzero(~finite)}
    if len(present) == len(vectors) and not bad:
        return matrix, bad
    return vectors, bad


_BATCH_FIELDS = (
    "id", "vector", "text", "model", "namespace", "metadata", "created_at", "score", "source_store", "extra",
)  # fmt: skip
_row_fields = operator.itemgetter(*_BATCH_FIELDS)
_VECTOR_FIELD = _BATCH_FIELDS.index("vector")


def _columns_to_batch(
    rows: list[tuple[Any, ...]], lines: list[int], raws: list[bytes]
) -> tuple[pa.RecordBatch, list[Reject], list[int]]:
    vectors, bad = _vector_matrix([row[_VECTOR_FIELD] for row in rows])
    rejects = [Reject(lines[i], reason, raws[i].rstrip(b"\r\n")) for i, reason in sorted(bad.items())]
    if bad:
        rows = [row for i, row in enumerate(rows) if i not in bad]
        lines = [line for i, line in enumerate(lines) if i not in bad]
        vectors = [row[_VECTOR_FIELD] for row in rows]
    if not rows:
        return build_batch([]), rejects, lines
    # One C-level pass: rows to columns.
    columns = dict(zip(_BATCH_FIELDS, zip(*rows, strict=True), strict=True))
    batch = build_batch(columns.pop("id"), vectors=vectors, **{k: v for k, v in columns.items() if k != "vector"})
    return batch, rejects, lines


def _read_line(stream: IO[bytes]) -> tuple[bytes, int, bool]:
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
class _Lines:
    """The non-blank lines of one batch as read, before parsing (which may happen in a worker)."""

    raws: list[bytes]
    numbers: list[int]
    rejects: list[Reject]
    """Lines refused before parsing (too long)."""
    next_offset: int
    next_line: int


def _parse_lines(chunk: _Lines) -> ReadBatch:
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
    batch, vector_rejects, row_lines = _columns_to_batch(rows, lines, raws)
    found = sorted(rejects + vector_rejects, key=lambda r: r.line or 0)
    return ReadBatch(batch, found, chunk.next_offset, chunk.next_line, len(chunk.raws), row_lines)


def _line_chunks(
    path: Path, stream: IO[bytes], batch_rows: int, offset: int, line_no: int, stop_at: int | None = None
) -> Iterator[_Lines]:
    """Split the stream into runs of `batch_rows` non-blank lines, keeping byte offsets and line numbers.

    Stops before the first line that starts at or after `stop_at`. The last run is given
    even when empty, so that a caller learns where reading stopped.
    """
    strip_bom = offset == 0
    chunk = _Lines([], [], [], offset, line_no)
    while stop_at is None or offset < stop_at:
        try:
            raw, size, too_long = _read_line(stream)
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
            chunk = _Lines([], [], [], offset, line_no)
    yield chunk


def _has_lines(chunk: _Lines) -> bool:
    return bool(chunk.raws or chunk.rejects)


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
    with open(job.path, "rb", buffering=_READ_BUFFER) as stream:
        offset = job.start
        if offset > 0:
            stream.seek(offset - 1)
            if stream.read(1) != b"\n":
                offset += _read_line(stream)[1]  # the end of a line that began in the previous range
        batches: list[ReadBatch] = []
        last = None
        for last in _line_chunks(job.path, stream, job.batch_rows, offset, 1, stop_at=job.end):
            if _has_lines(last):
                batches.append(_parse_lines(last))
        assert last is not None, "_line_chunks always gives a last run"
        return _RangeRead(batches, last.next_line - 1)


def _renumber(read: ReadBatch, before: int) -> ReadBatch:
    """Make a range's own line numbers file line numbers (`before`: lines ahead of the range)."""
    read.rejects = [r if r.line is None else replace(r, line=r.line + before) for r in read.rejects]
    read.row_lines = [line + before for line in read.row_lines]
    read.next_line += before
    return read


RANGE_BYTES = 8 << 20
"""Share of an uncompressed file one worker reads and parses at a time."""

RANGES_AHEAD_PER_WORKER = 8
"""Ranges queued per worker. A range job is a path and two offsets, its result about a third
of its bytes; while this process loads a chunk into the store (and pulls no results) the
workers go on parsing the next chunks instead of waiting: at most 8 x 8 MiB read ahead per worker."""

PARALLEL_FROM_BYTES = 256 << 20
"""Inputs smaller than this are parsed in-process: starting workers would cost more than it saves.
Measured on jsonl -> pgvector: one process was faster up to about 190 MiB on 2 cores and on 16."""


def _auto_workers(path: Path, start_offset: int) -> int:
    try:
        large = path.stat().st_size - start_offset >= PARALLEL_FROM_BYTES
    except OSError:
        return 0
    return worker_count() if large else 0


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
) -> Iterator[ReadBatch]:
    """Stream a data file as canonical batches, starting at a byte offset (resume).

    Each batch holds the records of up to `batch_rows` non-blank lines, in file order.
    Large files are parsed by `workers` processes (default `vmig.parallel.worker_count()`
    for a file of `PARALLEL_FROM_BYTES` or more, none for a smaller one): each reads its
    own byte ranges of an uncompressed file, or parses lines this process decompressed.
    """
    path = Path(path)
    stream = open_data(path)
    try:
        if workers is None:
            workers = _auto_workers(path, start_offset)
        if workers > 1 and compression_of(path) is None:
            stream.close()
            yield from _parallel_ranges(path, path.stat().st_size, batch_rows, start_offset, start_line, workers)
            return
        if start_offset:
            _skip(stream, start_offset)
        chunks = filter(_has_lines, _line_chunks(path, stream, batch_rows, start_offset, start_line))
        parsed = OrderedWorkers(_parse_lines, workers).map(chunks)
        try:
            yield from parsed
        finally:
            parsed.close()
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


def _skip(stream: IO[bytes], count: int) -> None:
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
            raw, size, _too_long = _read_line(stream)
            if size == 0:
                return count
            if _too_long or raw.strip():
                count += 1
    except DECOMPRESSION_ERRORS as exc:
        raise IntegrityError(f"{path}: the compressed data is damaged or truncated ({exc})") from None
    finally:
        stream.close()
