"""Reading a source chunk by chunk: one extract generator kept alive across chunks, resumable by cursor."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa

from connectors.base import Connector, Cursor, Page
from vmig import sparse
from vmig.batch import concat_batches
from vmig.errors import TransientError
from vmig.rejects import Reject


@dataclass
class Chunk:
    """A run of records from the source, and where the next chunk starts."""

    batch: pa.RecordBatch
    rejects: list[Reject] = field(default_factory=list)
    next_cursor: Cursor = None
    done: bool = False


class ChunkReader:
    """The source's pages gathered into chunks of about `rows` records.

    `--limit` is counted here and nowhere else: connectors enumerate everything, and a page is never larger
    than the records still wanted, so a small limit reads little more than it keeps."""

    def __init__(self, source: Connector, namespace: str | None, limit: int | None, cursor: Cursor = None) -> None:
        self.source = source
        self.namespace = namespace
        self.remaining = limit
        self.cursor = cursor
        self._pages: Iterator[Page] | None = None
        self.finished = limit == 0

    def next_chunk(self, rows: int) -> Chunk:
        """Up to `rows` records; a transient error puts the reader back where the chunk began, so the retry
        reads the chunk's pages again (those read before the error would otherwise be lost with it)."""
        batches: list[pa.RecordBatch] = []
        rejects: list[Reject] = []
        count = 0
        start = (self.cursor, self.remaining)
        while count < rows and not self.finished:
            if self._pages is None:
                if self.remaining is not None:
                    self.source.page_size = max(1, min(self.source.page_size, self.remaining))
                self._pages = iter(self.source.extract(self.namespace, self.cursor))
            try:
                page = next(self._pages)
            except StopIteration:
                self.finished = True
                break
            except TransientError:
                self._pages = None
                self.cursor, self.remaining = start
                raise
            batch = page.batch if self.source.capabilities.sparse_column else sparse.unfold(page.batch)
            if self.remaining is not None:
                batch = batch.slice(0, self.remaining)
                self.remaining -= batch.num_rows
            batches.append(batch)
            rejects.extend(page.rejects)
            count += batch.num_rows
            # A cursor is exact only at a page's end; a page cut short by the limit ends the run anyway.
            self.cursor = page.next_cursor
            if page.next_cursor is None or self.remaining == 0:
                self.finished = True
                self.close()
        return Chunk(concat_batches(batches), rejects, self.cursor, self.finished)

    def close(self) -> None:
        """Let go of the source's enumeration (its snapshot or read transaction) before its end."""
        pages, self._pages = self._pages, None
        close = getattr(pages, "close", None)
        if close is not None:
            close()

    def batches(self, rows: int) -> Iterator[pa.RecordBatch]:
        """Every non-empty chunk's records, for a reader that wants them all (verify)."""
        while not self.finished:
            chunk = self.next_chunk(rows)
            if chunk.batch.num_rows:
                yield chunk.batch
