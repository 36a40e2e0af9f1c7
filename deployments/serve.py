"""Serve vex's flows so runs can be started (and scheduled) from the Prefect UI, with a form each.

    python -m deployments.serve                         # export, import, migrate, sync, verify, on demand
    python -m deployments.serve --job sync-job.json     # ... and a scheduled run described by a job file

A job file names the flow, its schedule and its parameters, as the run form would fill them (secrets by the
name of a Prefect Secret block or an environment variable, never their value):

    {"flow": "sync", "cron": "*/15 * * * *",
     "parameters": {"source": {"store": "vektor", "db": "memory.db"},
                    "target": {"store": "qdrant", "url": "http://127.0.0.1:6333", "api_key_secret": "QDRANT_KEY"},
                    "delete": true}}

Lives outside `flows/`: under `python -m flows.x` a flow's module is `__main__`, which a deployment entry point
must not be. `prefect.yaml` deploys the same flows to a process work pool instead (`prefect deploy --all`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deployments.runs import FORMS


class Job(BaseModel):
    """A scheduled run: which flow, when, with what."""

    model_config = ConfigDict(extra="forbid")
    flow: str = Field(description="export, import, migrate, sync or verify")
    cron: str = Field(description="when it runs, as cron (e.g. '*/15 * * * *')")
    name: str | None = Field(default=None, description="the deployment's name (default: vex-<flow>-scheduled)")
    parameters: dict[str, Any] = Field(description="the run form's fields")


def read_job(path: Path) -> Job:
    """A job file, checked against its flow's form before anything is served."""
    try:
        job = Job.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as exc:
        raise SystemExit(f"{path}: not a job file ({_first_problem(exc)})") from None
    form = FORMS.get(job.flow)
    if form is None:
        raise SystemExit(f"{path}: flow '{job.flow}' is not one of {', '.join(FORMS)}")
    try:
        form.validate_parameters(job.parameters)
    except Exception as exc:  # noqa: BLE001 - Prefect wraps pydantic's error; its text is the user's
        raise SystemExit(f"{path}: the parameters do not fit the {job.flow} form ({_first_problem(exc)})") from None
    return job


def _first_problem(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def build_deployments(jobs: list[Job] | None = None) -> list[Any]:
    """A deployment per flow, run on demand; and one per job, on its schedule."""
    deployments = [form.to_deployment(name=f"vex-{name}", tags=["vex"]) for name, form in FORMS.items()]
    for job in jobs or []:
        deployments.append(
            FORMS[job.flow].to_deployment(
                name=job.name or f"vex-{job.flow}-scheduled", tags=["vex"], cron=job.cron, parameters=job.parameters
            )
        )
    return deployments


def main() -> None:
    from prefect import serve

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--job", type=Path, action="append", default=[], help="a job file (JSON); repeatable")
    args = parser.parse_args()
    deployments = build_deployments([read_job(path) for path in args.job])
    print(json.dumps({"serving": [deployment.name for deployment in deployments]}), flush=True)
    serve(*deployments)


if __name__ == "__main__":
    main()
