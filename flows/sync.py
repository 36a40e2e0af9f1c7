"""Sync flow: store -> store again, writing only what is new or changed since the last run, deleting what left
the source with `delete`. `python -m flows.sync` takes `vex sync`'s flags; a deployment runs it on a schedule."""

from __future__ import annotations

import sys

from prefect import flow
from prefect.client.schemas.objects import State

from engine.jobs import sync_job
from engine.params import SyncParams
from engine.pipeline import both, terminal_progress
from engine.summary import RunSummary
from flows._observe import ProgressArtifact, final_state, publish_summary, publish_verify
from tasks import PrefectRunner


@flow(name="vex-sync", validate_parameters=True)
def sync_flow(params: SyncParams) -> RunSummary | State:
    """Keep a target in step with a source: the first run copies every record; later runs write the records
    that are new or changed since the last successful run and, with `delete`, delete those that left the source.
    The state (each record's fingerprint) lives in a file per source/target pair."""
    with ProgressArtifact("sync") as progress:
        summary = sync_job(params, PrefectRunner(), both(terminal_progress(), progress))
    publish_summary(summary)
    if summary.verify is not None:
        publish_verify(summary.verify)
    return final_state(summary, summary.problems())


if __name__ == "__main__":
    from engine.commandline import main

    sys.exit(main(["sync", *sys.argv[1:]], lambda command: sync_flow, whole_process=True))
