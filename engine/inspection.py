"""`vex inspect` and `vex validate`: a `.vmig.jsonl` file, or any store (`--from STORE`).

A store is read the way an export reads it (the same chunk reader and retry policy) and
counted, so what inspect says is what an export of it would carry. A path that is not a
`.vmig.jsonl` file is recognised first (`vmig.sniff`): a VEKTOR database is inspected as
the store it is, anything else is named, never read as thousands of damaged lines.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from connectors.base import StoreInfo
from engine.arguments import parse_pairs, single_side
from engine.chunks import ChunkReader
from engine.local import LocalRunner
from engine.params import StoreSpec, open_store
from engine.steps import EXTRACT
from vmig.errors import EXIT_INTEGRITY, EXIT_OK, UsageError
from vmig.sigcheck import signature_status
from vmig.signing import trusted_key
from vmig.sniff import sniff
from vmig.stats import RecordStats
from vmig.validate import scan_file, sidecar_status

CHUNK_ROWS = 10_000
SAMPLE = 20


@dataclass
class StoreReport:
    """What a store holds, counted from every record an export would read."""

    store: str
    info: StoreInfo
    namespace: str | None
    stats: RecordStats = field(default_factory=RecordStats)
    null_vectors: int = 0
    unreadable: int = 0
    unreadable_sample: list[tuple[str | None, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "namespace": self.namespace,
            "records": self.stats.record_count,
            "null_vectors": self.null_vectors,
            "unreadable": self.unreadable,
            "unreadable_sample": [{"id": i, "reason": r} for i, r in self.unreadable_sample],
            "counts": self.stats.as_dict(),
            "dims": self.info.dims,
            "metric": self.info.metric,
            "layout": self.info.layout,
        }


def read_store(spec: StoreSpec, namespace: str | None) -> StoreReport:
    with open_store(spec) as store:
        if not store.capabilities.can_export:
            raise UsageError(f"{store.name} cannot be read from, so it cannot be inspected")
        info = store.describe()
        if not info.exists:
            raise UsageError(f"{store.label()} does not exist: nothing to inspect")
        report = StoreReport(store.label(), info, namespace)
        reader = ChunkReader(store, namespace, None)
        runner = LocalRunner()
        try:
            while not reader.finished:
                chunk = runner.run(EXTRACT, reader, CHUNK_ROWS)
                report.stats.add(chunk.batch)
                report.null_vectors += chunk.batch.column("vector").null_count
                report.unreadable += len(chunk.rejects)
                room = SAMPLE - len(report.unreadable_sample)
                report.unreadable_sample.extend((r.id, r.reason) for r in chunk.rejects[: max(room, 0)])
        finally:
            reader.close()
    return report


def looked_at(args: argparse.Namespace, extra: list[str]) -> tuple[Path | None, StoreSpec | None]:
    """The FILE or the store (`--from` and its options) the command is given; a VEKTOR database given as FILE
    is that store."""
    if args.source is not None:
        return None, single_side(args.source, parse_pairs(extra))
    if not extra:
        raise UsageError(f"vex {args.command} needs a FILE or --from STORE")
    if len(extra) > 1 or extra[0].startswith("-"):
        raise UsageError(f"unrecognized arguments: {' '.join(extra)} (store options go with --from STORE)")
    file = Path(extra[0])
    if not file.exists():
        raise UsageError(f"file not found: {file}")
    kind = sniff(file)
    if kind.jsonl:
        return file, None
    if kind.vektor_db:
        print(f"{file} is a VEKTOR database: read as --from vektor --db {file}", file=sys.stderr)
        return None, StoreSpec(store="vektor", options={"db": file})
    hint = f": use {kind.store_hint}" if kind.store_hint else ": give a .vmig.jsonl file or --from STORE"
    raise UsageError(f"{file} is {kind.what}, not a .vmig.jsonl file{hint}")


def inspect_or_validate(args: argparse.Namespace, extra: list[str]) -> int:
    file, spec = looked_at(args, extra)
    if spec is not None:
        return inspect_store(args, spec) if args.command == "inspect" else validate_store(args, spec)
    assert file is not None
    if args.namespace is not None:
        raise UsageError("--namespace goes with --from STORE; a file is inspected whole")
    if args.command == "inspect":
        return inspect_file(file, args.json)
    return validate_file(file, args.json, None if args.trust is None else trusted_key(args.trust))


def inspect_store(args: argparse.Namespace, spec: StoreSpec) -> int:
    report = read_store(spec, args.namespace)
    if args.json:
        sys.stdout.write(orjson.dumps(report.as_dict()).decode() + "\n")
        return EXIT_OK if not report.unreadable else EXIT_INTEGRITY
    info = report.info
    scope = f" (namespace {report.namespace})" if report.namespace is not None else ""
    print(f"store     : {report.store}{scope}")
    if info.layout:
        print(f"layout    : {info.layout}")
    print(f"metric    : {info.metric or 'none (the store keeps no distance)'}")
    print(f"records   : {report.stats.record_count} ({report.null_vectors} without a vector, "
          f"{report.unreadable} unreadable)")  # fmt: skip
    for name, table in report.stats.as_dict().items():
        print(f"{name:<10}: " + ", ".join(f"{key}={value}" for key, value in table.items()))
    _print_unreadable(report)
    present = sorted(info.count_by_namespace or {})
    if report.namespace is not None and not report.stats.record_count and present:
        print(f"warning: no record has namespace '{report.namespace}'; the store holds: {', '.join(present)}",
              file=sys.stderr)  # fmt: skip
    return EXIT_OK if not report.unreadable else EXIT_INTEGRITY


def validate_store(args: argparse.Namespace, spec: StoreSpec) -> int:
    """Every record of the store read as an export would read it: those that cannot be are the problems."""
    report = read_store(spec, args.namespace)
    if args.json:
        payload = {
            "store": report.store,
            "valid_records": report.stats.record_count,
            "unreadable": report.unreadable,
            "unreadable_sample": [{"id": i, "reason": r} for i, r in report.unreadable_sample],
        }
        sys.stdout.write(orjson.dumps(payload).decode() + "\n")
    else:
        print(f"{report.store}: {report.stats.record_count} valid records, {report.unreadable} unreadable")
        _print_unreadable(report)
        print("valid" if not report.unreadable else "INVALID")
    return EXIT_OK if not report.unreadable else EXIT_INTEGRITY


def _print_unreadable(report: StoreReport) -> None:
    for record_id, reason in report.unreadable_sample:
        print(f"  {record_id or 'a record'}: {reason}")


def validate_file(file: Path, as_json: bool, trusted: str | None = None) -> int:
    report = scan_file(file)
    signature, problem = signature_status(file, trusted, report.checksum)
    if problem is not None:
        report.problems.append(problem)
    if as_json:
        payload = {
            "file": str(file),
            "valid_records": report.stats.record_count,
            "duplicate_ids": report.duplicates,
            "damaged_lines": report.rejected,
            "sidecar": sidecar_status(report),
            "signature": signature,
            "problems": report.problems,
            "rejects_file": str(report.rejects_file) if report.rejects_file else None,
        }
        sys.stdout.write(orjson.dumps(payload).decode() + "\n")
    else:
        print(
            f"{file}: {report.stats.record_count} valid records, {report.duplicates} duplicate ids, "
            f"{report.rejected} damaged lines"
        )
        print(f"sidecar: {sidecar_status(report)}")
        print(f"signature: {signature}")
        for line, reason in report.reject_sample:
            print(f"  line {line}: {reason}")
        if report.rejects_file:
            print(f"rejects written to {report.rejects_file}")
        for problem in report.problems:
            print(f"problem: {problem}", file=sys.stderr)
        print("valid" if report.ok else "INVALID")
    return EXIT_OK if report.ok else EXIT_INTEGRITY


def inspect_file(file: Path, as_json: bool) -> int:
    report = scan_file(file, write_rejects=False)
    counts = report.stats.as_dict()
    agrees = report.sidecar is None or (report.sidecar.checksum == report.checksum and report.count_agrees)
    code = EXIT_OK if agrees and not report.sidecar_problem else EXIT_INTEGRITY  # the sidecar disagrees: 3
    if as_json:
        payload: dict[str, Any] = {
            "file": str(file),
            "records": report.stats.record_count,
            "duplicate_ids": report.duplicates,
            "damaged_lines": report.rejected,
            "counts": counts,
            "checksum": report.checksum,
            "sidecar": report.sidecar.model_dump(mode="json", exclude_none=True) if report.sidecar else None,
            "sidecar_status": sidecar_status(report),
        }
        sys.stdout.write(orjson.dumps(payload).decode() + "\n")
        return code
    print(f"file      : {file}")
    print(f"records   : {report.stats.record_count} ({report.duplicates} duplicate ids, {report.rejected} damaged)")
    for name, table in counts.items():
        print(f"{name:<10}: " + ", ".join(f"{key}={value}" for key, value in table.items()))
    print(f"checksum  : {report.checksum}")
    print(f"sidecar   : {sidecar_status(report)}")
    if report.sidecar is not None:
        side = report.sidecar
        print(f"  exported_at={side.exported_at} source_store={side.source_store} record_count={side.record_count}")
        for entry in side.imports:
            print(f"  imported to {entry.target} at {entry.imported_at}: {entry.upserted} upserted of {entry.total}")
    return code
