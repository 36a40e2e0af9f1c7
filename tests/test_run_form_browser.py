"""The sync deployment's run form as a person sees it: a Prefect server on 127.0.0.1 serving its UI, vex's
deployments served against it, and the form opened in headless Chromium (Debian's `chromium`, which `.ci/run`
installs). The page must offer the store choice and the flow's fields. The screenshot is taken in the test's
folder; `VEX_UPDATE_DOCS=1` puts it in `docs/` for the README."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOT = ROOT / "docs" / "sync-run-form.png"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
    "--disable-background-networking", "--disable-component-update", "--hide-scrollbars",
]  # fmt: skip
"""Without the background-networking flags Chromium keeps trying hosts this machine cannot reach."""


@pytest.fixture
def prefect_server(prefect_server_env: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The session's server's address (UI at /, API at /api) and the environment that points a process at it."""
    return prefect_server_env["PREFECT_API_URL"].removesuffix("/api"), prefect_server_env


def test_the_sync_run_form_offers_the_stores_and_the_fields(prefect_server: tuple[str, dict[str, str]],
                                                            tmp_path: Path) -> None:  # fmt: skip
    assert CHROMIUM is not None, "Debian's chromium is missing: apt-get install -y chromium (the test command does)"
    base, env = prefect_server
    env = {**env, "PYTHONPATH": str(ROOT)}
    served = subprocess.Popen([sys.executable, "-m", "deployments.serve"], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deployment_id = _deployment_id(base, "vex-sync", "vex-sync")
        url = f"{base}/deployments/deployment/{deployment_id}/run"
        page = _chromium(tmp_path, "--dump-dom", url)
        screenshot = SCREENSHOT if os.environ.get("VEX_UPDATE_DOCS") else tmp_path / SCREENSHOT.name
        _chromium(tmp_path, f"--screenshot={screenshot}", "--window-size=1280,1800", url)
    finally:
        served.terminate()
        served.wait(timeout=30)
    for shown in ("Source", "Target", "Delete", "State file", "Re-embed", "Chunk rows"):
        assert shown in page, f"the run form does not show '{shown}'"
    for store in ("vektor", "jsonl", "qdrant", "chroma", "pgvector", "pinecone", "weaviate"):
        assert f">{store}<" in page, f"the store choice does not offer {store}"
    assert "The VEKTOR SQLite database file" in page, "the chosen store's own fields are not shown"
    assert screenshot.stat().st_size > 10_000


def _deployment_id(base: str, flow: str, name: str) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        answer = httpx.get(f"{base}/api/deployments/name/{flow}/{name}", timeout=5)
        if answer.status_code == 200:
            return str(answer.json()["id"])
        time.sleep(0.5)
    raise AssertionError(f"deployment {flow}/{name} was never served")


def _chromium(tmp_path: Path, *args: str) -> str:
    assert CHROMIUM is not None
    profile = tmp_path / f"chromium-{time.monotonic_ns()}"
    done = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=20000", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout
