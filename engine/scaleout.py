"""`--workers N`: a migrate's source cut into partitions that workers move at once.

The flow prepares the target once (created from a first look at the source), cuts the source where the store can
(`Connector.partitions`: VEKTOR rowid ranges, a file's line-aligned byte ranges, pgvector key ranges), and hands
each partition to a `transfer-part` task run; on Dask (`--workers`, `--dask-address`) those run in worker
processes, each opening its own connections and running the ordinary pipeline over its share. The target's `finish`
(index builds) runs once, after all of them; the parts' summaries add up to the run's. A partition that fails fails
the run, after the others ended.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from connectors.base import Connector, Partition
from engine import steps
from engine.chunks import ChunkReader
from engine.params import MigrateParams, StoreSpec, open_store
from engine.pipeline import Transfer, run_transfer
from engine.steps import Runner, TargetWish
from engine.summary import RunSummary
from vmig.errors import AccessError, UsageError

NEEDS_DASK = "--workers needs Dask: pip install 'vex-migrate[dask]'"


@dataclass(frozen=True)
class PartJob:
    """What one worker needs: plain, picklable values (a connector holds connections; a spec does not)."""

    source: StoreSpec
    target: StoreSpec
    part: Partition
    namespace: str | None
    chunk_rows: int
    wish: TargetWish


def transfer_part(job: PartJob) -> RunSummary:
    """One partition, moved by the ordinary pipeline in this process (a Dask worker's)."""
    from engine.local import LocalRunner

    with open_store(job.source) as source, open_store(job.target) as target:
        source.stop = job.part.stop
        transfer = Transfer(source, target, job.namespace, chunk_rows=job.chunk_rows, wish=job.wish,
                            start=job.part.start)  # fmt: skip
        summary = RunSummary(action="migrate", source=source.label(), target=target.label())
        return run_transfer(transfer, LocalRunner(), summary)


def refuse_what_cannot_scale(params: MigrateParams) -> None:
    """The refusals of `--workers`, checked before the flow starts: one line in a fraction of a second, before
    Prefect is imported and a Dask cluster started. The flow checks them again (a deployment run comes here
    without the command line)."""
    with open_store(params.source) as source, open_store(params.target) as target:
        _partitions(params, source, target)


def _partitions(params: MigrateParams, source: Connector, target: Connector) -> list[Partition]:
    """The source's partitions for `params.workers`, or the reason a scaled-out migrate cannot run."""
    if params.limit is not None:
        raise UsageError("--workers moves the whole source: --limit cannot be split among workers")
    if not target.takes_concurrent_writers():
        raise UsageError(
            f"--workers: {target.label()} takes one writer at a time (an embedded store or a file); "
            "use a server, or run without --workers"
        )
    parts = source.partitions(params.namespace, params.workers or 1)
    if parts is None:
        raise UsageError(f"--workers: {source.name} cannot be cut into ranges yet; run without --workers")
    return parts


def scaled_out(params: MigrateParams, runner: Runner) -> RunSummary:
    """The migrate over `params.workers` partitions at once."""
    started = time.perf_counter()
    with open_store(params.source) as source, open_store(params.target) as target:
        parts = _partitions(params, source, target)
        info = source.describe()
        wish = TargetWish(dims=params.dims, dims_hint=info.dims, metric=info.metric)
        first = ChunkReader(source, params.namespace, None)
        try:
            sample = first.next_chunk(1).batch
        finally:
            first.close()
        summary = RunSummary(action="migrate", source=source.label(), target=target.label())
        if sample.num_rows:
            prepared = runner.run(steps.ENSURE_TARGET, target, wish, sample)
            summary.target_dims = prepared.rule.dims if prepared is not None else None
        jobs = [
            PartJob(params.source, params.target, part, params.namespace, params.chunk_rows, wish) for part in parts
        ]
        for part_summary in runner.run_all(steps.TRANSFER_PART, [(job,) for job in jobs]):
            _add(summary, part_summary)
        runner.run(steps.FINISH, target)
    summary.duration_s = time.perf_counter() - started
    summary.warn(f"moved by {len(parts)} partitions at once (--workers {params.workers})")
    return summary


def _add(total: RunSummary, part: RunSummary) -> None:
    total.read += part.read
    total.upserted += part.upserted
    total.replaced += part.replaced
    total.rejected += part.rejected
    total.skipped.update(part.skipped)
    total.altered.update(part.altered)
    total.reembedded.update(part.reembedded)
    total.add_failed(part.failed_sample)
    total.failed += part.failed - len(part.failed_sample)
    total.reject_sample.extend(part.reject_sample[: max(0, 20 - len(total.reject_sample))])
    for warning in part.warnings:
        total.warn(warning)
    total.target_dims = total.target_dims or part.target_dims


def check_scheduler(address: str | None) -> None:
    """A scheduler that does not answer is one line before anything is read or written, not a hang. A port
    that refuses the connection is told at once (Dask's client would retry it for its whole timeout)."""
    if address is None:
        return
    try:
        from distributed import Client
    except ImportError:
        raise UsageError(NEEDS_DASK) from None
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    try:
        if port.isdigit():
            socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
        Client(address, timeout="10s").close()
    except (OSError, TimeoutError) as exc:
        raise AccessError(
            f"dask scheduler {address} did not answer ({exc or type(exc).__name__}; waited up to 10 s)"
        ) from None
