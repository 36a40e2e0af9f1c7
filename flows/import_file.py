"""Import flow: `.vmig.jsonl` -> store, verified before the first write.

Named `import_file` because `import` is a Python keyword; `python -m flows.import_file`
takes `vex import`'s flags.
"""

from __future__ import annotations

import sys

from prefect import flow
from prefect.client.schemas.objects import State

from engine.jobs import import_job
from engine.params import ImportParams
from engine.pipeline import both, terminal_progress
from engine.summary import RunSummary
from flows._observe import ProgressArtifact, final_state, publish_summary
from tasks import PrefectRunner


@flow(name="vex-import", validate_parameters=True)
def import_flow(params: ImportParams) -> RunSummary | State:
    """Load a `.vmig.jsonl` file into a store, checked against its sidecar before the first write; re-embed on
    the way with a model; every record accounted for (upserted, skipped by reason, failed with the store's
    reason)."""
    with ProgressArtifact("import") as progress:
        summary = import_job(params, PrefectRunner(), both(terminal_progress(), progress))
    publish_summary(summary)
    return final_state(summary, summary.problems())


if __name__ == "__main__":
    from engine.commandline import main

    sys.exit(main(["import", *sys.argv[1:]], lambda command: import_flow, whole_process=True))
