"""PostgreSQL binary COPY data built a column at a time.

psycopg's `Copy.write_row` formats every value of every row in Python; for a few
hundred thousand 384-d vectors that is most of an import's time. Here each column
becomes an Arrow binary array of ready-to-send fields (length prefix and payload, in
the binary formats of `COPY ... (FORMAT BINARY)`), and one Arrow kernel joins the
fields of each row, so a batch's bytes are made without a Python step per record.

`copy_stream` gives the whole stream (signature, rows, trailer) for `Copy.write`.
Reading goes the other way: `split_fields` finds each field of a `COPY ... TO STDOUT
(FORMAT BINARY)` stream (one small step per field), then each column is cut out of
the stream with numpy in one go.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
"""Binary COPY header: the signature, a zero flags field and an empty header extension."""
TRAILER = b"\xff\xff"
POSTGRES_EPOCH_MICROS = 946_684_800_000_000
"""2000-01-01 UTC in Unix microseconds: binary timestamps count from there."""
_NULL = -1

Field = list[pa.Array]
"""The pieces of one column, joined per row in order (a length prefix, then the payload)."""


def _binary(data: np.ndarray | bytes, offsets: np.ndarray) -> pa.Array:
    """A large_binary array over `data` split at `offsets` (no copy of the data)."""
    count = len(offsets) - 1
    buffer = pa.py_buffer(data)
    return pa.Array.from_buffers(pa.large_binary(), count, [None, pa.py_buffer(offsets.astype(np.int64)), buffer])


def _fixed_width(rows: np.ndarray) -> pa.Array:
    """Each row of a 2-D uint8 array as one binary value."""
    count, width = rows.shape
    return _binary(np.ascontiguousarray(rows), np.arange(0, (count + 1) * width, width, dtype=np.int64))


def _prefixes(lengths: np.ndarray) -> pa.Array:
    """Big-endian int32 length prefixes (-1 marks NULL)."""
    return _fixed_width(np.asarray(lengths, dtype=">i4").reshape(-1, 1).view(np.uint8))


def _fixed_payload(payload: np.ndarray, valid: np.ndarray | None) -> Field:
    """A fixed-width payload per row (uint8, n x w); a row that is not valid is sent as NULL."""
    count, width = payload.shape
    lengths = np.full(count, width, dtype=np.int32)
    values = _fixed_width(payload)
    if valid is not None and not valid.all():
        lengths[~valid] = _NULL
        values = pc.if_else(pa.array(valid), values, pa.scalar(b"", pa.large_binary()))
    return [_prefixes(lengths), values]


def text(values: pa.Array) -> Field:
    """`text` (and `varchar`): the UTF-8 bytes, as sent by a client whose encoding is UTF8."""
    data = values.cast(pa.large_binary())
    lengths = pc.binary_length(data).fill_null(_NULL).to_numpy()
    return [_prefixes(lengths), data.fill_null(b"")]


def jsonb(values: pa.Array) -> Field:
    """`jsonb` from JSON text: a version byte (1), then the text."""
    data = values.cast(pa.large_binary())
    valid = data.is_valid()
    lengths = pc.add(pc.binary_length(data), 1).fill_null(_NULL).to_numpy()
    version = pc.if_else(valid, pa.scalar(b"\x01", pa.large_binary()), pa.scalar(b"", pa.large_binary()))
    return [_prefixes(lengths), version, data.fill_null(b"")]


def vector(matrix: np.ndarray, half: bool = False) -> Field:
    """pgvector `vector` / `halfvec`: int16 dims, int16 unused, then big-endian float32 / float16 values."""
    count, dims = matrix.shape
    item = 2 if half else 4
    payload = np.empty((count, 4 + dims * item), dtype=np.uint8)
    header = payload[:, :4].view(">i2")
    header[:, 0] = dims
    header[:, 1] = 0
    payload[:, 4:].view(">f2" if half else ">f4")[:] = matrix
    return _fixed_payload(payload, None)


def timestamptz(values: pa.Array) -> Field:
    """`timestamptz` from an Arrow timestamp[us]: microseconds since 2000-01-01 UTC."""
    micros = values.cast(pa.int64())
    valid = micros.is_valid().to_numpy(zero_copy_only=False)
    shifted = micros.fill_null(0).to_numpy() - POSTGRES_EPOCH_MICROS
    return _fixed_payload(shifted.astype(">i8").reshape(-1, 1).view(np.uint8), valid)


def float8(values: pa.Array) -> Field:
    valid = values.is_valid().to_numpy(zero_copy_only=False)
    numbers = values.cast(pa.float64()).fill_null(0.0).to_numpy()
    return _fixed_payload(numbers.astype(">f8").reshape(-1, 1).view(np.uint8), valid)


def uuid_constant(value: uuid.UUID, count: int) -> Field:
    """The same `uuid` in every row (LangChain's collection id)."""
    payload = np.frombuffer(value.bytes, dtype=np.uint8)
    return _fixed_payload(np.broadcast_to(payload, (count, 16)), None)


def integers(values: list[int], width: int) -> Field:
    """`smallint`, `integer` or `bigint` (`width` 2, 4 or 8 bytes); the values must fit."""
    numbers = np.asarray(values, dtype=np.int64).astype(f">i{width}")
    return _fixed_payload(numbers.reshape(-1, 1).view(np.uint8), None)


def uuids(values: list[uuid.UUID]) -> Field:
    """A `uuid` column: 16 bytes a row."""
    payload = np.frombuffer(b"".join(value.bytes for value in values), dtype=np.uint8).reshape(len(values), 16)
    return _fixed_payload(payload, None)


def copy_stream(fields: list[Field], count: int) -> pa.Buffer:
    """Signature, `count` rows of the given fields (in COPY column order), trailer."""
    field_count = np.asarray([len(fields)], dtype=">i2").view(np.uint8)
    pieces: list[pa.Array] = [_fixed_width(np.broadcast_to(field_count, (count, 2)))]
    for field in fields:
        pieces.extend(field)
    rows = pc.binary_join_element_wise(*pieces, pa.scalar(b"", pa.large_binary()))
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int64, count=count + 1, offset=rows.offset * 8)
    body = rows.buffers()[2][int(offsets[0]) : int(offsets[-1])]
    return pa.py_buffer(b"".join((SIGNATURE, memoryview(body), TRAILER)))


# -- reading: COPY ... TO STDOUT (FORMAT BINARY) -----------------------------------------

_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")


@dataclass
class Fields:
    """Where every field of a binary COPY stream lies: rows x columns starts and lengths (-1: NULL)."""

    data: bytes
    starts: np.ndarray
    lengths: np.ndarray

    @property
    def rows(self) -> int:
        return len(self.starts)


def _header_size(data: bytes) -> int:
    """Bytes of the signature, flags and header extension at the start of `data` (0 if none)."""
    if not data.startswith(SIGNATURE[:11]):
        return 0
    return 15 + 4 + _INT32.unpack_from(data, 15)[0]


def split_fields(data: bytes, columns: int) -> Fields:
    """Locate the fields of each row (the signature, if present, and the trailer are skipped)."""
    unpack_h, unpack_i = _INT16.unpack_from, _INT32.unpack_from
    pos, end = _header_size(data), len(data)
    starts: list[int] = []
    lengths: list[int] = []
    while pos < end:
        (count,) = unpack_h(data, pos)
        pos += 2
        if count == -1:
            break
        if count != columns:
            raise ValueError(f"binary COPY row has {count} fields, expected {columns}")
        for _ in range(columns):
            (length,) = unpack_i(data, pos)
            pos += 4
            starts.append(pos)
            lengths.append(length)
            if length > 0:
                pos += length
    shape = (-1, columns)
    return Fields(
        data, np.asarray(starts, dtype=np.int64).reshape(shape), np.asarray(lengths, dtype=np.int64).reshape(shape)
    )


def is_last_message(message: bytes) -> bool:
    """The trailer, alone or (for no rows at all) right after the header."""
    return message == TRAILER or message == SIGNATURE + TRAILER


def _int_at(buffer: np.ndarray, positions: np.ndarray, kind: str) -> np.ndarray:
    """The big-endian integers of type `kind` starting at each position, read all at once."""
    width = np.dtype(kind).itemsize
    raw = buffer[positions[:, None] + np.arange(width, dtype=np.int64)]
    return np.ascontiguousarray(raw).view(kind).reshape(-1).astype(np.int64)


def split_rows(messages: list[bytes], columns: int) -> Fields:
    """`split_fields` for the messages of a COPY TO, one row each: a column at a time across all rows.

    PostgreSQL sends each row as a message of its own (the header rides on the first, the
    trailer comes alone), so where rows start is known without reading them; each
    column's lengths are then read for every row in one numpy step.
    """
    data = b"".join(messages)
    sizes = np.fromiter(map(len, messages), dtype=np.int64, count=len(messages))
    row_ends = np.cumsum(sizes)[:-1]  # the last message is the trailer
    row_starts = np.zeros(len(row_ends), dtype=np.int64)
    row_starts[1:] = row_ends[:-1]
    if len(row_starts):
        row_starts[0] += _header_size(data)
    if not data.endswith(TRAILER) or (len(messages) > 1 and sizes[-1] != len(TRAILER)):
        return split_fields(data, columns)  # not one message a row: read it field by field
    buffer = np.frombuffer(data, dtype=np.uint8)
    if len(row_starts) and (_int_at(buffer, row_starts, ">i2") != columns).any():
        raise ValueError(f"binary COPY rows do not all have {columns} fields")
    starts = np.empty((len(row_starts), columns), dtype=np.int64)
    lengths = np.empty((len(row_starts), columns), dtype=np.int64)
    position = row_starts + 2
    for column in range(columns):
        length = _int_at(buffer, position, ">i4")
        starts[:, column] = position + 4
        lengths[:, column] = length
        position = position + 4 + np.maximum(length, 0)
    if (position != row_ends).any():
        raise ValueError("binary COPY row lengths do not add up")
    return Fields(data, starts, lengths)


def last_row_text(messages: list[bytes], column: int = 0) -> str:
    """A field (`column`, the first by default), as text, of the last row of a COPY TO: the keyset
    cursor of a page, read without splitting the page's rows. The fields before it are stepped over."""
    row = messages[-2] if len(messages) > 2 else messages[0][_header_size(messages[0]) :]
    position = 2  # past the row's field count
    for _ in range(column):
        position += 4 + max(_INT32.unpack_from(row, position)[0], 0)
    length = _INT32.unpack_from(row, position)[0]
    return row[position + 4 : position + 4 + length].decode()


def _gather(fields: Fields, column: int, skip: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bytes of the column's non-null fields, laid end to end), their offsets, and the validity mask."""
    lengths = fields.lengths[:, column]
    valid = lengths >= 0
    sizes = np.where(valid, lengths - skip, 0)
    offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    starts = fields.starts[:, column] + skip
    index = np.repeat(starts - offsets[:-1], sizes) + np.arange(offsets[-1], dtype=np.int64)
    return np.frombuffer(fields.data, dtype=np.uint8)[index], offsets, valid


def read_text(fields: Fields, column: int, skip: int = 0) -> pa.Array:
    """A text (or `json`; `jsonb` with skip=1 for its version byte) column as an Arrow string array."""
    values, offsets, valid = _gather(fields, column, skip)
    mask = None if valid.all() else pa.array(valid).buffers()[1]
    array = pa.Array.from_buffers(
        pa.large_string(), len(valid), [mask, pa.py_buffer(offsets), pa.py_buffer(values)], null_count=-1
    )
    return array.cast(pa.string())


def read_vectors(fields: Fields, column: int, half: bool = False) -> list[np.ndarray | None] | np.ndarray:
    """A `vector`/`halfvec` column: one float32 matrix when every row has one of the same size."""
    lengths = fields.lengths[:, column]
    item = ">f2" if half else ">f4"
    width = np.dtype(item).itemsize
    data = np.frombuffer(fields.data, dtype=np.uint8)
    if len(lengths) and (lengths == lengths[0]).all() and lengths[0] >= 4:
        size = int(lengths[0])
        view = memoryview(fields.data)
        # Slices joined end to end: one copy, no per-byte index array.
        packed = b"".join([view[start + 4 : start + size] for start in fields.starts[:, column].tolist()])
        return np.frombuffer(packed, dtype=item).astype(np.float32).reshape(len(lengths), (size - 4) // width)
    rows: list[np.ndarray | None] = []
    for start, length in zip(fields.starts[:, column], lengths, strict=True):
        payload = data[start + 4 : start + length] if length >= 4 else None
        rows.append(None if payload is None else payload.view(item).astype(np.float32))
    return rows


def _fixed(fields: Fields, column: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    lengths = fields.lengths[:, column]
    valid = lengths >= 0
    data = np.frombuffer(fields.data, dtype=np.uint8)
    width = np.dtype(kind).itemsize
    starts = np.where(valid, fields.starts[:, column], 0)
    values = data[starts[:, None] + np.arange(width, dtype=np.int64)].copy().view(kind).reshape(-1)
    return values, valid


def read_timestamptz(fields: Fields, column: int) -> pa.Array:
    """A `timestamptz` column as Unix microseconds (int64, nulls kept)."""
    values, valid = _fixed(fields, column, ">i8")
    return pa.array(values.astype(np.int64) + POSTGRES_EPOCH_MICROS, mask=~valid)


def read_float8(fields: Fields, column: int) -> pa.Array:
    values, valid = _fixed(fields, column, ">f8")
    return pa.array(values.astype(np.float64), mask=~valid)
