"""Deployments expose parameter forms and carry schedules; nothing runs at import time."""

from __future__ import annotations

import pytest

from deployments.serve import build_deployments


def test_deployments_have_parameter_forms_from_the_pydantic_models() -> None:
    deployments = {d.name: d for d in build_deployments()}
    assert set(deployments) == {"vex-export", "vex-import", "vex-migrate"}
    schema = deployments["vex-migrate"]._parameter_openapi_schema.model_dump()
    definitions = schema["definitions"]
    migrate = definitions["MigrateParams"]["properties"]
    assert {"source", "target", "namespace", "limit", "dims"} <= set(migrate)
    store = definitions["StoreSpec"]["properties"]
    assert store["api_key"]["anyOf"][0]["format"] == "password", "secrets render as password fields"
    assert not deployments["vex-migrate"].schedules


def test_a_scheduled_migrate_needs_its_parameters() -> None:
    params = {
        "source": {"store": "vektor", "options": {"db": "a.db"}},
        "target": {"store": "jsonl", "options": {"path": "b.vmig.jsonl"}},
    }
    migrate = build_deployments("0 * * * *", params)[2]
    assert migrate.schedules and migrate.schedules[0].schedule.cron == "0 * * * *"
    assert migrate.parameters == {"params": params}
    with pytest.raises(SystemExit, match="needs --migrate-params"):
        build_deployments("0 * * * *", None)
