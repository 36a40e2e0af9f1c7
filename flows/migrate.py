"""Migrate flow: store -> store, no intermediate file. `python -m flows.migrate` takes `vex migrate`'s flags."""

from __future__ import annotations

import sys

from prefect import flow
from prefect.client.schemas.objects import State

from engine.jobs import migrate_job
from engine.params import MigrateParams
from engine.pipeline import both, terminal_progress
from engine.summary import RunSummary
from flows._observe import ProgressArtifact, final_state, publish_summary, publish_verify
from tasks import PrefectRunner


@flow(name="vex-migrate", validate_parameters=True)
def migrate_flow(params: MigrateParams) -> RunSummary | State:
    """Copy every record of one store into another, with no file between them; re-embed on the way with a
    model; compare the two record by record at the end with verify."""
    with ProgressArtifact("migrate") as progress:
        summary = migrate_job(params, PrefectRunner(), both(terminal_progress(), progress))
    publish_summary(summary)
    if summary.verify is not None:
        publish_verify(summary.verify)
    return final_state(summary, summary.problems())


if __name__ == "__main__":
    from engine.commandline import main

    sys.exit(main(["migrate", *sys.argv[1:]], lambda command: migrate_flow, whole_process=True))
