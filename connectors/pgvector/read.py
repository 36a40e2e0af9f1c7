"""Export: the table read in keyset pages, each a binary `COPY (SELECT ...) TO STDOUT`, all in one snapshot,
the next page's query running on the server while this one is decoded."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any, cast

from connectors.base import Cursor, Page
from connectors.pgvector import copy_codec, statements
from connectors.pgvector.decode import PageLayout, decode_page
from connectors.pgvector.session import Session, psycopg_module
from connectors.pgvector.snapshot import ExportSnapshot
from connectors.pgvector.tablemap import TableMap
from vmig.parallel import read_ahead


@dataclass
class PageReader:
    """One read of a mapped table, `page_size` rows a page."""

    session: Session
    snapshot: ExportSnapshot
    mapping: TableMap
    page_size: int
    store: str
    stop: str | None = None
    """The last key of this read's share (`--workers`), inclusive; None: to the end of the table."""
    since: tuple[str, str] | None = None
    """Only rows whose column (`vex sync --watermark`) is at or after this value, or NULL."""

    def pages(self, namespace: str | None, cursor: Cursor | None) -> Iterator[Page]:
        """The pages after `cursor` (None: from the start), each with the cursor after it."""
        from psycopg import sql

        mapping = self.mapping
        layout = PageLayout(
            native_extras=mapping.native_extras,
            column_keys=bool(mapping.column_keys),
            namespace_column=mapping.namespace is not None,
            half=mapping.half,
            store=self.store,
            page_key=mapping.row_key is not None,
        )
        columns: list[Any] = [
            sql.SQL("{}::text").format(sql.Identifier(c)) if c else sql.SQL("NULL::text")
            for c in (None, None, mapping.text, mapping.metadata, mapping.namespace)
        ]
        columns[0], columns[1] = statements.record_id(mapping), sql.Identifier(mapping.vector)
        if mapping.native_extras:
            columns += [sql.SQL("model::text"), sql.SQL("created_at"), sql.SQL("score::float8"),
                        sql.SQL("source_store::text"), sql.SQL("extra::text")]  # fmt: skip
        elif mapping.column_keys:
            columns.append(statements.columns_as_json(mapping.column_keys))
        if layout.page_key:
            columns.append(sql.SQL("{}::text").format(sql.Identifier(mapping.page_key)))
        select = sql.SQL(", ").join(columns)
        key_field = len(columns) - 1 if layout.page_key else 0
        pages = self._copy_pages(namespace, cursor, select, key_field)
        # The server runs the next page's query while this one is written out.
        decoded = cast(Generator[Any, None, None], read_ahead(
            (decode_page(messages, layout), after) for messages, after in pages))  # fmt: skip
        try:
            for (batch, rejects), next_cursor in decoded:
                yield Page(batch, next_cursor, rejects)
        except GeneratorExit:
            # Left before its last page: no retry continues this read. (After an error the snapshot
            # stays, for the retry that reopens the read at its cursor.)
            decoded.close()  # joins the thread that reads, before its connection is touched here
            self.snapshot.release()
            raise

    def _copy_pages(
        self, namespace: str | None, cursor: Cursor | None, select: Any, key_field: int
    ) -> Iterator[tuple[list[bytes], str | None]]:
        """Keyset pages of the table (by `mapping.page_key`) as raw binary COPY messages (a row each, then the
        trailer) and the cursor after each (None after the last): each is one short query, retried on its own.

        The next page's query needs only the last key, read off the last row's field `key_field` (the id,
        or the row key `select` ends with), so no row is parsed here. Every page is read in one snapshot
        of the table (`ExportSnapshot`), so the pages add up to the rows of one moment.
        """
        from psycopg import sql

        psycopg = psycopg_module()
        session, mapping = self.session, self.mapping
        session.run("taking a snapshot of the table", lambda: self.snapshot.take(cursor))
        last, size = cursor, self.page_size
        messages: list[bytes] = []
        while True:
            where, params = statements.scope_clause(mapping, namespace)
            where, params = statements.changed_since(mapping, where, params, self.since)
            where, params = statements.key_bounds(mapping, where, params, after=last, up_to=self.stop)
            query = (
                sql.SQL("SELECT {cols} FROM {t}").format(cols=select, t=sql.Identifier(*mapping.table))
                + where
                # Qualified: a bare name would order by the output column of that name, the key cast to
                # text (10 before 9 in an integer key, so the keyset after a page would skip rows).
                + sql.SQL(" ORDER BY {} LIMIT %s").format(sql.Identifier(*mapping.table, mapping.page_key))
            )

            def fetch(query: Any = query, params: list[Any] = params, size: int = size) -> list[bytes]:
                conn = session.conn()
                if not session.prepared.reading:
                    self.snapshot.begin_read(conn)
                # COPY takes no parameters: the client cursor quotes them into the query.
                literal = psycopg.ClientCursor(conn).mogrify(query, [*params, size])
                with conn.cursor() as cur, cur.copy(
                    sql.SQL("COPY ({}) TO STDOUT (FORMAT BINARY)").format(sql.SQL(literal))
                ) as copy:  # fmt: skip
                    return copy_messages(conn.pgconn, copy)

            messages = session.run("reading rows", fetch)
            rows = len(messages) - 1  # the last message is the trailer
            if rows <= 0:
                break
            last = copy_codec.last_row_text(messages, key_field)
            done = rows < size
            if done:
                break
            yield messages, last
            messages = []
        # Released before the last page is handed over, here, in the thread that reads: the caller may
        # never ask for more, so code after the last yield might never run.
        self.snapshot.release()
        if len(messages) > 1:
            yield messages, None


def copy_messages(pgconn: Any, copy: Any) -> list[bytes]:
    """Every message of a COPY TO: one per row (the first carries the header), then the trailer.

    psycopg's `Copy.read` waits for each message through its generator machinery, a few
    microseconds a row; libpq usually holds many rows already, so after each wait the
    rows it has buffered are taken straight from it (`get_copy_data` without blocking),
    up to the trailer. psycopg's next read then sees the end of the COPY as usual.
    """
    messages: list[bytes] = []
    for message in copy:
        messages.append(bytes(message))
        while not copy_codec.is_last_message(messages[-1]):
            size, data = pgconn.get_copy_data(1)
            if size == 0:
                break  # nothing buffered yet: psycopg waits for more
            if size < 0:
                raise _copy_out_error(pgconn)
            messages.append(bytes(data))
    return messages


def _copy_out_error(pgconn: Any) -> Exception:
    """The server's error for a COPY TO that ended before its trailer (a timeout, a cancel).

    libpq has handed over the end of the COPY here, so psycopg would no longer find it:
    the error is taken from the results the server sent, the way psycopg does.
    """
    psycopg = psycopg_module()
    failed = None
    while (result := pgconn.get_result()) is not None:
        if result.status == psycopg.pq.ExecStatus.FATAL_ERROR and failed is None:
            failed = result
    if failed is not None:
        return psycopg.errors.error_from_result(failed, encoding="utf-8")
    return psycopg.OperationalError(f"COPY ended before its last row: {pgconn.get_error_message()}")
