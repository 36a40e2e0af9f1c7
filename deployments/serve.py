"""Serve the vex flows so runs can be triggered (and scheduled) from the Prefect UI.

    python -m deployments.serve                       # export, import and migrate, on demand
    python -m deployments.serve --migrate-cron "0 * * * *" --migrate-params job.json

Lives outside `flows/`: under `python -m flows.x` a flow's module is `__main__`,
which a deployment entry point must not be.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from flows.export import export_flow
from flows.import_file import import_flow
from flows.migrate import migrate_flow


def build_deployments(migrate_cron: str | None = None, migrate_params: dict[str, Any] | None = None) -> list[Any]:
    """The runner deployments: parameter forms come from the flows' pydantic models."""
    scheduled: dict[str, Any] = {}
    if migrate_cron:
        if not migrate_params:
            raise SystemExit("--migrate-cron needs --migrate-params: a scheduled run has no one to fill the form")
        scheduled = {"cron": migrate_cron, "parameters": {"params": migrate_params}}
    return [
        export_flow.to_deployment(name="vex-export", tags=["vex"]),
        import_flow.to_deployment(name="vex-import", tags=["vex"]),
        migrate_flow.to_deployment(name="vex-migrate", tags=["vex"], **scheduled),
    ]


def main() -> None:
    from prefect import serve

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--migrate-cron", help="cron schedule for a recurring migrate (sync)")
    parser.add_argument("--migrate-params", type=Path, help="JSON file with the migrate job's parameters")
    args = parser.parse_args()
    params = json.loads(args.migrate_params.read_text()) if args.migrate_params else None
    serve(*build_deployments(args.migrate_cron, params))


if __name__ == "__main__":
    main()
