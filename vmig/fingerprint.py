"""A record's fingerprint: 16 bytes that change when anything a store holds of the record changes.

A sync compares each record's fingerprint with the one its last successful run wrote, so only records that are
new or changed are written again. Every column counts except `dims` (it follows the vector) and `score` (a
search result's, not the record's); the vector by its float32 bytes, so `0.1` and `0.10000000149011612` are the
same vector.
"""

from __future__ import annotations

import hashlib

import numpy as np
import orjson
import pyarrow as pa

_TEXT_COLUMNS = ("id", "namespace", "text", "model", "metadata", "source_store", "extra")


def fingerprints(batch: pa.RecordBatch) -> list[bytes]:
    """Each row's fingerprint, in row order."""
    texts = [batch.column(name).to_pylist() for name in _TEXT_COLUMNS]
    created = batch.column("created_at").cast(pa.int64()).to_pylist()
    vectors = batch.column("vector")
    values = vectors.values.to_numpy(zero_copy_only=False) if len(vectors) else np.empty(0, np.float32)
    offsets = vectors.offsets.to_numpy()
    present = vectors.is_valid().to_numpy(zero_copy_only=False)
    sparse = batch.column("sparse_vector")
    sparse_rows = sparse.to_pylist() if sparse.null_count < len(sparse) else None
    out: list[bytes] = []
    for row in range(batch.num_rows):
        digest = hashlib.blake2b(digest_size=16)
        fields = [column[row] for column in texts]
        fields.append(created[row])
        fields.append(bool(present[row]))
        if sparse_rows is not None and sparse_rows[row] is not None:
            fields.append(sparse_rows[row]["indices"])
            fields.append(np.asarray(sparse_rows[row]["values"], np.float32).tobytes().hex())
        digest.update(orjson.dumps(fields))
        digest.update(values[offsets[row] : offsets[row + 1]].tobytes())
        out.append(digest.digest())
    return out
