"""PostgreSQL with pgvector: binary COPY imports, streaming exports, the table layouts people have.

Layouts (`--layout`):
- `native` (default): the table vex creates, `id text primary key, embedding vector(d) not null,
  text, metadata jsonb, namespace, model, created_at timestamptz, score, source_store, extra jsonb`.
- `langchain`: LangChain's PGVector store, `langchain_pg_embedding` joined to
  `langchain_pg_collection` (the collection is `--collection NAME`). Both tables LangChain has made are
  read and written, told apart by their columns: langchain-postgres' (`id` primary key) and
  langchain_community's older one (`uuid` primary key, the user's id in `custom_id`, which is neither
  unique nor NOT NULL: its rows are paged by `uuid` and replaced by delete-then-insert, see `TableMap.row_key`).
- `langchain-v2`: a table of langchain-postgres' `PGVectorStore` (`--table NAME`): `langchain_id` uuid key,
  `content`, `embedding`, `langchain_metadata` (the column options rename any of them); created with
  that DDL where missing.
- `llamaindex`: LlamaIndex's PGVectorStore table `data_<name>` (`--collection [SCHEMA.]NAME`, the
  `schema_name`/`table_name` PGVectorStore was given), keyed by `node_id`.
- any other table through `--id-column`, `--vector-column`, `--text-column`, `--metadata-column`,
  `--namespace-column`.

Where a layout has no column for namespace, model, created_at, score, origin or unknown
format keys, they travel in the metadata JSON under the reserved key `_vex`, so a trip
through any layout loses nothing; there a user's own key that starts with `_vex` is stored
as `_vex_user:<key>` and comes back as it was (the native table, with a column for every
field, keeps metadata exactly as given). A load is one transaction per batch: binary COPY into
a temporary staging table, then `INSERT ... ON CONFLICT (id) DO UPDATE`, so a re-run never
duplicates and a failed batch leaves no partial rows. The vector index is built after the
load. `halfvec` columns are read and written as such. An export reads the table as of one
moment, whatever others write meanwhile (see `PgvectorConnector._take_snapshot`). The password
never appears in a message: give it in the URL, with `--password`, or as PGPASSWORD.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, cast

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import SecretStr, model_validator

from connectors.base import (
    Capabilities,
    Connector,
    Cursor,
    LoadResult,
    Page,
    StoreInfo,
    StoreOptions,
    client_module,
    uuid_for,
)
from connectors.pgvector import copy_codec as pgcopy
from vmig import metadata as md
from vmig.batch import build_batch, last_of_each_id, vector_matrix
from vmig.errors import StoreError, TransientError, UsageError
from vmig.parallel import read_ahead
from vmig.reader import Reject

RESERVED_KEY = "_vex"
_TEXT_TYPES = ("text", "character", "varchar", "name", "citext")
_INTEGER_WIDTHS = {"smallint": 2, "integer": 4, "bigint": 8}


def _integer_key(record_id: str, width: int) -> int:
    """A record id as the whole number an integer key column of `width` bytes holds, or a StoreError:
    that record cannot be stored in this table (the others can)."""
    text = record_id.strip()
    digits = text[1:] if text[:1] in "+-" else text
    if digits.isascii() and digits.isdigit():
        number = int(text)
        if -(2 ** (8 * width - 1)) <= number < 2 ** (8 * width - 1):
            return number
    raise StoreError(f"id '{record_id}' is not a whole number the table's {8 * width}-bit integer key can hold")


_OPCLASS = {"cosine": "cosine_ops", "dot": "ip_ops", "euclid": "l2_ops"}
_NATIVE_EXTRAS = ("namespace", "model", "created_at", "score", "source_store", "extra")


class PgvectorOptions(StoreOptions):
    url: str
    password: SecretStr | None = None
    table: str = "vex_memories"
    layout: Literal["native", "langchain", "langchain-v2", "llamaindex"] = "native"
    collection: str | None = None
    """LangChain collection name, or LlamaIndex `[schema_name.]table_name` (without `data_`)."""
    index: Literal["hnsw", "ivfflat", "none"] = "hnsw"
    metric: Literal["cosine", "dot", "euclid"] = "cosine"
    timeout: float = 300.0
    """Seconds one statement may wait on the server before the connection is dropped and retried."""
    id_column: str | None = None
    vector_column: str | None = None
    text_column: str | None = None
    metadata_column: str | None = None
    namespace_column: str | None = None

    tsv_config: str = "pg_catalog.english"
    """Text search configuration for the `tsvector` columns an import fills (see `TableMap.search_columns`):
    LangChain's `HybridSearchConfig.tsv_lang` default. Searches must use the same one."""

    @model_validator(mode="after")
    def _v2_names_its_table(self) -> PgvectorOptions:
        if self.layout == "langchain-v2" and "table" not in self.model_fields_set:
            raise ValueError("--layout langchain-v2 needs --table NAME: the table_name given to PGVectorStore")
        return self


@dataclass
class TableMap:
    """Where each field of a record lives in a table, and how rows are scoped and keyed."""

    table: tuple[str, ...]
    id: str
    vector: str
    text: str | None
    metadata: str | None
    namespace: str | None = None
    native_extras: bool = False
    """The table has vex's own model/created_at/score/source_store/extra columns."""
    scope_column: str | None = None
    scope_value: Any = None
    key_unique: bool = True
    """`id` has a unique constraint: ON CONFLICT upserts; otherwise delete-then-insert."""
    row_key: str | None = None
    """A unique column keying the rows where `id` does not, because the table lets ids be NULL or repeated:
    the legacy LangChain table's `uuid` (the user's id in `custom_id`), LlamaIndex's `id` (its `node_id`).
    Export pages by it (paging by the id would skip rows: a repeated id at a page boundary, NULL ids
    after the first page) and takes it as the id of a row whose id is NULL."""
    fills_row_key: bool = False
    """Import fills the row key (`_row_uuid`: LangChain's `uuid` has no server default); else the server
    does (LlamaIndex's `id` is a BIGSERIAL)."""
    types: dict[str, str] = field(default_factory=dict)
    """Column name -> formatted type, as the catalog gives it."""
    not_null: frozenset[str] = frozenset()
    search_columns: tuple[str, ...] = ()
    """NOT NULL `tsvector` columns with no default (LangChain PGVectorStore's hybrid search `<content>_tsv`):
    the table cannot take a row without them, so an import fills them from the text, as LangChain does."""
    column_keys: tuple[str, ...] = ()
    """Columns no field maps to (LangChain PGVectorStore's `metadata_columns`, anything a user added):
    their values travel as metadata keys, and go back to their columns on import."""

    @property
    def page_key(self) -> str:
        """The column export pages by: a unique one, so each row comes out once whatever the ids are."""
        return self.row_key or self.id

    @property
    def uuid_keys(self) -> bool:
        """Rows keyed by a `uuid` column (LangChain's PGVectorStore): other ids are mapped, and kept under `_vex`."""
        return self.types.get(self.id) == "uuid"

    @property
    def integer_keys(self) -> int | None:
        """The byte width of an integer key column, None for any other."""
        return _INTEGER_WIDTHS.get(self.types.get(self.id, ""))

    def stored_key(self, record_id: str) -> uuid.UUID | int | str:
        """What the key column holds for a record id (integer keys: see `_integer_key`)."""
        if self.uuid_keys:
            return uuid_for(record_id)
        width = self.integer_keys
        return record_id if width is None else _integer_key(record_id, width)

    def keeps_original(self, record_id: str) -> bool:
        """The key column holds the id in another spelling: the id itself goes under `_vex`."""
        return (self.uuid_keys or self.integer_keys is not None) and str(self.stored_key(record_id)) != record_id


def _langchain_v2_columns(opts: PgvectorOptions) -> dict[str, str]:
    """PGVectorStore's column names (its `id_column`, `content_column`, `embedding_column`,
    `metadata_json_column` defaults), each replaced by the matching column option where given."""
    return {
        "id": opts.id_column or "langchain_id",
        "text": opts.text_column or "content",
        "vector": opts.vector_column or "embedding",
        "metadata": opts.metadata_column or "langchain_metadata",
    }


def _row_uuid(scope: uuid.UUID, record_id: str) -> uuid.UUID:
    """The `uuid` key of a record's row in the legacy LangChain table: the UUIDv5 of its id in the namespace of
    its collection's uuid. Derived, not random, so a re-run writes the same keys; per collection, because the
    column is the primary key of a table every collection shares, and the same id in two collections (one
    collection copied into another) must not claim the same key, as `uuid_for(id)` would."""
    return uuid.uuid5(scope, record_id)


def _psycopg() -> Any:
    return client_module("pgvector", "pgvector", "psycopg", "psycopg")


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _split_name(name: str) -> tuple[str, ...]:
    """`[SCHEMA.]NAME` read the way PostgreSQL reads a name: unquoted parts fold to lower case (ASCII
    letters, as the server folds them), double-quoted parts stay as written (`""` is a quote).

    So `--table MyDocs` finds the table `CREATE TABLE MyDocs` made (`mydocs`), as psql would, and
    `--table '"MyDocs"'` the one `CREATE TABLE "MyDocs"` made.
    """
    parts: list[str] = []
    position, end = 0, len(name)
    while True:
        if name.startswith('"', position):
            close = position
            while True:
                close = name.find('"', close + 1)
                if close < 0:
                    raise UsageError(f"pgvector --table {name}: a double quote is not closed")
                if not name.startswith('"', close + 1):
                    break
                close += 1
            part, position = name[position + 1 : close].replace('""', '"'), close + 1
        else:
            dot = name.find(".", position)
            dot = end if dot < 0 else dot
            part, position = name[position:dot].strip().translate(_ASCII_LOWER), dot
        parts.append(part)
        if position >= end:
            break
        if name[position] != ".":
            raise UsageError(f"pgvector --table {name}: expected a dot after a quoted name")
        position += 1
    if not 1 <= len(parts) <= 2 or not all(parts):
        raise UsageError(f"pgvector --table must be TABLE or SCHEMA.TABLE, got '{name}'")
    return tuple(parts)


def _llamaindex_table(collection: str | None) -> tuple[str, ...]:
    """LlamaIndex's PGVectorStore table for `--collection [SCHEMA.]NAME`: `data_<name>`, both lowercased
    as PGVectorStore lowercases its `table_name` and `schema_name`."""
    schema, _, name = (collection or "llamaindex").rpartition(".")
    table = f"data_{name.lower()}"
    return (schema.lower(), table) if schema else (table,)


class PgvectorConnector(Connector):
    name: ClassVar[str] = "pgvector"
    Options: ClassVar[type[StoreOptions]] = PgvectorOptions
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_batch=5000, fixed_dims=True, needs_vector=True, metrics=tuple(_OPCLASS)
    )

    def __init__(self, options: StoreOptions) -> None:
        super().__init__(options)
        assert isinstance(options, PgvectorOptions)
        self.opts = options
        self._conn: Any = None
        self._map: TableMap | None = None
        self._vector_type = "vector"
        self._created = False
        self._staging = False
        self._direct = True
        self._rows_listed = False
        """Delete-then-insert tables with a row key: the temporary table `vex_rows` lists each row's record id
        and row key (see `_replace_staged`). Listed again after any rollback or reconnect."""
        self._orphan_pid: int | None = None
        self._backend_pid: int | None = None
        self._snapshot: _Snapshot | None = None
        """The moment an export reads the table as of, from its first page to its last (see `_take_snapshot`)."""
        self._reading = False
        """The connection's open transaction reads in `_snapshot`. Ended by any rollback or reconnect."""

    # -- connection and errors ------------------------------------------------------

    def _conninfo(self) -> str:
        from psycopg.conninfo import make_conninfo

        extra = {"password": self.opts.password.get_secret_value()} if self.opts.password else {}
        try:
            # COPY sends text fields as UTF-8 bytes (connectors/pgvector/copy_codec.py).
            return str(make_conninfo(self.opts.url, connect_timeout=10, client_encoding="UTF8", **extra))
        except Exception as exc:  # noqa: BLE001 - a malformed URL; never echo it (it may hold a password)
            raise UsageError(f"pgvector --url is not a valid PostgreSQL URL ({type(exc).__name__})") from None

    def _where(self) -> str:
        from psycopg.conninfo import conninfo_to_dict

        try:
            parts = conninfo_to_dict(self._conninfo())
        except Exception:  # noqa: BLE001 - only used in messages
            return "postgresql"
        host = str(parts.get("host") or "local socket")
        host = "local socket" if host.startswith("/") else host
        return f"postgresql {host}/{parts.get('dbname') or parts.get('user') or ''}"

    def label(self) -> str:
        return f"pgvector:{'.'.join(self._table_name())}"

    def _table_name(self) -> tuple[str, ...]:
        if self.opts.layout == "langchain":
            return ("langchain_pg_embedding",)
        if self.opts.layout == "llamaindex":
            return _llamaindex_table(self.opts.collection)
        return _split_name(self.opts.table)

    def conn(self) -> Any:
        if self._conn is not None:
            return self._conn
        psycopg = _psycopg()
        try:
            self._conn = psycopg.connect(self._conninfo(), autocommit=False)
            self._backend_pid = self._conn.info.backend_pid
            self._end_orphan(self._conn)
            self._conn.rollback()
        except psycopg.Error as exc:
            self._conn = None
            raise self._error(exc, "connecting") from None
        return self._conn

    def _error(self, exc: Exception, doing: str) -> Exception:
        psycopg = _psycopg()
        errors = psycopg.errors
        where = self._where()
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, errors.InsufficientPrivilege):
            return UsageError(f"pgvector {where}: permission denied while {doing} ({text})")
        if isinstance(exc, errors.InvalidSchemaName) and len(self._table_name()) == 2:
            return UsageError(
                f"pgvector {where}: schema {self._table_name()[0]} does not exist (vex creates tables, not schemas)"
            )
        if isinstance(exc, (errors.UndefinedTable, errors.InvalidSchemaName)):
            return UsageError(f"pgvector {where}: table {'.'.join(self._table_name())} not found")
        if isinstance(exc, (errors.SerializationFailure, errors.DeadlockDetected, errors.AdminShutdown,
                            errors.CannotConnectNow, errors.QueryCanceled)):  # fmt: skip
            return TransientError(f"pgvector {where}: {doing} interrupted ({text}), retrying")
        if isinstance(exc, psycopg.OperationalError):
            lowered = text.lower()
            if "password" in lowered or "authentication" in lowered or "does not exist" in lowered:
                return UsageError(f"pgvector {where}: {text} (check --url and the password)")
            return TransientError(f"pgvector {where}: server unreachable or connection lost while {doing} ({text})")
        return StoreError(f"pgvector {where}: {doing} failed: {text}")

    def _run(self, doing: str, fn: Any) -> Any:
        psycopg = _psycopg()
        watchdog = threading.Timer(self.opts.timeout, self._drop_connection)
        watchdog.daemon = True
        watchdog.start()
        try:
            return fn()
        except (UsageError, StoreError):
            self._rollback()
            raise
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.OperationalError):
                # Lost, stalled or cancelled mid-statement: its state is unknown (psycopg may still
                # call it open), so the next call starts on a new connection.
                self._discard_connection()
            else:
                self._rollback()
            raise self._error(exc, doing) from None
        finally:
            watchdog.cancel()

    def _drop_connection(self) -> None:
        """A stalled server never answers: shut the socket so the waiting call fails and is retried."""
        _shut(self._conn)

    def _discard_connection(self) -> None:
        """Leave a connection whose state is unknown; the next connection ends its server process.

        Over a stalled network the server process does not notice we left: it would keep the
        batch's transaction open, and its row locks would block the retry's rows until it did.
        A cancel does not reach a process waiting for COPY data, so the next connection
        terminates it (`pg_terminate_backend`, allowed for one's own sessions).
        """
        conn, self._conn, self._staging = self._conn, None, False
        self._rows_listed = self._reading = False
        if conn is None:
            return
        self._orphan_pid = self._backend_pid  # libpq forgets it once the connection is broken
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - closing a broken connection may fail; it is gone either way
            pass

    def _end_orphan(self, conn: Any) -> None:
        pid, self._orphan_pid = self._orphan_pid, None
        if not pid:
            return
        try:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        except Exception:  # noqa: BLE001 - gone already, or not ours to end: the retry meets the locks, if any
            conn.rollback()

    def _rollback(self) -> None:
        self._staging = False  # a rolled-back transaction may have taken the staging table with it
        self._rows_listed = False  # and the list of rows, or some of the rows it lists
        self._reading = False  # and an export's snapshot
        if self._conn is not None and not self._conn.closed:
            try:
                self._conn.rollback()
            except Exception:  # noqa: BLE001 - the connection is already broken; the next call reconnects
                self._conn = None
                self._staging = False

    # -- table layout ----------------------------------------------------------------

    def _catalog(self, table: tuple[str, ...]) -> _Catalog:
        """The table's columns (types like `vector(384)`; none when the table does not exist)."""
        query = (
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
            "a.attidentity <> '' OR a.attgenerated <> '' OR coalesce(pg_get_expr(d.adbin, d.adrelid), '') "
            "LIKE 'nextval(%%', d.adbin IS NOT NULL "
            "FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
            "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
        )
        rows = self.conn().execute(query, (_qualified(table),)).fetchall()
        return _Catalog(
            types={name: kind for name, kind, _, _, _ in rows},
            not_null=frozenset(name for name, _, required, _, _ in rows if required),
            automatic=frozenset(name for name, _, _, automatic, _ in rows if automatic),
            defaulted=frozenset(name for name, _, _, _, defaulted in rows if defaulted),
        )

    def _check_tsv_config(self) -> None:
        psycopg = _psycopg()
        try:
            self.conn().execute("SELECT %s::regconfig", (self.opts.tsv_config,))
        except psycopg.errors.UndefinedObject:
            self.conn().rollback()
            raise UsageError(
                f"--tsv-config {self.opts.tsv_config}: PostgreSQL has no such text search configuration "
                "(SELECT cfgname FROM pg_ts_config lists them)"
            ) from None

    def _has_unique(self, table: tuple[str, ...], column: str) -> bool:
        query = (
            "SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
            "WHERE i.indrelid = to_regclass(%s) AND i.indisunique AND i.indnkeyatts = 1 AND a.attname = %s"
        )
        return self.conn().execute(query, (_qualified(table), column)).fetchone() is not None

    def _resolve(self, create: bool) -> TableMap | None:
        """Map the configured layout onto the table; None when it does not exist yet."""
        if self._map is not None:
            return self._map
        table = self._table_name()
        catalog = self._catalog(table)
        columns = catalog.types
        layout = self.opts.layout
        if layout == "langchain":
            if not columns:
                return None
            langchain = self._langchain_map(table, columns, create)
            if langchain is None:
                return None
            mapping = langchain
        elif layout == "llamaindex":
            if not columns:
                return None
            mapping = TableMap(table, "node_id", "embedding", "text", "metadata_", key_unique=False)
            if columns.get("id") in _INTEGER_WIDTHS and self._has_unique(table, "id"):
                mapping.row_key = "id"  # LlamaIndex's BIGSERIAL primary key: node_id has no index, nor NOT NULL
        else:
            if not columns:
                return None
            mapping = self._explicit_map(table, columns)
            if not mapping.native_extras:
                mapping.column_keys = _column_keys(mapping, catalog)
        missing = [c for c in (mapping.id, mapping.vector, mapping.text, mapping.metadata, mapping.namespace)
                   if c is not None and c not in columns]  # fmt: skip
        if missing:
            raise UsageError(
                f"pgvector table {'.'.join(table)} has no column {', '.join(missing)} "
                f"(its columns: {', '.join(columns)})"
            )
        kind = columns[mapping.vector]
        if not kind.startswith(("vector", "halfvec")):
            raise UsageError(f"pgvector column {mapping.vector} is {kind}, not a vector or halfvec column")
        self._vector_type = "halfvec" if kind.startswith("halfvec") else "vector"
        if mapping.key_unique and layout != "llamaindex" and not self._has_unique(table, mapping.id):
            raise UsageError(
                f"pgvector table {'.'.join(table)} has no primary key or unique index on {mapping.id}: "
                "vex cannot upsert into it without duplicating records"
            )
        mapping.types, mapping.not_null = columns, catalog.not_null
        mapping.search_columns = catalog.search_columns()
        if mapping.search_columns:
            self._check_tsv_config()
        self._map = mapping
        return mapping

    def _explicit_map(self, table: tuple[str, ...], columns: dict[str, str]) -> TableMap:
        names = ("id", "embedding", "text", "metadata", *_NATIVE_EXTRAS)
        native = all(c in columns for c in names) and columns["id"].startswith(_TEXT_TYPES)
        opts = self.opts
        if opts.layout == "langchain-v2":
            v2 = _langchain_v2_columns(opts)
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

    def _langchain_map(self, table: tuple[str, ...], columns: dict[str, str], create: bool) -> TableMap | None:
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
        mapping.scope_column, mapping.scope_value = "collection_id", self._langchain_collection(create)
        return None if mapping.scope_value is None else mapping

    def _langchain_collection(self, create: bool) -> Any:
        name = self.opts.collection or "langchain"
        row = self.conn().execute("SELECT uuid FROM langchain_pg_collection WHERE name = %s", (name,)).fetchone()
        if row is not None:
            return row[0]
        if not create:
            return None
        new = uuid.uuid4()
        self.conn().execute(
            "INSERT INTO langchain_pg_collection (uuid, name, cmetadata) VALUES (%s, %s, %s)", (new, name, None)
        )
        return new

    def _dims(self, mapping: TableMap) -> int | None:
        kind = mapping.types.get(mapping.vector, "")
        if "(" in kind:
            return int(kind.split("(")[1].rstrip(")"))
        # A `vector` column without dimensions (LangChain's PGVector made without a vector size) takes
        # vectors of any size: the data says, in the collection read or written, not in the whole table.
        sql = self._sql()
        scope, params = _and_in_scope(mapping)
        query = sql.SQL("SELECT vector_dims({v}) FROM {t} WHERE {v} IS NOT NULL{s} LIMIT 1").format(
            v=sql.Identifier(mapping.vector), t=sql.Identifier(*mapping.table), s=scope
        )
        row = self.conn().execute(query, params).fetchone()
        return int(row[0]) if row else None

    @staticmethod
    def _sql() -> Any:
        from psycopg import sql

        return sql

    # -- describe -----------------------------------------------------------------------

    def describe(self) -> StoreInfo:
        def run() -> StoreInfo:
            if not self._extension_present():
                return StoreInfo(exists=False)
            mapping = self._resolve(create=False)
            if mapping is None:
                return StoreInfo(exists=False)
            sql = self._sql()
            where, params = self._scope_clause(mapping, None)
            count = (
                self.conn()
                .execute(sql.SQL("SELECT count(*) FROM {t}").format(t=sql.Identifier(*mapping.table)) + where, params)
                .fetchone()[0]
            )
            info = StoreInfo(exists=True, dims=self._dims(mapping), metric=None, count=int(count))
            self.conn().rollback()
            return info

        return self._run("describing the table", run)  # type: ignore[no-any-return]

    def incarnation(self) -> str | None:
        """The table's oid (a table dropped and created again gets another), and a LangChain collection's uuid."""

        def run() -> str | None:
            mapping = self._resolve(create=False)
            if mapping is None:
                return None
            oid = self.conn().execute("SELECT to_regclass(%s)::oid", (_qualified(mapping.table),)).fetchone()[0]
            self.conn().rollback()
            return str(oid) if mapping.scope_value is None else f"{oid}/{mapping.scope_value}"

        return self._run("reading the table's identity", run)  # type: ignore[no-any-return]

    def _extension_present(self) -> bool:
        return self.conn().execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is not None

    def _scope_clause(self, mapping: TableMap, namespace: str | None) -> tuple[Any, list[Any]]:
        sql = self._sql()
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

    # -- extract ------------------------------------------------------------------------

    def extract(self, namespace: str | None, limit: int | None, cursor: Cursor | None) -> Iterator[Page]:
        mapping = self._run("opening the table", lambda: self._resolve(create=False))
        if mapping is None:
            what = (
                f"LangChain collection '{self.opts.collection or 'langchain'}'"
                if self.opts.layout == "langchain"
                else (f"table {'.'.join(self._table_name())}")
            )
            raise UsageError(f"pgvector {self._where()}: {what} not found (check --table/--collection)")
        sql = self._sql()
        layout = _PageLayout(
            native_extras=mapping.native_extras,
            column_keys=bool(mapping.column_keys),
            namespace_column=mapping.namespace is not None,
            half=self._vector_type == "halfvec",
            store=self.name,
            page_key=mapping.row_key is not None,
        )
        columns = [
            sql.SQL("{}::text").format(sql.Identifier(c)) if c else sql.SQL("NULL::text")
            for c in (None, None, mapping.text, mapping.metadata, mapping.namespace)
        ]
        columns[0], columns[1] = _record_id(mapping), sql.Identifier(mapping.vector)
        if mapping.native_extras:
            columns += [sql.SQL("model::text"), sql.SQL("created_at"), sql.SQL("score::float8"),
                        sql.SQL("source_store::text"), sql.SQL("extra::text")]  # fmt: skip
        elif mapping.column_keys:
            columns.append(_columns_as_json(mapping.column_keys))
        if layout.page_key:
            columns.append(sql.SQL("{}::text").format(sql.Identifier(mapping.page_key)))
        select = sql.SQL(", ").join(columns)
        key_field = len(columns) - 1 if layout.page_key else 0
        pages = self._copy_pages(mapping, namespace, limit, cursor, select, key_field)
        # The server runs the next page's query while this one is written out.
        decoded = cast(Generator[Any, None, None], read_ahead(
            (_decode_page(messages, layout), after) for messages, after in pages))  # fmt: skip
        try:
            for (batch, rejects), next_cursor in decoded:
                yield Page(batch, next_cursor, rejects)
        except GeneratorExit:
            # Left before its last page: no retry continues this read. (After an error the snapshot
            # stays, for the retry that reopens the read at its cursor.)
            decoded.close()  # joins the thread that reads, before its connection is touched here
            self._release_snapshot()
            raise

    def _copy_pages(
        self,
        mapping: TableMap,
        namespace: str | None,
        limit: int | None,
        cursor: Cursor | None,
        select: Any,
        key_field: int,
    ) -> Iterator[tuple[list[bytes], str | None]]:
        """Keyset pages of the table (by `mapping.page_key`) as raw binary COPY messages (a row each, then the
        trailer) and the cursor after each (None after the last): each is one short query, retried on its own.

        The next page's query needs only the last key, read off the last row's field `key_field` (the id,
        or the row key `select` ends with), so no row is parsed here. Every page is read in one snapshot
        of the table (`_take_snapshot`), so the pages add up to the rows of one moment.
        """
        psycopg = _psycopg()
        sql = self._sql()
        self._run("taking a snapshot of the table", lambda: self._take_snapshot(cursor))
        last, remaining = cursor, limit
        messages: list[bytes] = []
        while remaining is None or remaining > 0:
            size = self.page_size if remaining is None else min(self.page_size, remaining)
            where, params = self._scope_clause(mapping, namespace)
            if last is not None:
                keyset = sql.SQL("{} > %s").format(sql.Identifier(mapping.page_key))
                where = (where + sql.SQL(" AND ") + keyset) if params else (sql.SQL(" WHERE ") + keyset)
                params = [*params, last]
            query = (
                sql.SQL("SELECT {cols} FROM {t}").format(cols=select, t=sql.Identifier(*mapping.table))
                + where
                # Qualified: a bare name would order by the output column of that name, the key cast to
                # text (10 before 9 in an integer key, so the keyset after a page would skip rows).
                + sql.SQL(" ORDER BY {} LIMIT %s").format(sql.Identifier(*mapping.table, mapping.page_key))
            )

            def fetch(query: Any = query, params: list[Any] = params, size: int = size) -> list[bytes]:
                conn = self.conn()
                if not self._reading:
                    self._begin_read(conn)
                # COPY takes no parameters: the client cursor quotes them into the query.
                literal = psycopg.ClientCursor(conn).mogrify(query, [*params, size])
                with conn.cursor() as cur, cur.copy(
                    sql.SQL("COPY ({}) TO STDOUT (FORMAT BINARY)").format(sql.SQL(literal))
                ) as copy:  # fmt: skip
                    return _copy_messages(conn.pgconn, copy)

            messages = self._run("reading rows", fetch)
            rows = len(messages) - 1  # the last message is the trailer
            if rows <= 0:
                break
            last = pgcopy.last_row_text(messages, key_field)
            if remaining is not None:
                remaining -= rows
            done = rows < size or remaining == 0
            if done:
                break
            yield messages, last
            messages = []
        # Released before the last page is handed over, here, in the thread that reads: the caller may
        # never ask for more, so code after the last yield might never run.
        self._release_snapshot()
        if len(messages) > 1:
            yield messages, None

    # -- one snapshot per export ----------------------------------------------------------

    def _take_snapshot(self, cursor: Cursor | None) -> None:
        """The moment this read of the table sees: a new one for a read from the start, the same one for a
        read reopened at its cursor after an error (`ChunkReader` retries that way, on a new connection
        where the old one was lost).

        Paged in many short queries, each in a transaction of its own, an export taken while others write
        gave a set of rows that was never in the table (a row deleted after its page was read and one
        inserted before its page was: both out). So every page is read in one REPEATABLE READ, READ ONLY
        transaction, and that transaction imports a snapshot which a second connection exported and holds
        open, idle, until the last page (`pg_export_snapshot`): when the reading connection is dropped
        (the watchdog, a reset), the retry's new connection imports the same snapshot and reads on as of
        the same moment. A resumed run (a new process, a cursor from its checkpoint) reads the rest as of
        its own start: a snapshot does not outlive the run that took it.
        """
        if cursor is not None and self._snapshot is not None:
            return
        self._release_snapshot()
        self._snapshot = self._export_snapshot()

    def _export_snapshot(self) -> _Snapshot:
        """A connection holding a transaction open, and the id of the snapshot it exported; only the
        reading connection's own transaction where no second connection can be had (a server at its
        connection limit, one without snapshot export): the export is then consistent unless that
        connection is lost (`_begin_read` says so then)."""
        psycopg = _psycopg()
        try:
            holder = psycopg.connect(self._conninfo(), autocommit=False, application_name=SNAPSHOT_APPLICATION)
        except psycopg.Error:
            return _Snapshot(None, None)
        watchdog = threading.Timer(self.opts.timeout, _shut, (holder,))
        watchdog.daemon = True
        watchdog.start()
        try:
            holder.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            name = holder.execute("SELECT pg_export_snapshot()").fetchone()[0]
        except psycopg.Error:
            holder.close()
            return _Snapshot(None, None)
        finally:
            watchdog.cancel()
        return _Snapshot(holder, str(name))

    def _begin_read(self, conn: Any) -> None:
        """Start the reading connection's transaction in the export's snapshot (`_take_snapshot`)."""
        psycopg = _psycopg()
        snapshot = self._snapshot
        assert snapshot is not None
        if snapshot.begun and snapshot.name is None:
            raise self._snapshot_lost()
        conn.rollback()  # a catalog query may have begun a transaction: the isolation level comes first
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        if snapshot.name is not None:
            try:
                conn.execute(self._sql().SQL("SET TRANSACTION SNAPSHOT {}").format(self._sql().Literal(snapshot.name)))
            except (psycopg.errors.UndefinedObject, psycopg.errors.ObjectNotInPrerequisiteState):
                # The holding transaction ended, and its snapshot with it ("snapshot ... does not exist"), or
                # its server process is ending ("could not import the requested snapshot").
                conn.rollback()
                raise self._snapshot_lost() from None
        # Along the page key's index, whatever the statistics say: a table just loaded, with no
        # statistics yet, made the planner sort all the rows after the key for every page instead.
        conn.execute("SET LOCAL enable_sort = off")
        snapshot.begun, self._reading = True, True

    def _snapshot_lost(self) -> StoreError:
        self._release_snapshot()
        return StoreError(
            f"pgvector {self._where()}: the connection was lost in the middle of the export, and with it the "
            "snapshot of the table the export reads: the rest, read now, could give a set of rows the table "
            "never held. Run it again: an export to a file starts over (the file is written whole); a migrate "
            "resumes after its last loaded chunk, reading the rest as of then (--restart reads all again)"
        )

    def _release_snapshot(self) -> None:
        """End the export's snapshot: the reading transaction, and the connection that held it."""
        snapshot, self._snapshot = self._snapshot, None
        if self._reading and self._conn is not None:
            self._reading = False
            try:
                self._conn.rollback()
            except Exception:  # noqa: BLE001 - a broken connection: the next call reconnects
                self._discard_connection()
        if snapshot is not None and snapshot.holder is not None:
            try:
                snapshot.holder.close()
            except Exception:  # noqa: BLE001 - closing a lost connection may fail; it is gone either way
                pass

    # -- load ---------------------------------------------------------------------------

    def ensure_target(self, dims: int | None, metric: str | None) -> None:
        def run() -> None:
            self._ensure_extension()
            mapping = self._resolve(create=True)
            if mapping is None:
                opts = self.opts
                v2 = opts.layout == "langchain-v2"
                mapped = any((opts.id_column, opts.vector_column, opts.text_column, opts.metadata_column))
                if not v2 and (opts.layout != "native" or mapped):
                    raise UsageError(
                        f"pgvector table {'.'.join(self._table_name())} not found "
                        "(vex creates native and langchain-v2 tables only)"
                    )
                if dims is None:
                    raise UsageError("pgvector needs a dimension to create a table: pass --dims N")
                if v2:
                    self._create_langchain_v2(dims)
                else:
                    self._create_native(dims)
                self._map = None
                mapping = self._resolve(create=True)
                assert mapping is not None
            else:
                existing = self._dims(mapping)
                if dims is not None and existing is not None and existing != dims:
                    raise UsageError(
                        f"pgvector table {'.'.join(mapping.table)} holds {existing}-d vectors, the data has {dims}-d: "
                        "use another --table"
                    )
            self.conn().commit()

        self._run("preparing the table", run)

    def _ensure_extension(self) -> None:
        if self._extension_present():
            return
        psycopg = _psycopg()
        try:
            self.conn().execute("CREATE EXTENSION IF NOT EXISTS vector")
            self.conn().commit()
        except psycopg.errors.InsufficientPrivilege:
            self.conn().rollback()
            raise UsageError(
                f"pgvector {self._where()}: the vector extension is not installed and this role may not create it; "
                "ask an administrator to run CREATE EXTENSION vector in this database"
            ) from None

    def _create_native(self, dims: int) -> None:
        sql = self._sql()
        table = _split_name(self.opts.table)
        self.conn().execute(
            sql.SQL(
                "CREATE TABLE {t} (id text PRIMARY KEY, embedding vector({d}) NOT NULL, text text, metadata jsonb, "
                "namespace text, model text, created_at timestamptz, score double precision, source_store text, "
                "extra jsonb)"
            ).format(t=sql.Identifier(*table), d=sql.Literal(dims))
        )
        self._created = True

    def _create_langchain_v2(self, dims: int) -> None:
        """The table `PGEngine.init_vectorstore_table(name, dims)` makes (langchain-postgres v2 engine.py)."""
        sql = self._sql()
        names = _langchain_v2_columns(self.opts)
        self.conn().execute(
            sql.SQL(
                "CREATE TABLE {t} ({i} UUID PRIMARY KEY, {c} TEXT NOT NULL, {e} vector({d}) NOT NULL, {m} JSON)"
            ).format(
                t=sql.Identifier(*_split_name(self.opts.table)), i=sql.Identifier(names["id"]),
                c=sql.Identifier(names["text"]), e=sql.Identifier(names["vector"]), d=sql.Literal(dims),
                m=sql.Identifier(names["metadata"]),
            )
        )  # fmt: skip
        self._created = True

    def load(self, batch: pa.RecordBatch) -> LoadResult:
        if batch.num_rows == 0:
            return LoadResult(written=0)
        mapping = self._map
        if mapping is None:
            raise StoreError("pgvector: load called before the table was prepared")
        unique = last_of_each_id(batch)
        failed: list[tuple[str, str]] = []
        nul = _nul_fields(unique)
        if nul.any():
            # Each alone: PostgreSQL refuses a NUL in text and jsonb (not in json), and would fail the batch.
            failed += self._load_one_by_one(unique.filter(pa.array(nul)), mapping)
            unique = unique.filter(pa.array(~nul))
        try:
            if unique.num_rows:
                failed += self._run("loading a batch", lambda: self._load_transaction(unique, mapping))
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
                failed += self._run("loading a record", lambda row=row: self._load_transaction(row, mapping))
            except TransientError:
                raise
            except StoreError as exc:
                failed.append((str(row.column("id")[0].as_py()), _with_nul_reason(row, str(exc))))
        return failed

    def _copy_fields(
        self, batch: pa.RecordBatch, mapping: TableMap
    ) -> tuple[list[tuple[str, pgcopy.Field]], tuple[str, ...]]:
        """(column, encoded values) in COPY order, built a column at a time, and the metadata keys of this
        batch that go to columns of their own (carried in the staging field `_COLUMNS_FIELD`)."""
        count = batch.num_rows
        metadata = batch.column("metadata")
        to_columns: tuple[str, ...] = ()
        if mapping.column_keys:
            metadata, by_column, to_columns = _split_column_keys(metadata, mapping.column_keys)
        fields = [
            (mapping.id, self._encode_id(mapping, batch.column("id"))),
            (mapping.vector, pgcopy.vector(vector_matrix(batch), half=self._vector_type == "halfvec")),
        ]
        if mapping.text:
            texts = batch.column("text")
            if mapping.text in mapping.not_null:  # LlamaIndex's and LangChain's PGVectorStore's text columns
                texts = texts.fill_null("")
            fields.append((mapping.text, self._encode_text(mapping, mapping.text, texts)))
        if mapping.metadata:
            if not mapping.native_extras:
                metadata = self._metadata_with_reserved(batch, mapping, metadata)
            fields.append((mapping.metadata, self._encode_json(mapping, mapping.metadata, metadata.fill_null("{}"))))
        if mapping.namespace:
            fields.append((mapping.namespace, self._encode_text(mapping, mapping.namespace, batch.column("namespace"))))
        if mapping.native_extras:
            fields += [
                ("model", pgcopy.text(batch.column("model"))),
                ("created_at", pgcopy.timestamptz(batch.column("created_at"))),
                ("score", pgcopy.float8(batch.column("score"))),
                ("source_store", pgcopy.text(batch.column("source_store"))),
                ("extra", pgcopy.jsonb(batch.column("extra"))),
            ]
        if mapping.scope_column:
            fields.append((mapping.scope_column, pgcopy.uuid_constant(mapping.scope_value, count)))
        if mapping.row_key and mapping.fills_row_key:
            fields.append((mapping.row_key, _row_keys(mapping, batch.column("id"))))
        if mapping.column_keys:
            fields.append((_COLUMNS_FIELD, pgcopy.jsonb(by_column)))
        return fields, to_columns

    @staticmethod
    def _encode_text(mapping: TableMap, column: str, values: pa.Array) -> pgcopy.Field:
        kind = mapping.types.get(column, "text")
        if not kind.startswith(_TEXT_TYPES):
            raise UsageError(
                f"pgvector column {column} is {kind}: vex writes ids to text or uuid columns, text and namespaces "
                "to text columns"
            )
        return pgcopy.text(values)

    def _encode_id(self, mapping: TableMap, ids: pa.Array) -> pgcopy.Field:
        """Ids as text; in a uuid key column a UUID as itself and any other id as its UUIDv5; in an integer
        key column a whole number as itself (any other id cannot be stored). Where the key spells an id
        differently, the original is kept in the metadata under `_vex`, so there must be a metadata column."""
        width = mapping.integer_keys
        if not mapping.uuid_keys and width is None:
            return self._encode_text(mapping, mapping.id, ids)
        record_ids = ids.to_pylist()
        if mapping.metadata is None:
            for record_id in record_ids:
                if mapping.keeps_original(record_id):
                    raise UsageError(
                        f"pgvector table {'.'.join(mapping.table)} keys rows by the {mapping.types[mapping.id]} "
                        f"column {mapping.id} and has no metadata column to keep other ids in: id '{record_id}' "
                        "would not come back as it is (name one with --metadata-column)"
                    )
        if width is not None:
            return pgcopy.integers([_integer_key(record_id, width) for record_id in record_ids], width)
        return pgcopy.uuids([uuid_for(record_id) for record_id in record_ids])

    @staticmethod
    def _encode_json(mapping: TableMap, column: str, values: pa.Array) -> pgcopy.Field:
        kind = mapping.types.get(column, "jsonb")
        if kind == "jsonb":
            return pgcopy.jsonb(values)
        if kind == "json":
            return pgcopy.text(values)  # binary `json` is the text itself
        raise UsageError(f"pgvector column {column} is {kind}: vex writes metadata to json or jsonb columns")

    def _metadata_with_reserved(self, batch: pa.RecordBatch, mapping: TableMap, metadata: pa.Array) -> pa.Array:
        """Metadata with the fields this layout has no column for under `_vex` (a step per record, by need),
        and the user's own keys that look like vex's (`_vex...`) escaped, so that export gives them back
        instead of taking them for its own (`vmig.metadata.escape_reserved`)."""
        names = ("id", "namespace", "model", "created_at", "score", "source_store", "extra")
        columns = {name: batch.column(name).to_pylist() for name in names}
        escape = md.may_need_escape(metadata)
        merged: list[str] = []
        for i, text in enumerate(metadata.to_pylist()):
            record_id = columns["id"][i]
            created = columns["created_at"][i]
            source = columns["source_store"][i]
            extra = columns["extra"][i]
            reserved = {
                key: value
                for key, value in (
                    ("id", record_id if mapping.keeps_original(record_id) else None),
                    ("namespace", None if mapping.namespace else columns["namespace"][i]),
                    ("model", columns["model"][i]),
                    ("created_at", None if created is None else _micros(created)),
                    ("score", columns["score"][i]),
                    ("source_store", None if source in (None, self.name) else source),
                    ("extra", orjson.loads(extra) if extra else None),
                )
                if value is not None
            }
            if not reserved and not escape[i]:
                merged.append(text or "{}")
                continue
            meta = md.escape_reserved(md.loads(text))
            if reserved:
                meta[RESERVED_KEY] = reserved
            merged.append(orjson.dumps(meta).decode())
        return pa.array(merged, type=pa.string())

    def _load_transaction(self, batch: pa.RecordBatch, mapping: TableMap) -> list[tuple[str, str]]:
        """One batch, one transaction: straight into the table while no id is already there, else upserted.

        Returns the records left out because their key holds another record (see `_same_record`)."""
        psycopg = _psycopg()
        sql = self._sql()
        conn = self.conn()
        fields, to_columns = self._copy_fields(batch, mapping)
        stream = pgcopy.copy_stream([values for _, values in fields], batch.num_rows)
        names = sql.SQL(", ").join(sql.Identifier(c) for c, _ in fields)
        real = [c for c, _ in fields if c != _COLUMNS_FIELD]
        target = sql.Identifier(*mapping.table)
        if self._direct and mapping.key_unique and not mapping.column_keys and not mapping.search_columns:
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
                self._direct = False
        if not self._staging:
            staged = sql.SQL(", ").join(sql.Identifier(c) for c in real)
            if mapping.column_keys:
                staged += sql.SQL(", NULL::jsonb AS {}").format(sql.Identifier(_COLUMNS_FIELD))
            conn.execute(
                sql.SQL(
                    "CREATE TEMP TABLE IF NOT EXISTS pg_temp.vex_stage AS SELECT {cols} FROM {t} WITH NO DATA"
                ).format(cols=staged, t=target)
            )
            conn.commit()
            self._staging = True
        conn.execute("TRUNCATE pg_temp.vex_stage")
        with (
            conn.cursor() as cur,
            cur.copy(sql.SQL("COPY pg_temp.vex_stage ({}) FROM STDIN (FORMAT BINARY)").format(names)) as copy,
        ):
            copy.write(stream)
        insert = _insert_from_staging(mapping, real, to_columns, self.opts.tsv_config)
        failed: list[tuple[str, str]] = []
        if mapping.key_unique:
            updates = sql.SQL(", ").join(
                sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c))
                for c in (*real, *to_columns, *mapping.search_columns)
                if c != mapping.id
            )
            upsert = insert + sql.SQL(" ON CONFLICT ({id}) DO UPDATE SET {u}").format(
                id=sql.Identifier(mapping.id), u=updates)  # fmt: skip
            same = _same_record(mapping)
            if same is None:
                conn.execute(upsert)
            else:
                written = conn.execute(upsert + sql.SQL(" WHERE {} RETURNING {}").format(
                    same, _original_id(mapping, target))).fetchall()  # fmt: skip
                if len(written) < batch.num_rows:
                    failed = self._taken_keys(conn, batch, mapping, {row[0] for row in written})
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

        Where the key is derived from the id (`_same_record`), the records whose key rows of another record
        hold are taken out of the batch first, and returned as failed (`_held_keys`)."""
        scope, params = _and_in_scope(mapping)
        if mapping.row_key is None:
            failed = self._held_keys(conn, mapping)
            conn.execute(_delete_staged(mapping) + scope, params)
            conn.execute(insert)
            return failed
        sql = self._sql()
        key, record_id = sql.Identifier(mapping.row_key), _record_id(mapping)
        if not self._rows_listed:
            conn.execute("DROP TABLE IF EXISTS pg_temp.vex_rows")
            conn.execute(
                sql.SQL(
                    "CREATE TEMP TABLE pg_temp.vex_rows AS SELECT {r} AS id, {k} AS key FROM {t} WHERE TRUE{s}"
                ).format(r=record_id, k=key, t=sql.Identifier(*mapping.table), s=scope),
                params,
            )
            conn.execute("CREATE INDEX ON pg_temp.vex_rows (id)")
            self._rows_listed = True
        failed = self._held_keys(conn, mapping)
        # One index probe per staged row (OFFSET 0 keeps the planner from turning it into a join that reads
        # the whole list), and the keys found are looked up in the key's index.
        listed = sql.SQL(
            " AND {k} = ANY(ARRAY(SELECT r.key FROM pg_temp.vex_stage s,"
            " LATERAL (SELECT key FROM pg_temp.vex_rows WHERE id = s.{id}::text OFFSET 0) r))"
        )
        conn.execute(_delete_staged(mapping) + listed.format(k=key, id=sql.Identifier(mapping.id)) + scope, params)
        conn.execute(
            sql.SQL(
                "WITH written AS ({insert} RETURNING {r}, {k}) INSERT INTO pg_temp.vex_rows SELECT * FROM written"
            ).format(insert=insert, r=record_id, k=key)
        )
        return failed

    def _held_keys(self, conn: Any, mapping: TableMap) -> list[tuple[str, str]]:
        """For a key derived from the id in a table without a unique key (`7` and `007` share the integer
        key 7): the staged records whose key a row of another record holds, then those whose key a record
        before them in the batch has, each failed naming that record and taken out of the staging table.
        The delete-then-insert replaced the other record; a unique key's upsert fails them the same way
        (`_same_record`). Nothing where keys are the ids themselves."""
        if _same_record(mapping) is None:
            return []
        sql = self._sql()
        mine, theirs = _original_id(mapping, sql.SQL("s")), _original_id(mapping, sql.SQL("t"))
        ident, target = sql.Identifier(mapping.id), sql.Identifier(*mapping.table)
        if mapping.row_key is None:
            rows = sql.SQL("JOIN {t} t ON t.{id} = s.{id}").format(t=target, id=ident)
        else:  # the rows `_replace_staged` listed for the staged ids, as it finds them to delete
            rows = sql.SQL(
                "CROSS JOIN LATERAL (SELECT key FROM pg_temp.vex_rows WHERE id = s.{id}::text OFFSET 0) r "
                "JOIN {t} t ON t.{k} = r.key AND {listed} = s.{id}::text"
            ).format(id=ident, t=target, k=sql.Identifier(mapping.row_key), listed=_record_id(mapping, sql.SQL("t")))
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
                failed += [
                    (record_id, _TAKEN_KEY.format(record_id, *held_by)) for record_id, held_by in holders.items()
                ]
        return failed

    def _taken_keys(
        self, conn: Any, batch: pa.RecordBatch, mapping: TableMap, written: set[str]
    ) -> list[tuple[str, str]]:
        """The records of `batch` not written (`written`: the ids that were), each with the id of the
        record that holds its key."""
        sql = self._sql()
        left = [record_id for record_id in batch.column("id").to_pylist() if record_id not in written]
        keys = [mapping.stored_key(record_id) for record_id in left]
        target = sql.Identifier(*mapping.table)
        query = sql.SQL("SELECT {id}, {original} FROM {t} WHERE {id} = ANY(%s)").format(
            id=sql.Identifier(mapping.id), original=_original_id(mapping, target), t=target
        )
        holders = dict(conn.execute(query, [keys]).fetchall())
        return [
            (record_id, _TAKEN_KEY.format(record_id, key, holders.get(key, "?")))
            for record_id, key in zip(left, keys, strict=True)
        ]

    def finish(self) -> None:
        if self._conn is None or self._map is None or not self._created or self.opts.index == "none":
            return
        sql = self._sql()
        mapping = self._map
        opclass = f"{self._vector_type}_{_OPCLASS[self.opts.metric]}"
        method = sql.SQL(self.opts.index)
        with_clause = sql.SQL("")
        if self.opts.index == "ivfflat":
            count = (
                self.conn()
                .execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*mapping.table)))
                .fetchone()[0]
            )
            with_clause = sql.SQL(" WITH (lists = {})").format(sql.Literal(max(1, int(count) // 1000)))
        index_name = sql.Identifier(f"{mapping.table[-1]}_{mapping.vector}_idx")

        def build() -> None:
            self.conn().execute(
                sql.SQL("CREATE INDEX IF NOT EXISTS {n} ON {t} USING {m} ({v} {o})").format(
                    n=index_name, t=sql.Identifier(*mapping.table), m=method, v=sql.Identifier(mapping.vector),
                    o=sql.SQL(opclass),
                )
                + with_clause
            )  # fmt: skip
            self.conn().commit()

        self._run("building the vector index", build)

    def abort(self) -> None:
        self._rollback()

    def close(self) -> None:
        self._release_snapshot()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
            self._staging = False
            self._rows_listed = False


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


_DERIVED_TYPES = ("vector", "halfvec", "sparsevec", "tsvector")
_COLUMNS_FIELD = "vex_columns"
"""The staging table's field for the metadata keys that go to columns of their own."""


def _split_column_keys(metadata: pa.Array, keys: tuple[str, ...]) -> tuple[pa.Array, pa.Array, tuple[str, ...]]:
    """Metadata without the keys that have columns, those keys as JSON objects, and the keys the batch uses."""
    wanted = set(keys)
    rest: list[str | None] = []
    moved: list[str] = []
    used: set[str] = set()
    for text in metadata.to_pylist():
        meta = md.loads(text)
        own = {key: meta.pop(key) for key in wanted.intersection(meta)}
        used.update(own)
        rest.append(md.dumps(meta) if own else text)
        moved.append(md.dumps(own) or "{}")
    return pa.array(rest, pa.string()), pa.array(moved, pa.string()), tuple(k for k in keys if k in used)


def _column_keys(mapping: TableMap, catalog: _Catalog) -> tuple[str, ...]:
    """The columns of a mapped table that carry metadata: all but the mapped ones, those named like a record
    field (`created_at`, `model`, ...), those the server fills, and other vectors or search vectors
    (derived from the record, not part of it)."""
    mapped = {mapping.id, mapping.vector, mapping.text, mapping.metadata, mapping.namespace, mapping.scope_column}
    return tuple(
        name
        for name, kind in catalog.types.items()
        if name not in mapped
        and name not in _NATIVE_EXTRAS  # record fields, not metadata: under `_vex` in a mapped table
        and name not in catalog.automatic
        and not kind.startswith(_DERIVED_TYPES)
    )


def _columns_as_json(names: tuple[str, ...]) -> Any:
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


def _insert_from_staging(mapping: TableMap, staged: list[str], to_columns: tuple[str, ...], tsv_config: str) -> Any:
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
            t=target, f=sql.Identifier(_COLUMNS_FIELD)
        )
    return sql.SQL("INSERT INTO {t} ({cols}) SELECT {vals} FROM {src}").format(
        t=target,
        cols=sql.SQL(", ").join(sql.Identifier(c) for c in (*staged, *to_columns, *mapping.search_columns)),
        vals=sql.SQL(", ").join(values),
        src=source,
    )


def _row_keys(mapping: TableMap, ids: pa.Array) -> pgcopy.Field:
    """The row key column of a batch (see `TableMap.row_key`), derived from each id in the batch's scope."""
    if not isinstance(mapping.scope_value, uuid.UUID):
        raise StoreError(f"pgvector table {'.'.join(mapping.table)}: rows keyed by uuid need a collection")
    return pgcopy.uuids([_row_uuid(mapping.scope_value, record_id) for record_id in ids.to_pylist()])


_TEXT_FIELDS = ("id", "text", "namespace", "model", "source_store")
_JSON_FIELDS = ("metadata", "extra")


def _nul_fields(batch: pa.RecordBatch) -> np.ndarray:
    """Records with a NUL character in a text field, or a `\\u0000` in a JSON one (a cheap test in C, a few
    false hits possible: a JSON text holding a backslash before `u0000`). PostgreSQL cannot hold it in text
    or jsonb: such a record fails the whole COPY, and is loaded alone (`PgvectorConnector.load`)."""
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


def _record_id(mapping: TableMap, row: Any = None) -> Any:
    """SQL for the record id of a row (columns qualified by `row`, where given), as text: its id column, or
    where that may be NULL (the legacy LangChain table's `custom_id`) its row key in its stead. Export gives
    rows this id, and a re-import of an id replaces the rows of that id, so a row comes back where it was."""
    from psycopg import sql

    def column(name: str) -> Any:
        return sql.Identifier(name) if row is None else sql.SQL("{}.{}").format(row, sql.Identifier(name))

    if mapping.row_key is None:
        return sql.SQL("{}::text").format(column(mapping.id))
    return sql.SQL("COALESCE({}::text, {}::text)").format(column(mapping.id), column(mapping.row_key))


_TAKEN_KEY = "id '{}' is stored under key {}, which holds another record, id '{}': it is not replaced"


def _and_in_scope(mapping: TableMap) -> tuple[Any, list[Any]]:
    """` AND <scope column> = %s` and its parameter for a table whose rows belong to collections (LangChain's),
    else nothing: a statement on such a table touches one collection only."""
    from psycopg import sql

    if mapping.scope_column is None:
        return sql.SQL(""), []
    return sql.SQL(" AND {} = %s").format(sql.Identifier(mapping.scope_column)), [mapping.scope_value]


def _delete_staged(mapping: TableMap) -> Any:
    """The `DELETE` that clears the way for a batch where ids have no unique constraint: the rows of the
    staged ids, matched as `_record_id` reads them. The caller adds the collection's scope (another
    collection may hold the same ids); the insert that follows is in the same transaction."""
    from psycopg import sql

    staged: Any = sql.Identifier(mapping.id)
    if mapping.row_key is None:
        match = staged
    else:  # the record id is text, whatever the id column's type
        match, staged = _record_id(mapping), sql.SQL("{}::text").format(staged)
    return sql.SQL("DELETE FROM {t} WHERE {m} IN (SELECT {id} FROM pg_temp.vex_stage)").format(
        t=sql.Identifier(*mapping.table), m=match, id=staged
    )


def _original_id(mapping: TableMap, row: Any) -> Any:
    """SQL for the record id a row of `row` (a table name or EXCLUDED) stands for: its `_vex` id, else its key."""
    from psycopg import sql

    assert mapping.metadata is not None
    return sql.SQL("COALESCE({r}.{m} -> {k} ->> 'id', {r}.{id}::text)").format(
        r=row, m=sql.Identifier(mapping.metadata), k=sql.Literal(RESERVED_KEY), id=sql.Identifier(mapping.id)
    )


def _same_record(mapping: TableMap) -> Any:
    """For a key derived from the id (uuid and integer key columns), the upsert's condition that the row it
    would replace stands for the same record: `7` and `007` share the key 7, and one must not silently
    replace the other. None where keys are the ids themselves, or no JSON metadata column keeps originals."""
    from psycopg import sql

    derived = mapping.uuid_keys or mapping.integer_keys is not None
    if not derived or mapping.metadata is None or mapping.types.get(mapping.metadata) not in ("json", "jsonb"):
        return None
    table = sql.Identifier(*mapping.table)
    return sql.SQL("{} = {}").format(_original_id(mapping, table), _original_id(mapping, sql.SQL("EXCLUDED")))


SNAPSHOT_APPLICATION = "vex export snapshot"
"""`application_name` of the connection that holds an export's snapshot (as `pg_stat_activity` shows it)."""


@dataclass
class _Snapshot:
    """An export's snapshot: the connection whose open transaction exported it, and its id; both None where
    only the reading transaction holds it (see `PgvectorConnector._export_snapshot`)."""

    holder: Any
    name: str | None
    begun: bool = False
    """A reading transaction has taken it: a later one must import it to read on."""


def _shut(conn: Any) -> None:
    """Shut a connection's socket, so that a call waiting on a stalled server fails (and is retried)."""
    if conn is None or conn.closed:
        return
    try:
        socket.socket(fileno=os.dup(conn.pgconn.socket)).shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _qualified(table: tuple[str, ...]) -> str:
    from psycopg import sql

    return ".".join(sql.Identifier(part).as_string(None) for part in table)


def _copy_messages(pgconn: Any, copy: Any) -> list[bytes]:
    """Every message of a COPY TO: one per row (the first carries the header), then the trailer.

    psycopg's `Copy.read` waits for each message through its generator machinery, a few
    microseconds a row; libpq usually holds many rows already, so after each wait the
    rows it has buffered are taken straight from it (`get_copy_data` without blocking),
    up to the trailer. psycopg's next read then sees the end of the COPY as usual.
    """
    messages: list[bytes] = []
    for message in copy:
        messages.append(bytes(message))
        while not pgcopy.is_last_message(messages[-1]):
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
    psycopg = _psycopg()
    failed = None
    while (result := pgconn.get_result()) is not None:
        if result.status == psycopg.pq.ExecStatus.FATAL_ERROR and failed is None:
            failed = result
    if failed is not None:
        return psycopg.errors.error_from_result(failed, encoding="utf-8")
    return psycopg.OperationalError(f"COPY ended before its last row: {pgconn.get_error_message()}")


@dataclass(frozen=True)
class _PageLayout:
    """What decoding a page needs to know of the table."""

    native_extras: bool
    column_keys: bool
    """A sixth field holds the other columns as a JSON object: metadata keys, over the metadata's own."""
    namespace_column: bool
    half: bool
    store: str
    page_key: bool = False
    """A last field holds the key pages are read by (`TableMap.row_key`), for the cursor only."""

    @property
    def fields(self) -> int:
        """Fields a row of the page has."""
        count = 10 if self.native_extras else 6 if self.column_keys else 5
        return count + 1 if self.page_key else count


def _rows_to_parse(metas: pa.Array, reserved: bool) -> tuple[pa.Array, list[int]]:
    """Metadata texts (null as `{}`) and the rows that need parsing: those that are not a JSON object, and
    in a layout that keeps vex's fields under `_vex` (`reserved`) those that may hold a key starting with
    `_vex` (vex's own, or a user's escaped one). The rest go through as the server wrote them, no step per
    row: in a table vex did not write, or wrote with a column for every field, that is every row."""
    texts = metas.fill_null("{}")
    maybe = pc.invert(pc.starts_with(texts, "{"))
    if reserved:
        maybe = pc.or_(maybe, pa.array(md.may_need_escape(texts)))
    return texts, pc.indices_nonzero(maybe).to_pylist()


def _decode_page(messages: list[bytes], layout: _PageLayout) -> tuple[pa.RecordBatch, list[Reject]]:
    """Binary COPY rows to a canonical batch, less the rows whose JSON holds an integer beyond 64 bits: they
    are rejects naming the number (jsonb keeps every digit; read into vex, the number would change)."""
    fields = pgcopy.split_rows(messages, layout.fields)
    batch = _page_batch(fields, layout)
    json_fields = (3, 9) if layout.native_extras else (3, 5) if layout.column_keys else (3,)
    wide: dict[int, int] = {}
    for column in json_fields:
        wide.update(md.wide_integer_rows(pgcopy.read_text(fields, column)))
    if not wide:
        return batch, []
    keep = np.ones(batch.num_rows, dtype=bool)
    keep[list(wide)] = False
    ids = batch.column("id").to_pylist()
    rejects = [
        Reject(None, f"pgvector row {ids[row]}: {md.WideIntegerError(number)}", b"", id=ids[row])
        for row, number in sorted(wide.items())
    ]
    return batch.filter(pa.array(keep)), rejects


def _page_batch(fields: pgcopy.Fields, layout: _PageLayout) -> pa.RecordBatch:
    """Binary COPY rows (id, vector, text, metadata, namespace[, the native extras][, the page key, left out])
    to a canonical batch: columns cut out with numpy, metadata a step per row only where `_vex` may be in it."""
    vectors = pgcopy.read_vectors(fields, 1, half=layout.half)
    # A native table has a column for every field: its metadata is the user's keys only, `_vex...` ones too.
    texts, parse = _rows_to_parse(pgcopy.read_text(fields, 3), reserved=not layout.native_extras)
    if layout.native_extras:
        metadata: pa.Array | list[str | None] = texts
        if parse:
            metadata = texts.to_pylist()
            for i in parse:
                metadata[i] = md.dumps(md.loads(metadata[i])) or "{}"
        extras = pgcopy.read_text(fields, 9).to_pylist()
        sources = pgcopy.read_text(fields, 8).fill_null(layout.store)
        return build_batch(
            pgcopy.read_text(fields, 0),
            vectors=vectors,
            text=pgcopy.read_text(fields, 2),
            model=pgcopy.read_text(fields, 5),
            namespace=pgcopy.read_text(fields, 4),
            metadata=metadata,
            created_at=pgcopy.read_timestamptz(fields, 6),
            score=pgcopy.read_float8(fields, 7),
            source_store=pc.if_else(pc.equal(sources, ""), layout.store, sources),
            extra=[md.dumps(value) if text and (value := orjson.loads(text)) else None for text in extras],
        )
    rows = len(texts)
    ids: pa.Array | list[str] = pgcopy.read_text(fields, 0)
    namespaces = pgcopy.read_text(fields, 4).to_pylist()
    meta_texts: list[str | None] = texts.to_pylist()
    models: list[str | None] = [None] * rows
    created: list[Any] = [None] * rows
    scores: list[float | None] = [None] * rows
    sources_list: list[str | None] = [layout.store] * rows
    extra_texts: list[str | None] = [None] * rows
    if not layout.namespace_column:
        namespaces = [None] * rows
    from_columns = pgcopy.read_text(fields, 5).to_pylist() if layout.column_keys else None
    for i in range(rows) if from_columns is not None else parse:
        meta = md.loads(meta_texts[i])
        reserved = meta.pop(RESERVED_KEY, None)
        meta = md.unescape_reserved(meta)
        if not isinstance(reserved, dict):  # vex keeps an object there: anything else is a key of the user's
            if reserved is not None:
                meta[RESERVED_KEY] = reserved
            reserved = {}
        if from_columns is not None:  # a NULL column is a key the record does not have
            meta.update((key, value) for key, value in md.loads(from_columns[i]).items() if value is not None)
        meta_texts[i] = md.dumps(meta)
        if isinstance(reserved.get("id"), str):  # a key vex mapped to a UUID: the record's own id
            ids = ids if isinstance(ids, list) else ids.to_pylist()
            ids[i] = reserved["id"]
        if not layout.namespace_column:
            namespaces[i] = reserved.get("namespace")
        models[i] = reserved.get("model")
        created[i] = reserved.get("created_at")
        scores[i] = reserved.get("score")
        sources_list[i] = reserved.get("source_store", layout.store)
        extra = reserved.get("extra")
        extra_texts[i] = md.dumps(extra) if extra else None
    return build_batch(
        ids, vectors=vectors, text=pgcopy.read_text(fields, 2), model=models,
        namespace=namespaces, metadata=meta_texts, created_at=created, score=scores, source_store=sources_list,
        extra=extra_texts,
    )  # fmt: skip


def _micros(value: Any) -> int:
    from vmig.timefmt import to_micros

    micros = to_micros(value)
    assert micros is not None
    return micros
