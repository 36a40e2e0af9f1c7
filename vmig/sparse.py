"""The format's optional `sparse_vector` (`{"indices": [uint32...], "values": [float32...]}`: Pinecone sparse
values, Qdrant sparse vectors, hybrid-search indexes) and its rules.

A record carries it among the line's keys vex has no column of its own for (the `extra` column), so every
store that keeps those (jsonl, VEKTOR, Qdrant, Chroma, pgvector) keeps it, and Pinecone stores it as the
record's sparse values. The reader holds it to these rules: a line that breaks them is damaged.
"""

from __future__ import annotations

import math
from typing import Any

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
    return None
