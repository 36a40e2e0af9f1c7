"""Building and reading canonical record batches without per-record dicts.

Connectors hand columns (lists or numpy arrays) to `build_batch`; consumers get
vectors back as one 2-D float32 numpy array when the batch is uniform.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vmig.schema import RECORD_SCHEMA, SPARSE_TYPE

VectorColumn: TypeAlias = np.ndarray | Sequence[Any] | pa.Array | None


def vector_array(vectors: VectorColumn, length: int) -> pa.Array:
    """A list<float32> Arrow array from a 2-D array (zero-copy) or a list of rows/None."""
    if vectors is None:
        return pa.nulls(length, type=pa.list_(pa.float32()))
    if isinstance(vectors, pa.Array):
        return vectors.cast(pa.list_(pa.float32())) if vectors.type != pa.list_(pa.float32()) else vectors
    if isinstance(vectors, np.ndarray) and vectors.ndim == 2:
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        rows, dims = matrix.shape
        offsets = pa.array(np.arange(0, (rows + 1) * dims, dims, dtype=np.int32))
        return pa.ListArray.from_arrays(offsets, pa.array(matrix.reshape(-1)))
    offsets_list = [0]
    valid: list[bool] = []
    chunks: list[np.ndarray] = []
    total = 0
    for row in vectors:
        if row is None:
            valid.append(False)
        else:
            arr = np.asarray(row, dtype=np.float32).reshape(-1)
            chunks.append(arr)
            total += arr.shape[0]
            valid.append(True)
        offsets_list.append(total)
    flat = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.float32)
    mask = pa.array([not v for v in valid], type=pa.bool_())
    offsets = pa.array(np.asarray(offsets_list, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(flat), mask=mask)


def build_batch(
    ids: Sequence[str] | pa.Array,
    *,
    vectors: VectorColumn = None,
    text: Sequence[str | None] | pa.Array | None = None,
    model: Sequence[str | None] | pa.Array | None = None,
    namespace: Sequence[str | None] | pa.Array | None = None,
    metadata: Sequence[str | None] | pa.Array | None = None,
    created_at: Sequence[int | None] | pa.Array | None = None,
    score: Sequence[float | None] | pa.Array | None = None,
    source_store: Sequence[str | None] | pa.Array | str | None = None,
    extra: Sequence[str | None] | pa.Array | None = None,
    sparse_vector: Sequence[dict[str, Any] | None] | pa.Array | None = None,
) -> pa.RecordBatch:
    """Assemble a canonical batch; missing columns are null, `dims` is derived."""
    length = len(ids)
    vector_col = vector_array(vectors, length)
    dims = pc.list_value_length(vector_col).cast(pa.int32())

    def column(values: Any, arrow_type: pa.DataType) -> pa.Array:
        if values is None:
            return pa.nulls(length, type=arrow_type)
        if isinstance(values, str):
            return pa.array([values] * length, type=arrow_type)
        if isinstance(values, pa.Array):
            return values.cast(arrow_type)
        return pa.array(values, type=arrow_type)

    columns = [
        column(ids, pa.string()),
        vector_col,
        column(text, pa.string()),
        column(model, pa.string()),
        dims,
        column(namespace, pa.string()),
        column(metadata, pa.string()),
        column(created_at, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        column(score, pa.float64()),
        column(source_store, pa.string()),
        column(extra, pa.string()),
        column(sparse_vector, SPARSE_TYPE),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=RECORD_SCHEMA)


class RecordColumns:
    """A source's records gathered field by field into one canonical batch: what a connector that reads
    records one at a time (a row, a point, a metadata entry) fills, instead of a list per field of its own."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.vectors: list[Any] = []
        self.texts: list[str | None] = []
        self.models: list[str | None] = []
        self.namespaces: list[str | None] = []
        self.metadata: list[str | None] = []
        self.created: list[int | None] = []
        self.scores: list[float | None] = []
        self.sources: list[str | None] = []
        self.extras: list[str | None] = []
        self.sparse: list[dict[str, Any] | None] = []

    def add(
        self,
        record_id: str,
        vector: Any = None,
        text: str | None = None,
        *,
        model: str | None = None,
        namespace: str | None = None,
        metadata: str | None = None,
        created_at: int | None = None,
        score: float | None = None,
        source_store: str | None = None,
        extra: str | None = None,
        sparse_vector: dict[str, Any] | None = None,
    ) -> None:
        """One record; `metadata` and `extra` are JSON text, `created_at` µs since the epoch."""
        self.ids.append(record_id)
        self.vectors.append(vector)
        self.texts.append(text)
        self.models.append(model)
        self.namespaces.append(namespace)
        self.metadata.append(metadata)
        self.created.append(created_at)
        self.scores.append(score)
        self.sources.append(source_store)
        self.extras.append(extra)
        self.sparse.append(sparse_vector)

    def build(self, vectors: VectorColumn = None, texts: Sequence[str | None] | None = None) -> pa.RecordBatch:
        """The batch; `vectors` or `texts` given whole (a store that returns them as one array) replace the
        ones added record by record."""
        return build_batch(
            self.ids,
            vectors=self.vectors if vectors is None else vectors,
            text=self.texts if texts is None else texts,
            model=self.models,
            namespace=self.namespaces,
            metadata=self.metadata,
            created_at=self.created,
            score=self.scores,
            source_store=self.sources,
            extra=self.extras,
            sparse_vector=self.sparse,
        )


def uniform_dims(batch: pa.RecordBatch) -> int | None:
    """The single vector length of a batch with no null vectors, else None."""
    vectors = batch.column("vector")
    if batch.num_rows == 0 or vectors.null_count:
        return None
    lengths = pc.list_value_length(vectors)
    low, high = pc.min_max(lengths).values()
    return int(low.as_py()) if low == high else None


def vector_matrix(batch: pa.RecordBatch) -> np.ndarray:
    """Vectors of a uniform batch as a 2-D float32 view of the Arrow buffer."""
    dims = uniform_dims(batch)
    if dims is None:
        raise ValueError("vector_matrix needs a batch with uniform dims and no null vectors")
    values = batch.column("vector").flatten()
    return values.to_numpy(zero_copy_only=False).reshape(batch.num_rows, dims)


def vector_rows(batch: pa.RecordBatch) -> list[np.ndarray | None]:
    """Vectors one row at a time (None for null), as float32 views where possible."""
    dims = uniform_dims(batch)
    if dims is not None:
        return list(vector_matrix(batch))
    vectors = batch.column("vector")
    flat = vectors.flatten().to_numpy(zero_copy_only=False)
    offsets = vectors.offsets.to_numpy()
    # `flatten` drops values under nulls; walk lengths, not raw offsets.
    rows: list[np.ndarray | None] = []
    position = 0
    for index in range(batch.num_rows):
        if not vectors[index].is_valid:
            rows.append(None)
            continue
        size = int(offsets[index + 1] - offsets[index])
        rows.append(flat[position : position + size])
        position += size
    return rows


def concat_batches(batches: Sequence[pa.RecordBatch]) -> pa.RecordBatch:
    """One batch from several of the canonical schema."""
    non_empty = [batch for batch in batches if batch.num_rows]
    if not non_empty:
        return pa.RecordBatch.from_pylist([], schema=RECORD_SCHEMA)
    if len(non_empty) == 1:
        return non_empty[0]
    return pa.Table.from_batches(non_empty, schema=RECORD_SCHEMA).combine_chunks().to_batches()[0]


def last_of_each_id(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Keep the last row of each id: what an upsert of the whole batch would leave anyway.

    Stores refuse a single request that names one id twice (Chroma, PostgreSQL's ON CONFLICT).
    """
    ids = batch.column("id").to_pylist()
    if len(set(ids)) == len(ids):
        return batch
    last = {record_id: index for index, record_id in enumerate(ids)}
    return batch.take(pa.array(sorted(last.values())))
