"""`--workers`: the flow's task runner on Dask, a local cluster or the scheduler `--dask-address` names."""

from __future__ import annotations

from typing import Any

from engine.scaleout import NEEDS_DASK
from vmig.errors import UsageError


def on_dask(flow: Any, workers: int, address: str | None) -> Any:
    """The flow with a Dask task runner: partitions run in worker processes, one thread each. The caller has
    checked that a scheduler at `address` answers (`engine.scaleout.check_scheduler`)."""
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise UsageError(NEEDS_DASK) from None
    if address is not None:
        return flow.with_options(task_runner=DaskTaskRunner(address=address))
    cluster = {"n_workers": workers, "threads_per_worker": 1, "processes": True, "host": "127.0.0.1",
               "dashboard_address": None}  # fmt: skip
    return flow.with_options(task_runner=DaskTaskRunner(cluster_kwargs=cluster))
