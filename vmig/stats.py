"""Counts by namespace, model and dims, accumulated column-wise per batch."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

NULL_KEY = "null"
"""How a null namespace/model/dims is keyed in the sidecar's count tables."""


@dataclass
class RecordStats:
    """What a sidecar says about a data file's records."""

    record_count: int = 0
    by_namespace: Counter[str] = field(default_factory=Counter)
    by_model: Counter[str] = field(default_factory=Counter)
    by_dims: Counter[str] = field(default_factory=Counter)

    def add(self, batch: pa.RecordBatch) -> None:
        self.record_count += batch.num_rows
        for name, counter in (
            ("namespace", self.by_namespace),
            ("model", self.by_model),
            ("dims", self.by_dims),
        ):
            for entry in pc.value_counts(batch.column(name)).to_pylist():
                value = entry["values"]
                counter[NULL_KEY if value is None else str(value)] += entry["counts"]

    def most_common_dims(self) -> int | None:
        for key, _count in self.by_dims.most_common():
            if key != NULL_KEY:
                return int(key)
        return None

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {
            "namespace": dict(sorted(self.by_namespace.items())),
            "model": dict(sorted(self.by_model.items())),
            "dims": dict(sorted(self.by_dims.items(), key=lambda kv: (kv[0] == NULL_KEY, kv[0].zfill(12)))),
        }
