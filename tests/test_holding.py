"""What a target cannot hold is skipped and counted; what it can hold is kept (engine/holding.py)."""

from __future__ import annotations

from engine.holding import TargetRule, filter_dimensions
from vmig.batch import build_batch


def test_a_target_that_keeps_null_vectors_keeps_them_beside_a_fixed_dimension() -> None:
    batch = build_batch(["fits", "no-vector", "other-dims"], vectors=[[1.0, 2.0], None, [1.0, 2.0, 3.0]])
    kept = filter_dimensions(batch, TargetRule(2, needs_vector=False))
    assert kept.batch.column("id").to_pylist() == ["fits", "no-vector"]
    assert dict(kept.skipped) == {"dims mismatch": 1}
    strict = filter_dimensions(batch, TargetRule(2, needs_vector=True))
    assert strict.batch.column("id").to_pylist() == ["fits"]
    assert dict(strict.skipped) == {"null vector": 1, "dims mismatch": 1}
