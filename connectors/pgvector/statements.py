"""SQL built over a `TableMap` (psycopg `sql` objects), shared by reading, writing and the catalog:
how a statement names the table, selects a collection and a namespace, reads a record id, and fills
the table from the staging table `pg_temp.vex_stage`."""

from __future__ import annotations

from typing import Any

from connectors.pgvector.tablemap import TableMap
from vmig.errors import UsageError
from vmig.reserved import RESERVED_KEY

COLUMNS_FIELD = "vex_columns"
"""The staging table's field for the metadata keys that go to columns of their own."""


def qualified(table: tuple[str, ...]) -> str:
    """The table's name quoted as SQL text, for `to_regclass`."""
    from psycopg import sql

    return ".".join(sql.Identifier(part).as_string(None) for part in table)


def key_bounds(
    mapping: TableMap, where: Any, params: list[Any], after: str | None, up_to: str | None
) -> tuple[Any, list[Any]]:
    """`where` (from `scope_clause`) narrowed to the keys after `after` (a page's keyset) and up to `up_to`,
    inclusive (a `--workers` share). The keys travel as text; the server reads them as the key's type."""
    from psycopg import sql

    bounds = [(">", after), ("<=", up_to)]
    narrowed = [(operator, value) for operator, value in bounds if value is not None]
    if not narrowed:
        return where, params
    column = sql.Identifier(mapping.page_key)
    tests = sql.SQL(" AND ").join(sql.SQL("{} " + operator + " %s").format(column) for operator, _ in narrowed)
    return _and(where, params, tests, [value for _, value in narrowed])


def _and(where: Any, params: list[Any], test: Any, values: list[Any]) -> tuple[Any, list[Any]]:
    """`where` (from `scope_clause`, empty exactly when it has no parameters) with `test` added."""
    from psycopg import sql

    clauses = [sql.SQL(" WHERE ")] if not params else [where, sql.SQL(" AND ")]
    return sql.Composed([*clauses, test]), [*params, *values]


def changed_since(
    mapping: TableMap, where: Any, params: list[Any], since: tuple[str, str] | None
) -> tuple[Any, list[Any]]:
    """`where` narrowed to the rows whose modification column (`vex sync --watermark`) is at or after `since`'s
    value, given as text and read as the column's type, or is NULL (such a row may have changed any time)."""
    from psycopg import sql

    if since is None:
        return where, params
    column, value = since
    test = sql.SQL("({c} >= CAST(%s AS {t}) OR {c} IS NULL)").format(
        c=sql.Identifier(column), t=sql.SQL(mapping.types[column])
    )
    return _and(where, params, test, [value])


def namespace_value(mapping: TableMap) -> Any:
    """SQL for a row's namespace as export gives it: its namespace column, else vex's key in its metadata."""
    from psycopg import sql

    if mapping.namespace is not None:
        return sql.SQL("{}::text").format(sql.Identifier(mapping.namespace))
    if mapping.metadata is not None:
        return sql.SQL("{} -> '_vex' ->> 'namespace'").format(sql.Identifier(mapping.metadata))
    return sql.SQL("NULL::text")


def share_bounds(conn: Any, mapping: TableMap, namespace: str | None, parts: int) -> list[str]:
    """The last key of each share but the last, for `parts` shares of about equal rows (by the key's order)."""
    from psycopg import sql

    where, params = scope_clause(mapping, namespace)
    table = sql.Identifier(*mapping.table)
    count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table) + where, params).fetchone()[0]
    bounds: list[str] = []
    for share in range(1, max(1, parts)):
        offset = count * share // parts - 1
        if offset < 0:
            continue
        query = sql.SQL("SELECT {}::text FROM {}").format(sql.Identifier(mapping.page_key), table) + where
        query += sql.SQL(" ORDER BY {} OFFSET %s LIMIT 1").format(sql.Identifier(*mapping.table, mapping.page_key))
        row = conn.execute(query, [*params, offset]).fetchone()
        if row is not None and (not bounds or row[0] != bounds[-1]):
            bounds.append(row[0])
    return bounds


def scope_clause(mapping: TableMap, namespace: str | None) -> tuple[Any, list[Any]]:
    """` WHERE ...` and its parameters selecting the rows of the collection and of `namespace` (None: all),
    or nothing where there is nothing to select."""
    from psycopg import sql

    clauses, params = [], []
    if mapping.scope_column is not None:
        clauses.append(sql.SQL("{} = %s").format(sql.Identifier(mapping.scope_column)))
        params.append(mapping.scope_value)
    if namespace is not None:
        if mapping.namespace is not None:
            clauses.append(sql.SQL("{} = %s").format(sql.Identifier(mapping.namespace)))
        elif mapping.metadata is not None:
            clauses.append(sql.SQL("{} -> '_vex' ->> 'namespace' = %s").format(sql.Identifier(mapping.metadata)))
        else:
            raise UsageError(
                f"pgvector table {'.'.join(mapping.table)} has no namespace column and no metadata column: "
                f"no record in it has a namespace, so --namespace {namespace} would select nothing "
                "(name the column with --namespace-column)"
            )
        params.append(namespace)
    if not clauses:
        return sql.SQL(""), params
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(clauses), params


def and_in_scope(mapping: TableMap) -> tuple[Any, list[Any]]:
    """` AND <scope column> = %s` and its parameter for a table whose rows belong to collections (LangChain's),
    else nothing: a statement on such a table touches one collection only."""
    from psycopg import sql

    if mapping.scope_column is None:
        return sql.SQL(""), []
    return sql.SQL(" AND {} = %s").format(sql.Identifier(mapping.scope_column)), [mapping.scope_value]


def record_id(mapping: TableMap, row: Any = None) -> Any:
    """SQL for the record id of a row (columns qualified by `row`, where given), as text: its id column, or
    where that may be NULL (the legacy LangChain table's `custom_id`) its row key in its stead. Export gives
    rows this id, and a re-import of an id replaces the rows of that id, so a row comes back where it was."""
    from psycopg import sql

    def column(name: str) -> Any:
        return sql.Identifier(name) if row is None else sql.SQL("{}.{}").format(row, sql.Identifier(name))

    if mapping.row_key is None:
        return sql.SQL("{}::text").format(column(mapping.id))
    return sql.SQL("COALESCE({}::text, {}::text)").format(column(mapping.id), column(mapping.row_key))


def columns_as_json(names: tuple[str, ...]) -> Any:
    """The columns as one JSON object, as text: `jsonb_build_object` takes 50 pairs a call, so longer
    lists are built in parts and joined with `||`."""
    from psycopg import sql

    parts = [
        sql.SQL("jsonb_build_object({})").format(
            sql.SQL(", ").join(sql.SQL("{}, {}").format(sql.Literal(n), sql.Identifier(n)) for n in names[i : i + 50])
        )
        for i in range(0, len(names), 50)
    ]
    return sql.SQL("({})::text").format(sql.SQL(" || ").join(parts))


def insert_from_staging(mapping: TableMap, staged: list[str], to_columns: tuple[str, ...], tsv_config: str) -> Any:
    """`INSERT INTO table ... SELECT ... FROM vex_stage`: the staged columns as they are, the metadata keys
    that have columns of their own out of the staged JSON, typed by PostgreSQL (`jsonb_populate_record`),
    and the search columns from the text."""
    from psycopg import sql

    target = sql.Identifier(*mapping.table)
    values = [sql.SQL("s.{}").format(sql.Identifier(c)) for c in staged]
    values += [sql.SQL("r.{}").format(sql.Identifier(c)) for c in to_columns]
    text = sql.SQL("s.{}").format(sql.Identifier(mapping.text)) if mapping.text in staged else sql.SQL("NULL")
    values += [
        sql.SQL("to_tsvector({}::regconfig, coalesce({}, ''))").format(sql.Literal(tsv_config), text)
        for _ in mapping.search_columns
    ]
    source: Any = sql.SQL("pg_temp.vex_stage s")
    if to_columns:
        source += sql.SQL(", LATERAL jsonb_populate_record(NULL::{t}, s.{f}) r").format(
            t=target, f=sql.Identifier(COLUMNS_FIELD)
        )
    return sql.SQL("INSERT INTO {t} ({cols}) SELECT {vals} FROM {src}").format(
        t=target,
        cols=sql.SQL(", ").join(sql.Identifier(c) for c in (*staged, *to_columns, *mapping.search_columns)),
        vals=sql.SQL(", ").join(values),
        src=source,
    )


def delete_staged(mapping: TableMap) -> Any:
    """The `DELETE` that clears the way for a batch where ids have no unique constraint: the rows of the
    staged ids, matched as `record_id` reads them. The caller adds the collection's scope (another
    collection may hold the same ids); the insert that follows is in the same transaction."""
    from psycopg import sql

    staged: Any = sql.Identifier(mapping.id)
    if mapping.row_key is None:
        match = staged
    else:  # the record id is text, whatever the id column's type
        match, staged = record_id(mapping), sql.SQL("{}::text").format(staged)
    return sql.SQL("DELETE FROM {t} WHERE {m} IN (SELECT {id} FROM pg_temp.vex_stage)").format(
        t=sql.Identifier(*mapping.table), m=match, id=staged
    )


def delete_ids(mapping: TableMap, ids: list[str]) -> tuple[Any, list[Any]]:
    """`DELETE` of the rows of these record ids, as `record_id` reads them (or as a row's `_vex` id keeps an
    id its id column could not hold), in the collection's scope; and its parameters."""
    from psycopg import sql

    match = sql.SQL("{} = ANY(%s)").format(record_id(mapping))
    params: list[Any] = [ids]
    if mapping.metadata is not None:
        kept = sql.SQL("{m} -> {k} ->> 'id' = ANY(%s)").format(
            m=sql.Identifier(mapping.metadata), k=sql.Literal(RESERVED_KEY)
        )
        match = sql.SQL("({} OR {})").format(match, kept)
        params.append(ids)
    scope, scope_params = and_in_scope(mapping)
    statement = sql.SQL("DELETE FROM {t} WHERE {m}").format(t=sql.Identifier(*mapping.table), m=match) + scope
    return statement, params + scope_params


def original_id(mapping: TableMap, row: Any) -> Any:
    """SQL for the record id a row of `row` (a table name or EXCLUDED) stands for: its `_vex` id, else its key."""
    from psycopg import sql

    assert mapping.metadata is not None
    return sql.SQL("COALESCE({r}.{m} -> {k} ->> 'id', {r}.{id}::text)").format(
        r=row, m=sql.Identifier(mapping.metadata), k=sql.Literal(RESERVED_KEY), id=sql.Identifier(mapping.id)
    )


def same_record(mapping: TableMap) -> Any:
    """For a key derived from the id (uuid and integer key columns), the upsert's condition that the row it
    would replace stands for the same record: `7` and `007` share the key 7, and one must not silently
    replace the other. None where keys are the ids themselves, or no JSON metadata column keeps originals."""
    from psycopg import sql

    derived = mapping.uuid_keys or mapping.integer_keys is not None
    if not derived or mapping.metadata is None or mapping.types.get(mapping.metadata) not in ("json", "jsonb"):
        return None
    table = sql.Identifier(*mapping.table)
    return sql.SQL("{} = {}").format(original_id(mapping, table), original_id(mapping, sql.SQL("EXCLUDED")))
