"""VEKTOR SQLite memory files: reads the three layouts, writes layout 1.

Layouts are detected with `PRAGMA table_info`, never configured:
1. `memories(id, content, embedding BLOB, metadata, created_at, namespace)`;
2. the same without `embedding`, vectors in a sqlite-vec `memories_vec` vec0
   table joined by rowid (needs a sqlite3 that loads extensions: pysqlite3);
3. `memories(id, agent_id, content, summary, importance, tags, namespace,
   pinned, created_at, updated_at, vector, edge_type, potential)` with
   `graph_edges`; each memory's outgoing edges travel in its metadata.

Layout 1 has no column for model, score, origin or unknown format keys, so a
file we write keeps them under the reserved metadata key `_vex` and we take
them out again on export: a trip through VEKTOR loses nothing. A user's own
keys that start with `_vex` are stored escaped (`vmig.metadata`), so none is
ever taken for ours.

An export reads one committed state of the file: one read transaction spans
all its pages. In rollback-journal mode that transaction's SHARED lock holds
other writers' commits back until the export ends; in WAL mode they go on.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import orjson
import pyarrow as pa

from connectors.base import (
    Capabilities,
    Connector,
    Cursor,
    LoadResult,
    Location,
    Page,
    Partition,
    StoreInfo,
    StoreOptions,
)
from vmig import metadata as md
from vmig import reserved
from vmig.batch import RecordColumns, vector_rows
from vmig.errors import IntegrityError, StoreError, TransientError, UsageError
from vmig.rejects import Reject
from vmig.timefmt import TimestampError, format_micros, to_micros

DEFAULT_DB = "slipstream-memory.db"
_RESERVED_FIELDS = ("model", "score", "source_store", "extra")
"""What layout 1 has no column for: kept in the metadata under `_vex` (`vmig.reserved`)."""
DIMS_SAMPLE = 2000
"""Vectors looked at to tell a file's dimension (the most common among them)."""
LAYOUT1_DDL = (
    "CREATE TABLE IF NOT EXISTS memories (id TEXT PRIMARY KEY, content TEXT, embedding BLOB, "
    "metadata TEXT, created_at TEXT, namespace TEXT)"
)
_UPSERT = (
    "INSERT INTO memories (id, content, embedding, metadata, created_at, namespace) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT(id) DO UPDATE SET content = excluded.content, embedding = excluded.embedding, "
    "metadata = excluded.metadata, created_at = excluded.created_at, namespace = excluded.namespace"
)
_LAYOUT3_META = ("agent_id", "summary", "importance", "tags", "pinned", "updated_at", "edge_type", "potential")


LAYOUTS = {
    1: "memories(id, content, embedding BLOB, metadata, created_at, namespace)",
    2: "memories with vectors in the sqlite-vec table memories_vec",
    3: "memories(id, agent_id, content, vector BLOB, ...) with graph_edges",
}
"""The VEKTOR layouts as `vex inspect` names them (DESIGN.md section 5)."""


class VektorOptions(StoreOptions):
    db: Path = Path(DEFAULT_DB)
    """The VEKTOR SQLite database file (layouts 1-3 are read, layout 1 is written)."""


def _sqlite_module() -> Any:
    """pysqlite3 when installed: it can load sqlite-vec; the stdlib one cannot here."""
    try:
        import pysqlite3.dbapi2 as module  # type: ignore[import-not-found]
    except ImportError:
        return sqlite3
    return module


_SQLITE: Any = _sqlite_module()
DB_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, _SQLITE.Error)


def _busy_timeout() -> float:
    """Seconds to wait for another process's lock before the attempt counts as failed."""
    return float(os.environ.get("VEX_SQLITE_TIMEOUT", "5"))


class VektorConnector(Connector[VektorOptions]):
    name: ClassVar[str] = "vektor"
    Options: ClassVar[type[StoreOptions]] = VektorOptions
    capabilities: ClassVar[Capabilities] = Capabilities(
        deletes=True,
        max_batch=5000,
        fixed_dims=False,
        needs_vector=False,
        metrics=("cosine", "dot", "euclid"),
        embedded=True,
        sparse_vectors=True,
    )

    def __init__(self, options: VektorOptions) -> None:
        super().__init__(options)
        self.db = options.db
        self._conn: Any = None
        self._layout: int | None = None
        self._writable = False
        self._written = False
        self._changed_since: tuple[str, Any] | None = None

    def label(self) -> str:
        return f"vektor:{self.db.name}"

    def classify(self, exc: Exception, doing: str) -> Exception:
        message = str(exc)
        if isinstance(exc, DB_ERRORS):
            if "locked" in message or "busy" in message:
                return TransientError(f"vektor {self.db}: database is locked by another process ({message})")
            if "not a database" in message or "malformed" in message:
                return IntegrityError(f"vektor {self.db}: not a SQLite database or damaged ({message})")
            if "unable to open" in message:
                return UsageError(
                    f"vektor {self.db}: cannot open the database ({message}): check the path and its permissions"
                )
        return StoreError(f"vektor {self.db}: {doing} failed: {message}")

    def incarnation(self) -> str | None:
        """The file's device and inode: a database deleted and created again is (usually) another file."""
        try:
            stat = self.db.stat()
        except OSError:
            return None
        return f"{stat.st_dev}:{stat.st_ino}"

    def locations(self) -> list[Location]:
        return [Location(self.db, "the vektor database")]

    # -- connection and layout ------------------------------------------------

    def _connect(self, create: bool) -> Any:
        if self._conn is not None and (self._writable or not create):
            return self._conn
        if self._conn is not None:  # opened read-only to describe it; a load needs to write
            self.close()
        if not create and not self.db.exists():
            hint = "the default: pass --db FILE" if self.db == Path(DEFAULT_DB) else "check the path"
            raise UsageError(f"vektor database not found: {self.db} ({hint})")
        if self.db.is_dir():
            raise UsageError(f"vektor --db must be a SQLite file, got a directory: {self.db}")
        module = _SQLITE
        with self.translated("opening the database"):
            if create:
                self.db.parent.mkdir(parents=True, exist_ok=True)
                conn = module.connect(str(self.db), timeout=_busy_timeout())
            else:
                conn = module.connect(f"file:{self.db}?mode=ro", uri=True, timeout=_busy_timeout())
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        self._conn = conn
        self._writable = create
        return conn

    def _tables(self) -> set[str]:
        rows = self._conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')").fetchall()
        return {row[0] for row in rows}

    def _columns(self, table: str) -> list[str]:
        return [row[1] for row in self._conn.execute(f"PRAGMA table_info({table})").fetchall()]

    def layout(self) -> int:
        """Which VEKTOR layout the file has (1, 2 or 3); UsageError when none."""
        if self._layout is not None:
            return self._layout
        if self._conn is None:
            self._connect(create=False)
        tables = self._tables()
        if "memories" not in tables:
            raise UsageError(f"vektor {self.db}: no 'memories' table; is this a VEKTOR memory database?")
        columns = set(self._columns("memories"))
        if {"vector", "agent_id", "content"} <= columns:
            self._layout = 3
        elif {"id", "content", "embedding"} <= columns:
            self._layout = 1
        elif "memories_vec" in tables and {"id", "content"} <= columns:
            self._layout = 2
            self._load_sqlite_vec()
        else:
            raise UsageError(f"vektor {self.db}: unrecognised memories layout (columns: {', '.join(sorted(columns))})")
        return self._layout

    def _load_sqlite_vec(self) -> None:
        try:
            import sqlite_vec  # type: ignore[import-untyped]

            self._conn.enable_load_extension(True)
            sqlite_vec.load(self._conn)
        except (ImportError, AttributeError) as exc:
            raise UsageError(
                f"vektor {self.db}: vectors are in a sqlite-vec table; install pysqlite3-binary and sqlite-vec ({exc})"
            ) from None

    # -- describe ---------------------------------------------------------------

    def describe(self) -> StoreInfo:
        if not self.db.exists():
            return StoreInfo(exists=False)
        conn = self._connect(create=False)
        with self.translated("describing the database"):
            if "memories" not in self._tables():
                return StoreInfo(exists=False)
            layout = self.layout()
            per_ns = dict(conn.execute("SELECT coalesce(namespace, ''), count(*) FROM memories GROUP BY 1").fetchall())
            # A bounded sample: grouping every BLOB makes SQLite sort them all in memory.
            sample = f"LIMIT {DIMS_SAMPLE}) GROUP BY 1"
            dims_sql = {
                1: f"SELECT d, count(*) FROM (SELECT length(embedding) / 4 AS d FROM memories "
                f"WHERE embedding IS NOT NULL {sample}",
                2: f"SELECT d, count(*) FROM (SELECT length(embedding) / 4 AS d FROM memories_vec {sample}",
                3: f"SELECT d, count(*) FROM (SELECT length(vector) / 4 AS d FROM memories WHERE vector IS NOT NULL "
                f"{sample}",
            }[layout]
            dims_rows = conn.execute(dims_sql).fetchall()
        dims = max(dims_rows, key=lambda row: row[1])[0] if dims_rows else None
        return StoreInfo(
            exists=True,
            dims=dims,
            count=sum(per_ns.values()),
            count_by_namespace={k or "": v for k, v in per_ns.items()},
            layout=f"VEKTOR layout {layout}: {LAYOUTS[layout]}",
        )

    # -- extract ----------------------------------------------------------------

    def _select(self, layout: int) -> str:
        if layout == 1:
            return "SELECT rowid, id, content, embedding, metadata, created_at, namespace FROM memories m"
        if layout == 2:
            wanted = [c for c in ("metadata", "created_at", "namespace") if c in self._columns("memories")]
            extra = "".join(f", m.{c}" for c in wanted)
            missing = "".join(", NULL" for c in ("metadata", "created_at", "namespace") if c not in wanted)
            return (
                f"SELECT m.rowid, m.id, m.content, v.embedding{extra}{missing} "
                "FROM memories m LEFT JOIN memories_vec v ON v.rowid = m.rowid"
            )
        fields = ", ".join(f"m.{c}" for c in _LAYOUT3_META)
        return f"SELECT m.rowid, m.id, m.content, m.vector, m.namespace, m.created_at, {fields} FROM memories m"

    def extract(self, namespace: str | None, cursor: Cursor | None) -> Iterator[Page]:
        """Every page, with its `graph_edges` or sqlite-vec rows, from one read transaction: the export is one
        committed state of the file, whatever other connections commit meanwhile."""
        self._connect(create=False)
        self._begin_snapshot()
        try:
            yield from self._pages(namespace, cursor)
        finally:
            self._end_snapshot()

    def _begin_snapshot(self) -> None:
        """Open the read transaction; SQLite takes its snapshot (WAL) or SHARED lock (rollback journal) at the
        first read and keeps it until `_end_snapshot`. Separate statements would each see the latest commit."""
        if self._conn.in_transaction:
            return
        with self.translated("starting a read"):
            self._conn.execute("BEGIN")

    def _end_snapshot(self) -> None:
        """Let go of the snapshot (and, in rollback-journal mode, of the lock that holds writers' commits back)."""
        if self._conn is not None and self._conn.in_transaction:
            with self.translated("ending the read"):
                self._conn.rollback()  # it only read: nothing to commit

    def _pages(self, namespace: str | None, cursor: Cursor | None) -> Iterator[Page]:
        conn = self._conn
        layout = self.layout()
        select = self._select(layout)
        last_rowid = int(cursor or 0)
        size = self.page_size
        while True:
            where = "WHERE m.rowid > ?" + (" AND m.rowid <= ?" if self.stop is not None else "")
            where += " AND m.namespace = ?" if namespace is not None else ""
            params: list[Any] = [last_rowid] + ([int(self.stop)] if self.stop is not None else [])
            params += [namespace] if namespace is not None else []
            if self._changed_since is not None:
                column, since = self._changed_since
                where += f' AND (m."{column}" >= ? OR m."{column}" IS NULL)'
                params.append(since)
            params.append(size)
            with self.translated("reading rows"):
                rows = conn.execute(f"{select} {where} ORDER BY m.rowid LIMIT ?", params).fetchall()
            if not rows:
                return
            last_rowid = rows[-1][0]
            batch, rejects = self._rows_to_batch(rows, layout)
            done = len(rows) < size
            yield Page(batch, None if done else last_rowid, rejects)
            if done:
                return

    def _modification_column(self, column: str) -> str:
        """A column of `memories` named by `--watermark` (layout 3 keeps `updated_at`)."""
        self.layout()  # connects, and refuses a file that is no VEKTOR database
        columns = self._columns("memories")
        if column not in columns:
            raise UsageError(
                f"vektor {self.db}: the memories table has no column '{column}' for --watermark "
                f"(it has: {', '.join(columns)})"
            )
        return column

    def highest(self, column: str) -> Any:
        name = self._modification_column(column)
        with self.translated(f"reading the highest {name}"):
            return self._conn.execute(f'SELECT max("{name}") FROM memories').fetchone()[0]

    def read_changed_since(self, column: str, value: Any) -> None:
        self._changed_since = (self._modification_column(column), value)

    def list_keys(self, namespace: str | None) -> Iterator[list[tuple[str, str]]]:
        self.layout()
        spaced = "namespace" in self._columns("memories")
        ns = "namespace" if spaced else "NULL"
        only = [namespace] if namespace is not None and spaced else []
        where = "WHERE rowid > ?" + (" AND namespace = ?" if only else "")
        last_rowid, size = 0, max(self.page_size, 10_000)
        while True:
            params: list[Any] = [last_rowid, *only, size]
            with self.translated("listing ids"):
                rows = self._conn.execute(
                    f"SELECT rowid, {ns}, id FROM memories {where} ORDER BY rowid LIMIT ?", params
                ).fetchall()
            if not rows:
                return
            yield [("" if space is None else str(space), str(record_id)) for _, space, record_id in rows]
            if len(rows) < size:
                return
            last_rowid = rows[-1][0]

    def _rows_to_batch(self, rows: list[tuple[Any, ...]], layout: int) -> tuple[pa.RecordBatch, list[Reject]]:
        edges = self._edges([row[1] for row in rows]) if layout == 3 else {}
        records = RecordColumns()
        rejects: list[Reject] = []
        kept: dict[str, Any]
        for row in rows:
            record_id = str(row[1])
            try:
                vector = _decode_blob(row[3])
                if layout == 3:
                    meta: dict[str, Any] = dict(zip(_LAYOUT3_META, row[6:], strict=True))
                    if record_id in edges:
                        meta["graph_edges"] = edges[record_id]
                    stamp, ns, kept = to_micros(row[5]), row[4], {}
                else:
                    meta = _parse_metadata(row[4])
                    kept = {}
                    # Only layout 1 is written by vex (layout 2 keys are all the user's), and it writes `_vex...`
                    # keys as they are: a text without `"_vex` holds none, and needs no look at its keys.
                    if layout == 1 and reserved.may_hold_reserved(row[4]):
                        meta, kept = reserved.unpack(meta, _RESERVED_FIELDS)
                    stamp, ns = to_micros(row[5]), row[6]
            except (ValueError, TimestampError, orjson.JSONDecodeError) as exc:
                rejects.append(Reject(None, f"vektor row {row[0]}: {exc}", b"", id=record_id))
                continue
            extra = kept.get("extra")
            records.add(
                record_id,
                vector,
                row[2],
                model=kept.get("model"),
                namespace=ns,
                metadata=md.dumps(meta),
                created_at=stamp,
                score=kept.get("score"),
                source_store=kept.get("source_store", self.name),
                extra=orjson.dumps(extra).decode() if extra else None,
            )
        batch = records.build()
        return batch, rejects

    def _edges(self, ids: list[Any]) -> dict[str, list[dict[str, Any]]]:
        if "graph_edges" not in self._tables():
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._conn.execute(
            "SELECT id, source_id, target_id, edge_type, weight, created_at FROM graph_edges "
            f"WHERE source_id IN ({marks}) ORDER BY rowid",
            ids,
        ).fetchall()
        edges: dict[str, list[dict[str, Any]]] = {}
        for edge_id, source, target, kind, weight, created in rows:
            edges.setdefault(str(source), []).append(
                {"id": edge_id, "target_id": target, "edge_type": kind, "weight": weight, "created_at": created}
            )
        return edges

    # -- load (layout 1) -----------------------------------------------------------

    def ensure_target(self, dims: int | None, metric: str | None) -> None:
        conn = self._connect(create=True)
        with self.translated("preparing the table"):
            if "memories" in self._tables():
                if self.layout() != 1:
                    raise UsageError(
                        f"vektor {self.db} has layout {self.layout()}; vex writes layout 1 only: "
                        "import into a new --db file"
                    )
                self._refuse_converting_ids()
                return
            conn.execute(LAYOUT1_DDL)
            conn.commit()
            self._layout = 1

    def _refuse_converting_ids(self) -> None:
        """SQLite converts what it stores by the column's declared type: in an `id INTEGER` (or REAL,
        NUMERIC) column `007` would be stored as 7, on top of the record `7`, and a text id refused mid-run.
        Layout 1 keeps ids as `TEXT`; a table that converts them is refused before the first write."""
        declared = {row[1]: str(row[2] or "") for row in self._conn.execute("PRAGMA table_info(memories)")}
        kind = declared.get("id", "").upper()
        if any(word in kind for word in ("CHAR", "CLOB", "TEXT")) or kind in ("", "BLOB"):
            return
        raise UsageError(
            f"vektor {self.db}: its memories.id column is declared {kind}, which would turn ids like '007' into "
            "numbers (layout 1 declares it TEXT): import into a new --db file"
        )

    def load(self, batch: pa.RecordBatch) -> LoadResult:
        conn = self._connect(create=True)
        rows = list(
            zip(
                batch.column("id").to_pylist(),
                batch.column("text").to_pylist(),
                [None if v is None else v.astype("<f4").tobytes() for v in vector_rows(batch)],
                _metadata_texts(batch, self.name),
                [
                    None if t is None else format_micros(t)
                    for t in batch.column("created_at").cast(pa.int64()).to_pylist()
                ],
                batch.column("namespace").to_pylist(),
                strict=True,
            )
        )
        with self.translated("writing rows"):
            with conn:
                conn.executemany(_UPSERT, rows)
        return LoadResult(written=len(rows))

    def partitions(self, namespace: str | None, parts: int) -> list[Partition] | None:
        """Rowid ranges of about equal size (rowids are the order every read takes)."""
        conn = self._connect(create=False)
        with self.translated("reading the rowid range"):
            low, high, count = conn.execute("SELECT min(rowid), max(rowid), count(*) FROM memories").fetchone()
        if not count:
            return [Partition(None, None, 0)]
        step = max(1, -(-(high - low + 1) // max(1, parts)))
        bounds = [*range(low - 1, high, step), high]
        return [Partition(start, stop, None) for start, stop in itertools.pairwise(bounds)]

    def takes_concurrent_writers(self) -> bool:
        return True  # SQLite serialises the writers' transactions; each waits its turn (busy timeout)

    def delete(self, namespace: str | None, ids: list[str]) -> None:
        conn = self._connect(create=False)
        with self.translated("deleting rows"):
            with conn:
                conn.executemany("DELETE FROM memories WHERE id = ?", [(record_id,) for record_id in ids])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _decode_blob(blob: bytes | None) -> np.ndarray | None:
    if blob is None:
        return None
    if isinstance(blob, str):
        raise ValueError("vector column holds text, not a float32 BLOB")
    if len(blob) % 4:
        raise ValueError(f"vector BLOB of {len(blob)} bytes is not a whole number of float32 values")
    if not blob:
        return None
    vector = np.frombuffer(blob, dtype="<f4")
    if not np.isfinite(vector).all():
        raise ValueError("vector BLOB holds NaN or infinite values")
    return vector


def _parse_metadata(text: str | None) -> dict[str, Any]:
    if text is None or text == "":
        return {}
    value = orjson.loads(text)
    if not isinstance(value, dict):
        raise ValueError("metadata column is not a JSON object")
    if value and md.may_hold_wide_integer(value):
        number = md.exact_wide_integer(text)
        if number is not None:
            raise md.WideIntegerError(number)  # orjson read it as a float: the record is refused, not changed
    return value


def _metadata_texts(batch: pa.RecordBatch, own_name: str) -> list[str | None]:
    """Metadata JSON for layout 1: the fields the layout has no column for under `_vex` (`vmig.reserved`)."""
    return reserved.pack(batch.column("metadata"), reserved.field_columns(batch, _RESERVED_FIELDS, own_name))
