"""Record-by-record comparison of two stores: prove that nothing was lost.

The target is streamed once into a temporary SQLite index (bounded memory
however large the stores); the source is then streamed and each record looked
up by id. Records the target was never meant to hold (skipped by the rules its
capabilities imply) are accounted for, not reported as missing; values are
compared after the target's documented transformation (`Connector.stored_form`)
and vectors within the tolerance the target declares. A sparse vector is compared as its set of
(index, float32 value) pairs: every store keeps it (`vmig.sparse`), so one that changed or lost it is a
mismatch.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from connectors.base import Connector
from engine.chunks import ChunkReader
from engine.holding import TargetRule, filter_dimensions
from vmig import metadata as md
from vmig.batch import vector_rows

LISTED = 100
"""Ids listed per category in the report; all of them are counted."""
COMPARED_FIELDS = ("vector", "text", "metadata", "namespace", "created_at", "model", "sparse_vector")


@dataclass
class VerifyReport:
    source: str
    target: str
    sample: int | None = None
    source_counts: Counter[str] = field(default_factory=Counter)
    target_counts: Counter[str] = field(default_factory=Counter)
    compared: int = 0
    matched: int = 0
    skipped_by_rule: Counter[str] = field(default_factory=Counter)
    missing: int = 0
    missing_ids: list[str] = field(default_factory=list)
    extra: int = 0
    extra_ids: list[str] = field(default_factory=list)
    mismatched: int = 0
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    mismatched_fields: Counter[str] = field(default_factory=Counter)
    tolerance: float = 0.0
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.mismatched)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "source": self.source,
            "target": self.target,
            "sample": self.sample,
            "counts": {
                "source": dict(sorted(self.source_counts.items())),
                "target": dict(sorted(self.target_counts.items())),
            },
            "compared": self.compared,
            "matched": self.matched,
            "skipped_by_rule": dict(self.skipped_by_rule),
            "missing": self.missing,
            "missing_ids": self.missing_ids,
            "extra": self.extra,
            "extra_ids": self.extra_ids,
            "mismatched": self.mismatched,
            "mismatched_fields": dict(self.mismatched_fields),
            "mismatches": self.mismatches,
            "vector_tolerance": self.tolerance,
            "duration_s": round(self.duration_s, 3),
        }

    def difference(self) -> str:
        """The differences in counts, for a state message or a log line."""
        return f"{self.missing} missing, {self.extra} extra, {self.mismatched} mismatched"

    def first_ids(self, count: int = 10) -> dict[str, list[str]]:
        """The first ids of each kind of difference: where a person starts looking."""
        return {
            "missing": self.missing_ids[:count],
            "extra": self.extra_ids[:count],
            "mismatched": [str(entry.get("id")) for entry in self.mismatches[:count]],
        }

    def rows(self) -> list[tuple[str, str]]:
        rows = [
            ("source records", str(sum(self.source_counts.values()))),
            ("target records", str(sum(self.target_counts.values()))),
            ("compared", str(self.compared) + (f" (sample of {self.sample})" if self.sample else "")),
            ("matched", str(self.matched)),
            ("skipped by rule", str(sum(self.skipped_by_rule.values()))),
            ("missing", str(self.missing)),
            ("extra", str(self.extra)),
            ("mismatched", str(self.mismatched)),
            ("duration", f"{self.duration_s:.1f}s"),
        ]
        return rows


def _pages(store: Connector, namespace: str | None) -> Iterator[pa.RecordBatch]:
    return ChunkReader(store, namespace, None).batches(store.page_size)


def _ns(value: str | None) -> str:
    return "" if value is None else value


def _canonical_metadata(text: str | None) -> str:
    return orjson.dumps(md.loads(text), option=orjson.OPT_SORT_KEYS).decode()


def _sparse_rows(batch: pa.RecordBatch) -> list[tuple[bytes, bytes] | None]:
    """Each row's sparse vector as (uint32 indices, float32 values) bytes in index order, or None."""
    column = batch.column("sparse_vector")
    if column.null_count == len(column):
        return [None] * len(column)
    rows: list[tuple[bytes, bytes] | None] = []
    for entry in column.to_pylist():
        if entry is None:
            rows.append(None)
            continue
        indices = np.asarray(entry["indices"], dtype="<u4")
        order = np.argsort(indices, kind="stable")
        rows.append((indices[order].tobytes(), np.asarray(entry["values"], dtype="<f4")[order].tobytes()))
    return rows


def _index_target(target: Connector, namespace: str | None, db: sqlite3.Connection, report: VerifyReport) -> None:
    db.execute(
        "CREATE TABLE t (id TEXT PRIMARY KEY, namespace TEXT, text TEXT, metadata TEXT, created_at INTEGER, "
        "model TEXT, vector BLOB, sparse_indices BLOB, sparse_values BLOB, seen INTEGER NOT NULL DEFAULT 0)"
    )
    for batch in _pages(target, namespace):
        namespaces = batch.column("namespace").to_pylist()
        report.target_counts.update(_ns(n) for n in namespaces)
        sparse = _sparse_rows(batch)
        rows = zip(
            batch.column("id").to_pylist(),
            namespaces,
            batch.column("text").to_pylist(),
            [_canonical_metadata(m) for m in batch.column("metadata").to_pylist()],
            batch.column("created_at").cast(pa.int64()).to_pylist(),
            batch.column("model").to_pylist(),
            [None if v is None else np.asarray(v, dtype="<f4").tobytes() for v in vector_rows(batch)],
            [None if pair is None else pair[0] for pair in sparse],
            [None if pair is None else pair[1] for pair in sparse],
            strict=True,
        )
        db.executemany("INSERT OR REPLACE INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)", rows)


def _same_values(expected: np.ndarray | None, stored: np.ndarray | None, tolerance: float) -> bool:
    if expected is None or stored is None:
        return expected is None and stored is None
    if expected.shape != stored.shape:
        return False
    if tolerance == 0.0:
        return bool(np.array_equal(expected, stored))
    return bool(np.allclose(expected, stored, atol=tolerance, rtol=0.0))


def _same_sparse(expected: tuple[bytes, bytes] | None, indices: bytes | None, values: bytes | None) -> bool:
    """Sparse vectors are equal as sets of (index, value) pairs, values exactly as float32."""
    if expected is None or indices is None or values is None:
        return expected is None and indices is None
    return expected[0] == indices and np.array_equal(
        np.frombuffer(expected[1], dtype="<f4"), np.frombuffer(values, dtype="<f4")
    )  # array_equal, not bytes: -0.0 == 0.0 as the dense vector compares


def _differences(
    expected: dict[str, Any], actual: tuple[Any, ...], vector: np.ndarray | None, tolerance: float
) -> list[str]:
    _id, namespace, text, metadata, created_at, model, blob, sparse_indices, sparse_values, _seen = actual
    fields = []
    stored = None if blob is None else np.frombuffer(blob, dtype="<f4")
    if not _same_values(vector, stored, tolerance):
        fields.append("vector")
    if expected["text"] != text:
        fields.append("text")
    if _canonical_metadata(expected["metadata"]) != metadata:
        fields.append("metadata")
    if expected["namespace"] != namespace:
        fields.append("namespace")
    if expected["created_at"] != created_at:
        fields.append("created_at")
    if expected["model"] != model:
        fields.append("model")
    if not _same_sparse(expected["sparse_vector"], sparse_indices, sparse_values):
        fields.append("sparse_vector")
    return fields


def _target_rule(target: Connector) -> TargetRule:
    caps = target.capabilities
    dims = target.describe().dims if caps.fixed_dims else None
    return TargetRule(dims, caps.needs_vector)


def verify_stores(
    source: Connector,
    target: Connector,
    namespace: str | None = None,
    sample: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int | None], None] | None = None,
) -> VerifyReport:
    """Compare every record (or a random sample) of `source` with `target`."""
    started = time.perf_counter()
    tolerance = target.capabilities.vector_tolerance
    report = VerifyReport(source=source.label(), target=target.label(), sample=sample, tolerance=tolerance)
    rule = _target_rule(target)
    expected_total = source.describe().count
    probability = 1.0 if not sample or not expected_total else min(1.0, 2.0 * sample / expected_total)
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory(prefix="vex-verify-") as tmp:
        db = sqlite3.connect(Path(tmp) / "target.db")
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        _index_target(target, namespace, db, report)
        read = 0
        for batch in _pages(source, namespace):
            read += batch.num_rows
            report.source_counts.update(_ns(n) for n in batch.column("namespace").to_pylist())
            kept = filter_dimensions(batch, rule)
            report.skipped_by_rule.update(kept.skipped)
            _mark_skipped_present(db, batch, kept.batch)
            _compare(kept.batch, target, db, report, tolerance, probability, rng)
            if progress is not None:
                progress(read, expected_total)
        if not sample:
            _collect_extra(db, report)
        db.close()
    report.duration_s = time.perf_counter() - started
    return report


def _mark_skipped_present(db: sqlite3.Connection, batch: pa.RecordBatch, kept: pa.RecordBatch) -> None:
    """A record skipped by rule that the target holds anyway is not 'extra'."""
    if batch.num_rows == kept.num_rows:
        return
    kept_ids = set(kept.column("id").to_pylist())
    skipped = [(i,) for i in batch.column("id").to_pylist() if i not in kept_ids]
    db.executemany("UPDATE t SET seen = 1 WHERE id = ?", skipped)


def _compare(
    batch: pa.RecordBatch,
    target: Connector,
    db: sqlite3.Connection,
    report: VerifyReport,
    tolerance: float,
    probability: float,
    rng: np.random.Generator,
) -> None:
    if batch.num_rows == 0:
        return
    all_ids = batch.column("id").to_pylist()
    db.executemany("UPDATE t SET seen = 1 WHERE id = ?", [(i,) for i in all_ids])
    if report.sample:
        room = report.sample - report.compared
        if room <= 0:
            return
        picks = (
            np.flatnonzero(rng.random(batch.num_rows) < probability) if probability < 1.0 else np.arange(batch.num_rows)
        )
        batch = batch.take(pa.array(picks[:room]))
        if batch.num_rows == 0:
            return
    expected_batch = target.stored_form(batch)
    ids = expected_batch.column("id").to_pylist()
    columns = {name: expected_batch.column(name).to_pylist() for name in ("text", "metadata", "namespace", "model")}
    created = expected_batch.column("created_at").cast(pa.int64()).to_pylist()
    vectors = vector_rows(expected_batch)
    sparse = _sparse_rows(expected_batch)
    found: dict[str, tuple[Any, ...]] = {}
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        marks = ",".join("?" * len(part))
        for row in db.execute(f"SELECT * FROM t WHERE id IN ({marks})", part):
            found[row[0]] = row
    for index, record_id in enumerate(ids):
        report.compared += 1
        actual = found.get(record_id)
        if actual is None:
            report.missing += 1
            if len(report.missing_ids) < LISTED:
                report.missing_ids.append(record_id)
            continue
        expected = {name: values[index] for name, values in columns.items()}
        expected["created_at"] = created[index]
        expected["sparse_vector"] = sparse[index]
        vector = vectors[index]
        fields = _differences(expected, actual, None if vector is None else np.asarray(vector), tolerance)
        if fields:
            report.mismatched += 1
            report.mismatched_fields.update(fields)
            if len(report.mismatches) < LISTED:
                report.mismatches.append({"id": record_id, "fields": fields})
        else:
            report.matched += 1


def _collect_extra(db: sqlite3.Connection, report: VerifyReport) -> None:
    report.extra = db.execute("SELECT count(*) FROM t WHERE seen = 0").fetchone()[0]
    report.extra_ids = [row[0] for row in db.execute(f"SELECT id FROM t WHERE seen = 0 ORDER BY id LIMIT {LISTED}")]
