"""The record schema: the one canonical Arrow schema every record travels in, and the keys of a line.

Connectors, tasks and the file reader/writer all build and consume batches of
this schema, so a column is named and typed in exactly one place.
"""

from __future__ import annotations

import pyarrow as pa

from vmig.metadata import JSON_KEYS_FIELD

FORMAT_VERSION = "1.0.0"
"""The `.vmig.jsonl` format version written on every record as `vex_version`."""

FLOAT32_OVERFLOW = 2.0**128 - 2.0**103
"""The least magnitude that float32 rounds to infinity: the largest float32 plus half its spacing. A number
below it is a finite float32 (float32's largest, 3.4028234663852886e38, prints shortest as 3.4028235e38, a
little above it, and reads back as that float32)."""

SPARSE_TYPE = pa.struct([("indices", pa.list_(pa.uint32())), ("values", pa.list_(pa.float32()))])
"""A sparse vector (`vmig.sparse`): Pinecone sparse values, hybrid-search indexes."""

RECORD_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("vector", pa.list_(pa.float32())),
        pa.field("text", pa.string()),
        pa.field("model", pa.string()),
        pa.field("dims", pa.int32()),
        pa.field("namespace", pa.string()),
        # A JSON object as text: nested values survive the trip through Arrow
        # without a per-store struct schema.
        pa.field("metadata", pa.string()),
        pa.field("created_at", pa.timestamp("us", tz="UTC")),
        pa.field("score", pa.float64()),
        # Where the record was first exported from; carried so a trip through a
        # file does not rewrite a record's origin.
        pa.field("source_store", pa.string()),
        # Top-level keys of a `.vmig.jsonl` line that our model has no column
        # for (e.g. `modality` from later vex versions), as a JSON object, so
        # they are written back unchanged.
        pa.field("extra", pa.string()),
        pa.field("sparse_vector", SPARSE_TYPE),
    ]
)

COLUMNS: tuple[str, ...] = tuple(RECORD_SCHEMA.names)

KNOWN_KEYS = frozenset(
    {
        "id",
        "text",
        "vector",
        "model",
        "dims",
        "namespace",
        "score",
        "metadata",
        "created_at",
        "source_store",
        "vex_version",
        JSON_KEYS_FIELD,
        "sparse_vector",
    }
)
"""The top-level keys vex writes on a `.vmig.jsonl` line; any other key of a line travels in `extra`."""


def empty_batch() -> pa.RecordBatch:
    """A zero-row batch of the canonical schema."""
    return pa.RecordBatch.from_pylist([], schema=RECORD_SCHEMA)
