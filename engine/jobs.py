"""Export, import, migrate and verify as functions of their parameters and a runner.

The Prefect flows call these with the Prefect runner, local mode with the local one;
both run the same steps (`engine.steps`). No store is known here by name: a connector's
capabilities and its protocol decide.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from connectors.base import Connector, Location, StoreInfo
from connectors.jsonl import JsonlConnector
from connectors.registry import get_connector
from embed.plan import ReembedPlan
from engine import steps
from engine.checkpoint import Checkpoint
from engine.chunks import ChunkReader
from engine.interrupt import left_in_place
from engine.overlap import refuse_overlap
from engine.params import (
    ExportParams,
    ImportParams,
    MigrateParams,
    ReembedParams,
    StoreSpec,
    SyncParams,
    VerifyParams,
    open_store,
)
from engine.pipeline import ProgressFn, SyncRun, Transfer, run_transfer
from engine.retry import with_retries
from engine.steps import Runner, TargetWish
from engine.summary import RunSummary
from engine.syncstate import SyncState, default_state_path
from engine.verify import VerifyReport
from vmig.errors import IntegrityError, UsageError, VexError
from vmig.paths import rejects_path
from vmig.sidecar import ImportEntry
from vmig.signing import default_key_path, load_key
from vmig.timefmt import now_iso

JobParams = ExportParams | ImportParams | MigrateParams


def export_job(params: ExportParams, runner: Runner, progress: ProgressFn | None = None) -> RunSummary:
    """Store -> `.vmig.jsonl` + sidecar (and its signature, with `sign`)."""
    if params.sign:
        key = params.key or default_key_path()
        load_key(key)  # a missing or unreadable key stops the export before it reads anything
        params = params.model_copy(update={"key": key})
    file = StoreSpec(store="jsonl", options={"path": params.output, "force": params.force})
    with open_store(params.source) as source, open_store(file) as target:
        if isinstance(target, JsonlConnector):
            target.sign = params.sign  # before it writes: the writer hashes each record as it makes its line
        return _transfer("export", source, target, params, runner, progress, rejects=rejects_path(params.output))


def import_job(params: ImportParams, runner: Runner, progress: ProgressFn | None = None) -> RunSummary:
    """`.vmig.jsonl` -> store, checked against its sidecar before the first write."""
    with open_store(StoreSpec(store="jsonl", options={"path": params.input})) as source:
        source.warm_up()  # the parsing workers start while the checksum is checked
        _preload_client(params.target.store)  # and the target's client is imported
        sidecar, warnings = runner.run(steps.VALIDATE, params.input, params.check_sidecar, params.trust)
        with open_store(params.target) as target:
            summary = _transfer(
                "import",
                source,
                target,
                params,
                runner,
                progress,
                dims=params.dims,
                rejects=rejects_path(params.input),
            )
    for warning in warnings:
        summary.warn(warning)
    if summary.read == 0 and summary.rejected:
        raise IntegrityError(
            f"{params.input} is not a .vmig.jsonl file: none of its lines is a record "
            f"(line {summary.reject_sample[0][0]}: {summary.reject_sample[0][1]})"
        )
    if sidecar is not None:
        runner.run(steps.RECORD_IMPORT, params.input, _import_entry(target.label(), summary))
    return summary


def _preload_client(store: str) -> None:
    """Start importing a store's client in the background (an unknown store is reported when it is opened)."""
    try:
        library = get_connector(store).client_library
    except VexError:
        return
    if library is not None:
        library.preload()


def migrate_job(params: MigrateParams, runner: Runner, progress: ProgressFn | None = None) -> RunSummary:
    """Store -> store directly, no intermediate file; `verify` compares the two at the end."""
    if params.workers is not None:
        from engine.scaleout import scaled_out

        summary = scaled_out(params, runner)
        if params.verify:
            _verify_after(params, summary, runner)
        return summary
    with open_store(params.source) as source, open_store(params.target) as target:
        rejects = params.rejects or Path(f"{source.name}-to-{target.name}.rejects.jsonl")
        summary = _transfer("migrate", source, target, params, runner, progress, dims=params.dims, rejects=rejects)
    if params.verify:
        _verify_after(params, summary, runner)
    return summary


def _verify_after(params: MigrateParams, summary: RunSummary, runner: Runner) -> None:
    """`--verify`: the two stores compared record by record once the run is done."""
    if params.limit is not None:
        summary.warn("--verify skipped: a --limit run copies part of the source on purpose")
        return
    comparison = VerifyParams(source=params.source, target=params.target, namespace=params.namespace)
    summary.verify = verify_job(comparison, runner)


def sync_job(params: SyncParams, runner: Runner, progress: ProgressFn | None = None) -> RunSummary:
    """Store -> store again: only records new or changed since the last run are written; with `delete`, those
    that left the source are deleted from the target. The first run of a pair copies everything."""
    if params.workers is not None:
        raise UsageError("--workers is for migrate: a sync keeps its state in one process")
    with open_store(params.source) as source, open_store(params.target) as target:
        caps = target.capabilities
        if caps.writes_file or not caps.one_record_per_id:
            raise UsageError(f"{target.name} cannot be synced into: sync needs a store that keeps one record per id")
        if params.delete and not caps.deletes:
            raise UsageError(f"{target.name} cannot delete records: run the sync without --delete")
        pair = {"source": source.label(), "target": target.label(), "namespace": params.namespace,
                "model": params.model}  # fmt: skip
        # The watermark is read before the state is opened, so a source that cannot give one leaves no state file.
        top = with_retries(source.highest)(params.watermark) if params.watermark is not None else None
        state = SyncState(params.state or default_state_path(pair), pair)
        try:
            sync = _sync_run(source, state, params, top)
            state.begin()
            rejects = params.rejects or Path(f"{source.name}-to-{target.name}.rejects.jsonl")
            summary = _transfer(
                "sync", source, target, params, runner, progress, dims=params.dims, rejects=rejects, sync=sync,
            )  # fmt: skip
        finally:
            state.close()
    if params.verify:
        _verify_after(params, summary, runner)
    return summary


def _sync_run(source: Connector, state: SyncState, params: SyncParams, top: Any) -> SyncRun:
    """With `--watermark`: the column's highest value before the read (`top`, kept for the next run once this
    one completes) and, when the last complete run kept one, a read of only the records changed since
    (`Connector.read_changed_since`): a record written while this run reads is read again next time."""
    if params.watermark is None:
        return SyncRun(state, params.delete)
    column = params.watermark
    since = None if state.is_new else state.watermark(column)
    if since is not None:
        source.read_changed_since(column, since)
    return SyncRun(state, params.delete, watermark=(column, top), partial_read=since is not None)


def verify_job(params: VerifyParams, runner: Runner, progress: ProgressFn | None = None) -> VerifyReport:
    """Compare two stores record by record and write the JSON report (when a path is given)."""
    with open_store(params.source) as source, open_store(params.target) as target:
        _require(source, "source")
        _require(target, "source")
        report = runner.run(steps.VERIFY, source, target, params.namespace, params.sample, params.seed, progress)
    if params.report is not None:
        write_report(params.report, report)
    return report


def write_report(path: Path, report: VerifyReport) -> None:
    temp = path.with_name(f".{path.name}.partial")
    temp.write_bytes(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    os.replace(temp, path)


def _transfer(
    action: str,
    source: Connector,
    target: Connector,
    params: JobParams,
    runner: Runner,
    progress: ProgressFn | None,
    *,
    dims: int | None = None,
    rejects: Path | None = None,
    sync: SyncRun | None = None,
) -> RunSummary:
    """One transfer, with what must hold before anything is written, and the file target's sidecar after."""
    _require(source, "source")
    _require(target, "target")
    plan, plan_dims = _reembed_plan(params)
    if plan is not None and isinstance(params, ReembedParams) and params.adapter == "auto":
        plan = _fitted_on_the_fly(source, params, plan)
    writes = target.locations() + ([Location(rejects, "the rejects file")] if rejects is not None else [])
    refuse_overlap(source.locations(), writes)
    target.before_write()
    info = _describe(source)
    expected_total = _records_to_read(info, params.namespace, params.limit)
    target.prepare_write(expected_total)
    transfer = Transfer(
        source=source,
        target=target,
        namespace=params.namespace,
        limit=params.limit,
        chunk_rows=params.chunk_rows,
        wish=TargetWish(dims=dims, dims_hint=plan_dims or info.dims, metric=info.metric),
        expected_total=expected_total,
        rejects_path=rejects,
        checkpoint=None if sync is not None else _checkpoint(action, source, target, params),
        reembed=plan,
        sync=sync,
    )
    summary = RunSummary(action=action, source=source.label(), target=target.label())
    left_in_place(_nothing_yet(target))
    try:
        run_transfer(transfer, runner, summary, progress)
        if transfer.written is not None:
            key = params.key if isinstance(params, ExportParams) and params.sign else None
            runner.run(steps.WRITE_SIDECAR, transfer.written, source.name, key, summary.adapter_quality)
            summary.output_checksum = transfer.written.checksum
            left_in_place(f"{transfer.written.path} and its sidecar were complete before the stop")
    except BaseException:
        target.abort()  # a file target's data, complete or not, never stays without its sidecar
        raise
    return summary


def _reembed_plan(params: JobParams) -> tuple[ReembedPlan | None, int | None]:
    """The run's re-embedding and the dimension a new fixed-dimension target takes (the model's, else the
    adapter's target). The model name is resolved and the adapter file read here, before anything is written
    (an unknown name or a bad file fails); the model itself loads at the first text the embedding cache does
    not have, in the step before the first chunk's target is prepared, so a run served by the cache never
    imports torch."""
    if not isinstance(params, ReembedParams) or params.reembed == "never":
        return None, None
    if params.model is None and params.adapter is None:
        return None, None
    given = params.adapter if isinstance(params.adapter, Path) else None  # "auto": fitted once the source is open
    plan = ReembedPlan(params.model, params.reembed, params.embed_cache_mb, None if given is None else str(given))
    dims = None
    if given is not None:
        from embed.adapter import load
        from embed.models import canonical

        adapter = load(given)
        if params.model is not None and canonical(params.model) != adapter.target_model:
            raise UsageError(f"{given} maps into {adapter.target_model}, not {canonical(params.model)}")
        dims = adapter.target_dims
    if params.model is not None:
        from embed import encoder

        dims = encoder.dimension(params.model)
    return plan, dims


def _fitted_on_the_fly(source: Connector, params: ReembedParams, plan: ReembedPlan) -> ReembedPlan:
    """`--adapter auto`: an adapter fitted from the first `fit_sample` records of the source that have text (their
    stored vectors against `--model`'s embeddings of their text), kept for the run in a temporary file."""
    import tempfile
    from dataclasses import replace

    from embed.adapter import fit_from_records

    assert plan.model is not None
    reader = ChunkReader(source, getattr(params, "namespace", None), None)
    try:
        adapter = fit_from_records(reader.batches(params.fit_sample), plan.model, params.fit_sample)
    finally:
        reader.close()
    path = Path(tempfile.mkdtemp(prefix="vex-adapter-")) / "auto.vxa"
    adapter.save(path)
    return replace(plan, adapter=str(path))


def _nothing_yet(target: Connector) -> str:
    """What a stop before the first acknowledged chunk leaves: a file target names its path."""
    if target.capabilities.writes_file and target.locations():
        return f"{target.locations()[0].path} was not written: nothing partial was left in place"
    return f"nothing was written to {target.label()}"


def _require(connector: Connector, role: str) -> None:
    caps = connector.capabilities
    if role == "source" and not caps.can_export:
        raise UsageError(f"{connector.name} cannot be exported from")
    if role == "target" and not caps.can_import:
        raise UsageError(f"{connector.name} cannot be imported into")


def _describe(source: Connector) -> StoreInfo:
    """What the source says of itself where it is cheap: counts for the progress bar, its metric."""
    try:
        return source.describe()
    except Exception:  # noqa: BLE001 - the run reads the source anyway and meets its errors there
        return StoreInfo(exists=True)


def _records_to_read(info: StoreInfo, namespace: str | None, limit: int | None) -> int | None:
    total = info.count
    if namespace is not None and info.count_by_namespace is not None:
        total = info.count_by_namespace.get(namespace, 0)
    if total is not None and limit is not None:
        total = min(total, limit)
    return total if total is not None else limit


def _import_entry(target: str, summary: RunSummary) -> ImportEntry:
    return ImportEntry(
        target=target,
        imported_at=now_iso(),
        total=summary.read,
        upserted=summary.upserted,
        replaced=summary.replaced,
        skipped=dict(summary.skipped),
        failed=summary.failed,
        adapter_quality=summary.adapter_quality,
    )


def _checkpoint(action: str, source: Connector, target: Connector, params: JobParams) -> Checkpoint:
    description = {
        "action": action,
        "source": [source.name, _public(source)],
        "target": [target.name, _public(target)],
        "namespace": params.namespace,
        "limit": params.limit,
    }
    checkpoint = Checkpoint.for_job(description)
    if params.restart:
        checkpoint.clear()
    return checkpoint


def _public(connector: Connector) -> dict[str, object]:
    """Options that identify a store, without secrets, with paths made absolute."""
    values = connector.opts.model_dump(exclude={"api_key", "password"})
    return {k: str(Path(v).resolve()) if isinstance(v, Path) else v for k, v in values.items()}
