"""Verify flow: are two stores the same, record by record? `python -m flows.verify` takes `vex verify`'s flags."""

from __future__ import annotations

import sys

from prefect import flow
from prefect.artifacts import create_table_artifact
from prefect.client.schemas.objects import State

from engine.jobs import verify_job
from engine.params import VerifyParams
from engine.pipeline import TERMINAL_PROGRESS
from engine.verify import VerifyReport
from flows._observe import final_state
from tasks import PrefectRunner


@flow(name="vex-verify", validate_parameters=True)
def verify_flow(params: VerifyParams) -> VerifyReport | State:
    report = verify_job(params, PrefectRunner(), TERMINAL_PROGRESS.get())
    rows = [{"measure": label, "value": value} for label, value in report.rows()]
    rows.append({"measure": "result", "value": "match" if report.ok else "MISMATCH"})
    create_table_artifact(
        table=rows, key="vex-verify-report", description=f"verify: {report.source} -> {report.target}"
    )
    return final_state(report, [] if report.ok else ["the stores differ"])


if __name__ == "__main__":
    from engine.commandline import main

    sys.exit(main(["verify", *sys.argv[1:]], lambda command: verify_flow, whole_process=True))
