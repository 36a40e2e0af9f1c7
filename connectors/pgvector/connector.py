"""The pgvector connector: the protocol, each step handed to the module of its concern."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pyarrow as pa

from connectors.base import Capabilities, Connector, Cursor, LoadResult, Page, Partition, StoreInfo, StoreOptions
from connectors.clients import ClientLibrary
from connectors.pgvector import catalog, statements, target
from connectors.pgvector.options import PgvectorOptions, table_name
from connectors.pgvector.read import PageReader
from connectors.pgvector.session import PSYCOPG, Session, psycopg_module
from connectors.pgvector.snapshot import ExportSnapshot
from connectors.pgvector.tablemap import OPCLASS, TableMap
from connectors.pgvector.write import Writer
from vmig.errors import AccessError, StoreError, TransientError, UsageError


class PgvectorConnector(Connector[PgvectorOptions]):
    name: ClassVar[str] = "pgvector"
    Options: ClassVar[type[StoreOptions]] = PgvectorOptions
    capabilities: ClassVar[Capabilities] = Capabilities(
        deletes=True,
        max_batch=5000,
        fixed_dims=True,
        needs_vector=True,
        metrics=tuple(OPCLASS),
        max_dims=16_000,
        max_dims_indexed=target.INDEX_MAX_DIMS,
    )
    client_library: ClassVar[ClientLibrary | None] = PSYCOPG

    def __init__(self, options: PgvectorOptions) -> None:
        super().__init__(options)
        self.session = Session(options, self.classify)
        self._snapshot = ExportSnapshot(self.session)
        self._writer = Writer(self.session, options, self.name)
        self._map: TableMap | None = None
        """The table as the catalog described it, once read."""
        self._created = False
        """This run created the table: `finish` builds its vector index."""
        self._since: tuple[str, str] | None = None
        """`read_changed_since`: later reads take only the rows changed since."""

    def label(self) -> str:
        return f"pgvector:{'.'.join(table_name(self.opts))}"

    def classify(self, exc: Exception, doing: str) -> Exception:
        """A psycopg error as vex's: UsageError (the user must change something), TransientError (retried)
        or StoreError. The session calls it after rolling back or leaving the connection."""
        psycopg = psycopg_module()
        errors = psycopg.errors
        where = self.session.where()
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else "no reason given"
        table = table_name(self.opts)
        if isinstance(exc, errors.InsufficientPrivilege):
            return AccessError(f"pgvector {where}: permission denied while {doing} ({text})")
        if isinstance(exc, errors.InvalidSchemaName) and len(table) == 2:
            return UsageError(f"pgvector {where}: schema {table[0]} does not exist (vex creates tables, not schemas)")
        if isinstance(exc, (errors.UndefinedTable, errors.InvalidSchemaName)):
            return UsageError(f"pgvector {where}: table {'.'.join(table)} not found")
        if isinstance(exc, (errors.SerializationFailure, errors.DeadlockDetected, errors.AdminShutdown,
                            errors.CannotConnectNow, errors.QueryCanceled)):  # fmt: skip
            return TransientError(f"pgvector {where}: {doing} interrupted ({text})")
        if isinstance(exc, errors.ProgramLimitExceeded):  # an OperationalError, but a retry meets it again
            return StoreError(f"pgvector {where}: {doing} failed: {text}")
        if isinstance(exc, psycopg.OperationalError):
            lowered = text.lower()
            if "password" in lowered or "authentication" in lowered:
                return AccessError(f"pgvector {where}: {text} (check --url and the password)")
            if "does not exist" in lowered:
                return UsageError(f"pgvector {where}: {text} (check --url)")
            return TransientError(f"pgvector {where}: server unreachable or connection lost while {doing} ({text})")
        return StoreError(f"pgvector {where}: {doing} failed: {text}")

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
            info = StoreInfo(
                exists=True,
                dims=catalog.dims(conn, mapping),
                metric=catalog.index_metric(conn, mapping),
                count=catalog.count(conn, mapping),
                layout=catalog.describe_layout(self.opts, mapping),
            )
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
        mapping = self.session.run("opening the table", self._existing)
        reader = PageReader(self.session, self._snapshot, mapping, self.page_size, self.name, stop=self.stop,
                            since=self._since)  # fmt: skip
        yield from reader.pages(namespace, cursor)

    def _existing(self) -> TableMap:
        """The table a read needs, or the error that names what is missing."""
        mapping = self._table(create=False)
        if mapping is None:
            what = (
                f"LangChain collection '{self.opts.collection or 'langchain'}'"
                if self.opts.layout == "langchain"
                else (f"table {'.'.join(table_name(self.opts))}")
            )
            raise UsageError(f"pgvector {self.session.where()}: {what} not found (check --table/--collection)")
        return mapping

    def _modification_column(self, mapping: TableMap, column: str) -> str:
        if column not in mapping.types:
            raise UsageError(
                f"pgvector table {'.'.join(mapping.table)} has no column '{column}' for --watermark "
                f"(it has: {', '.join(mapping.types)})"
            )
        return column

    def highest(self, column: str) -> Any:
        from psycopg import sql

        def run() -> Any:
            mapping = self._existing()
            name = self._modification_column(mapping, column)
            where, params = statements.scope_clause(mapping, None)
            query = sql.SQL("SELECT max({})::text FROM {}").format(sql.Identifier(name), sql.Identifier(*mapping.table))
            conn = self.session.conn()
            try:
                return conn.execute(query + where, params).fetchone()[0]
            finally:
                conn.rollback()

        return self.session.run(f"reading the highest {column}", run)

    def read_changed_since(self, column: str, value: Any) -> None:
        mapping = self.session.run("opening the table", self._existing)
        self._since = (self._modification_column(mapping, column), str(value))

    def list_keys(self, namespace: str | None) -> Iterator[list[tuple[str, str]]]:
        """Keyset pages of (namespace, id), by the key export pages by, each page its own short query."""
        from psycopg import sql

        mapping = self.session.run("opening the table", self._existing)
        select = sql.SQL("SELECT {}, {}, {}::text FROM {}").format(
            statements.namespace_value(mapping), statements.record_id(mapping),
            sql.Identifier(mapping.page_key), sql.Identifier(*mapping.table),
        )  # fmt: skip
        order = sql.SQL(" ORDER BY {} LIMIT %s").format(sql.Identifier(*mapping.table, mapping.page_key))
        last: str | None = None
        size = max(self.page_size, 10_000)
        scope, scope_params = statements.scope_clause(mapping, namespace)
        while True:
            where, params = statements.key_bounds(mapping, scope, scope_params, after=last, up_to=None)

            def page(where: Any = where, params: list[Any] = params) -> list[tuple[Any, ...]]:
                conn = self.session.conn()
                try:
                    return list(conn.execute(select + where + order, [*params, size]).fetchall())
                finally:
                    conn.rollback()

            rows = self.session.run("listing ids", page)
            if not rows:
                return
            yield [(space or "", record_id) for space, record_id, _ in rows]
            if len(rows) < size:
                return
            last = rows[-1][2]

    def partitions(self, namespace: str | None, parts: int) -> list[Partition] | None:
        """Key ranges of about equal rows (the key pages are read by); each share is read in a snapshot of
        its own, so shares of a table written to during the run may each see a different moment."""

        def run() -> list[str]:
            mapping = self._table(create=False)
            if mapping is None:
                return []  # the extract says the table is missing
            conn = self.session.conn()
            try:
                return statements.share_bounds(conn, mapping, namespace, parts)
            finally:
                conn.rollback()

        bounds = self.session.run("cutting the table into key ranges", run)
        starts: list[str | None] = [None, *bounds]
        stops: list[str | None] = [*bounds, None]
        return [Partition(start, stop) for start, stop in zip(starts, stops, strict=True)]

    def delete(self, namespace: str | None, ids: list[str]) -> None:
        def run() -> None:
            mapping = self._table(create=False)
            if mapping is not None:
                conn = self.session.conn()
                conn.execute(*statements.delete_ids(mapping, ids))
                conn.commit()

        self.session.run("deleting rows", run)

    def ensure_target(self, dims: int | None, metric: str | None) -> None:
        if self.opts.metric is None and metric is not None:
            self.opts = self.opts.model_copy(update={"metric": metric})  # the index is built for it

        def run() -> None:
            target.ensure_extension(self.session)
            mapping = self._table(create=True)
            if mapping is None:
                target.refuse_unindexable(self.opts, dims)
                target.create_table(self.session.conn(), self.opts, dims)
                self._created = True
                mapping = self._table(create=True)
                assert mapping is not None
            else:
                info = StoreInfo(exists=True, dims=catalog.dims(self.session.conn(), mapping))
                self.refuse_mismatch(info, dims, None, f"pgvector table {'.'.join(mapping.table)}", "--table")
            self.session.conn().commit()

        self.session.run("preparing the table", run)

    def load(self, batch: pa.RecordBatch) -> LoadResult:
        if batch.num_rows == 0:
            return LoadResult(written=0)
        if self._map is None:
            raise StoreError("pgvector: load called before the table was prepared")
        return self._writer.write(batch, self._map)

    def finish(self) -> None:
        # Not `session.current is None`: a retried build starts on a new connection, and must still build.
        if self._map is None or not self._created or self.opts.index == "none":
            return
        target.build_index(self.session, self.opts, self._map)

    def abort(self) -> None:
        self.session.rollback()

    def close(self) -> None:
        self._snapshot.release()
        self.session.close()
