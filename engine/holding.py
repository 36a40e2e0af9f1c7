"""What a target can hold, and the records of a batch it cannot (counted by reason, never dropped silently)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from engine.summary import SKIP_DIMS, SKIP_NULL_VECTOR


@dataclass(frozen=True)
class TargetRule:
    """What the target can hold, decided once from its capabilities and dims."""

    dims: int | None
    needs_vector: bool


@dataclass
class Filtered:
    batch: pa.RecordBatch
    skipped: Counter[str]


def filter_dimensions(batch: pa.RecordBatch, rule: TargetRule) -> Filtered:
    """Drop what the target cannot hold, counting each drop by reason."""
    skipped: Counter[str] = Counter()
    if batch.num_rows == 0:
        return Filtered(batch, skipped)
    vectors = batch.column("vector")
    keep = pc.is_valid(vectors)
    if rule.needs_vector:
        nulls = batch.num_rows - pc.sum(keep).as_py() if vectors.null_count else 0
        if nulls:
            skipped[SKIP_NULL_VECTOR] = nulls
    else:
        keep = pa.array([True] * batch.num_rows)
    if rule.dims is not None:
        # Kleene logic: a null vector's dims are null, and "valid and of other dims" must be false for it, not
        # null (a null would drop the record from the filter uncounted, where the target keeps null vectors).
        other = pc.not_equal(batch.column("dims"), pa.scalar(rule.dims, pa.int32()))
        wrong = pc.and_kleene(pc.is_valid(vectors), other)
        mismatched = pc.sum(wrong).as_py() or 0
        if mismatched:
            skipped[SKIP_DIMS] = mismatched
            keep = pc.and_kleene(keep, pc.invert(wrong))
    if not skipped:
        return Filtered(batch, skipped)
    return Filtered(batch.filter(keep), skipped)


def most_common_dims(batch: pa.RecordBatch) -> int | None:
    counts = pc.value_counts(batch.column("dims").drop_null()).to_pylist()
    if not counts:
        return None
    return int(max(counts, key=lambda entry: entry["counts"])["values"])
