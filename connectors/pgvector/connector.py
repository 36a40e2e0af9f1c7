"""The pgvector connector: the protocol, each step handed to the module of its concern."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import pyarrow as pa

from connectors.base import Capabilities, Connector, Cursor, LoadResult, Page, StoreInfo, StoreOptions
from connectors.pgvector import catalog, target
from connectors.pgvector.options import PgvectorOptions, table_name
from connectors.pgvector.read import PageReader
from connectors.pgvector.session import Session
from connectors.pgvector.snapshot import ExportSnapshot
from connectors.pgvector.tablemap import TableMap
from connectors.pgvector.write import Writer
from vmig.errors import StoreError, UsageError


class PgvectorConnector(Connector):
    name: ClassVar[str] = "pgvector"
    Options: ClassVar[type[StoreOptions]] = PgvectorOptions
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_batch=5000, fixed_dims=True, needs_vector=True, metrics=tuple(target.OPCLASS)
    )

    def __init__(self, options: StoreOptions) -> None:
        super().__init__(options)
        assert isinstance(options, PgvectorOptions)
        self.opts = options
        self.session = Session(options)
        self._snapshot = ExportSnapshot(self.session)
        self._writer = Writer(self.session, options, self.name)
        self._map: TableMap | None = None
        """The table as the catalog described it, once read."""
        self._created = False
        """This run created the table: `finish` builds its vector index."""

    def label(self) -> str:
        return f"pgvector:{'.'.join(table_name(self.opts))}"

    def _table(self, create: bool) -> TableMap | None:
        """The configured layout mapped onto the table (`catalog.resolve`), read once; None while it is missing."""
        if self._map is None:
            self._map = catalog.resolve(self.session.conn(), self.opts, create)
        return self._map

    def describe(self) -> StoreInfo:
        def run() -> StoreInfo:
            conn = self.session.conn()
            if not catalog.extension_present(conn):
                return StoreInfo(exists=False)
            mapping = self._table(create=False)
            if mapping is None:
                return StoreInfo(exists=False)
            count = catalog.count(conn, mapping)
            info = StoreInfo(exists=True, dims=catalog.dims(conn, mapping), metric=None, count=count)
            conn.rollback()
            return info

        return self.session.run("describing the table", run)  # type: ignore[no-any-return]

    def incarnation(self) -> str | None:
        """The table's oid, and a LangChain collection's uuid (`catalog.incarnation`)."""

        def run() -> str | None:
            mapping = self._table(create=False)
            if mapping is None:
                return None
            identity = catalog.incarnation(self.session.conn(), mapping)
            self.session.conn().rollback()
            return identity

        return self.session.run("reading the table's identity", run)  # type: ignore[no-any-return]

    def extract(self, namespace: str | None, cursor: Cursor | None) -> Iterator[Page]:
        mapping = self.session.run("opening the table", lambda: self._table(create=False))
        if mapping is None:
            what = (
                f"LangChain collection '{self.opts.collection or 'langchain'}'"
                if self.opts.layout == "langchain"
                else (f"table {'.'.join(table_name(self.opts))}")
            )
            raise UsageError(f"pgvector {self.session.where()}: {what} not found (check --table/--collection)")
        reader = PageReader(self.session, self._snapshot, mapping, self.page_size, self.name)
        yield from reader.pages(namespace, cursor)

    def ensure_target(self, dims: int | None, metric: str | None) -> None:
        def run() -> None:
            target.ensure_extension(self.session)
            mapping = self._table(create=True)
            if mapping is None:
                target.create_table(self.session.conn(), self.opts, dims)
                self._created = True
                mapping = self._table(create=True)
                assert mapping is not None
            else:
                target.check_dims(self.session.conn(), mapping, dims)
            self.session.conn().commit()

        self.session.run("preparing the table", run)

    def load(self, batch: pa.RecordBatch) -> LoadResult:
        if batch.num_rows == 0:
            return LoadResult(written=0)
        if self._map is None:
            raise StoreError("pgvector: load called before the table was prepared")
        return self._writer.load(batch, self._map)

    def finish(self) -> None:
        if self.session.current is None or self._map is None or not self._created or self.opts.index == "none":
            return
        target.build_index(self.session, self.opts, self._map)

    def abort(self) -> None:
        self.session.rollback()

    def close(self) -> None:
        self._snapshot.release()
        self.session.close()
