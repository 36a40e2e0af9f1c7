"""Test-wide setup: a throwaway Prefect home, fast retries, and a CLI runner."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")
R = TypeVar("R")
ROOT = Path(__file__).resolve().parent.parent
_PREFECT_HOME = tempfile.mkdtemp(prefix="vex-prefect-home-")
_STATE_DIR = tempfile.mkdtemp(prefix="vex-state-")
for _made in (_PREFECT_HOME, _STATE_DIR):
    atexit.register(shutil.rmtree, _made, ignore_errors=True)
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_API_URL"] = ""
os.environ.pop("PREFECT_API_URL")
os.environ["VEX_RETRY_DELAY"] = "0.05"
os.environ["VEX_STATE_DIR"] = _STATE_DIR
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


def run_vex(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 300):
    """Run the real `vex` command line in a subprocess, as a user would."""
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def each_at_once(work: Callable[[T], R], items: Iterable[T], at_once: bool = True) -> list[R]:
    """`work` on each item, one per core at once (tests whose time is mostly cold `vex` processes), results in
    order; `at_once=False`: one after another."""
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1) if at_once else 1) as pool:
        return list(pool.map(work, items))


def run_vex_cases(
    cases: Mapping[str, Sequence[str]], cwd: Path, env: dict[str, str] | None = None, at_once: bool = True
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Independent `vex` commands run at once, one per core, each in its own folder under `cwd` (so relative
    output paths do not collide). A bad-input table's cases are cold processes whose imports take most of
    their time; run one after another they would leave a core idle. `at_once=False`: one after another (a
    store that one process at a time may open)."""

    def one(item: tuple[int, tuple[str, Sequence[str]]]) -> tuple[str, subprocess.CompletedProcess[str]]:
        index, (name, args) = item
        folder = cwd / f"case-{index}"
        folder.mkdir()
        return name, run_vex(*args, cwd=folder, env=env)

    return dict(each_at_once(one, enumerate(cases.items()), at_once))


DEMO_DB = ROOT / "demo" / "memory.db"


def last_json(stdout: str) -> dict[str, Any]:
    """The `--json` summary: the last line a command prints (log lines may come before it)."""
    return json.loads(stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def summary_of(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The `--json` summary of a command; where it printed none, the failure shows its stderr."""
    assert result.stdout.strip(), result.stderr
    return last_json(result.stdout)


def one_line_error(stderr: str) -> str:
    """The one line a refused command prints: a user sees a reason, never a traceback or a wall of text."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def migrate_to_jsonl(db: Path, path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`vex migrate` from a vektor database into a .vmig.jsonl file, the move many CLI tests start from."""
    return run_vex("migrate", "--from", "vektor", "--to", "jsonl", "--db", str(db), "--path", str(path), *extra)


def copy_vektor(source: Path, target: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`vex migrate` from one vektor database into another: the two sides need prefixed `--db` options."""
    return run_vex(
        "migrate", "--from", "vektor", "--to", "vektor", "--source-db", str(source), "--target-db", str(target), *extra
    )


def export_to_a_demo_copy(store: str, options: list[str], where: Path) -> dict[str, Any]:
    """`store` exported to a file, that file imported into a fresh vektor database, and that database verified
    against the demo one: the round trip that proves a store gave back every record. The verify report."""
    out, copy, report = where / "back.vmig.jsonl", where / "copy.db", where / "v.json"
    exported = run_vex("export", "--from", store, *options, "--output", str(out), cwd=where)
    assert exported.returncode == 0, exported.stderr
    assert run_vex("import", "--from", str(out), "--to", "vektor", "--db", str(copy), cwd=where).returncode == 0
    same = run_vex("verify", "--from", "vektor", "--to", "vektor", "--source-db", str(DEMO_DB), "--target-db",
                   str(copy), "--report", str(report), cwd=where)  # fmt: skip
    assert same.returncode == 0, same.stdout + same.stderr
    return json.loads(report.read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def prefect_server_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One real `prefect server start` with its UI for the session (tests/prefect_server.py), in a home of its own:
    the environment that points a process at it. The tracked-flow tests and the browser test share it (one
    server start, about 11 s, instead of two)."""
    from tests.prefect_server import prefect_server

    with prefect_server(tmp_path_factory.mktemp("prefect-server-home")) as env:
        yield env


@pytest.fixture(scope="session")
def prefect_api(prefect_server_env: dict[str, str]) -> Iterator[None]:
    """This process pointed at the session's Prefect server, as Prefect's own test harness points it at its
    server: the API URL (and the server's database, which a test searches for secrets) in the settings, also as
    the process-wide settings context."""
    from contextlib import ExitStack

    import prefect.context
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_DATABASE_CONNECTION_URL, temporary_settings

    database = Path(prefect_server_env["PREFECT_HOME"]) / "prefect.db"
    with ExitStack() as stack:
        stack.enter_context(temporary_settings(updates={
            PREFECT_API_URL: prefect_server_env["PREFECT_API_URL"],
            PREFECT_SERVER_DATABASE_CONNECTION_URL: f"sqlite+aiosqlite:///{database}",
        }))  # fmt: skip
        stack.enter_context(prefect.context._temporary_global_settings_context(prefect.context.get_settings_context()))
        yield


@pytest.fixture(scope="session")
def pinecone_fake() -> Iterator[Any]:
    """The local fake of Pinecone's API (tests/fakes/pinecone.py), for the whole session."""
    from tests.fakes.pinecone import FakePinecone

    with FakePinecone() as fake:
        yield fake


@pytest.fixture(scope="session")
def weaviate_fake() -> Iterator[Any]:
    """The local fake of Weaviate's REST and gRPC API (tests/fakes/weaviate.py), for the whole session."""
    from tests.fakes.weaviate import FakeWeaviate

    with FakeWeaviate() as fake:
        yield fake


from tests.chroma_server import chroma_server  # noqa: E402,F401 - a session fixture for every test module
from tests.pg_server import pg_server  # noqa: E402,F401 - a session fixture for every test module
