"""The format's optional `sparse_vector` (`{"indices": [uint32...], "values": [float32...]}`: Pinecone sparse
values, Qdrant sparse vectors, hybrid-search indexes) and its rules.

In flight it is the batch's `sparse_vector` column. A store that takes the column itself
(`Capabilities.sparse_column`: the file, Pinecone) reads and writes it; every other store gets it folded into
the record's `extra` (the line keys vex has no column for, which every store keeps) on the way in, and
unfolded on the way out (`fold`, `unfold`, called by the pipeline once, never by a connector), so no store
drops it. The reader holds it to these rules: a line that breaks them is damaged.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from vmig.schema import FLOAT32_OVERFLOW

KEY = "sparse_vector"
_UINT32_MAX = 2**32 - 1


def sparse_problem(value: Any) -> str | None:
    """Why `value` is not a sparse vector the format allows; None when it is one."""
    if not isinstance(value, dict) or set(value) != {"indices", "values"}:
        return "'sparse_vector' must be an object of 'indices' and 'values'"
    indices, values = value["indices"], value["values"]
    if not isinstance(indices, list) or not isinstance(values, list):
        return "'sparse_vector' indices and values must be lists"
    if len(indices) != len(values):
        return f"'sparse_vector' has {len(indices)} indices but {len(values)} values"
    if not all(type(i) is int and 0 <= i <= _UINT32_MAX for i in indices):
        return "'sparse_vector' indices must be whole numbers from 0 to 4294967295"
    if len(set(indices)) != len(indices):
        return "'sparse_vector' indices must not repeat"
    if not all(type(v) in (int, float) and math.isfinite(v) for v in values):
        return "'sparse_vector' values must be finite numbers"
    if values and max(map(abs, values)) >= FLOAT32_OVERFLOW:
        return "'sparse_vector' holds a value that is not a finite float32"  # it would be carried as infinity
    return None


def sparse_rows(column: pa.Array) -> list[dict[str, Any] | None]:
    """Each row's sparse vector as the line writes it: values as float32, printed in their shortest form."""
    if column.null_count == len(column):
        return [None] * len(column)
    return [
        None if entry is None else {"indices": entry["indices"], "values": np.asarray(entry["values"], np.float32)}
        for entry in column.to_pylist()
    ]


def fold(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The sparse vectors moved into `extra` (for a store that keeps `extra` but has no sparse column)."""
    column = batch.column(KEY)
    if column.null_count == batch.num_rows:
        return batch
    extras = batch.column("extra").to_pylist()
    for row, sparse in enumerate(sparse_rows(column)):
        if sparse is not None:
            keys = orjson.loads(extras[row]) if extras[row] else {}
            keys[KEY] = sparse
            extras[row] = orjson.dumps(keys, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    batch = batch.set_column(batch.schema.get_field_index("extra"), "extra", pa.array(extras, pa.string()))
    return batch.set_column(batch.schema.get_field_index(KEY), KEY, pa.nulls(batch.num_rows, column.type))


def unfold(batch: pa.RecordBatch) -> pa.RecordBatch:
    """`fold` undone: sparse vectors a store kept in `extra` back in their column."""
    extras = batch.column("extra")
    if extras.null_count == batch.num_rows or not pc.any(pc.match_substring(extras, f'"{KEY}"')).as_py():
        return batch
    texts = extras.to_pylist()
    sparse: list[dict[str, Any] | None] = batch.column(KEY).to_pylist()
    for row, text in enumerate(texts):
        if text and f'"{KEY}"' in text:
            keys = orjson.loads(text)
            value = keys.pop(KEY, None)
            if value is not None and sparse_problem(value) is None:
                sparse[row] = value
                texts[row] = orjson.dumps(keys).decode() if keys else None
    batch = batch.set_column(batch.schema.get_field_index("extra"), "extra", pa.array(texts, pa.string()))
    column = pa.array(sparse, batch.schema.field(KEY).type)
    return batch.set_column(batch.schema.get_field_index(KEY), KEY, column)
