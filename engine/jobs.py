"""Export, import and migrate as functions of their parameters and a set of steps.

The Prefect flows are these functions with `PrefectSteps`; local mode passes
`LocalSteps`. Neither knows a store by name: capabilities decide.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Protocol

import orjson

from connectors.base import Connector, Location
from connectors.jsonl import JsonlConnector, JsonlOptions
from engine.checkpoint import Checkpoint
from engine.interrupt import left_in_place
from engine.overlap import refuse_overlap
from engine.params import ExportParams, ImportParams, MigrateParams, VerifyParams, open_store
from engine.pipeline import ProgressFn, Steps, Transfer, run_transfer
from engine.summary import RunSummary
from engine.verify import VerifyReport, verify_stores
from vmig.errors import IntegrityError, UsageError
from vmig.paths import rejects_path
from vmig.reader import start_workers_for
from vmig.sidecar import ImportEntry, Sidecar
from vmig.stats import RecordStats
from vmig.timefmt import now_iso


class JobSteps(Steps, Protocol):
    def validate_input(self, path: Path, verify: bool) -> tuple[Sidecar | None, list[str]]: ...
    def write_sidecar(
        self, output: Path, source_store: str, checksum: str, stats: RecordStats, with_data: bool = False
    ) -> Path: ...
    def record_import(self, path: Path, entry: ImportEntry) -> None: ...


def _require(connector: Connector, role: str) -> None:
    caps = connector.capabilities
    if role == "source" and not caps.can_export:
        raise UsageError(f"{connector.name} cannot be exported from")
    if role == "target" and not caps.can_import:
        raise UsageError(f"{connector.name} cannot be imported into")


def _expected_total(source: Connector, namespace: str | None, limit: int | None) -> int | None:
    """Records the run should read, for the progress bar: cheap store counts only."""
    try:
        info = source.describe()
    except Exception:  # noqa: BLE001 - a count only feeds the progress bar
        return limit
    total = info.count
    if namespace is not None and info.count_by_namespace is not None:
        total = info.count_by_namespace.get(namespace, 0)
    if total is not None and limit is not None:
        total = min(total, limit)
    return total if total is not None else limit


def _finish_file_target(target: Connector, source_name: str, steps: JobSteps, summary: RunSummary) -> None:
    if target.capabilities.writes_file and isinstance(target, JsonlConnector) and target.writer is not None:
        writer = target.writer
        assert writer.checksum is not None
        steps.write_sidecar(target.path, source_name, writer.checksum, writer.stats, with_data=target.sidecar_follows)
        summary.output_checksum = writer.checksum
        left_in_place(f"{target.path} and its sidecar were complete before the stop")


def _checkpoint(
    action: str, source: Connector, target: Connector, params: ExportParams | ImportParams | MigrateParams
) -> Checkpoint:
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
    values = connector.options.model_dump(exclude={"api_key", "password"})
    return {k: str(Path(v).resolve()) if isinstance(v, Path) else v for k, v in values.items()}


def _transfer(
    action: str,
    source: Connector,
    target: Connector,
    params: ExportParams | ImportParams | MigrateParams,
    steps: JobSteps,
    progress: ProgressFn | None,
    *,
    dims: int | None = None,
    dims_hint: int | None = None,
    expected_total: int | None = None,
    rejects: Path | None = None,
) -> RunSummary:
    _require(source, "source")
    _require(target, "target")
    writes = target.locations() + ([Location(rejects, "the rejects file")] if rejects is not None else [])
    refuse_overlap(source.locations(), writes)
    target.before_write()
    summary = RunSummary(action=action, source=source.label(), target=target.label())
    if expected_total is None:
        expected_total = _expected_total(source, params.namespace, params.limit)
    if isinstance(target, JsonlConnector):
        target.expected_records = expected_total
        target.sidecar_follows = True
        left_in_place(f"{target.path} was not written: nothing partial was left in place")
    else:
        left_in_place(f"nothing was written to {target.label()}")
    transfer = Transfer(
        source=source,
        target=target,
        namespace=params.namespace,
        limit=params.limit,
        chunk_rows=params.chunk_rows,
        dims=dims,
        dims_hint=dims_hint,
        expected_total=expected_total,
        rejects_path=rejects,
    )
    transfer.checkpoint = _checkpoint(action, source, target, params)
    try:
        run_transfer(transfer, steps, summary, progress)
        _finish_file_target(target, source.name, steps, summary)
    except BaseException:
        target.abort()  # a file target's data, complete or not, never stays without its sidecar
        raise
    return summary


def export_job(params: ExportParams, steps: JobSteps, progress: ProgressFn | None = None) -> RunSummary:
    """Store -> `.vmig.jsonl` + sidecar."""
    with open_store(params.source) as source:
        target = JsonlConnector(JsonlOptions(path=params.output, force=params.force))
        return _transfer("export", source, target, params, steps, progress, rejects=rejects_path(params.output))


def import_job(params: ImportParams, steps: JobSteps, progress: ProgressFn | None = None) -> RunSummary:
    """`.vmig.jsonl` -> store, verified against the sidecar before the first write."""
    source = JsonlConnector(JsonlOptions(path=params.input))
    start_workers_for(params.input)  # they start while the checksum is checked
    sidecar, warnings = steps.validate_input(params.input, params.verify)
    with open_store(params.target) as target:
        hint = None
        total = params.limit
        if sidecar is not None:
            stats = RecordStats(by_dims=Counter(sidecar.counts.get("dims", {})))
            hint = stats.most_common_dims()
            by_ns = sidecar.counts.get("namespace", {})
            total = by_ns.get(params.namespace, 0) if params.namespace is not None else sidecar.record_count
            if params.limit is not None:
                total = min(total, params.limit)
        summary = _transfer(
            "import",
            source,
            target,
            params,
            steps,
            progress,
            dims=params.dims,
            dims_hint=hint,
            expected_total=total,
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
        entry = ImportEntry(
            target=target.label(),
            imported_at=now_iso(),
            total=summary.read,
            upserted=summary.upserted,
            replaced=summary.replaced,
            skipped=dict(summary.skipped),
            failed=summary.failed,
        )
        steps.record_import(params.input, entry)
    return summary


def migrate_job(params: MigrateParams, steps: JobSteps, progress: ProgressFn | None = None) -> RunSummary:
    """Store -> store directly, no intermediate file."""
    with open_store(params.source) as source, open_store(params.target) as target:
        rejects = params.rejects or Path(f"{source.name}-to-{target.name}.rejects.jsonl")
        summary = _transfer("migrate", source, target, params, steps, progress, dims=params.dims, rejects=rejects)
    if params.verify:
        if params.limit is not None:
            summary.warn("--verify skipped: a --limit run copies part of the source on purpose")
        else:
            summary.verify = verify_job(
                VerifyParams(source=params.source, target=params.target, namespace=params.namespace)
            )
    return summary


def verify_job(params: VerifyParams, progress: ProgressFn | None = None) -> VerifyReport:
    """Compare two stores and write the JSON report (when a path is given)."""
    with open_store(params.source) as source, open_store(params.target) as target:
        _require(source, "source")
        _require(target, "source")
        report = verify_stores(source, target, params.namespace, params.sample, params.seed, progress)
    if params.report is not None:
        write_report(params.report, report)
    return report


def write_report(path: Path, report: VerifyReport) -> None:
    temp = path.with_name(f".{path.name}.partial")
    temp.write_bytes(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    os.replace(temp, path)
