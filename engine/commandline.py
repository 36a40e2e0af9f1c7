"""One command line run to its exit code: `vex ...` and `python -m flows.<name> ...` alike.

The caller says which Prefect flow runs a command (the flows live above this layer) and
how progress is shown (a terminal bar for `vex`). Everything else is here: the run in
local or Prefect mode, the output, and every way a run can end turned into one line and
an exit code (section 6 of the design), never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import orjson

from engine.arguments import Request, build_parser, request
from engine.interrupt import what_is_left
from engine.pipeline import TERMINAL_PROGRESS, ProgressFn
from engine.redact import redact
from engine.report_text import print_summary, print_verify
from engine.stopping import stop_cleanly, stopped_by
from engine.summary import RunEndedBadly
from vmig.errors import EXIT_INTEGRITY, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, VexError

FlowFor = Callable[[str], Any]
"""The Prefect flow that runs a command ("export", "import", "migrate", "sync", "verify")."""
ProgressFor = Callable[[str, bool], AbstractContextManager[ProgressFn | None]]
"""A progress display for a label, shown or not."""


def _no_progress(label: str, shown: bool) -> AbstractContextManager[ProgressFn | None]:
    return nullcontext(None)


def main(
    argv: list[str] | None,
    flow_for: FlowFor,
    progress_for: ProgressFor = _no_progress,
    whole_process: bool = False,
) -> int:
    """Run one command; `whole_process` when the process exists for it (a console script, `python -m`)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.version:
        from vmig.sidecar import tool_version

        print(f"vex {tool_version()}")
        return EXIT_OK
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if extra and (args.command in ("stores", "sign") or (args.command == "adapter" and not _names_a_store(args))):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    with stop_cleanly(restore=not whole_process):
        return _ended(lambda: _run(args, extra, flow_for, progress_for))


def _names_a_store(args: argparse.Namespace) -> bool:
    """`vex adapter fit --from STORE` takes that store's options; a file or the corpus takes none."""
    from engine.stores import store_names

    return getattr(args, "source", None) in store_names()


def _run(args: argparse.Namespace, extra: list[str], flow_for: FlowFor, progress_for: ProgressFor) -> int:
    if args.command in ("validate", "inspect"):
        from engine.inspection import inspect_or_validate

        return inspect_or_validate(args, extra)
    if args.command == "sign":
        from engine.signing_command import sign_command

        return sign_command(args)
    if args.command == "stores":
        return _stores(args)
    if args.command == "adapter":
        from engine.adapter_command import fit_command

        return fit_command(args, extra)
    wanted = request(args, extra)
    shown = not wanted.quiet and not wanted.json and sys.stderr.isatty()
    with progress_for(wanted.label, shown) as progress:
        result = _run_request(wanted, flow_for, progress)
    if wanted.command == "verify":
        if wanted.json:
            sys.stdout.write(orjson.dumps(result.as_dict()).decode() + "\n")
        else:
            print_verify(result, wanted.params.report)
        return EXIT_OK if result.ok else EXIT_INTEGRITY
    if wanted.json:
        sys.stdout.write(orjson.dumps(result.as_dict()).decode() + "\n")
        for warning in result.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    else:
        print_summary(result)
    return int(result.exit_code())


def _run_request(wanted: Request, flow_for: FlowFor, progress: ProgressFn | None) -> Any:
    """The command in Prefect mode (the flow, tracked) or in local mode (the same steps, called directly)."""
    if wanted.prefect:
        TERMINAL_PROGRESS.set(progress)
        workers = getattr(wanted.params, "workers", None)
        scaled = workers is not None or getattr(wanted.params, "dask_address", None) is not None
        if scaled:
            from engine.scaleout import check_scheduler, refuse_what_cannot_scale

            refuse_what_cannot_scale(wanted.params)
            check_scheduler(wanted.params.dask_address)
        flow = flow_for(wanted.command)
        if scaled:
            from tasks.dask import on_dask

            flow = on_dask(flow, workers or 1, wanted.params.dask_address)
        quiet_prefect_console()
        return run_tracked(flow, wanted.params)
    from engine.jobs import export_job, import_job, migrate_job, sync_job, verify_job
    from engine.local import LocalRunner

    jobs: dict[str, Callable[..., Any]] = {
        "export": export_job,
        "import": import_job,
        "migrate": migrate_job,
        "sync": sync_job,
        "verify": verify_job,
    }
    return jobs[wanted.command](wanted.params, LocalRunner(), progress)


class _RunLinkOnly(logging.Filter):
    """Of Prefect's console lines, the link to the flow run: where its log and the traceback are."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage().startswith("View at ")


def quiet_prefect_console() -> None:
    """Prefect mode reads like local mode on a terminal: vex's summary or its one error line, and the link to
    the flow run. Prefect's other console lines (each failure with its traceback, once per retry and again for
    the flow) still go to the run's log in the Prefect API; `VEX_DEBUG=1` keeps them on the terminal too.

    Call it after Prefect is imported: its console handlers here get the filter, and the environment reaches
    the temporary API server it starts as a subprocess, whose telemetry heartbeat is turned off (on its SQLite
    database it logs 'database is locked' tracebacks)."""
    if os.environ.get("VEX_DEBUG"):
        return
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    loggers = [
        logging.getLogger(),
        *(x for x in logging.Logger.manager.loggerDict.values() if isinstance(x, logging.Logger)),
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if type(handler).__name__ == "PrefectConsoleHandler" and not any(
                isinstance(f, _RunLinkOnly) for f in handler.filters
            ):
                handler.addFilter(_RunLinkOnly())


def run_tracked(flow: Any, params: Any) -> Any:
    """Run a flow and return its result, also from a Failed state; a raised error is raised here as it was."""
    with _no_heartbeat_unless_asked():
        state = flow(params, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, RunEndedBadly):
        return result.result
    if isinstance(result, BaseException):
        raise result
    return result


@contextmanager
def _no_heartbeat_unless_asked() -> Iterator[None]:
    """A flow run the command line starts sends no heartbeats unless PREFECT_FLOWS_HEARTBEAT_FREQUENCY asks.

    Prefect sends them (every 180 s by default) from a thread that sleeps a second at a time and is joined when
    the run ends: measured here, that join added 0 to 1 s to every run, a quarter of what tracking cost a
    100,000-record export. Heartbeats are for runs nobody watches (an automation can mark a run that stops
    sending them Crashed); this run ends with the command in front of the person. Deployment runs, which a
    worker starts, keep Prefect's setting."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, get_current_settings, temporary_settings

    if "heartbeat_frequency" in get_current_settings().flows.model_fields_set:
        yield
        return
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def _ended(run: Callable[[], int]) -> int:
    """The command, with every way it can end turned into one line and an exit code."""
    try:
        return run()
    except VexError as exc:
        hint = "; the same command is safe to re-run" if exc.exit_code == EXIT_UNREACHABLE else ""
        print(f"vex: error: {redact(str(exc))}{hint}", file=sys.stderr)
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
        print(f"vex: error: {redact(where)}{exc.strerror or str(exc) or 'input/output error'}", file=sys.stderr)
        return EXIT_USAGE if usage else 1
    except Exception as exc:  # noqa: BLE001 - the last line of defence against a traceback
        if os.environ.get("VEX_DEBUG"):
            traceback.print_exc()
        what = redact(str(exc)) or "no message"
        print(f"vex: unexpected error: {what} (a bug in vex: VEX_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1


def _stores(args: argparse.Namespace) -> int:
    from engine.stores import all_entries, store_entry
    from engine.stores_text import print_store, print_stores

    entries = [store_entry(args.name)] if args.name else all_entries()
    if args.json:
        payload: Any = entries[0].as_dict() if args.name else [entry.as_dict() for entry in entries]
        sys.stdout.write(orjson.dumps(payload).decode() + "\n")
    elif args.name:
        print_store(entries[0])
    else:
        print_stores(entries)
    return EXIT_OK
