"""The chunk reader owns `--limit`: connectors enumerate everything, the reader cuts and lets go."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from connectors.base import Capabilities, Connector, Cursor, Page, StoreInfo, StoreOptions
from engine.chunks import ChunkReader
from vmig.batch import build_batch


class _Endless(Connector):
    """A source of numbered records that never ends by itself; it remembers what it was asked for."""

    name: ClassVar[str] = "endless"
    Options: ClassVar[type[StoreOptions]] = StoreOptions
    capabilities: ClassVar[Capabilities] = Capabilities(max_batch=4)

    def __init__(self) -> None:
        super().__init__(StoreOptions())
        self.page_sizes: list[int] = []
        self.closed = 0

    def describe(self) -> StoreInfo:
        return StoreInfo(exists=True)

    def extract(self, namespace: str | None, cursor: Cursor | None) -> Iterator[Page]:
        start = int(cursor or 0)
        try:
            while True:
                self.page_sizes.append(self.page_size)
                ids = [str(n) for n in range(start, start + self.page_size)]
                start += self.page_size
                yield Page(build_batch(ids), start)
        finally:
            self.closed += 1


def test_limit_cuts_the_last_page_and_releases_the_source() -> None:
    source = _Endless()
    reader = ChunkReader(source, None, limit=10)
    chunk = reader.next_chunk(rows=100)
    assert chunk.batch.column("id").to_pylist() == [str(n) for n in range(10)]
    assert chunk.done and reader.finished
    assert source.page_sizes == [4, 4, 4], "three pages of four, the last cut to two"
    assert source.closed == 1, "the enumeration (a read transaction, a snapshot) is let go at once"


def test_a_small_limit_reads_no_more_than_it_keeps() -> None:
    source = _Endless()
    chunk = ChunkReader(source, None, limit=3).next_chunk(rows=100)
    assert chunk.batch.num_rows == 3
    assert source.page_sizes == [3]


def test_a_zero_limit_reads_nothing() -> None:
    source = _Endless()
    reader = ChunkReader(source, None, limit=0)
    assert reader.finished
    assert source.page_sizes == []


def test_limit_counts_across_chunks() -> None:
    source = _Endless()
    reader = ChunkReader(source, None, limit=9)
    sizes = []
    while not reader.finished:
        sizes.append(reader.next_chunk(rows=4).batch.num_rows)
    assert sizes == [4, 4, 1]
    assert source.closed == 1
