"""`vex`: maps commands and flags to jobs and flows; holds no business logic.

Run mode: local (the same steps, no Prefect API, sub-second start) unless
`--prefect` is given or PREFECT_API_URL is set, in which case the Prefect
flows run and are tracked by that API.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from cli.stopping import stop_cleanly, stopped_by
from vmig.errors import EXIT_INTEGRITY, EXIT_OK, EXIT_USAGE, UsageError, VexError

PROG = "vex"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--prefect", action="store_true", help="run as tracked Prefect flow (also: PREFECT_API_URL set)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")


def _job(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--namespace", help="only records of this namespace")
    parser.add_argument("--limit", type=int, help="stop after N records")
    parser.add_argument("--chunk-rows", type=int, default=10_000, help="records per task run (default 10000)")
    parser.add_argument("--restart", action="store_true", help="ignore an interrupted run's checkpoint, start over")
    _common(parser)


def build_parser() -> argparse.ArgumentParser:
    store_help = (
        "store options: --db FILE (vektor), --path (jsonl file; qdrant/chroma directory), --url, --collection, "
        "--table, --api-key, --index, --host, --metric; in migrate, --source-X/--target-X pick a side"
    )
    parser = argparse.ArgumentParser(prog=PROG, description="Move vector data between stores without losing a record.")
    parser.add_argument("--version", action="store_true", help="print the version")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    export = sub.add_parser("export", help="store -> .vmig.jsonl + sidecar", epilog=store_help, allow_abbrev=False)
    export.add_argument("--from", dest="source", required=True, metavar="STORE")
    export.add_argument("--output", required=True, metavar="FILE", help=".vmig.jsonl, .gz or .zst")
    export.add_argument("--force", action="store_true", help="replace an existing output that is not a .vmig file")
    _job(export)

    imp = sub.add_parser("import", help=".vmig.jsonl -> store", epilog=store_help, allow_abbrev=False)
    imp.add_argument("--from", dest="input", required=True, metavar="FILE")
    imp.add_argument("--to", dest="target", required=True, metavar="STORE")
    imp.add_argument("--no-verify", action="store_true", help="skip the checksum and count check (says so)")
    imp.add_argument("--dims", type=int, help="dimension of a new target (default: from the data)")
    _job(imp)

    migrate = sub.add_parser(
        "migrate", help="store -> store, no intermediate file", epilog=store_help, allow_abbrev=False
    )
    migrate.add_argument("--from", dest="source", required=True, metavar="STORE")
    migrate.add_argument("--to", dest="target", required=True, metavar="STORE")
    migrate.add_argument("--dims", type=int, help="dimension of a new target (default: from the data)")
    migrate.add_argument("--rejects", metavar="FILE", help="where unreadable source records go")
    migrate.add_argument("--verify", action="store_true", help="compare source and target record by record at the end")
    _job(migrate)

    verify = sub.add_parser("verify", help="compare two stores record by record", epilog=store_help, allow_abbrev=False)
    verify.add_argument("--from", dest="source", required=True, metavar="STORE")
    verify.add_argument("--to", dest="target", required=True, metavar="STORE")
    verify.add_argument("--namespace", help="only records of this namespace")
    verify.add_argument("--sample", type=int, help="compare a random sample of N records (default: all)")
    verify.add_argument("--seed", type=int, default=0, help="seed of the sample")
    verify.add_argument(
        "--report", metavar="FILE", default="vex-verify.json", help="JSON report (default vex-verify.json)"
    )
    _common(verify)

    validate = sub.add_parser("validate", help="check a .vmig.jsonl against its sidecar and the format")
    validate.add_argument("file", type=Path)
    validate.add_argument("--json", action="store_true")

    inspect = sub.add_parser("inspect", help="counts by namespace/model/dims, sidecar, checksum status")
    inspect.add_argument("file", type=Path)
    inspect.add_argument("--json", action="store_true")
    return parser


def _use_prefect(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "prefect", False) or os.environ.get("PREFECT_API_URL"))


def _register_secrets(pairs: dict[str, Any]) -> None:
    from engine.redact import register_secret, register_url

    for key, value in pairs.items():
        if not isinstance(value, str):
            continue
        if key.endswith(("api_key", "password")):
            register_secret(value)
        if key.endswith(("url", "host", "dsn")):
            register_url(value)


def _file_flag(flag: str, text: str) -> Path:
    """A file named on the command line; an empty name is a usage error, not the current folder."""
    if not text.strip():
        raise UsageError(f"{flag} needs a file name")
    return Path(text)


def _params(model: Any, **values: Any) -> Any:
    """Job parameters from flags; a value out of range is one line naming the flag (not pydantic's report)."""
    from pydantic import ValidationError

    try:
        return model(**values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            flag = "--" + str(error["loc"][0]).replace("_", "-") if error["loc"] else "a flag"
            problems.append(f"{flag}: {error['msg'].lower()} (got {error.get('input')!r})")
        raise UsageError("; ".join(problems)) from None


def _run_job(args: argparse.Namespace, extra: list[str]) -> int:
    from cli.render import TerminalProgress, print_summary
    from cli.store_args import parse_pairs, single_side, two_sides
    from engine.params import ExportParams, ImportParams, MigrateParams

    pairs = parse_pairs(extra)
    _register_secrets(pairs)
    common = {"namespace": args.namespace, "limit": args.limit, "chunk_rows": args.chunk_rows, "restart": args.restart}
    params: Any
    if args.command == "export":
        output = _file_flag("--output", args.output)
        source = single_side(args.source, pairs)
        params = _params(ExportParams, source=source, output=output, force=args.force, **common)
        label = output.name
    elif args.command == "import":
        params = _params(
            ImportParams,
            input=_file_flag("--from", args.input),
            target=single_side(args.target, pairs),
            check_sidecar=not args.no_verify,
            dims=args.dims,
            **common,
        )
        label = args.target
    else:
        source, target = two_sides(args.source, args.target, pairs)
        rejects = None if args.rejects is None else _file_flag("--rejects", args.rejects)
        params = _params(
            MigrateParams, source=source, target=target, dims=args.dims, rejects=rejects, verify=args.verify, **common
        )
        label = args.target
    show_bar = not args.quiet and not args.json and sys.stderr.isatty()
    with TerminalProgress(label, show_bar) as bar:
        summary = _dispatch(args.command, params, bar, _use_prefect(args))
    if args.json:
        sys.stdout.write(orjson.dumps(summary.as_dict()).decode() + "\n")
        for warning in summary.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    else:
        print_summary(summary)
    return summary.exit_code()


def _dispatch(command: str, params: Any, bar: Callable[[int, int | None], None], prefect: bool) -> Any:
    if prefect:
        from engine.pipeline import TERMINAL_PROGRESS
        from flows._observe import run_tracked

        TERMINAL_PROGRESS.set(bar)
        if command == "export":
            from flows.export import export_flow

            return run_tracked(export_flow, params)
        if command == "import":
            from flows.import_file import import_flow

            return run_tracked(import_flow, params)
        from flows.migrate import migrate_flow

        return run_tracked(migrate_flow, params)
    from engine.jobs import export_job, import_job, migrate_job
    from engine.local import LocalRunner

    if command == "export":
        return export_job(params, LocalRunner(), bar)
    if command == "import":
        return import_job(params, LocalRunner(), bar)
    return migrate_job(params, LocalRunner(), bar)


def _verify(args: argparse.Namespace, extra: list[str]) -> int:
    from cli.render import TerminalProgress, print_verify
    from cli.store_args import parse_pairs, two_sides
    from engine.params import VerifyParams

    pairs = parse_pairs(extra)
    _register_secrets(pairs)
    source, target = two_sides(args.source, args.target, pairs)
    params = _params(
        VerifyParams,
        source=source,
        target=target,
        namespace=args.namespace,
        sample=args.sample,
        seed=args.seed,
        report=_file_flag("--report", args.report),
    )
    show_bar = not args.quiet and not args.json and sys.stderr.isatty()
    with TerminalProgress(f"verify {args.target}", show_bar) as bar:
        if _use_prefect(args):
            from engine.pipeline import TERMINAL_PROGRESS
            from flows._observe import run_tracked
            from flows.verify import verify_flow

            TERMINAL_PROGRESS.set(bar)
            report = run_tracked(verify_flow, params)
        else:
            from engine.jobs import verify_job
            from engine.local import LocalRunner

            report = verify_job(params, LocalRunner(), bar)
    if args.json:
        sys.stdout.write(orjson.dumps(report.as_dict()).decode() + "\n")
    else:
        print_verify(report, params.report)
    return EXIT_OK if report.ok else EXIT_INTEGRITY


def _validate(args: argparse.Namespace) -> int:
    from vmig.validate import scan_file, sidecar_status

    if not args.file.exists():
        raise UsageError(f"file not found: {args.file}")
    report = scan_file(args.file)
    if args.json:
        payload = {
            "file": str(args.file),
            "valid_records": report.stats.record_count,
            "duplicate_ids": report.duplicates,
            "damaged_lines": report.rejected,
            "sidecar": sidecar_status(report),
            "problems": report.problems,
            "rejects_file": str(report.rejects_file) if report.rejects_file else None,
        }
        sys.stdout.write(orjson.dumps(payload).decode() + "\n")
    else:
        print(
            f"{args.file}: {report.stats.record_count} valid records, {report.duplicates} duplicate ids, "
            f"{report.rejected} damaged lines"
        )
        print(f"sidecar: {sidecar_status(report)}")
        for line, reason in report.reject_sample:
            print(f"  line {line}: {reason}")
        if report.rejects_file:
            print(f"rejects written to {report.rejects_file}")
        for problem in report.problems:
            print(f"problem: {problem}", file=sys.stderr)
        print("valid" if report.ok else "INVALID")
    return EXIT_OK if report.ok else EXIT_INTEGRITY


def _inspect(args: argparse.Namespace) -> int:
    from vmig.validate import scan_file, sidecar_status

    if not args.file.exists():
        raise UsageError(f"file not found: {args.file}")
    report = scan_file(args.file, write_rejects=False)
    counts = report.stats.as_dict()
    if args.json:
        payload: dict[str, Any] = {
            "file": str(args.file),
            "records": report.stats.record_count,
            "duplicate_ids": report.duplicates,
            "damaged_lines": report.rejected,
            "counts": counts,
            "checksum": report.checksum,
            "sidecar": report.sidecar.model_dump(mode="json", exclude_none=True) if report.sidecar else None,
            "sidecar_status": sidecar_status(report),
        }
        sys.stdout.write(orjson.dumps(payload).decode() + "\n")
        return _inspect_exit(report)
    print(f"file      : {args.file}")
    print(
        f"records   : {report.stats.record_count} ({report.duplicates} duplicate ids, {report.rejected} damaged lines)"
    )
    for name, table in counts.items():
        print(f"{name:<10}: " + ", ".join(f"{key}={value}" for key, value in table.items()))
    print(f"checksum  : {report.checksum}")
    print(f"sidecar   : {sidecar_status(report)}")
    if report.sidecar is not None:
        side = report.sidecar
        print(f"  exported_at={side.exported_at} source_store={side.source_store} record_count={side.record_count}")
        for entry in side.imports:
            print(f"  imported to {entry.target} at {entry.imported_at}: {entry.upserted} upserted of {entry.total}")
    return _inspect_exit(report)


def _inspect_exit(report: Any) -> int:
    """Inspect describes; it fails (3) only where the sidecar cannot be read or disagrees with the file."""
    sidecar = report.sidecar
    if report.sidecar_problem or (
        sidecar is not None and (sidecar.checksum != report.checksum or not report.count_agrees)
    ):
        return EXIT_INTEGRITY
    return EXIT_OK


def main(argv: list[str] | None = None, whole_process: bool = False) -> int:
    """Run one command; `whole_process` when the process exists for it (the console script, `python -m`)."""

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.version:
        from vmig.sidecar import tool_version

        print(f"vex {tool_version()}")
        return EXIT_OK
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if extra and args.command in ("validate", "inspect"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    with stop_cleanly(restore=not whole_process):
        return _run_command(args, extra)


def _run_command(args: argparse.Namespace, extra: list[str]) -> int:
    """The command, with every way it can end turned into one line and an exit code."""
    from engine.interrupt import what_is_left
    from engine.redact import redact

    try:
        if args.command == "validate":
            return _validate(args)
        if args.command == "inspect":
            return _inspect(args)
        if args.command == "verify":
            return _verify(args, extra)
        return _run_job(args, extra)
    except VexError as exc:
        print(f"vex: error: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        number = stopped_by()
        stopped = "interrupted" if number == signal.SIGINT else "terminated"
        print(f"vex: {stopped}; {redact(what_is_left())}", file=sys.stderr)
        return 128 + number
    except OSError as exc:
        # Files the command names and cannot use: one line naming the file, not a traceback.
        usage = isinstance(exc, (PermissionError, FileNotFoundError, IsADirectoryError, NotADirectoryError))
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"vex: error: {redact(where)}{exc.strerror or type(exc).__name__}", file=sys.stderr)
        return EXIT_USAGE if usage else 1
    except Exception as exc:  # noqa: BLE001 - the last line of defence against a traceback
        if os.environ.get("VEX_DEBUG"):
            traceback.print_exc()
        print(
            f"vex: unexpected error: {type(exc).__name__}: {redact(str(exc))} (VEX_DEBUG=1 shows a traceback)",
            file=sys.stderr,
        )
        return 1


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main(whole_process=True))


if __name__ == "__main__":
    entry()
