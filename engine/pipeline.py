"""The transfer loop shared by export, import and migrate, in both run modes.

It reads the source chunk by chunk, drops what the target cannot hold (counted by
reason), loads the rest, and accounts for every record. Each step goes through a
`Runner`: plain calls in local mode, Prefect task runs in Prefect mode.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from connectors.base import Connector, Cursor, WrittenFile
from embed.plan import SKIP_NO_TEXT, Reembedded, ReembedPlan
from engine import steps
from engine.checkpoint import Checkpoint, TargetMark, restore, saved_mark
from engine.chunks import ChunkReader
from engine.holding import TargetRule
from engine.interrupt import left_in_place
from engine.retry import with_retries
from engine.steps import PreparedTarget, Runner, TargetWish
from engine.summary import SKIP_DIMS, SKIP_NULL_VECTOR, RunSummary
from engine.syncstate import Key, SyncState, keys_of
from vmig.errors import VexError
from vmig.idset import IdSet
from vmig.rejects import RejectsWriter

ProgressFn = Callable[[int, int | None], None]
"""Called with (records read so far, expected total or None)."""

TERMINAL_PROGRESS: ContextVar[ProgressFn | None] = ContextVar("vex_terminal_progress", default=None)
"""A terminal bar the CLI hands to a Prefect flow, which cannot take it as a parameter."""


def terminal_progress() -> ProgressFn | None:
    """The terminal bar, for a flow's body: a flow function names this, not the context variable, so a Dask
    worker that is sent the flow (`--workers`) is sent a reference to it (a context variable cannot travel)."""
    return TERMINAL_PROGRESS.get()


def both(*callbacks: ProgressFn | None) -> ProgressFn:
    """One progress callback that feeds several (UI artifact and terminal bar)."""
    active = [c for c in callbacks if c is not None]

    def call(done: int, total: int | None) -> None:
        for callback in active:
            callback(done, total)

    return call


@dataclass
class Transfer:
    """One source-to-target movement of records."""

    source: Connector
    target: Connector
    namespace: str | None = None
    limit: int | None = None
    chunk_rows: int = 10_000
    wish: TargetWish = field(default_factory=TargetWish)
    expected_total: int | None = None
    rejects_path: Path | None = None
    checkpoint: Checkpoint | None = None
    """Where acknowledged progress is kept so that a re-run resumes (None: no resume)."""
    reembed: ReembedPlan | None = None
    """`--model`: records get vectors of that model on the way (None: vectors as they are)."""
    written: WrittenFile | None = None
    """What a file target handed back from `finish`, for its sidecar."""
    sync: SyncRun | None = None
    """A sync: only new and changed records are written, and those that left the source may be deleted."""
    start: Cursor = None
    """Where the read begins (a `--workers` partition's start); a checkpoint's cursor wins."""


@dataclass
class SyncRun:
    state: SyncState
    delete: bool
    """Delete from the target what left the source (`--delete`); else count it and say so."""
    watermark: tuple[str, Any] | None = None
    """`--watermark`: the column and its highest value when this run began, kept for the next run."""
    partial_read: bool = False
    """This run read only the records changed since the last one (a watermark it kept): what it did not read
    has not left the source for that, and only a listing of the ids tells what did."""


class _TargetState:
    """The target as this run prepared it: created only when there is data for it, decided once."""

    def __init__(self, transfer: Transfer, summary: RunSummary) -> None:
        self.transfer = transfer
        self.summary = summary
        self.prepared: PreparedTarget | None = None

    def rule_for(self, batch: pa.RecordBatch, runner: Runner) -> TargetRule:
        if self.prepared is None:
            self.prepared = runner.run(steps.ENSURE_TARGET, self.transfer.target, self.transfer.wish, batch)
            if self.prepared is None:
                # No vector in sight and the target needs a fixed dimension: all of these are null vectors.
                return TargetRule(None, True)
            self.summary.target_dims = self.prepared.rule.dims
        return self.prepared.rule

    def mark(self) -> TargetMark:
        incarnation = self.prepared.incarnation if self.prepared is not None else None
        return TargetMark(self.transfer.target.label(), self.summary.upserted, incarnation)


def run_transfer(
    transfer: Transfer, runner: Runner, summary: RunSummary, progress: ProgressFn | None = None
) -> RunSummary:
    """Move every record, or raise; the target is finished only after the last chunk loaded."""
    started = time.perf_counter()
    checkpoint = None if transfer.target.capabilities.writes_file else transfer.checkpoint
    cursor, limit = transfer.start, transfer.limit
    saved = _usable_checkpoint(checkpoint, transfer.target, summary)
    if saved is not None:
        restore(summary, saved)
        cursor = saved["cursor"]
        limit = None if limit is None else max(0, limit - summary.read)
        summary.warn(f"resumed an interrupted run after {summary.read} records (--restart starts over)")
    reader = ChunkReader(transfer.source, transfer.namespace, limit, cursor)
    state = _TargetState(transfer, summary)
    seen = _written_ids(transfer, checkpoint, summary.read if saved is not None else None)
    kept = int(saved.get("rejects_bytes", 0)) if saved is not None else 0
    rejects = RejectsWriter(transfer.rejects_path, keep_bytes=kept) if transfer.rejects_path else None
    try:
        while not reader.finished:
            chunk = runner.run(steps.EXTRACT, reader, transfer.chunk_rows)
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
                _move(batch, runner, state, summary, seen)
            if checkpoint is not None and not chunk.done:
                if seen is not None:
                    seen.save()  # before the checkpoint that counts on it
                checkpoint.save(chunk.next_cursor, summary, state.mark(), rejects.size if rejects is not None else 0)
                left_in_place(
                    f"{transfer.target.label()} holds the {summary.upserted} records acknowledged before the stop "
                    "(and perhaps part of the next chunk): the same command resumes from there (--restart starts over)"
                )
            if progress is not None:
                progress(summary.read, transfer.expected_total)
        if transfer.sync is not None:
            _settle_sync(transfer, transfer.sync, runner, summary)
        transfer.written = runner.run(steps.FINISH, transfer.target)
        for notice in transfer.target.notices():
            summary.warn(notice)
        if checkpoint is not None:
            checkpoint.clear()
            left_in_place(f"{transfer.target.label()} holds all {summary.upserted} records: the load had completed")
    except BaseException:
        transfer.target.abort()
        raise
    finally:
        reader.close()
        summary.duration_s = time.perf_counter() - started
        if rejects is not None:
            summary.rejects_path = rejects.close()
        if seen is not None:
            seen.close()
    if summary.read == 0 and not summary.rejected:
        summary.warn(_why_nothing_moved(transfer, saved is not None))
    for reason, count in summary.skipped.items():
        if reason == SKIP_DIMS:
            summary.warn(f"{count} records skipped: their dims differ from the target's {summary.target_dims}")
        elif reason == SKIP_NULL_VECTOR:
            summary.warn(f"{count} records skipped: no vector, and {transfer.target.name} needs one")
        elif reason == SKIP_NO_TEXT and transfer.reembed is not None:
            summary.warn(f"{count} records skipped: they need vectors of {transfer.reembed.model} and have no text")
    for what, count in summary.altered.items():
        summary.warn(f"{count} records written to {transfer.target.name}: {what}")
    if summary.replaced:
        summary.warn(
            f"{summary.replaced} records replaced by a later record with the same id "
            f"({transfer.target.name} keeps one record per id: the last one)"
        )
    return summary


def _why_nothing_moved(transfer: Transfer, resumed: bool) -> str:
    """A run that read no record says why, in the person's terms, instead of a silent empty summary."""
    if transfer.limit == 0:
        return "--limit 0: nothing was moved"
    if resumed:
        return "the interrupted run had already read every record: nothing more was moved"
    source = transfer.source
    if transfer.namespace is None:
        return f"{source.label()} holds no records: nothing was moved"
    try:
        present = source.describe().count_by_namespace
    except VexError:
        present = None
    if present:
        shown = sorted(present.items())[:20]
        listed = ", ".join(f"'{name}' ({count})" if name else f"no namespace ({count})" for name, count in shown)
        return f"namespace '{transfer.namespace}' matched no record of {source.label()}, which holds {listed}"
    return (
        f"namespace '{transfer.namespace}' matched no record of {source.label()}: nothing was moved "
        f"(vex inspect --from {source.name} lists its namespaces)"
    )


def _usable_checkpoint(checkpoint: Checkpoint | None, target: Connector, summary: RunSummary) -> dict | None:
    """The interrupted run's checkpoint, unless the target is no longer the one it was made against."""
    saved = checkpoint.read() if checkpoint is not None else None
    if saved is None or checkpoint is None:
        return None
    reason = _stale_reason(target, saved)
    if reason is None:
        return saved
    checkpoint.clear()
    summary.warn(f"the checkpoint of an interrupted run was set aside and the run starts over: {reason}")
    return None


def _stale_reason(target: Connector, saved: dict) -> str | None:
    mark = saved_mark(saved)
    if mark is None:
        return "it does not say what the target held (an older vex wrote it)"
    if mark.records == 0:
        return None  # the run had written nothing there: nothing can be missing
    label = target.label()
    info = with_retries(target.describe)()
    if not info.exists:
        return f"{label} no longer exists, but the interrupted run had written {mark.records} records to it"
    if mark.incarnation is not None and with_retries(target.incarnation)() != mark.incarnation:
        return f"{label} was deleted and created again since the interrupted run wrote {mark.records} records to it"
    if info.count is not None and info.count < mark.records:
        return (
            f"{label} holds {info.count} records, fewer than the {mark.records} the interrupted run had written "
            "(it was emptied or replaced since)"
        )
    return None


def _written_ids(transfer: Transfer, checkpoint: Checkpoint | None, resumed_at: int | None) -> IdSet | None:
    """The ids the run writes, for a target that keeps one record per id: kept beside its checkpoint."""
    if not transfer.target.capabilities.one_record_per_id:
        return None
    if checkpoint is None:
        return IdSet(Path(tempfile.mkdtemp(prefix="vex-ids-")))
    if resumed_at is None:
        shutil.rmtree(checkpoint.ids_folder, ignore_errors=True)
    return IdSet(checkpoint.ids_folder, persistent=True, keep_below=resumed_at)


def _settle_sync(transfer: Transfer, sync: SyncRun, runner: Runner, summary: RunSummary) -> None:
    """After a read of the whole source: what the state holds and this run did not see has left the source."""
    if transfer.limit is not None:
        summary.warn("--limit: the source was not read to its end, so no record is taken as deleted")
        return
    if sync.partial_read and sync.delete:
        runner.run(steps.MARK_PRESENT, transfer.source, sync.state, transfer.namespace)
    if not sync.delete:
        left = 0 if sync.partial_read else sync.state.gone_count(transfer.namespace)
        if left:
            summary.warn(
                f"{left} records of {transfer.target.name} left the source since an earlier run: --delete removes them"
            )
    else:
        while gone := sync.state.gone(transfer.namespace):
            for namespace, ids in gone.items():
                runner.run(steps.DELETE, transfer.target, namespace or None, ids)
                sync.state.forget(namespace, ids)
                summary.deleted += len(ids)
    sync.state.complete(sync.watermark)


def _move(batch: pa.RecordBatch, runner: Runner, state: _TargetState, summary: RunSummary, seen: IdSet | None) -> None:
    first = summary.read - batch.num_rows
    sync = state.transfer.sync
    prints: dict[Key, bytes] = {}
    if sync is not None:
        changed = runner.run(steps.SELECT_CHANGED, sync.state, batch)
        summary.unchanged += batch.num_rows - changed.batch.num_rows
        batch, prints = changed.batch, changed.prints
        if not batch.num_rows:
            return
    plan = state.transfer.reembed
    # No model, no adapter: no re-embed step (in Prefect mode a task run per chunk that does nothing costs time).
    reembedded = runner.run(steps.REEMBED, batch, plan) if plan is not None else Reembedded(batch)
    batch = reembedded.batch
    summary.skipped.update(reembedded.skipped)
    summary.reembedded.update(reembedded.counts)
    if reembedded.quality is not None:
        summary.adapter_quality = reembedded.quality
    rule = state.rule_for(batch, runner)
    filtered = runner.run(steps.FILTER_DIMENSIONS, batch, rule)
    summary.skipped.update(filtered.skipped)
    if filtered.batch.num_rows:
        result = runner.run(steps.LOAD, state.transfer.target, filtered.batch)
        summary.add_failed(result.failed)
        summary.altered.update(result.altered)
        replaced = 0
        if seen is not None:
            written = _without_failed(filtered.batch.column("id"), result.failed)
            replaced = len(seen.add(written, np.arange(first, first + len(written)))[0])
        if sync is not None:
            runner.run(steps.RECORD_SYNCED, sync.state, _acknowledged(filtered.batch, result.failed), prints)
        summary.upserted += result.written - replaced
        summary.replaced += replaced


def _acknowledged(batch: pa.RecordBatch, failed: list[tuple[str, str]]) -> list[Key]:
    """The sync state's keys of the records the target took."""
    refused = {record_id for record_id, _ in failed}
    return [key for key in keys_of(batch) if key[1] not in refused]


def _without_failed(ids: pa.Array, failed: list[tuple[str, str]]) -> pa.Array:
    """The ids of the records the target took: one occurrence per failed record left out (the last)."""
    if not failed:
        return ids
    left_out = Counter(record_id for record_id, _ in failed)
    values = ids.to_pylist()
    keep = np.ones(len(values), dtype=bool)
    for index in range(len(values) - 1, -1, -1):
        if left_out.get(values[index]):
            keep[index] = False
            left_out[values[index]] -= 1
    return ids.filter(pa.array(keep))
