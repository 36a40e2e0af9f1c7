"""What the server says of the table: its columns, keys and vector size, read into a `TableMap` for the
configured layout; none of it changes the table (creating it is `target`'s)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from connectors.pgvector import statements
from connectors.pgvector.options import PgvectorOptions, langchain_v2_columns, table_name
from connectors.pgvector.session import psycopg_module
from connectors.pgvector.tablemap import INTEGER_WIDTHS, NATIVE_EXTRAS, OPCLASS, TEXT_TYPES, TableMap
from vmig.errors import UsageError

_DERIVED_TYPES = ("vector", "halfvec", "sparsevec", "tsvector")


@dataclass(frozen=True)
class _Catalog:
    """A table's columns as the catalog describes them."""

    types: dict[str, str]
    """Column name -> formatted type, in table order."""
    not_null: frozenset[str]
    automatic: frozenset[str]
    """Filled by the server itself: identity, serial and generated columns."""
    defaulted: frozenset[str] = frozenset()
    """Columns with a default of any kind."""

    def search_columns(self) -> tuple[str, ...]:
        """See `TableMap.search_columns`."""
        return tuple(
            name
            for name, kind in self.types.items()
            if kind == "tsvector" and name in self.not_null and name not in self.automatic | self.defaulted
        )


def extension_present(conn: Any) -> bool:
    return conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is not None


def resolve(conn: Any, opts: PgvectorOptions, create: bool) -> TableMap | None:
    """Map the configured layout onto the table; None when it does not exist yet. `create`: a LangChain
    collection that does not exist yet is made."""
    table = table_name(opts)
    catalog = _read_catalog(conn, table)
    columns = catalog.types
    layout = opts.layout
    if layout == "langchain":
        if not columns:
            return None
        langchain = _langchain_map(conn, opts, table, columns, create)
        if langchain is None:
            return None
        mapping = langchain
    elif layout == "llamaindex":
        if not columns:
            return None
        mapping = TableMap(table, "node_id", "embedding", "text", "metadata_", key_unique=False)
        if columns.get("id") in INTEGER_WIDTHS and _has_unique(conn, table, "id"):
            mapping.row_key = "id"  # LlamaIndex's BIGSERIAL primary key: node_id has no index, nor NOT NULL
    else:
        if not columns:
            return None
        mapping = _explicit_map(opts, table, columns)
        if not mapping.native_extras:
            mapping.column_keys = _column_keys(mapping, catalog)
    missing = [c for c in (mapping.id, mapping.vector, mapping.text, mapping.metadata, mapping.namespace)
               if c is not None and c not in columns]  # fmt: skip
    if missing:
        raise UsageError(
            f"pgvector table {'.'.join(table)} has no column {', '.join(missing)} (its columns: {', '.join(columns)})"
        )
    kind = columns[mapping.vector]
    if not kind.startswith(("vector", "halfvec")):
        raise UsageError(f"pgvector column {mapping.vector} is {kind}, not a vector or halfvec column")
    mapping.vector_type = "halfvec" if kind.startswith("halfvec") else "vector"
    if mapping.key_unique and layout != "llamaindex" and not _has_unique(conn, table, mapping.id):
        raise UsageError(
            f"pgvector table {'.'.join(table)} has no primary key or unique index on {mapping.id}: "
            "vex cannot upsert into it without duplicating records"
        )
    mapping.types, mapping.not_null = columns, catalog.not_null
    mapping.search_columns = catalog.search_columns()
    if mapping.search_columns:
        _check_tsv_config(conn, opts.tsv_config)
    return mapping


def dims(conn: Any, mapping: TableMap) -> int | None:
    """The size of the vectors the table (or the collection) holds; None when nothing says."""
    from psycopg import sql

    kind = mapping.types.get(mapping.vector, "")
    if "(" in kind:
        return int(kind.split("(")[1].rstrip(")"))
    # A `vector` column without dimensions (LangChain's PGVector made without a vector size) takes
    # vectors of any size: the data says, in the collection read or written, not in the whole table.
    scope, params = statements.and_in_scope(mapping)
    query = sql.SQL("SELECT vector_dims({v}) FROM {t} WHERE {v} IS NOT NULL{s} LIMIT 1").format(
        v=sql.Identifier(mapping.vector), t=sql.Identifier(*mapping.table), s=scope
    )
    row = conn.execute(query, params).fetchone()
    return int(row[0]) if row else None


def count(conn: Any, mapping: TableMap) -> int:
    """Rows of the table (of the collection, in a LangChain table)."""
    from psycopg import sql

    where, params = statements.scope_clause(mapping, None)
    query = sql.SQL("SELECT count(*) FROM {t}").format(t=sql.Identifier(*mapping.table)) + where
    return int(conn.execute(query, params).fetchone()[0])


def index_metric(conn: Any, mapping: TableMap) -> str | None:
    """The distance the vector column's index is built for (from its operator class); None without one."""
    query = (
        "SELECT opc.opcname FROM pg_index i JOIN pg_opclass opc ON opc.oid = i.indclass[0] "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
        "WHERE i.indrelid = to_regclass(%s) AND a.attname = %s ORDER BY i.indexrelid LIMIT 1"
    )
    row = conn.execute(query, (statements.qualified(mapping.table), mapping.vector)).fetchone()
    if row is None:
        return None
    return next((metric for metric, ops in OPCLASS.items() if str(row[0]).endswith(ops)), None)


def describe_layout(opts: PgvectorOptions, mapping: TableMap) -> str:
    """The table layout in words: which layout, which table, and which column holds what."""
    columns = [f"id={mapping.id}", f"vector={mapping.vector}"]
    columns += [
        f"{name}={column}"
        for name, column in (("text", mapping.text), ("metadata", mapping.metadata), ("namespace", mapping.namespace))
        if column
    ]
    scope = f", collection {mapping.scope_value}" if mapping.scope_value is not None else ""
    return f"{opts.layout} layout: table {statements.qualified(mapping.table)}{scope} ({', '.join(columns)})"


def incarnation(conn: Any, mapping: TableMap) -> str:
    """The table's oid (a table dropped and created again gets another), and a LangChain collection's uuid."""
    oid = conn.execute("SELECT to_regclass(%s)::oid", (statements.qualified(mapping.table),)).fetchone()[0]
    return str(oid) if mapping.scope_value is None else f"{oid}/{mapping.scope_value}"


def _read_catalog(conn: Any, table: tuple[str, ...]) -> _Catalog:
    """The table's columns (types like `vector(384)`; none when the table does not exist)."""
    query = (
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
        "a.attidentity <> '' OR a.attgenerated <> '' OR coalesce(pg_get_expr(d.adbin, d.adrelid), '') "
        "LIKE 'nextval(%%', d.adbin IS NOT NULL "
        "FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
    )
    rows = conn.execute(query, (statements.qualified(table),)).fetchall()
    return _Catalog(
        types={name: kind for name, kind, _, _, _ in rows},
        not_null=frozenset(name for name, _, required, _, _ in rows if required),
        automatic=frozenset(name for name, _, _, automatic, _ in rows if automatic),
        defaulted=frozenset(name for name, _, _, _, defaulted in rows if defaulted),
    )


def _check_tsv_config(conn: Any, tsv_config: str) -> None:
    psycopg = psycopg_module()
    try:
        conn.execute("SELECT %s::regconfig", (tsv_config,))
    except psycopg.errors.UndefinedObject:
        conn.rollback()
        raise UsageError(
            f"--tsv-config {tsv_config}: PostgreSQL has no such text search configuration "
            "(SELECT cfgname FROM pg_ts_config lists them)"
        ) from None


def _has_unique(conn: Any, table: tuple[str, ...], column: str) -> bool:
    query = (
        "SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = to_regclass(%s) AND i.indisunique AND i.indnkeyatts = 1 AND a.attname = %s"
    )
    return conn.execute(query, (statements.qualified(table), column)).fetchone() is not None


def _explicit_map(opts: PgvectorOptions, table: tuple[str, ...], columns: dict[str, str]) -> TableMap:
    """The native table, a langchain-v2 one, or any other through the column options."""
    names = ("id", "embedding", "text", "metadata", *NATIVE_EXTRAS)
    native = all(c in columns for c in names) and columns["id"].startswith(TEXT_TYPES)
    if opts.layout == "langchain-v2":
        v2 = langchain_v2_columns(opts)
        metadata = v2["metadata"] if v2["metadata"] in columns else None  # PGVectorStore(store_metadata=False)
        return TableMap(table, v2["id"], v2["vector"], v2["text"], metadata, namespace=opts.namespace_column)
    return TableMap(
        table,
        id=opts.id_column or "id",
        vector=opts.vector_column or "embedding",
        text=opts.text_column or ("text" if "text" in columns else None),
        metadata=opts.metadata_column or ("metadata" if "metadata" in columns else None),
        namespace=opts.namespace_column or ("namespace" if "namespace" in columns else None),
        native_extras=native and not any((opts.id_column, opts.vector_column, opts.metadata_column)),
    )


def _langchain_map(
    conn: Any, opts: PgvectorOptions, table: tuple[str, ...], columns: dict[str, str], create: bool
) -> TableMap | None:
    """LangChain's embedding table, scoped to the collection; None when the collection does not exist yet.

    langchain-postgres keys rows by `id`; langchain_community's older PGVector by a `uuid` the client made
    up (uuid4), with the user's id in `custom_id`: no `id` column, but `uuid` and `custom_id`."""
    if "id" in columns:
        mapping = TableMap(table, "id", "embedding", "document", "cmetadata", key_unique=True)
    elif "uuid" in columns and "custom_id" in columns:
        if columns["uuid"] != "uuid":
            raise UsageError(
                f"pgvector table {'.'.join(table)} looks like LangChain's older PGVector table, but its key "
                f"column uuid is {columns['uuid']}, not uuid"
            )
        mapping = TableMap(table, "custom_id", "embedding", "document", "cmetadata", key_unique=False)
        mapping.row_key, mapping.fills_row_key = "uuid", True
    else:
        raise UsageError(
            f"pgvector table {'.'.join(table)} is not a LangChain PGVector table: it has neither the id column "
            f"of langchain-postgres nor the uuid and custom_id columns of langchain_community "
            f"(its columns: {', '.join(columns)})"
        )
    mapping.scope_column, mapping.scope_value = "collection_id", _langchain_collection(conn, opts, create)
    return None if mapping.scope_value is None else mapping


def _langchain_collection(conn: Any, opts: PgvectorOptions, create: bool) -> Any:
    name = opts.collection or "langchain"
    row = conn.execute("SELECT uuid FROM langchain_pg_collection WHERE name = %s", (name,)).fetchone()
    if row is not None:
        return row[0]
    if not create:
        return None
    new = uuid.uuid4()
    conn.execute("INSERT INTO langchain_pg_collection (uuid, name, cmetadata) VALUES (%s, %s, %s)", (new, name, None))
    return new


def _column_keys(mapping: TableMap, catalog: _Catalog) -> tuple[str, ...]:
    """The columns of a mapped table that carry metadata: all but the mapped ones, those named like a record
    field (`created_at`, `model`, ...), those the server fills, and other vectors or search vectors
    (derived from the record, not part of it)."""
    mapped = {mapping.id, mapping.vector, mapping.text, mapping.metadata, mapping.namespace, mapping.scope_column}
    return tuple(
        name
        for name, kind in catalog.types.items()
        if name not in mapped
        and name not in NATIVE_EXTRAS  # record fields, not metadata: under `_vex` in a mapped table
        and name not in catalog.automatic
        and not kind.startswith(_DERIVED_TYPES)
    )
