"""Import: each batch in one transaction, by the fastest path the table allows.

- COPY straight into the table, while the table is keyed by the id and no batch has met an id already there;
- else COPY into the temporary staging table, then `INSERT ... ON CONFLICT (id) DO UPDATE` from it;
- where the id has no unique index (LlamaIndex's `node_id`, LangChain's `custom_id`), delete-then-insert.

A failed batch leaves no partial rows: it is loaded again a record at a time, to find the records PostgreSQL
refuses. Where the key is derived from the id (`7` and `007` share the integer key 7), a record whose key
holds another record is failed, never silently replaces it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.base import LoadResult
from connectors.pgvector import copy_codec, statements
from connectors.pgvector.encode import copy_fields
from connectors.pgvector.options import PgvectorOptions
from connectors.pgvector.session import Session, psycopg_module
from connectors.pgvector.tablemap import TableMap
from vmig.batch import last_of_each_id
from vmig.errors import StoreError, TransientError

_TEXT_FIELDS = ("id", "text", "namespace", "model", "source_store")
_JSON_FIELDS = ("metadata", "extra")
_TAKEN_KEY = "id '{}' is stored under key {}, which holds another record, id '{}': it is not replaced"


class Writer:
    """Loads batches into a mapped table over the session's connection."""

    def __init__(self, session: Session, opts: PgvectorOptions, store: str) -> None:
        self.session = session
        self.opts = opts
        self.store = store
        self.direct = True
        """Batches go straight into the table by COPY, until one meets an id already there."""

    def write(self, batch: pa.RecordBatch, mapping: TableMap) -> LoadResult:
        unique = last_of_each_id(batch)
        failed: list[tuple[str, str]] = []
        nul = _nul_fields(unique)
        if nul.any():
            # Each alone: PostgreSQL refuses a NUL in text and jsonb (not in json), and would fail the batch.
            failed += self._load_one_by_one(unique.filter(pa.array(nul)), mapping)
            unique = unique.filter(pa.array(~nul))
        try:
            if unique.num_rows:
                failed += self.session.run("loading a batch", lambda: self._load_transaction(unique, mapping))
        except TransientError:
            raise
        except StoreError:
            # The batch was rolled back whole; find the records PostgreSQL refuses, load the rest.
            failed += self._load_one_by_one(unique, mapping)
        return LoadResult(written=batch.num_rows - len(failed), failed=failed)

    def _load_one_by_one(self, unique: pa.RecordBatch, mapping: TableMap) -> list[tuple[str, str]]:
        """Each record in a transaction of its own: the records PostgreSQL refuses, each with its reason."""
        failed: list[tuple[str, str]] = []
        for index in range(unique.num_rows):
            row = unique.slice(index, 1)
            try:
                failed += self.session.run("loading a record", lambda row=row: self._load_transaction(row, mapping))
            except TransientError:
                raise
            except StoreError as exc:
                failed.append((str(row.column("id")[0].as_py()), _with_nul_reason(row, str(exc))))
        return failed

    def _load_transaction(self, batch: pa.RecordBatch, mapping: TableMap) -> list[tuple[str, str]]:
        """One batch, one transaction: straight into the table while no id is already there, else upserted.

        Returns the records left out because their key holds another record (see `statements.same_record`)."""
        from psycopg import sql

        psycopg = psycopg_module()
        conn = self.session.conn()
        fields, to_columns = copy_fields(batch, mapping, self.store)
        stream = copy_codec.copy_stream([values for _, values in fields], batch.num_rows)
        names = sql.SQL(", ").join(sql.Identifier(c) for c, _ in fields)
        real = [c for c, _ in fields if c != statements.COLUMNS_FIELD]
        target = sql.Identifier(*mapping.table)
        if self.direct and mapping.key_unique and not mapping.column_keys and not mapping.search_columns:
            # A new table, or ids the table does not hold yet: COPY into it, as fast as PostgreSQL loads.
            # The first id already there fails the COPY whole; from then on batches go through staging.
            try:
                with conn.cursor() as cur, cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
                    target, names)) as copy:  # fmt: skip
                    copy.write(stream)
                conn.commit()
                return []
            except psycopg.errors.UniqueViolation:
                conn.rollback()
                self.direct = False
        if not self.session.prepared.staging:
            staged = sql.SQL(", ").join(sql.Identifier(c) for c in real)
            if mapping.column_keys:
                staged += sql.SQL(", NULL::jsonb AS {}").format(sql.Identifier(statements.COLUMNS_FIELD))
            conn.execute(
                sql.SQL(
                    "CREATE TEMP TABLE IF NOT EXISTS pg_temp.vex_stage AS SELECT {cols} FROM {t} WITH NO DATA"
                ).format(cols=staged, t=target)
            )
            conn.commit()
            self.session.prepared.staging = True
        conn.execute("TRUNCATE pg_temp.vex_stage")
        with (
            conn.cursor() as cur,
            cur.copy(sql.SQL("COPY pg_temp.vex_stage ({}) FROM STDIN (FORMAT BINARY)").format(names)) as copy,
        ):
            copy.write(stream)
        insert = statements.insert_from_staging(mapping, real, to_columns, self.opts.tsv_config)
        failed: list[tuple[str, str]] = []
        if mapping.key_unique:
            updates = sql.SQL(", ").join(
                sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c))
                for c in (*real, *to_columns, *mapping.search_columns)
                if c != mapping.id
            )
            upsert = insert + sql.SQL(" ON CONFLICT ({id}) DO UPDATE SET {u}").format(
                id=sql.Identifier(mapping.id), u=updates)  # fmt: skip
            same = statements.same_record(mapping)
            if same is None:
                conn.execute(upsert)
            else:
                written = conn.execute(upsert + sql.SQL(" WHERE {} RETURNING {}").format(
                    same, statements.original_id(mapping, target))).fetchall()  # fmt: skip
                if len(written) < batch.num_rows:
                    failed = _taken_keys(conn, batch, mapping, {row[0] for row in written})
        else:
            failed = self._replace_staged(conn, mapping, insert)
        conn.commit()
        return failed

    def _replace_staged(self, conn: Any, mapping: TableMap, insert: Any) -> list[tuple[str, str]]:
        """Delete-then-insert for ids without a unique index (LlamaIndex's `node_id`, LangChain's `custom_id`).

        Found by the id, a batch's rows take a scan of the table (or collection) each, since the id has no
        index: a re-import grew with the square of the table. These tables have a unique row key, though, so
        the run lists every row's id and key once, in a temporary table with an index on the id, adds the
        rows it writes, and deletes by key. A listed key whose row no longer has the id (changed by another
        writer since) is left alone; rows of the id that another writer adds during the run are not seen.

        Where the key is derived from the id (`statements.same_record`), the records whose key rows of another
        record hold are taken out of the batch first, and returned as failed (`_held_keys`)."""
        from psycopg import sql

        scope, params = statements.and_in_scope(mapping)
        if mapping.row_key is None:
            failed = _held_keys(conn, mapping)
            conn.execute(statements.delete_staged(mapping) + scope, params)
            conn.execute(insert)
            return failed
        key, record_id = sql.Identifier(mapping.row_key), statements.record_id(mapping)
        if not self.session.prepared.rows_listed:
            conn.execute("DROP TABLE IF EXISTS pg_temp.vex_rows")
            conn.execute(
                sql.SQL(
                    "CREATE TEMP TABLE pg_temp.vex_rows AS SELECT {r} AS id, {k} AS key FROM {t} WHERE TRUE{s}"
                ).format(r=record_id, k=key, t=sql.Identifier(*mapping.table), s=scope),
                params,
            )
            conn.execute("CREATE INDEX ON pg_temp.vex_rows (id)")
            self.session.prepared.rows_listed = True
        failed = _held_keys(conn, mapping)
        # One index probe per staged row (OFFSET 0 keeps the planner from turning it into a join that reads
        # the whole list), and the keys found are looked up in the key's index.
        listed = sql.SQL(
            " AND {k} = ANY(ARRAY(SELECT r.key FROM pg_temp.vex_stage s,"
            " LATERAL (SELECT key FROM pg_temp.vex_rows WHERE id = s.{id}::text OFFSET 0) r))"
        )
        delete = statements.delete_staged(mapping) + listed.format(k=key, id=sql.Identifier(mapping.id))
        conn.execute(delete + scope, params)
        conn.execute(
            sql.SQL(
                "WITH written AS ({insert} RETURNING {r}, {k}) INSERT INTO pg_temp.vex_rows SELECT * FROM written"
            ).format(insert=insert, r=record_id, k=key)
        )
        return failed


def _held_keys(conn: Any, mapping: TableMap) -> list[tuple[str, str]]:
    """For a key derived from the id in a table without a unique key (`7` and `007` share the integer
    key 7): the staged records whose key a row of another record holds, then those whose key a record
    before them in the batch has, each failed naming that record and taken out of the staging table.
    The delete-then-insert replaced the other record; a unique key's upsert fails them the same way
    (`statements.same_record`). Nothing where keys are the ids themselves."""
    from psycopg import sql

    if statements.same_record(mapping) is None:
        return []
    mine, theirs = statements.original_id(mapping, sql.SQL("s")), statements.original_id(mapping, sql.SQL("t"))
    ident, target = sql.Identifier(mapping.id), sql.Identifier(*mapping.table)
    if mapping.row_key is None:
        rows = sql.SQL("JOIN {t} t ON t.{id} = s.{id}").format(t=target, id=ident)
    else:  # the rows `Writer._replace_staged` listed for the staged ids, as it finds them to delete
        rows = sql.SQL(
            "CROSS JOIN LATERAL (SELECT key FROM pg_temp.vex_rows WHERE id = s.{id}::text OFFSET 0) r "
            "JOIN {t} t ON t.{k} = r.key AND {listed} = s.{id}::text"
        ).format(
            id=ident, t=target, k=sql.Identifier(mapping.row_key), listed=statements.record_id(mapping, sql.SQL("t"))
        )
    params: list[Any] = []
    if mapping.scope_column is not None:
        rows += sql.SQL(" AND t.{} = %s").format(sql.Identifier(mapping.scope_column))
        params.append(mapping.scope_value)
    held = sql.SQL("SELECT {mine}, s.{id}::text, {theirs} FROM pg_temp.vex_stage s {rows} WHERE {theirs} <> {mine}")
    # One COPY fills the staging table, so its rows lie in the batch's order.
    shared = sql.SQL(
        "SELECT mine, key, first FROM (SELECT {mine} AS mine, s.{id}::text AS key, "
        "first_value({mine}) OVER (PARTITION BY s.{id} ORDER BY s.ctid) AS first FROM pg_temp.vex_stage s) d "
        "WHERE mine <> first"
    )
    failed: list[tuple[str, str]] = []
    for query, query_params in ((held, params), (shared, [])):
        found = conn.execute(query.format(mine=mine, theirs=theirs, id=ident, rows=rows), query_params)
        holders: dict[str, tuple[str, str]] = {}
        for record_id, key, holder in found.fetchall():
            holders.setdefault(record_id, (key, holder))
        if holders:
            drop = sql.SQL("DELETE FROM pg_temp.vex_stage s WHERE {} = ANY(%s)").format(mine)
            conn.execute(drop, [list(holders)])
            failed += [(record_id, _TAKEN_KEY.format(record_id, *held_by)) for record_id, held_by in holders.items()]
    return failed


def _taken_keys(conn: Any, batch: pa.RecordBatch, mapping: TableMap, written: set[str]) -> list[tuple[str, str]]:
    """The records of `batch` not written (`written`: the ids that were), each with the id of the
    record that holds its key."""
    from psycopg import sql

    left = [record_id for record_id in batch.column("id").to_pylist() if record_id not in written]
    keys = [mapping.stored_key(record_id) for record_id in left]
    target = sql.Identifier(*mapping.table)
    query = sql.SQL("SELECT {id}, {original} FROM {t} WHERE {id} = ANY(%s)").format(
        id=sql.Identifier(mapping.id), original=statements.original_id(mapping, target), t=target
    )
    holders = dict(conn.execute(query, [keys]).fetchall())
    return [
        (record_id, _TAKEN_KEY.format(record_id, key, holders.get(key, "?")))
        for record_id, key in zip(left, keys, strict=True)
    ]


def _nul_fields(batch: pa.RecordBatch) -> np.ndarray:
    """Records with a NUL character in a text field, or a `\\u0000` in a JSON one (a cheap test in C, a few
    false hits possible: a JSON text holding a backslash before `u0000`). PostgreSQL cannot hold it in text
    or jsonb: such a record fails the whole COPY, and is loaded alone (`Writer.write`)."""
    hits = np.zeros(batch.num_rows, dtype=bool)
    for names, needle in ((_TEXT_FIELDS, "\x00"), (_JSON_FIELDS, "\\u0000")):
        for name in names:
            found = pc.match_substring(batch.column(name), needle).fill_null(False)
            hits |= np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)
    return hits


def _with_nul_reason(row: pa.RecordBatch, reason: str) -> str:
    """A refused record's reason, saying first which of its fields holds a NUL, where one does."""
    fields = [name for name in _TEXT_FIELDS if "\x00" in (row.column(name)[0].as_py() or "")]
    fields += [name for name in _JSON_FIELDS if "\\u0000" in (row.column(name)[0].as_py() or "")]
    if not fields:
        return reason
    what = " and ".join(fields)
    return f"{what} holds a NUL character (\\u0000), which PostgreSQL text and jsonb columns cannot hold ({reason})"
