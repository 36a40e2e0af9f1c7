"""LanceDB, a local directory (`--path DIR`) or a URI (`--uri`), both directions.

A record is one row of a Lance table whose columns are the record's own: `id` (string), `vector` (a
fixed-size list of float32 of the table's dimension), `text`, `model`, `namespace`, `metadata` (the
record's metadata as JSON text, exactly as it travels in vex: nested objects and lists come back as they
went in, and rows need no common set of keys), `created_at` (timestamp, µs, UTC), `score`, `source_store`,
`extra` and `sparse_vector` (a struct of uint32 indices and float32 values, kept, not searchable). A table
vex creates says so in its schema metadata (`vex.format`), with its metric (`vex.metric`: a Lance table
has none of its own; searches and indexes name one) and an id of its own (`vex.created`), which tells a
table dropped and made again apart from the one a checkpoint was made against.

Import writes Arrow batches straight into the table: a table this run created (or found empty) takes
plain appends while every id is new to the run, which is idempotent on resume because a resumed run finds
the table holding rows and upserts from then on; anything else is `merge_insert` on `id` (update the
matching row, insert the others). Export streams the rows of one table version as Arrow batches; its cursor
is that version and the rows read, so a resumed export reads the same version on, whatever was written
since (while LanceDB keeps that version: `optimize` removes old ones after a week by default).

A table another tool made exports too: `id` and `vector` are needed, the other columns above are taken
where present, a `metadata` struct (as LangChain writes it) becomes the record's metadata, and any other
column is kept in the metadata under its own name.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import simdjson
from pydantic import SecretStr, model_validator

from connectors.base import Capabilities, Connector, Cursor, LoadResult, Location, Page, StoreInfo, StoreOptions
from connectors.clients import ClientLibrary, is_network_error, network_reason
from connectors.newids import NewIds
from vmig import metadata as md
from vmig.batch import last_of_each_id
from vmig.errors import StoreError, TransientError, UsageError
from vmig.rejects import Reject
from vmig.schema import RECORD_SCHEMA, SPARSE_TYPE

_DISTANCES = {"cosine": "cosine", "dot": "dot", "euclid": "l2"}
"""vex's metric names to LanceDB's distance types."""
_FORMAT_KEY, _METRIC_KEY, _CREATED_KEY = b"vex.format", b"vex.metric", b"vex.created"
_FORMAT = b"1"
DELETE_PER_CALL = 1000
"""Ids one `table.delete` predicate names (each call is a commit of the table: fewer, larger ones)."""

_STORED: tuple[tuple[str, pa.DataType], ...] = (
    ("text", pa.string()),
    ("model", pa.string()),
    ("namespace", pa.string()),
    ("metadata", pa.string()),
    ("created_at", pa.timestamp("us", tz="UTC")),
    ("score", pa.float64()),
    ("source_store", pa.string()),
    ("extra", pa.string()),
    ("sparse_vector", SPARSE_TYPE),
)
"""The record's columns besides `id` and `vector`, in table order, as a table vex makes holds them."""
STORED_COLUMNS = ("id", "vector", *(name for name, _ in _STORED))


def table_schema(dims: int, metric: str) -> pa.Schema:
    """The schema of a table vex creates: the record's columns with the vector fixed to `dims`."""
    fields = [
        pa.field("id", pa.string(), nullable=False),
        pa.field("vector", pa.list_(pa.float32(), dims)),
        *(pa.field(name, kind) for name, kind in _STORED),
    ]
    meta = {_FORMAT_KEY: _FORMAT, _METRIC_KEY: metric.encode(), _CREATED_KEY: uuid.uuid4().hex.encode()}
    return pa.schema(fields, metadata=meta)


class LanceDBOptions(StoreOptions):
    path: Path | None = None
    """LanceDB directory on this machine (one folder of `<table>.lance` tables); created on import."""
    uri: str | None = None
    """A LanceDB URI instead of --path: `s3://bucket/dir`, `gs://...`, `db://name` (LanceDB Cloud)."""
    api_key: SecretStr | None = None
    """API key of LanceDB Cloud (`db://` URIs)."""
    region: str | None = None
    """Region of LanceDB Cloud (`db://` URIs)."""
    table: str = "memories"
    """Table to read or write; created on import when missing."""
    metric: Literal["cosine", "dot", "euclid"] | None = None
    """Distance of a new table (default: the source's, else cosine), kept in its schema metadata and used for
    --index; checked against an existing table's."""
    index: Literal["none", "ivf_pq", "ivf_hnsw_sq"] = "none"
    """Vector index to build after an import: ivf_pq (compact, fast to build), ivf_hnsw_sq (better recall,
    larger); none leaves searches to a flat scan."""
    index_min_rows: int = 10_000
    """--index is skipped (and the run says so) for a table of fewer rows: a flat scan is as fast there, and
    IVF needs rows to train on."""

    @model_validator(mode="after")
    def _one_location(self) -> LanceDBOptions:
        if (self.path is None) == (self.uri is None):
            raise ValueError("give --path DIR (a local LanceDB directory) or --uri (s3://..., db://...)")
        if self.index_min_rows < 256:
            raise ValueError("--index-min-rows must be at least 256 (an IVF index trains on that many rows)")
        return self


class LanceDBConnector(Connector[LanceDBOptions]):
    name: ClassVar[str] = "lancedb"
    Options: ClassVar[type[StoreOptions]] = LanceDBOptions
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_batch=100_000,
        metrics=tuple(_DISTANCES),
        embedded=True,
        sparse_vectors=True,
        sparse_column=True,
        deletes=True,
    )
    client_library: ClassVar[ClientLibrary | None] = ClientLibrary("lancedb", "lancedb", "lancedb")

    def __init__(self, options: LanceDBOptions) -> None:
        super().__init__(options)
        self._db: Any = None
        self._table: Any = None
        self._appending = False
        """Loads may append: the table was created (or found empty) by this run and every id so far was new."""
        self._seen: NewIds | None = None
        self._dims: int | None = None
        self._notices: list[str] = []

    def label(self) -> str:
        if self.opts.path is not None:
            where = self.opts.path.name
        else:  # the URI's last folder, never its query (where a signed URL would keep a credential)
            where = urlsplit(self.opts.uri or "").path.rstrip("/").rsplit("/", 1)[-1] or "uri"
        return f"lancedb:{where}/{self.opts.table}"

    @property
    def _where(self) -> str:
        if self.opts.path is not None:
            return str(self.opts.path)
        parts = urlsplit(self.opts.uri or "")
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"

    def locations(self) -> list[Location]:
        if self.opts.path is None:
            return []
        return [Location(self.opts.path, "the lancedb directory", self.opts.table)]

    def notices(self) -> list[str]:
        return list(self._notices)

    # -- client and errors ------------------------------------------------------

    def _check_directory(self, writing: bool) -> None:
        """A --path must be a LanceDB directory: a folder whose entries are `<table>.lance` tables (or, for
        an import, a folder that is empty or not there yet). Anything else is refused before it is touched:
        LanceDB would make its tables among another program's files."""
        path = self.opts.path
        if path is None:
            return
        if not path.exists():
            if writing:
                return
            raise UsageError(f"lancedb: no LanceDB directory at {path} (check --path)")
        if not path.is_dir():
            raise UsageError(f"lancedb: {path} is a file, not a LanceDB directory (--path names the folder)")
        entries = [entry for entry in os.listdir(path) if not entry.startswith(".")]
        if entries and not any(entry.endswith(".lance") for entry in entries):
            shown = ", ".join(sorted(entries)[:3])
            raise UsageError(
                f"lancedb: {path} is not a LanceDB directory: it holds other files ({shown}) and no "
                "<table>.lance folder; give a new or empty folder, or one LanceDB made"
            )

    def db(self, writing: bool = False) -> Any:
        if self._db is not None:
            return self._db
        self._check_directory(writing)
        module = self.client_package()
        kwargs: dict[str, Any] = {}
        if self.opts.api_key is not None:
            kwargs["api_key"] = self.opts.api_key.get_secret_value()
        if self.opts.region is not None:
            kwargs["region"] = self.opts.region
        target = str(self.opts.path) if self.opts.path is not None else str(self.opts.uri)
        self._db = self.guarded("opening the database", module.connect, target, **kwargs)
        return self._db

    def classify(self, exc: Exception, doing: str) -> Exception:
        """LanceDB raises ValueError for bad input and missing tables, OSError for I/O, and its remote client
        HTTP errors: network trouble and commit conflicts are retried, the rest is permanent."""
        detail = f"lancedb {self._where}: {doing} failed"
        text = str(exc)
        lowered = text.lower()
        if "was not found" in lowered or ("not found" in lowered and "table" in lowered):
            return UsageError(f"lancedb {self._where}: table '{self.opts.table}' not found (check --table)")
        if is_network_error(exc) or "retryable" in lowered or "commit conflict" in lowered:
            return TransientError(f"{detail} ({network_reason(exc)})")
        if any(code in text for code in ("429", "502", "503", "504")) and "http" in lowered:
            return TransientError(f"{detail}: the server is busy ({text[:200]})")
        if isinstance(exc, PermissionError):
            return UsageError(f"{detail}: permission denied ({exc.filename or self._where})")
        return StoreError(f"{detail}: {text.splitlines()[0][:300] if text else type(exc).__name__}")

    def _names(self) -> list[str]:
        db = self.db()
        listed = self.guarded("listing tables", db.list_tables)
        names = getattr(listed, "tables", listed)
        page_token = getattr(listed, "page_token", None)
        names = list(names)
        for _ in range(100_000):  # pages of a remote listing; a local one has one page
            if not page_token:
                break
            listed = self.guarded("listing tables", db.list_tables, page_token=page_token)
            names.extend(listed.tables)
            page_token = listed.page_token
        return names

    def _open(self, must_exist: bool = True) -> Any:
        """The table, or None (must_exist False) when there is none."""
        if self._table is not None:
            return self._table
        if self.opts.path is not None and not self.opts.path.exists():
            if must_exist:
                raise UsageError(f"lancedb: no LanceDB directory at {self.opts.path} (check --path)")
            return None
        if self.opts.table not in self._names():
            if must_exist:
                raise UsageError(
                    f"lancedb {self._where}: table '{self.opts.table}' not found (check --table; "
                    f"it holds {', '.join(sorted(self._names())[:20]) or 'no table'})"
                )
            return None
        self._table = self.guarded("opening the table", self.db().open_table, self.opts.table)
        return self._table

    # -- describe ---------------------------------------------------------------

    def describe(self) -> StoreInfo:
        table = self._open(must_exist=False)
        if table is None:
            return StoreInfo(exists=False)
        schema = self.guarded("reading the schema", lambda: table.schema)
        count = int(self.guarded("counting rows", table.count_rows))
        by_namespace = None
        if "namespace" in schema.names:
            by_namespace = self._namespace_counts(table)
        return StoreInfo(
            exists=True,
            dims=_dims_of(schema),
            metric=self._metric_of(table, schema),
            count=count,
            count_by_namespace=by_namespace,
            layout=None if (schema.metadata or {}).get(_FORMAT_KEY) else "a table vex did not create",
        )

    def _namespace_counts(self, table: Any) -> dict[str, int]:
        """Rows by namespace, from the one column (no namespace counts as "")."""
        counts: dict[str, int] = {}
        with self.translated("counting namespaces"):
            for batch in table.search().select(["namespace"]).to_batches(65_536):
                column = batch.column("namespace").cast(pa.string()).fill_null("")
                for entry in pc.value_counts(column).to_pylist():
                    counts[entry["values"]] = counts.get(entry["values"], 0) + int(entry["counts"])
        return counts

    def _metric_of(self, table: Any, schema: pa.Schema) -> str | None:
        """The table's metric: what vex recorded when it made it, else the vector index's, else unknown."""
        recorded = (schema.metadata or {}).get(_METRIC_KEY)
        if recorded:
            return recorded.decode()
        try:
            indices = table.list_indices()
        except Exception:  # noqa: BLE001 - no index information is no metric, not a failure
            return None
        names = {v: k for k, v in _DISTANCES.items()}
        for index in indices:
            if "vector" in getattr(index, "columns", []):
                details = getattr(index, "index_details", None) or {}
                metric = str(details.get("metric_type", "")).lower()
                return names.get(metric)
        return None

    def incarnation(self) -> str | None:
        table = self._open(must_exist=False)
        if table is None:
            return None
        created = (self.guarded("reading the schema", lambda: table.schema).metadata or {}).get(_CREATED_KEY)
        return created.decode() if created else None

    # -- extract ----------------------------------------------------------------

    def extract(self, namespace: str | None, cursor: Cursor | None) -> Iterator[Page]:
        table = self._open()
        version, offset = self._pinned(table, cursor)
        schema = self.guarded("reading the schema", lambda: table.schema)
        reader = _RowReader(schema, self.name)
        query = table.search().select(reader.columns)
        if namespace is not None:
            if "namespace" not in schema.names:
                raise UsageError(f"{self.label()} has no namespace column: export it without --namespace")
            query = query.where(f"namespace = {_sql_text(namespace)}")
        if offset:
            query = query.offset(offset)
        with self.translated("reading rows"):
            batches = query.to_batches(self.page_size)
            for raw in batches:
                if not raw.num_rows:
                    continue
                offset += raw.num_rows
                rejects: list[Reject] = []
                if raw.column("id").null_count:  # only a table another tool made: vex's id column is not null
                    rows = offset - raw.num_rows
                    missing = np.flatnonzero(raw.column("id").is_null().to_numpy(zero_copy_only=False))
                    rejects = [Reject(None, f"{self.label()}: row {rows + int(i)} has no id", b"") for i in missing]
                    raw = raw.filter(raw.column("id").is_valid())
                yield Page(reader.records(raw), {"version": version, "offset": offset}, rejects)

    def _pinned(self, table: Any, cursor: Cursor | None) -> tuple[int, int]:
        """The version the export reads and the rows already read: a resumed export goes on in the version
        it started in (row order changes when rows are updated), while LanceDB keeps it."""
        current = int(self.guarded("reading the table version", lambda: table.version))
        if cursor is None:
            # Held at this version, so a write landing before the scan starts is not read, as the cursor says.
            self.guarded("holding the table version", table.checkout, current)
            return current, 0
        if not isinstance(cursor, dict) or not {"version", "offset"} <= set(cursor):
            raise UsageError(f"{self.label()}: the resume point {cursor!r} is not one a LanceDB export wrote")
        version, offset = int(cursor["version"]), int(cursor["offset"])
        if version != current:
            try:
                table.checkout(version)
            except Exception as exc:  # noqa: BLE001 - a version gone is one clear message
                raise UsageError(
                    f"{self.label()}: the interrupted export read version {version}, which LanceDB no longer "
                    f"keeps ({str(exc)[:120]}); start the export again with --restart"
                ) from None
        return version, offset

    # -- load -------------------------------------------------------------------

    def before_write(self) -> None:
        self._check_directory(writing=True)

    def ensure_target(self, dims: int | None, metric: str | None) -> None:
        self._check_directory(writing=True)
        wanted = self.opts.metric or metric
        table = self._open(must_exist=False)
        if table is not None:
            schema = self.guarded("reading the schema", lambda: table.schema)
            _refuse_schema(schema, f"lancedb table '{self.opts.table}'")
            info = StoreInfo(exists=True, dims=_dims_of(schema), metric=self._metric_of(table, schema))
            self.refuse_mismatch(info, dims, wanted, f"lancedb table '{self.opts.table}'", "--table")
            self._start_appending(int(self.guarded("counting rows", table.count_rows)) == 0)
            return
        if dims is None:
            raise UsageError("lancedb needs a dimension to create a table: pass --dims N")
        schema = table_schema(dims, wanted or "cosine")
        self._table = self.guarded("creating the table", self.db(writing=True).create_table, self.opts.table,
                                   schema=schema)  # fmt: skip
        self._start_appending(True)

    def _start_appending(self, empty: bool) -> None:
        self._appending = empty
        if empty and self._seen is None:
            self._seen = NewIds()

    def load(self, batch: pa.RecordBatch) -> LoadResult:
        if batch.num_rows == 0:
            return LoadResult(written=0)
        table = self._open()
        if self._dims is None:
            self._dims = _dims_of(self.guarded("reading the schema", lambda: table.schema))
            if self._dims is None:
                raise UsageError(f"{self.label()}: its vector column is not a fixed-size list")
        unique = pc.count_distinct(batch.column("id")).as_py() == batch.num_rows
        if self._appending and unique and self._seen is not None:
            unique = self._seen.add(batch.column("id"))
        # LanceDB refuses a merge that names one id twice; the batch's last record of an id is the one kept.
        rows = _table_rows(batch if unique else last_of_each_id(batch), self._dims)
        if self._appending and unique:
            try:
                self.guarded("appending rows", table.add, rows)
            except BaseException:
                self._appending = False  # an append that may have landed is never repeated: upserts from now on
                raise
        else:
            self._appending = False
            merge = table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all()
            self.guarded("upserting rows", merge.execute, rows)
        return LoadResult(written=batch.num_rows)

    def delete(self, namespace: str | None, ids: list[str]) -> None:
        """Rows by id (the table keeps one row per id), `DELETE_PER_CALL` ids a `table.delete` predicate."""
        table = self._open(must_exist=False)
        if table is None:
            return
        for start in range(0, len(ids), DELETE_PER_CALL):
            listed = ", ".join(_sql_text(record_id) for record_id in ids[start : start + DELETE_PER_CALL])
            self.guarded("deleting rows", table.delete, f"id IN ({listed})")

    def finish(self) -> None:
        if self.opts.index == "none" or self._table is None:
            return None
        table = self._table
        count = int(self.guarded("counting rows", table.count_rows))
        if count < self.opts.index_min_rows:
            self._notices.append(
                f"no {self.opts.index} index built on {self.label()}: it holds {count} rows, fewer than "
                f"--index-min-rows {self.opts.index_min_rows} (a flat scan is as fast there)"
            )
            return None
        from lancedb.index import HnswSq, IvfPq

        schema = self.guarded("reading the schema", lambda: table.schema)
        distance: Any = _DISTANCES.get(self._metric_of(table, schema) or "cosine", "cosine")
        config = IvfPq(distance_type=distance) if self.opts.index == "ivf_pq" else HnswSq(distance_type=distance)
        self.guarded("building the vector index", table.create_index, "vector", config=config, replace=True)
        return None

    def close(self) -> None:
        self._seen = None
        self._table = None
        self._dims = None
        self._db = None


def _sql_text(value: str) -> str:
    """A string literal of LanceDB's SQL predicates (DataFusion): quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def _dims_of(schema: pa.Schema) -> int | None:
    if "vector" not in schema.names:
        return None
    kind = schema.field("vector").type
    return int(kind.list_size) if pa.types.is_fixed_size_list(kind) else None


def _refuse_schema(schema: pa.Schema, what: str) -> None:
    """An existing table takes an import only when it has every column a record fills, of a type the record's
    value goes into, and no other column that must be filled; anything else is refused naming the columns,
    before a row is written. Other, nullable columns (the user's own) are left as they are by an update and
    null in a new row."""
    missing = [name for name in STORED_COLUMNS if name not in schema.names]
    if missing:
        raise UsageError(
            f"{what} lacks the columns {', '.join(missing)} that vex writes: import into a new --table "
            f"(vex creates it with {', '.join(STORED_COLUMNS)})"
        )
    vector = schema.field("vector").type
    if not (pa.types.is_fixed_size_list(vector) and pa.types.is_float32(vector.value_type)):
        raise UsageError(f"{what}: its vector column is {vector}, not a fixed-size list of float32")
    wanted = {"id": pa.string(), **dict(_STORED)}
    wrong = [f"{name} ({schema.field(name).type}, not {kind})" for name, kind in wanted.items()
             if not schema.field(name).type.equals(kind)]  # fmt: skip
    if wrong:
        raise UsageError(f"{what} has columns of other types: {', '.join(wrong)}; import into a new --table")
    required = [field.name for field in schema if field.name not in STORED_COLUMNS and not field.nullable]
    if required:
        raise UsageError(
            f"{what} has columns vex does not fill that may not be null: {', '.join(required)}; a new record "
            "could not be inserted (make them nullable, or import into a new --table)"
        )


def _table_rows(batch: pa.RecordBatch, dims: int) -> pa.Table:
    """A canonical batch as the table's rows: the vector column a fixed-size list over the same float32
    buffer (no copy for a batch that is not a slice), `dims` left out (the column type says it)."""
    vectors = batch.column("vector")
    values = vectors.flatten()
    if vectors.null_count or len(values) != dims * batch.num_rows:
        raise ValueError(f"lancedb rows need a {dims}-d vector each (the pipeline filters the others)")
    columns = [batch.column("id"), pa.FixedSizeListArray.from_arrays(values, dims)]
    columns += [batch.column(name) for name, _ in _STORED]
    return pa.Table.from_arrays(columns, names=list(STORED_COLUMNS))


class _RowReader:
    """Rows of a table as canonical record batches: column for column for the record's own columns, and a
    slow path per row only for what a table another tool made holds beyond them."""

    def __init__(self, schema: pa.Schema, origin: str) -> None:
        missing = [name for name in ("id", "vector") if name not in schema.names]
        if missing:
            raise UsageError(
                f"lancedb table lacks the column{'s' if len(missing) > 1 else ''} {' and '.join(missing)} "
                "that an export reads the records from"
            )
        vector = schema.field("vector").type
        if not (pa.types.is_fixed_size_list(vector) or pa.types.is_list(vector) or pa.types.is_large_list(vector)):
            raise UsageError(f"lancedb table: its vector column is {vector}, not a list of floats")
        self.origin = origin
        self.known = [name for name, _ in _STORED if name in schema.names and _fits(name, schema.field(name).type)]
        self.others = [name for name in schema.names if name not in ("id", "vector", *self.known)]
        self.struct_metadata = "metadata" in self.known and pa.types.is_struct(schema.field("metadata").type)
        self.columns = ["id", "vector", *self.known, *self.others]

    def records(self, raw: pa.RecordBatch) -> pa.RecordBatch:
        rows = raw.num_rows
        vectors = raw.column("vector")
        values = vectors.flatten().cast(pa.float32())
        if pa.types.is_fixed_size_list(vectors.type):
            size = vectors.type.list_size
            lengths = np.where(vectors.is_valid().to_numpy(zero_copy_only=False), size, 0).astype(np.int32)
        else:
            lengths = pc.list_value_length(vectors).fill_null(0).to_numpy().astype(np.int32)
        offsets = np.zeros(rows + 1, dtype=np.int32)
        np.cumsum(lengths, out=offsets[1:])
        mask = None if not vectors.null_count else pc.invert(vectors.is_valid())
        vector_col = pa.ListArray.from_arrays(pa.array(offsets), values, mask=mask)
        dims = pc.list_value_length(vector_col).cast(pa.int32())

        def column(name: str, kind: pa.DataType) -> pa.Array:
            if name not in self.known or (name == "metadata" and self.struct_metadata):
                return pa.nulls(rows, type=kind)
            return raw.column(name).cast(kind)

        metadata = column("metadata", pa.string())
        if self.others or self.struct_metadata:
            metadata = pa.array(self._metadata_rows(raw), type=pa.string())
        elif "metadata" not in self.known:
            metadata = pa.array(["{}"] * rows, type=pa.string())
        metadata, extra = _checked_objects(metadata, column("extra", pa.string()))
        source = column("source_store", pa.string()).fill_null(self.origin)
        columns = [
            raw.column("id").cast(pa.string()),
            vector_col,
            column("text", pa.string()),
            column("model", pa.string()),
            dims,
            column("namespace", pa.string()),
            metadata,
            _timestamps(raw.column("created_at"))
            if "created_at" in self.known
            else pa.nulls(rows, RECORD_SCHEMA.field("created_at").type),
            column("score", pa.float64()),
            source,
            extra,
            column("sparse_vector", SPARSE_TYPE),
        ]
        return pa.RecordBatch.from_arrays(columns, schema=RECORD_SCHEMA)

    def _metadata_rows(self, raw: pa.RecordBatch) -> list[str]:
        """Per row: the metadata (JSON text or a struct) with every other column added under its own name."""
        rows = raw.num_rows
        base: list[Any] = raw.column("metadata").to_pylist() if "metadata" in raw.schema.names else [None] * rows
        others = {name: raw.column(name).to_pylist() for name in self.others}
        texts: list[str] = []
        for index in range(rows):
            value = base[index]
            meta: dict[str, Any]
            if isinstance(value, str):
                try:
                    parsed = orjson.loads(value)
                except orjson.JSONDecodeError:
                    parsed = value
                meta = dict(parsed) if isinstance(parsed, dict) else {"metadata": parsed}
            elif isinstance(value, dict):
                meta = {key: item for key, item in value.items()}
            else:
                meta = {}
            for name, column in others.items():
                key = name
                while key in meta:
                    key = "column:" + key
                meta[key] = _json_value(column[index])
            texts.append(md.dumps(meta) or "{}")
        return texts


def _braced(texts: pa.Array) -> bool:
    """Every text starts with `{` and ends with `}` (no space around: vex writes none, and a text with some
    only takes the slow path), read from the Arrow buffers without a Python call per text."""
    texts = texts.cast(pa.string())
    buffers = texts.buffers()
    if buffers[2] is None:
        return False
    offsets = np.frombuffer(buffers[1], dtype=np.int32)[texts.offset : texts.offset + len(texts) + 1]
    data = np.frombuffer(buffers[2], dtype=np.uint8)
    starts, ends = offsets[:-1], offsets[1:]
    if bool((ends <= starts).any()):
        return False
    return bool((data[starts] == ord("{")).all() and (data[ends - 1] == ord("}")).all())


def _all_objects(texts: pa.Array) -> bool:
    """Whether every text (none null) is one JSON object, checked for the whole column at once: each starts
    with `{` and ends with `}`, and all of them joined into one JSON array parse, with one element a text.
    Under a millisecond for 10,000 rows, where orjson on each would take 18."""
    if not len(texts):
        return True
    if not _braced(texts):
        return False
    try:
        # A parser of its own: one parser's documents are overwritten by its next parse.
        parsed = simdjson.Parser().parse(("[" + ",".join(texts.to_pylist()) + "]").encode())
    except ValueError:
        return False
    return isinstance(parsed, simdjson.Array) and len(parsed) == len(texts)


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _parsed_or_text(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _checked_objects(metadata: pa.Array, extra: pa.Array) -> tuple[pa.Array, pa.Array]:
    """The metadata and extra texts as JSON objects, as every step after the read expects them. A table vex
    wrote holds nothing else, but anyone can write to it: a page whose texts fail the check is read text by
    text, and a text that is no JSON object is kept, not dropped: a metadata text as the value of the
    metadata key `metadata`, an extra text under the metadata key `extra` (`column:extra` where taken)."""
    metadata = metadata.fill_null("{}")
    given = extra.drop_null()
    if _all_objects(metadata) and _all_objects(given):
        return metadata, extra
    metas: list[str] = metadata.to_pylist()
    extras: list[str | None] = extra.to_pylist()
    for row, text in enumerate(metas):
        if _json_object(text) is None:
            metas[row] = md.dumps({"metadata": _parsed_or_text(text)}) or "{}"
    for row, kept in enumerate(extras):
        if kept is not None and _json_object(kept) is None:
            meta = _json_object(metas[row]) or {}
            key = "extra"
            while key in meta:
                key = "column:" + key
            meta[key] = _parsed_or_text(kept)
            metas[row], extras[row] = md.dumps(meta) or "{}", None
    return pa.array(metas, type=pa.string()), pa.array(extras, type=pa.string())


def _fits(name: str, kind: pa.DataType) -> bool:
    """Whether a column of a record's name holds what the record keeps there (a table another tool made may
    use the name for something else: such a column travels in the metadata like any other, not lost)."""
    if name == "created_at":
        return bool(pa.types.is_timestamp(kind))
    if name == "score":
        return bool(pa.types.is_floating(kind) or pa.types.is_integer(kind))
    if name == "sparse_vector":
        return bool(kind.equals(SPARSE_TYPE))
    if name == "metadata" and pa.types.is_struct(kind):
        return True
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _json_value(value: Any) -> Any:
    """A cell as a JSON value: bytes as hex text, times as ISO text, the rest as it is."""
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    return value


def _timestamps(column: pa.Array) -> pa.Array:
    """created_at as µs UTC from a timestamp of any unit (one without a zone taken as UTC)."""
    kind = column.type
    if kind.tz is None:
        column = column.cast(pa.int64()).cast(pa.timestamp(kind.unit, tz="UTC"))
    return column.cast(pa.timestamp("us", tz="UTC"), safe=False)  # ns lose their last digits: the format keeps µs
