"""Which record ids a run has already seen: exact enough, in bounded memory, kept across a resume.

A store keyed by id keeps one record per id, so a second record with an id the run
already wrote replaces the first. To count that instead of reporting both as written,
the run remembers every id it wrote. A Python set would grow by about 100 bytes a record;
here each id is a 128-bit MurmurHash3 key (two distinct ids share one with a probability
of about 1e-20 in a run of 100 million) plus the position of its first record, 24 bytes in
sorted runs: small runs in memory, large ones in `.npy` files mapped from a folder, merged
two by two as they grow, so a lookup searches a few runs at most (a log-structured merge).

With a folder of its own (`persistent=True`), `save` writes every run to it; a resumed job
opens the same folder with the position its checkpoint reached, and the entries past that
position (ids of a chunk whose checkpoint was never written) are dropped, so the chunk
replays without counting its own ids as repeats.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from mmh3 import hash_bytes

IN_MEMORY_ENTRIES = 1 << 16
"""A run this large or larger lives in a file (24 bytes an entry: 1.5 MiB) instead of memory."""
_RUN_GLOB = "run-*.npy"


def id_keys(ids: Sequence[str] | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The two 64-bit halves of each id's 128-bit key (about 0.13 s per million ids here)."""
    values = ids.to_pylist() if isinstance(ids, (pa.Array, pa.ChunkedArray)) else list(ids)
    if not values:
        empty = np.zeros(0, dtype=np.uint64)
        return empty, empty
    pairs = np.frombuffer(b"".join(map(hash_bytes, values)), dtype="<u8").reshape(-1, 2)
    return pairs[:, 0].copy(), pairs[:, 1].copy()


@dataclass
class _Run:
    """Keys sorted by their first half, with the second half and the first record's position beside them."""

    rows: np.ndarray
    """Shape (3, n), uint64: high key halves (sorted), low halves, positions."""
    file: Path | None = None

    @property
    def size(self) -> int:
        return int(self.rows.shape[1])

    def find(self, high: np.ndarray, low: np.ndarray) -> np.ndarray:
        """For each key, the position of its first record, or -1 where this run lacks it."""
        found = np.full(len(high), -1, dtype=np.int64)
        if not self.size or not len(high):
            return found
        highs = self.rows[0]
        at = np.searchsorted(highs, high)
        inside = at < self.size
        at_inside = np.where(inside, at, 0)
        same_high = inside & (highs[at_inside] == high)
        exact = same_high & (self.rows[1][at_inside] == low)
        found[exact] = self.rows[2][at_inside[exact]].astype(np.int64)
        for index in np.flatnonzero(same_high & ~exact):  # another id shares the high half: look along
            spot = int(at_inside[index]) + 1
            while spot < self.size and highs[spot] == high[index]:
                if self.rows[1][spot] == low[index]:
                    found[index] = int(self.rows[2][spot])
                    break
                spot += 1
        return found


class IdSet:
    """The ids seen so far; `add` says which of a batch's ids are repeats, and of which position."""

    def __init__(self, folder: Path, persistent: bool = False, keep_below: int | None = None) -> None:
        """`folder` holds the large runs. A persistent set keeps what is in it (entries at positions
        `keep_below` or later dropped); any other set starts empty and removes the folder on `close`."""
        self.folder = Path(folder)
        self.persistent = persistent
        self._runs: list[_Run] = []
        self.folder.mkdir(parents=True, exist_ok=True)
        if persistent:
            self._open_saved(keep_below)
        else:
            for stale in self.folder.glob(_RUN_GLOB):
                stale.unlink()

    @property
    def size(self) -> int:
        return sum(run.size for run in self._runs)

    def add(self, ids: Sequence[str] | pa.Array, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Remember the ids; returns the indexes (into `ids`) of those seen before, earlier in this batch
        or in an earlier one, and for each the position of the id's first record."""
        high, low = id_keys(ids)
        positions = np.asarray(positions, dtype=np.uint64)
        if not len(high):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        order = np.lexsort((np.arange(len(high)), low, high))
        high_s, low_s = high[order], low[order]
        starts = np.ones(len(order), dtype=bool)
        starts[1:] = (high_s[1:] != high_s[:-1]) | (low_s[1:] != low_s[:-1])
        group_first = np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))
        first = positions[order][group_first].astype(np.int64)
        heads = np.flatnonzero(starts)
        earlier = self._find(high_s[heads], low_s[heads])
        known = earlier >= 0
        first_of_group = np.repeat(np.where(known, earlier, first[heads]), np.diff(np.append(heads, len(order))))
        repeat = ~starts | np.repeat(known, np.diff(np.append(heads, len(order))))
        new = heads[~known]
        self._push(np.stack([high_s[new], low_s[new], positions[order][new]]))
        repeats = order[repeat]
        by_index = np.argsort(repeats, kind="stable")
        return repeats[by_index].astype(np.int64), first_of_group[repeat][by_index]

    def _find(self, high: np.ndarray, low: np.ndarray) -> np.ndarray:
        found = np.full(len(high), -1, dtype=np.int64)
        for run in self._runs:
            missing = found < 0
            if not missing.any():
                break
            found[missing] = run.find(high[missing], low[missing])
        return found

    def _push(self, rows: np.ndarray) -> None:
        if not rows.shape[1]:
            return
        self._runs.append(_Run(rows))
        while len(self._runs) >= 2 and self._runs[-2].size <= 2 * self._runs[-1].size:
            newer, older = self._runs.pop(), self._runs.pop()
            self._runs.append(self._merge(older, newer))

    def _merge(self, older: _Run, newer: _Run) -> _Run:
        rows = np.concatenate([older.rows, newer.rows], axis=1)
        rows = rows[:, np.argsort(rows[0], kind="stable")]  # two sorted runs: a linear merge
        merged = self._keep(rows)
        for run in (older, newer):
            if run.file is not None:
                run.file.unlink(missing_ok=True)
        return merged

    def _keep(self, rows: np.ndarray, force_file: bool = False) -> _Run:
        """Large runs (and every run of a persistent set at `save`) go to a file, mapped back read-only."""
        if rows.shape[1] < IN_MEMORY_ENTRIES and not force_file:
            return _Run(rows)
        final = self.folder / f"run-{uuid.uuid4().hex}.npy"
        partial = final.with_suffix(".partial")
        with open(partial, "wb") as handle:
            np.save(handle, np.ascontiguousarray(rows))
            if self.persistent:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(partial, final)
        return _Run(np.load(final, mmap_mode="r"), final)

    def save(self) -> None:
        """Put every run of a persistent set on disk (before the checkpoint that relies on it is written)."""
        if not self.persistent:
            return
        self._runs = [run if run.file is not None else self._keep(run.rows, force_file=True) for run in self._runs]

    def _open_saved(self, keep_below: int | None) -> None:
        for leftover in self.folder.glob("run-*.partial"):
            leftover.unlink()
        for file in sorted(self.folder.glob(_RUN_GLOB)):
            rows = np.load(file, mmap_mode="r")
            if keep_below is not None and rows.shape[1] and int(rows[2].max()) >= keep_below:
                kept = np.asarray(rows[:, rows[2] < keep_below])
                del rows
                file.unlink()
                if kept.shape[1]:
                    self._runs.append(self._keep(kept, force_file=True))
                continue
            self._runs.append(_Run(rows, file))
        self._runs.sort(key=lambda run: -run.size)

    def close(self) -> None:
        """Release the mapped files; a set that is not persistent removes its folder."""
        self._runs = []
        if not self.persistent:
            shutil.rmtree(self.folder, ignore_errors=True)

    def discard(self) -> None:
        """Forget everything, on disk too (the job finished or starts over)."""
        self._runs = []
        shutil.rmtree(self.folder, ignore_errors=True)
