"""API keys and passwords, given by flag, URL or environment, appear in no output of any kind."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from engine.params import MigrateParams, StoreSpec
from tests.chroma_server import ChromaServer
from tests.conftest import run_vex
from tests.pg_server import PgServer
from tests.records import sample_records, write_vmig

API_KEY = "sk-live-chroma-0123456789abcdef"


def _all_text(*results, folder: Path) -> str:  # type: ignore[no-untyped-def]
    chunks = [r.stdout + r.stderr for r in results]
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".jsonl") and path.stat().st_size < 50_000_000:
            chunks.append(path.read_text(errors="replace"))
    state = Path(os.environ["VEX_STATE_DIR"])
    chunks += [p.read_text() for p in state.rglob("*.json")]
    return "\n".join(chunks)


def test_no_output_contains_a_secret(tmp_path: Path, pg_server: PgServer, chroma_server: ChromaServer) -> None:
    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=30))
    password = pg_server.password
    bare_url = pg_server.dsn().replace(f":{password}@", "@")

    def to_pg(url: str, table: str, *extra: str):  # type: ignore[no-untyped-def]
        return run_vex("import", "--from", str(source), "--to", "pgvector", "--url", url, "--table", table, *extra)

    # the same two stores for migrate and verify, with the API key as a flag
    source_side = ("--from", "pgvector", "--source-url", pg_server.dsn(), "--table", "sec_a")
    target_side = ("--to", "chroma", "--target-url", chroma_server.url, "--target-collection", "secrets_c")
    pg_and_chroma = (*source_side, *target_side, "--api-key", API_KEY)
    results = [
        # password in the URL
        to_pg(pg_server.dsn(), "sec_a"),
        # password as a flag
        to_pg(bare_url, "sec_b", "--password", password),
        # password from the environment (libpq's PGPASSWORD)
        run_vex(
            "export",
            "--from",
            "pgvector",
            "--url",
            bare_url,
            "--table",
            "sec_b",
            "--output",
            str(tmp_path / "env.vmig.jsonl"),
            env={"PGPASSWORD": password},
        ),
        # API key as a flag, to a real server
        run_vex("migrate", *pg_and_chroma, "--verify"),
        run_vex("verify", *pg_and_chroma, "--report", str(tmp_path / "verify.json")),
        # refusals that quote the options back
        run_vex("migrate", "--from", "pgvector", "--to", "pgvector", "--url", pg_server.dsn(), "--table", "x"),
        to_pg(pg_server.dsn(password="wrong-pw-42"), "sec_c"),
    ]
    assert [r.returncode for r in results] == [0, 0, 0, 0, 0, 2, 4], [r.stderr[-300:] for r in results]
    assert json.loads((tmp_path / "verify.json").read_text())["ok"]
    text = _all_text(*results, folder=tmp_path)
    for secret in (password, API_KEY, "wrong-pw-42"):
        assert secret not in text


def test_prefect_parameters_logs_and_artifacts_hold_no_secret(prefect_api: None, tmp_path: Path,
                                                              pg_server: PgServer) -> None:  # fmt: skip
    from prefect.client.orchestration import get_client

    from flows.migrate import migrate_flow

    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=10))
    params = MigrateParams(
        source=StoreSpec(store="jsonl", options={"path": str(source)}),
        target=StoreSpec(store="pgvector", options={"url": pg_server.dsn(), "table": "sec_prefect"}),
    )
    assert params.target.options["url"].count(pg_server.password) == 0, "the URL's password moved to a secret"
    summary = migrate_flow(params)
    assert summary.upserted == 10  # the two odd records are skipped by rule

    async def everything() -> str:
        async with get_client() as client:
            runs = await client.read_flow_runs()
            logs = await client.read_logs()
            artifacts = await client.read_artifacts()
        return json.dumps(
            [r.model_dump(mode="json") for r in runs]
            + [entry.model_dump(mode="json") for entry in logs]
            + [a.model_dump(mode="json") for a in artifacts]
        )

    recorded = asyncio.run(everything())
    assert "sec_prefect" in recorded, "the run and its parameters were recorded"
    assert pg_server.password not in recorded
