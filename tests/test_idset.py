"""The set of ids a run has seen: repeats found within and across batches, on disk, after a resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from vmig import idset
from vmig.idset import IdSet


def _add(seen: IdSet, ids: list[str], start: int) -> list[tuple[str, int]]:
    indexes, first = seen.add(pa.array(ids), np.arange(start, start + len(ids)))
    return [(ids[i], int(f)) for i, f in zip(indexes, first, strict=True)]


def test_repeats_within_and_across_batches_name_the_first_position(tmp_path: Path) -> None:
    seen = IdSet(tmp_path / "ids")
    assert _add(seen, ["a", "b", "a", "c", "a"], 0) == [("a", 0), ("a", 0)]
    assert _add(seen, ["d", "b", "B", "c "], 5) == [("b", 1)]
    assert _add(seen, ["e", "e", "d"], 9) == [("e", 9), ("d", 5)]
    assert seen.size == 7
    seen.close()
    assert not (tmp_path / "ids").exists()


def test_large_sets_live_in_files_and_still_find_every_repeat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(idset, "IN_MEMORY_ENTRIES", 64)
    seen = IdSet(tmp_path / "ids")
    total = 0
    for batch in range(40):
        ids = [f"id-{(batch * 50 + i) % 1500}" for i in range(50)]  # from batch 30 on, every id repeats
        total += len(_add(seen, ids, batch * 50))
    assert total == 500 and seen.size == 1500
    assert list((tmp_path / "ids").glob("run-*.npy")), "large runs are files"
    assert len(seen._runs) <= 12, "runs are merged as they grow"


def test_a_resumed_set_drops_what_its_checkpoint_did_not_reach(tmp_path: Path) -> None:
    folder = tmp_path / "ids"
    seen = IdSet(folder, persistent=True)
    _add(seen, ["a", "b", "c"], 0)
    seen.save()
    _add(seen, ["d", "e"], 3)  # this chunk's checkpoint was never written
    seen.save()
    seen.close()
    assert folder.exists(), "a persistent set stays for the resume"

    resumed = IdSet(folder, persistent=True, keep_below=3)
    assert resumed.size == 3
    assert _add(resumed, ["d", "e", "a"], 3) == [("a", 0)], "the replayed chunk's ids are new again"
    resumed.discard()
    assert not folder.exists()


def test_keys_that_share_their_first_half_are_told_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = idset.id_keys

    def colliding(ids):  # type: ignore[no-untyped-def]
        high, low = real(ids)
        return np.zeros_like(high), low

    monkeypatch.setattr(idset, "id_keys", colliding)
    seen = IdSet(tmp_path / "ids")
    assert _add(seen, ["x", "y"], 0) == []
    assert _add(seen, ["z", "y", "x", "w"], 2) == [("y", 1), ("x", 0)]
