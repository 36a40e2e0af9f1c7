"""Deployments: a form per flow a person can fill, job files, and secrets that never enter Prefect.

The end-to-end test serves the deployments in their own process against a Prefect API, starts a sync the way
the UI does (through the API, every credential field filled with a secret's name), and then searches the
Prefect database, the flow run's record, its logs and its artifacts for the secret values.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from deployments.forms import SECRET_SUFFIX, resolve_secret, store_forms
from deployments.serve import build_deployments, read_job
from engine.params import SECRET_FIELDS
from tests.conftest import ROOT, run_vex
from tests.records import sample_records, write_vmig
from vmig.errors import UsageError

FLOWS = ("export", "import", "migrate", "sync", "verify")


def _schema(deployment: Any) -> dict[str, Any]:
    return dict(deployment._parameter_openapi_schema.model_dump())


def test_every_flow_is_served_with_a_described_form() -> None:
    deployments = {d.name: d for d in build_deployments()}
    assert set(deployments) == {f"vex-{name}" for name in FLOWS}
    for deployment in deployments.values():
        assert deployment.description and deployment.description != "None", deployment.name
        for name, field in _schema(deployment)["properties"].items():
            assert field.get("title") and field["title"] != name, f"{deployment.name}: {name} has no title of its own"
            assert field.get("description"), f"{deployment.name}: {name} has no description"


def test_the_store_choice_shows_that_stores_fields_and_secrets_only_by_name() -> None:
    schema = _schema({d.name: d for d in build_deployments()}["vex-sync"])
    choices = [ref["$ref"].rsplit("/", 1)[1] for ref in schema["properties"]["source"]["anyOf"]]
    titles = [schema["definitions"][name]["title"] for name in choices]
    assert titles == [form.model_fields["store"].default for form in store_forms()]  # the choice reads by store
    qdrant = schema["definitions"]["QdrantStore"]["properties"]
    assert {"path", "url", "collection", "metric", "api_key_secret"} <= set(qdrant)
    assert qdrant["metric"]["anyOf"][0]["enum"] == ["cosine", "dot", "euclid", "manhattan"]
    assert qdrant["collection"]["default"] == "memories" and qdrant["collection"]["description"]
    text = json.dumps(schema)
    assert '"password"' not in text.replace('"password_secret"', "")  # no field takes a literal secret
    assert '"format": "password"' not in text
    for definition in schema["definitions"].values():
        for secret in SECRET_FIELDS:
            assert secret not in definition.get("properties", {}), definition["title"]
    assert "password" + SECRET_SUFFIX in schema["definitions"]["PgvectorStore"]["properties"]


def test_the_job_file_in_the_docs_builds_a_scheduled_sync() -> None:
    job = read_job(ROOT / "docs" / "sync-job.json")
    scheduled = build_deployments([job])[-1]
    assert scheduled.name == "agent-memory-to-qdrant"
    assert scheduled.schedules[0].schedule.cron == "*/15 * * * *"
    assert scheduled.parameters["target"]["api_key_secret"] == "QDRANT_API_KEY"


def test_a_job_file_that_does_not_fit_its_form_is_one_line(tmp_path: Path) -> None:
    job = tmp_path / "job.json"
    literal = {"source": {"store": "qdrant", "api_key": "literal"}, "target": {"store": "vektor", "db": "x.db"}}
    job.write_text(json.dumps({"flow": "sync", "cron": "* * * * *", "parameters": literal}))
    with pytest.raises(SystemExit, match="do not fit the sync form"):
        read_job(job)
    job.write_text(json.dumps({"flow": "copy", "cron": "* * * * *", "parameters": {}}))
    with pytest.raises(SystemExit, match="flow 'copy' is not one of export, import, migrate, sync, verify"):
        read_job(job)


def test_a_secret_is_a_block_or_an_environment_variable(prefect_api: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.blocks.system import Secret

    Secret(value="from-the-block").save("vex-test-block-secret", overwrite=True)
    monkeypatch.setenv("VEX_TEST_ENV_SECRET", "from-the-environment")
    assert resolve_secret("vex-test-block-secret", "x").get_secret_value() == "from-the-block"
    assert resolve_secret("VEX_TEST_ENV_SECRET", "x").get_secret_value() == "from-the-environment"
    with pytest.raises(UsageError, match="'nowhere' is neither a Prefect Secret block nor an environment variable"):
        resolve_secret("nowhere", "qdrant api key")


def test_deployment_runs_keep_every_secret_out_of_prefect(prefect_api: None, tmp_path: Path) -> None:
    from prefect.blocks.system import Secret
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_DATABASE_CONNECTION_URL

    from tests.fakes.pinecone import FakePinecone
    from tests.fakes.weaviate import FakeWeaviate

    block_value = f"pc-{secrets.token_hex(12)}"
    env_value = f"wv-{secrets.token_hex(12)}"
    Secret(value=block_value).save("vex-test-pinecone-key", overwrite=True)
    with FakeWeaviate(api_key=env_value) as weaviate, FakePinecone(api_key=block_value) as pinecone:
        source = {"store": "pinecone", "index": "secret-search", "controller_host": pinecone.url,
                  "cloud": "aws", "region": "us-east-1"}  # fmt: skip
        data = write_vmig(tmp_path / "seed.vmig.jsonl", sample_records(count=25, odd_ones=False))
        seeded = run_vex("import", "--from", str(data), "--to", "pinecone", *_flags(source), "--api-key", block_value,
                         cwd=tmp_path, env={"PREFECT_API_URL": ""})  # fmt: skip
        assert seeded.returncode == 0, seeded.stderr

        env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_API_URL": PREFECT_API_URL.value(),
               "VEX_TEST_WEAVIATE_KEY": env_value}  # fmt: skip
        served = subprocess.Popen([sys.executable, "-m", "deployments.serve"], cwd=tmp_path, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            _wait_for_deployment("vex-sync/vex-sync")
            parameters = {
                "source": {**source, "api_key_secret": "vex-test-pinecone-key"},
                "target": {"store": "weaviate", "url": weaviate.url, "grpc_port": weaviate.grpc_port,
                           "collection": "Secretsearch", "api_key_secret": "VEX_TEST_WEAVIATE_KEY"},
                "state": str(tmp_path / "sync.sqlite"),
                "delete": True,
                "verify": True,
            }  # fmt: skip
            run = run_deployment("vex-sync/vex-sync", parameters=parameters, timeout=240)
        finally:
            served.terminate()
            served.wait(timeout=30)
        assert run.state is not None and run.state.is_completed(), run.state
        assert sum(len(shard) for shard in weaviate.collections["Secretsearch"].shards.values()) == 25

    async def recorded() -> list[str]:
        async with get_client() as client:
            flow_run = await client.read_flow_run(run.id)
            from prefect.client.schemas.filters import (
                ArtifactFilter,
                ArtifactFilterFlowRunId,
                LogFilter,
                LogFilterFlowRunId,
            )

            logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
            )
            deployment = await client.read_deployment_by_name("vex-sync/vex-sync")
            api = await client._client.get(f"/flow_runs/{run.id}")
            return [flow_run.model_dump_json(), api.text, deployment.model_dump_json(),
                    *(log.message for log in logs), *(a.model_dump_json() for a in artifacts)]  # fmt: skip

    texts = asyncio.run(recorded())
    assert any("vex-sync-summary" in text or "upserted" in text for text in texts), "the run left no record to search"
    for text in texts:
        assert block_value not in text and env_value not in text
    database = Path(PREFECT_SERVER_DATABASE_CONNECTION_URL.value().split("///", 1)[1])
    for path in database.parent.glob(database.name + "*"):  # the database, its WAL and shared memory
        content = path.read_bytes()
        assert block_value.encode() not in content, path
        assert env_value.encode() not in content, path


def _flags(options: dict[str, Any]) -> list[str]:
    pairs = [(f"--{key.replace('_', '-')}", str(value)) for key, value in options.items() if key != "store"]
    return [item for pair in pairs for item in pair]


def _wait_for_deployment(name: str) -> None:
    from prefect.client.orchestration import get_client

    async def found() -> bool:
        async with get_client() as client:
            try:
                await client.read_deployment_by_name(name)
            except Exception:  # noqa: BLE001 - not there yet
                return False
            return True

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if asyncio.run(found()):
            return
        time.sleep(0.5)
    raise AssertionError(f"deployment {name} was never served")


def test_prefect_yaml_deploys_the_flows_and_a_process_worker_runs_them(prefect_api: None, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_API_URL": PREFECT_API_URL.value(), "PWD": str(ROOT)}
    prefect = [sys.executable, "-m", "prefect"]
    for command in (
        ["work-pool", "create", "vex", "--type", "process", "--overwrite"],
        ["--no-prompt", "deploy", "--all"],
    ):
        done = subprocess.run([*prefect, *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    async def deployed() -> dict[str, Any]:
        async with get_client() as client:
            return {d.name: d for d in await client.read_deployments() if d.work_pool_name == "vex"}

    deployments = asyncio.run(deployed())
    assert set(deployments) == {f"vex-{name}" for name in FLOWS}
    assert deployments["vex-sync"].description.startswith("Keep a target in step with a source")
    assert deployments["vex-sync"].pull_steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}
    ]

    data = write_vmig(tmp_path / "in.vmig.jsonl", sample_records(count=12, odd_ones=False))
    parameters = {"source": {"store": "jsonl", "path": str(data)},
                  "target": {"store": "vektor", "db": str(tmp_path / "out.db")}}  # fmt: skip
    run = run_deployment("vex-migrate/vex-migrate", parameters=parameters, timeout=0)
    worker = subprocess.run([*prefect, "worker", "start", "--pool", "vex", "--run-once"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert worker.returncode == 0, worker.stdout[-2000:] + worker.stderr[-2000:]

    async def ended() -> Any:
        async with get_client() as client:
            return (await client.read_flow_run(run.id)).state

    state = asyncio.run(ended())
    assert state is not None and state.is_completed(), state
    listed = run_vex("inspect", "--from", "vektor", "--db", str(tmp_path / "out.db"), "--json", cwd=tmp_path,
                     env={"PREFECT_API_URL": ""})  # fmt: skip
    assert json.loads(listed.stdout)["records"] == 12, listed.stdout
