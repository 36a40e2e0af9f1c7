"""Verify: compare two stores record by record (one task: it streams both stores once)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NONE

from engine.jobs import verify_job
from engine.params import VerifyParams
from engine.pipeline import ProgressFn
from engine.verify import VerifyReport
from tasks._policy import RETRY_OPTIONS


@task(name="verify", cache_policy=NONE, **RETRY_OPTIONS)
def verify(params: VerifyParams, progress: ProgressFn | None = None) -> VerifyReport:
    return verify_job(params, progress)
