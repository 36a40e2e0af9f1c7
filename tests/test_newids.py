"""The vectorised id hashes behind LanceDB's appends: a repeat is never missed, whatever the ids look like."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from connectors.newids import NewIds, id_hashes

AWKWARD = ["", "a", "b", "ab", "ba", "a\x00", "\x00a", "é", "e\u0301", "🙂", "x" * 5000, "mem-0001", "mem-1000"]


def test_equal_ids_hash_equal_wherever_they_sit_in_the_buffers() -> None:
    ids = pa.array(AWKWARD * 2)
    hashes = id_hashes(ids)
    assert np.array_equal(hashes[: len(AWKWARD)], hashes[len(AWKWARD) :])
    sliced = pa.array(["pad", "pad2", *AWKWARD]).slice(2)
    assert np.array_equal(id_hashes(sliced), hashes[: len(AWKWARD)]), "a slice hashes as the array it shows"
    assert len(set(hashes[: len(AWKWARD)].tolist())) == len(AWKWARD), "these ids all differ, and so do their hashes"


def test_many_ids_do_not_collide() -> None:
    ids = pa.array([f"mem-{i}" for i in range(200_000)] + [str(i) for i in range(200_000)])
    assert len(np.unique(id_hashes(ids))) == 400_000


def test_new_ids_answers_repeats_across_batches_and_within_one() -> None:
    seen = NewIds()
    assert seen.add(pa.array([f"id-{i}" for i in range(1000)]))
    for start in range(1000, 9000, 1000):  # enough batches that the runs merge
        assert seen.add(pa.array([f"id-{i}" for i in range(start, start + 1000)]))
    assert seen.size == 9000
    assert not seen.add(pa.array(["new-1", "id-4321"])), "an id of an earlier batch"
    assert not seen.add(pa.array(["new-2", "new-2"])), "an id twice in the batch"
    assert seen.add(pa.array(["new-1", "new-2"])), "a refused batch was not remembered"
    assert seen.add(pa.array([""])) and not seen.add(pa.array([""])), "the empty id too"


def test_a_full_set_says_no_so_the_caller_upserts() -> None:
    seen = NewIds(limit=10)
    assert seen.add(pa.array([str(i) for i in range(8)]))
    assert not seen.add(pa.array(["a", "b", "c"]))
