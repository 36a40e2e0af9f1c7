"""The tracked Prefect flows: same results as local mode, task runs, artifacts, retries."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from connectors.base import LoadResult, StoreOptions
from connectors.vektor import VektorConnector, VektorOptions
from engine.jobs import export_job
from engine.local import LocalRunner
from engine.params import ExportParams, ImportParams, MigrateParams, StoreSpec
from engine.pipeline import Transfer, run_transfer
from engine.summary import RunSummary
from tests.records import read_vmig
from tests.vektor_layouts import make_layout1
from vmig.errors import StoreError, TransientError

DEMO_DB = Path(__file__).resolve().parent.parent / "demo" / "memory.db"


class FlakyVektor(VektorConnector):
    """A real VEKTOR target whose first loads fail as a network store's would."""

    def __init__(self, options: StoreOptions, fail_times: int, error: type[Exception]) -> None:
        super().__init__(options)
        self.fail_times = fail_times
        self.error = error
        self.attempts = 0

    def load(self, batch: pa.RecordBatch) -> LoadResult:
        self.attempts += 1
        if self.attempts <= self.fail_times:
            raise self.error(f"simulated failure {self.attempts}")
        return super().load(batch)


def _transfer(tmp_path: Path, target: VektorConnector) -> Transfer:
    source = VektorConnector(VektorOptions(db=make_layout1(tmp_path / "src.db")))
    return Transfer(source=source, target=target, chunk_rows=100)


@pytest.fixture
def prefect_runner(prefect_api: None):  # type: ignore[no-untyped-def]
    from tasks import PrefectRunner

    return PrefectRunner()


def test_flows_give_the_same_file_as_local_mode(prefect_api: None, tmp_path: Path) -> None:
    from flows.export import export_flow

    params = ExportParams(
        source=StoreSpec(store="vektor", options={"db": str(DEMO_DB)}), output=tmp_path / "p.vmig.jsonl"
    )
    tracked = export_flow(params)
    local = export_job(params.model_copy(update={"output": tmp_path / "l.vmig.jsonl"}), LocalRunner())
    assert isinstance(tracked, RunSummary) and tracked.upserted == local.upserted == 300
    assert (tmp_path / "p.vmig.jsonl").read_bytes() == (tmp_path / "l.vmig.jsonl").read_bytes()


def test_import_and_migrate_flows_publish_artifacts(prefect_api: None, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client

    from flows.import_file import import_flow
    from flows.migrate import migrate_flow

    exported = tmp_path / "m.vmig.jsonl"
    migrated = migrate_flow(
        MigrateParams(
            source=StoreSpec(store="vektor", options={"db": str(DEMO_DB)}),
            target=StoreSpec(store="jsonl", options={"path": str(exported)}),
            chunk_rows=64,
        ),
        return_state=True,
    )
    imported = import_flow(
        ImportParams(input=exported, target=StoreSpec(store="vektor", options={"db": str(tmp_path / "i.db")})),
        return_state=True,
    )
    summary = imported.result()
    assert summary.upserted == 300
    assert len(read_vmig(exported)) == 300

    async def artifacts() -> tuple[list, list]:
        """This test's runs' artifacts: other tests of the session publish under the same keys."""
        async with get_client() as client:
            from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

            def of(key: str, state: Any) -> ArtifactFilter:
                run = ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
                return ArtifactFilter(key=ArtifactFilterKey(any_=[key]), flow_run_id=run)

            tables = await client.read_artifacts(artifact_filter=of("vex-import-summary", imported))
            progress = await client.read_artifacts(artifact_filter=of("vex-migrate-progress", migrated))
            return tables, progress

    tables, progress = asyncio.run(artifacts())
    assert tables, "the import summary table artifact is missing"
    assert "upserted" in str(tables[-1].data) and "300" in str(tables[-1].data)
    assert progress and progress[-1].data == 100.0


def test_a_run_that_rejects_records_ends_failed_and_still_reports(prefect_api: None, tmp_path: Path) -> None:
    from engine.commandline import run_tracked
    from flows.import_file import import_flow

    data = tmp_path / "d.vmig.jsonl"
    export_job(ExportParams(source=StoreSpec(store="vektor", options={"db": str(DEMO_DB)}), output=data), LocalRunner())
    with data.open("ab") as handle:
        handle.write(b'{"id": "broken", "vector": [1.0, "x"]}\n')
    params = ImportParams(
        input=data, target=StoreSpec(store="vektor", options={"db": str(tmp_path / "t.db")}), check_sidecar=False
    )
    state = import_flow(params, return_state=True)
    assert state.is_failed(), "a run that lost a record must not show as Completed"
    assert "1 damaged lines or records rejected" in (state.message or "")
    summary = run_tracked(import_flow, params)
    assert isinstance(summary, RunSummary)
    assert (summary.upserted, summary.rejected, summary.exit_code()) == (300, 1, 3)


@pytest.mark.parametrize("mode", ["local", "prefect"])
def test_transient_errors_are_retried(mode: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    steps = request.getfixturevalue("prefect_runner") if mode == "prefect" else LocalRunner()
    target = FlakyVektor(VektorOptions(db=tmp_path / "t.db"), fail_times=2, error=TransientError)
    summary = run_transfer(_transfer(tmp_path, target), steps, RunSummary("migrate", "a", "b"))
    assert summary.upserted == 50 and summary.exit_code() == 0
    assert target.attempts == 3


@pytest.mark.parametrize("mode", ["local", "prefect"])
def test_permanent_errors_fail_fast_and_leave_no_retry_storm(
    mode: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    steps = request.getfixturevalue("prefect_runner") if mode == "prefect" else LocalRunner()
    target = FlakyVektor(VektorOptions(db=tmp_path / "t.db"), fail_times=99, error=StoreError)
    with pytest.raises(StoreError, match="simulated failure 1"):
        run_transfer(_transfer(tmp_path, target), steps, RunSummary("migrate", "a", "b"))
    assert target.attempts == 1


def test_transient_errors_give_up_after_three_attempts(tmp_path: Path) -> None:
    target = FlakyVektor(VektorOptions(db=tmp_path / "t.db"), fail_times=99, error=TransientError)
    with pytest.raises(TransientError):
        run_transfer(_transfer(tmp_path, target), LocalRunner(), RunSummary("migrate", "a", "b"))
    assert target.attempts == 3


class BreaksAfter(VektorConnector):
    """A real VEKTOR target that acknowledges `good` loads, then fails for good (a crash)."""

    def __init__(self, options: StoreOptions, good: int) -> None:
        super().__init__(options)
        self.good = good
        self.loaded = 0

    def load(self, batch: pa.RecordBatch) -> LoadResult:
        if self.good == 0:
            raise StoreError("disk full")
        self.good -= 1
        self.loaded += batch.num_rows
        return super().load(batch)


def test_a_rerun_resumes_after_the_last_acknowledged_chunk(tmp_path: Path) -> None:
    from engine.checkpoint import Checkpoint

    checkpoint = Checkpoint(tmp_path / "state" / "job.json")
    crashing = BreaksAfter(VektorOptions(db=tmp_path / "t.db"), good=2)
    first = _transfer(tmp_path, crashing)
    first.chunk_rows, first.checkpoint = 10, checkpoint
    first.source.page_size = 10
    with pytest.raises(StoreError):
        run_transfer(first, LocalRunner(), RunSummary("migrate", "a", "b"))
    assert crashing.loaded == 20 and checkpoint.read() is not None

    again = BreaksAfter(VektorOptions(db=tmp_path / "t.db"), good=99)
    second = Transfer(
        source=VektorConnector(VektorOptions(db=tmp_path / "src.db")),
        target=again,
        chunk_rows=10,
        checkpoint=checkpoint,
    )
    second.source.page_size = 10
    summary = run_transfer(second, LocalRunner(), RunSummary("migrate", "a", "b"))
    assert again.loaded == 30, "the re-run read only what was not yet acknowledged"
    assert summary.read == 50 and summary.upserted == 50 and summary.balanced()
    assert any("resumed" in w for w in summary.warnings)
    assert checkpoint.read() is None, "a finished job leaves no checkpoint"
    with VektorConnector(VektorOptions(db=tmp_path / "t.db")) as store:
        assert store.describe().count == 50


def test_every_step_is_one_task_with_the_policy_it_declares(prefect_api: None) -> None:
    from engine import steps
    from tasks import TASKS

    assert list(TASKS) == [step.name for step in steps.STEPS]
    for step in steps.STEPS:
        assert TASKS[step.name].retries == (2 if step.retried else 0), step.name
    assert {step.name for step in steps.STEPS if step.retried} == {
        "extract", "ensure-target", "load", "mark-present", "delete", "finish", "verify"
    }  # fmt: skip


class FlakySource(VektorConnector):
    """A real VEKTOR source whose first read fails as a network store's would."""

    failures = 0

    def extract(self, namespace, cursor):  # type: ignore[no-untyped-def]
        if FlakySource.failures:
            FlakySource.failures -= 1
            raise TransientError("the connection was reset")
        yield from super().extract(namespace, cursor)


@pytest.mark.parametrize("mode", ["local", "prefect"])
def test_verify_is_retried_in_both_modes(
    mode: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transient error while verify reads a store is retried the same way in local and Prefect mode
    (local mode did not retry verify)."""
    from connectors import registry
    from engine.jobs import verify_job
    from engine.params import VerifyParams

    db = make_layout1(tmp_path / "s.db")
    known = registry.get_connector
    monkeypatch.setattr("engine.params.get_connector", lambda name: FlakySource if name == "flaky" else known(name))
    FlakySource.failures = 1
    runner = request.getfixturevalue("prefect_runner") if mode == "prefect" else LocalRunner()
    spec = StoreSpec(store="flaky", options={"db": str(db)})
    report = verify_job(VerifyParams(source=spec, target=StoreSpec(store="vektor", options={"db": str(db)})), runner)
    assert FlakySource.failures == 0 and report.ok and report.matched == 50


def test_prefect_mode_errors_are_one_line_and_the_traceback_goes_to_the_run_log(
    prefect_api: None, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unreachable store in Prefect mode: the terminal gets vex's one line (it got ~200 lines of tracebacks,
    one per retry and one for the flow); the run's log in the Prefect API keeps the traceback."""
    import logging

    from prefect.client.orchestration import get_client

    from cli.main import flow_for
    from engine.commandline import main

    for name in ("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "PREFECT_SERVER_ANALYTICS_ENABLED", "VEX_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    handlers = [h for h in logging.getLogger().handlers if type(h).__name__ == "PrefectConsoleHandler"]
    filters = [list(h.filters) for h in handlers]
    try:
        args = ["export", "--from", "qdrant", "--url", "http://127.0.0.1:9", "--output", str(tmp_path / "o.vmig.jsonl")]
        code = main([*args, "--prefect"], flow_for)
        stderr = capfd.readouterr().err
    finally:
        for handler, kept in zip(handlers, filters, strict=True):
            handler.filters = kept
    assert code == 4
    lines = [line for line in stderr.strip().splitlines() if "View at http://127.0.0.1:" not in line]
    assert len(lines) == 1 and lines[0].startswith("vex: error: qdrant http://127.0.0.1:9 unreachable"), stderr
    assert "Traceback" not in stderr

    from prefect.client.schemas.sorting import LogSort

    for handler in logging.getLogger("prefect.flow_runs").handlers:
        handler.flush()  # the API handler sends logs in the background

    async def logged() -> list[str]:
        async with get_client() as client:
            return [entry.message for entry in await client.read_logs(limit=50, sort=LogSort.TIMESTAMP_DESC)]

    messages = asyncio.run(logged())
    assert any("Traceback" in m and "127.0.0.1:9 unreachable" in m for m in messages), messages[:3]


def test_a_migrate_whose_verify_differs_ends_failed_with_the_counts_and_shows_the_comparison(
    prefect_api: None, tmp_path: Path
) -> None:
    """The deployment path resolves a failed state into an exception: it was `TypeError: Unexpected result for
    failed state: RunSummary(...)`. Now the state's exception says the counts, the verify is an artifact and a
    log line, and the command line still gets the summary."""
    from prefect.client.orchestration import get_client

    from engine.commandline import run_tracked
    from engine.summary import RunEndedBadly
    from flows.migrate import migrate_flow

    target_db = tmp_path / "t.db"
    source = StoreSpec(store="vektor", options={"db": str(DEMO_DB)})
    target = StoreSpec(store="vektor", options={"db": str(target_db)})
    first = migrate_flow(MigrateParams(source=source, target=target), return_state=True)
    assert first.is_completed()
    with sqlite3.connect(target_db) as conn:  # a record the source does not have: the next verify differs
        conn.execute("UPDATE memories SET id = 'stranger' WHERE id = (SELECT min(id) FROM memories)")
    conn.close()
    params = MigrateParams(source=source, target=target, verify=True)
    state = migrate_flow(params, return_state=True)
    assert state.is_failed()
    assert "verify found differences: 0 missing, 1 extra, 0 mismatched" in (state.message or "")
    with pytest.raises(RunEndedBadly, match="1 extra"):
        state.result()  # what a deployment run's engine does with a failed state
    summary = run_tracked(migrate_flow, params)
    assert isinstance(summary, RunSummary) and summary.exit_code() == 3
    assert summary.verify.extra_ids == ["stranger"]

    async def verify_artifacts() -> list[object]:
        async with get_client() as client:
            return [a.data for a in await client.read_artifacts() if a.key == "vex-verify-report"]

    tables = json.dumps(asyncio.run(verify_artifacts()))
    assert "first extra ids" in tables and "stranger" in tables


def test_a_run_without_a_model_makes_no_reembed_task_runs(prefect_api: None, tmp_path: Path) -> None:
    """Each chunk is an extract, a filter-dimensions and a load task run; re-embedding only when a run asks."""
    from collections import Counter

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.migrate import migrate_flow

    state = migrate_flow(
        MigrateParams(
            source=StoreSpec(store="vektor", options={"db": str(DEMO_DB)}),
            target=StoreSpec(store="vektor", options={"db": str(tmp_path / "t.db")}),
        ),
        return_state=True,
    )
    assert state.is_completed()

    async def task_names() -> Counter[str]:
        async with get_client() as client:
            runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
            )
            return Counter(run.name.rsplit("-", 1)[0] for run in runs)

    import time

    deadline = time.monotonic() + 30  # task runs reach the API as events, a moment after they ran
    names = asyncio.run(task_names())
    while names["finish"] < 1 and time.monotonic() < deadline:
        time.sleep(0.5)
        names = asyncio.run(task_names())
    assert names["load"] == names["filter-dimensions"] >= 1 and names["extract"] >= names["load"], names
    assert names["reembed"] == 0


def test_a_command_line_run_sends_heartbeats_only_when_asked(
    prefect_api: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prefect's heartbeat thread is joined at the end of a run (up to a second): a run the command line starts
    has none unless PREFECT_FLOWS_HEARTBEAT_FREQUENCY is set, and then it has them."""
    from prefect.flow_engine import FlowRunEngine
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from engine.commandline import run_tracked
    from flows.export import export_flow

    beats: list[object] = []
    emit = FlowRunEngine._emit_flow_run_heartbeat

    def counted(self: FlowRunEngine, *args: Any) -> Any:
        beats.append(self.flow_run.id if self.flow_run else None)
        return emit(self, *args)

    monkeypatch.setattr(FlowRunEngine, "_emit_flow_run_heartbeat", counted)
    source = StoreSpec(store="vektor", options={"db": str(DEMO_DB)})
    quiet = run_tracked(export_flow, ExportParams(source=source, output=tmp_path / "a.vmig.jsonl"))
    assert quiet.upserted == 300 and beats == []
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 30}):
        asked = run_tracked(export_flow, ExportParams(source=source, output=tmp_path / "b.vmig.jsonl"))
    assert asked.upserted == 300 and len(beats) == 1  # the first heartbeat goes out as the run starts
