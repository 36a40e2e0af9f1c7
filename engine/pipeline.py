"""The transfer loop shared by export, import and migrate, in both run modes.

It reads the source chunk by chunk, drops what the target cannot hold (counted
by reason), loads the rest, and accounts for every record. The verbs come from
a `Steps` object: plain calls in local mode, Prefect tasks in Prefect mode.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc

from connectors.base import Connector, LoadResult
from engine.checkpoint import Checkpoint, restore
from engine.retry import with_retries
from engine.steps import Chunk, ChunkReader, Filtered, TargetRule
from engine.summary import SKIP_DIMS, SKIP_NULL_VECTOR, RunSummary
from vmig.errors import UsageError
from vmig.rejects import RejectsWriter

ProgressFn = Callable[[int, int | None], None]
"""Called with (records read so far, expected total or None)."""

TERMINAL_PROGRESS: ContextVar[ProgressFn | None] = ContextVar("vex_terminal_progress", default=None)
"""A terminal bar the CLI hands to a Prefect flow, which cannot take it as a parameter."""


def both(*callbacks: ProgressFn | None) -> ProgressFn:
    """One progress callback that feeds several (UI artifact and terminal bar)."""
    active = [c for c in callbacks if c is not None]

    def call(done: int, total: int | None) -> None:
        for callback in active:
            callback(done, total)

    return call


class Steps(Protocol):
    def extract(self, reader: ChunkReader, rows: int) -> Chunk: ...
    def filter_dimensions(self, batch: pa.RecordBatch, rule: TargetRule) -> Filtered: ...
    def load(self, target: Connector, batch: pa.RecordBatch) -> LoadResult: ...


@dataclass
class Transfer:
    """One source-to-target movement of records."""

    source: Connector
    target: Connector
    namespace: str | None = None
    limit: int | None = None
    chunk_rows: int = 10_000
    dims: int | None = None
    """Dimension for a new fixed-dimension target, when the user gave one."""
    dims_hint: int | None = None
    """Most common dims of the input, when known before reading (sidecar counts)."""
    expected_total: int | None = None
    rejects_path: Path | None = None
    checkpoint: Checkpoint | None = None
    """Where acknowledged progress is kept so that a re-run resumes (None: no resume)."""


def _most_common_dims(batch: pa.RecordBatch) -> int | None:
    counts = pc.value_counts(batch.column("dims").drop_null()).to_pylist()
    if not counts:
        return None
    return int(max(counts, key=lambda entry: entry["counts"])["values"])


class _TargetState:
    """Decides the target's rule once, creating the target only when there is data for it."""

    def __init__(self, transfer: Transfer, summary: RunSummary) -> None:
        self.transfer = transfer
        self.summary = summary
        self.rule: TargetRule | None = None

    def rule_for(self, batch: pa.RecordBatch) -> TargetRule | None:
        if self.rule is not None:
            return self.rule
        target = self.transfer.target
        caps = target.capabilities
        if not caps.fixed_dims:
            target.ensure_target(None, None)
            self.rule = TargetRule(None, caps.needs_vector)
            return self.rule
        info = target.describe()
        dims = info.dims if info.exists and info.dims else None
        if dims is not None:
            self._check_existing(dims, batch)
        dims = dims or self.transfer.dims or self.transfer.dims_hint or _most_common_dims(batch)
        if dims is None:
            return None  # nothing with a vector seen yet: decide on a later chunk
        target.ensure_target(dims, None)
        self.summary.target_dims = dims
        self.rule = TargetRule(dims, caps.needs_vector)
        return self.rule

    def _check_existing(self, dims: int, batch: pa.RecordBatch) -> None:
        """An existing target that none of the input fits is a mistake, not a run of skips."""
        label = self.transfer.target.label()
        if self.transfer.dims is not None and dims != self.transfer.dims:
            raise UsageError(f"{label} already holds {dims}-d vectors; --dims {self.transfer.dims} does not match")
        seen = _most_common_dims(batch)
        hint = self.transfer.dims_hint
        fits = pc.sum(pc.equal(batch.column("dims"), pa.scalar(dims, pa.int32()))).as_py()
        if seen is not None and not fits and (hint is None or hint != dims):
            raise UsageError(
                f"{label} holds {dims}-d vectors but the input's are {hint or seen}-d: "
                "nothing would fit; choose another collection/table or re-embed"
            )


def run_transfer(
    transfer: Transfer, steps: Steps, summary: RunSummary, progress: ProgressFn | None = None
) -> RunSummary:
    """Move every record, or raise; the target is finished only after the last chunk loaded."""
    started = time.perf_counter()
    checkpoint = None if transfer.target.capabilities.writes_file else transfer.checkpoint
    cursor, limit = None, transfer.limit
    saved = checkpoint.load() if checkpoint is not None else None
    if saved is not None:
        restore(summary, saved)
        cursor = saved["cursor"]
        limit = None if limit is None else max(0, limit - summary.read)
        summary.warn(f"resumed an interrupted run after {summary.read} records (--restart starts over)")
    reader = ChunkReader(transfer.source, transfer.namespace, limit, cursor)
    state = _TargetState(transfer, summary)
    kept = int(saved.get("rejects_bytes", 0)) if saved is not None else 0
    rejects = RejectsWriter(transfer.rejects_path, keep_bytes=kept) if transfer.rejects_path else None
    try:
        while not reader.finished:
            chunk = steps.extract(reader, transfer.chunk_rows)
            if chunk.rejects:
                summary.rejected += len(chunk.rejects)
                summary.reject_sample.extend(
                    (r.line, r.reason) for r in chunk.rejects[: 20 - len(summary.reject_sample)]
                )
                if rejects is not None:
                    rejects.add(chunk.rejects)
            batch = chunk.batch
            summary.read += batch.num_rows
            if batch.num_rows:
                _move(batch, steps, state, summary)
            if checkpoint is not None and not chunk.done:
                checkpoint.save(chunk.next_cursor, summary, rejects.size if rejects is not None else 0)
            if progress is not None:
                progress(summary.read, transfer.expected_total)
        transfer.target.finish()
        if checkpoint is not None:
            checkpoint.clear()
    except BaseException:
        transfer.target.abort()
        raise
    finally:
        summary.duration_s = time.perf_counter() - started
        if rejects is not None:
            summary.rejects_path = rejects.close()
    for reason, count in summary.skipped.items():
        if reason == SKIP_DIMS:
            summary.warn(f"{count} records skipped: their dims differ from the target's {summary.target_dims}")
        elif reason == SKIP_NULL_VECTOR:
            summary.warn(f"{count} records skipped: no vector, and {transfer.target.name} needs one")
    return summary


def _move(batch: pa.RecordBatch, steps: Steps, state: _TargetState, summary: RunSummary) -> None:
    rule = with_retries(state.rule_for)(batch)  # describing/creating the target meets the same faults as loads
    if rule is None:
        # No vector in sight and the target needs a fixed dimension: all of these are null vectors.
        rule = TargetRule(None, True)
    filtered = steps.filter_dimensions(batch, rule)
    summary.skipped.update(filtered.skipped)
    if filtered.batch.num_rows:
        result = steps.load(state.transfer.target, filtered.batch)
        summary.upserted += result.written
        summary.add_failed(result.failed)
