"""Verify flow: are two stores the same, record by record? `python -m flows.verify` takes `vex verify`'s flags."""

from __future__ import annotations

import sys

from prefect import flow
from prefect.client.schemas.objects import State

from engine.jobs import verify_job
from engine.params import VerifyParams
from engine.pipeline import terminal_progress
from engine.verify import VerifyReport
from flows._observe import final_state, publish_verify
from tasks import PrefectRunner


@flow(name="vex-verify", validate_parameters=True)
def verify_flow(params: VerifyParams) -> VerifyReport | State:
    """Compare two stores record by record: matched, missing, extra and mismatched records, the first ids of
    each in an artifact; the run ends Failed when they differ."""
    report = verify_job(params, PrefectRunner(), terminal_progress())
    publish_verify(report)
    return final_state(report, [] if report.ok else [f"the stores differ: {report.difference()}"])


if __name__ == "__main__":
    from engine.commandline import main

    sys.exit(main(["verify", *sys.argv[1:]], lambda command: verify_flow, whole_process=True))
