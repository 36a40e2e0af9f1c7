"""Export flow: store -> `.vmig.jsonl` + sidecar. `python -m flows.export` takes `vex export`'s flags."""

from __future__ import annotations

import sys

from prefect import flow
from prefect.client.schemas.objects import State

from engine.jobs import export_job
from engine.params import ExportParams
from engine.pipeline import both, terminal_progress
from engine.summary import RunSummary
from flows._observe import ProgressArtifact, final_state, publish_summary
from tasks import PrefectRunner


@flow(name="vex-export", validate_parameters=True)
def export_flow(params: ExportParams) -> RunSummary | State:
    """Export a store to a `.vmig.jsonl` file and its sidecar (checksum, counts): every record, each field kept,
    damaged source records set aside with their reason."""
    with ProgressArtifact("export") as progress:
        summary = export_job(params, PrefectRunner(), both(terminal_progress(), progress))
    publish_summary(summary)
    return final_state(summary, summary.problems())


if __name__ == "__main__":
    from engine.commandline import main

    sys.exit(main(["export", *sys.argv[1:]], lambda command: export_flow, whole_process=True))
