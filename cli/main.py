"""`vex`: which Prefect flow runs each command, and a progress bar on a terminal.

Flags, runs in local or Prefect mode, output and exit codes are `engine.commandline`, which
`python -m flows.<name>` shares. Run mode: local (the same steps, no Prefect API,
sub-second start) unless `--prefect` is given or PREFECT_API_URL is set.
"""

from __future__ import annotations

import sys
from typing import Any

from cli.progress import TerminalProgress
from engine import commandline


def flow_for(command: str) -> Any:
    """The flow of a command, imported when the run is tracked (local mode never loads Prefect)."""
    if command == "export":
        from flows.export import export_flow

        return export_flow
    if command == "import":
        from flows.import_file import import_flow

        return import_flow
    if command == "migrate":
        from flows.migrate import migrate_flow

        return migrate_flow
    if command == "sync":
        from flows.sync import sync_flow

        return sync_flow
    from flows.verify import verify_flow

    return verify_flow


def main(argv: list[str] | None = None, whole_process: bool = False) -> int:
    """Run one command; `whole_process` when the process exists for it (the console script)."""
    return commandline.main(argv, flow_for, TerminalProgress, whole_process)


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main(whole_process=True))


if __name__ == "__main__":
    entry()
