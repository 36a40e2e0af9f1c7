"""SIGKILL in the middle of an export or an import, then the same command again.

The output file is absent or complete, never partial; the target ends with
exactly the source's records, none doubled; a re-run resumes from the last
acknowledged chunk.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_vex
from tests.vektor_layouts import make_layout1

RECORDS = 120_000


@pytest.fixture(scope="module")
def big_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A VEKTOR database large enough to stop a job halfway, made once for the module (jobs only read it)."""
    return make_layout1(tmp_path_factory.mktemp("big") / "source.db", count=RECORDS, dims=64)


@pytest.fixture(scope="module")
def big_export(big_source: Path) -> Path:
    """Its export and sidecar, made once: the imports read them."""
    data = big_source.parent / "data.vmig.jsonl"
    assert run_vex("export", "--from", "vektor", "--db", str(big_source), "--output", str(data)).returncode == 0
    return data


def _linked(source: Path, folder: Path) -> Path:
    """The module's file in the test's own folder (a hard link: no copy)."""
    os.link(source, folder / source.name)
    return folder / source.name


def _kill_when(args: list[str], cwd: Path, ready: Callable[[], bool], timeout: float = 120) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "cli.main", *args], cwd=cwd, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError("the job ended before it could be killed: make the input larger")
            if ready():
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=30)
                return
            time.sleep(0.02)
        raise AssertionError("the job never reached the point to kill it")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def test_sigkill_during_export_leaves_no_partial_file(tmp_path: Path, big_source: Path) -> None:
    db = _linked(big_source, tmp_path)
    output = tmp_path / "out.vmig.jsonl"
    temp = tmp_path / ".out.vmig.jsonl.partial"
    args = ["export", "--from", "vektor", "--db", str(db), "--output", str(output), "--chunk-rows", "2000"]
    _kill_when(args, tmp_path, lambda: temp.exists() and temp.stat().st_size > 2_000_000)
    assert not output.exists(), "a killed export must not leave a file that looks complete"
    assert not (tmp_path / "out.vmig.meta.json").exists()

    result = run_vex(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    check = run_vex("validate", str(output), "--json")
    report = json.loads(check.stdout)
    assert check.returncode == 0 and report["valid_records"] == RECORDS and report["sidecar"] == "checksum OK"
    assert not temp.exists()


def _count(db: Path) -> tuple[int, int]:
    with sqlite3.connect(db) as conn:
        total, distinct = conn.execute("SELECT count(*), count(DISTINCT id) FROM memories").fetchone()
    conn.close()
    return int(total), int(distinct)


def _import_under_way(tmp_path: Path, big_export: Path) -> tuple[Path, Path, list[str], Callable[[], bool]]:
    """The source database, the target, the import's arguments, and a test that 10,000 rows are in."""
    db = _linked(big_export.parent / "source.db", tmp_path)
    data = _linked(big_export, tmp_path)
    _linked(big_export.with_name("data.vmig.meta.json"), tmp_path)
    target = tmp_path / "target.db"
    args = ["import", "--from", str(data), "--to", "vektor", "--db", str(target), "--chunk-rows", "2000"]

    def some_rows_loaded() -> bool:
        try:
            return target.exists() and _count(target)[0] >= 10_000
        except sqlite3.OperationalError:
            return False

    return db, target, args, some_rows_loaded


def test_sigkill_during_import_resumes_without_duplicates(tmp_path: Path, big_export: Path) -> None:
    db, target, args, some_rows_loaded = _import_under_way(tmp_path, big_export)
    _kill_when(args, tmp_path, some_rows_loaded)
    partial, _ = _count(target)
    assert 0 < partial < RECORDS

    result = run_vex(*args, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    assert "resumed" in " ".join(summary["warnings"])
    assert summary["total"] == RECORDS and summary["upserted"] == RECORDS
    assert _count(target) == (RECORDS, RECORDS)
    verify = run_vex("verify", "--from", "vektor", "--to", "vektor", "--source-db", str(db), "--target-db", str(target),
                     "--report", str(tmp_path / "v.json"))  # fmt: skip
    assert verify.returncode == 0, verify.stdout


def test_a_write_the_disk_refuses_ends_cleanly(tmp_path: Path) -> None:
    """The writer's I/O thread meets a full disk (here: a file size limit): one line, exit 1, nothing left."""
    import resource

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    db = make_layout1(tmp_path / "source.db", count=2000, dims=64)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VEX_WORKERS": "0"}  # the limit would hit formatting workers first
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "export", "--from", "vektor", "--db", str(db), "--output", "out.vmig.jsonl"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, preexec_fn=small_files,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip() == "vex: error: cannot write out.vmig.jsonl: File too large"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source.db"], "no data, partial or sidecar file is left"


# -- signals and what they leave (issue 14, cases 8 and 9) ----------------------------------------------


def _signal_when(args: list[str], cwd: Path, ready: Callable[[], bool], signals: list[int], timeout: float = 120):
    """Start vex in a session of its own and signal its whole process group, as a terminal's Ctrl-C does."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "cli.main", *args], cwd=cwd, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the job ended (or never started) before it could be signalled")
            time.sleep(0.02)
        for number in signals:
            os.killpg(process.pid, number)
            time.sleep(0.2)
        _, stderr = process.communicate(timeout=60)
        return process.returncode, stderr
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def _export_under_way(tmp_path: Path, big_source: Path) -> tuple[list[str], Callable[[], bool]]:
    db = _linked(big_source, tmp_path)
    temp = tmp_path / ".out.vmig.jsonl.partial"
    args = ["export", "--from", "vektor", "--db", str(db), "--output", str(tmp_path / "out.vmig.jsonl")]
    return args, lambda: temp.exists() and temp.stat().st_size > 2_000_000


def test_sigterm_ends_an_export_through_its_cleanup(tmp_path: Path, big_source: Path) -> None:
    args, ready = _export_under_way(tmp_path, big_source)
    code, stderr = _signal_when(args, tmp_path, ready, [signal.SIGTERM])
    assert code == 128 + signal.SIGTERM
    assert stderr.strip().splitlines() == [
        f"vex: terminated; {tmp_path / 'out.vmig.jsonl'} was not written: nothing partial was left in place"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source.db"], "no hidden .partial is left"


def test_repeated_ctrl_c_ends_quietly(tmp_path: Path, big_source: Path) -> None:
    """Three SIGINTs to the whole group (workers included): no traceback from any process, nothing left."""
    args, ready = _export_under_way(tmp_path, big_source)
    code, stderr = _signal_when(args, tmp_path, ready, [signal.SIGINT, signal.SIGINT])
    assert code == 128 + signal.SIGINT
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr and "leaked" not in stderr, stderr
    assert [line for line in stderr.splitlines() if line.startswith("vex: interrupted; ")], stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source.db"]


def test_an_import_stopped_says_what_the_target_holds(tmp_path: Path, big_export: Path) -> None:
    _, _, args, some_rows_loaded = _import_under_way(tmp_path, big_export)
    code, stderr = _signal_when(args, tmp_path, some_rows_loaded, [signal.SIGINT])
    assert code == 130
    line = stderr.strip().splitlines()[-1]
    assert line.startswith("vex: interrupted; vektor:target.db holds the ") and "the same command resumes" in line


def _export_params(tmp_path: Path):  # type: ignore[no-untyped-def]
    from engine.params import ExportParams, StoreSpec

    db = make_layout1(tmp_path / "source.db", count=300, dims=16)
    return ExportParams(source=StoreSpec(store="vektor", options={"db": db}), output=tmp_path / "late.vmig.jsonl")


def test_a_stop_before_the_sidecar_leaves_no_data_file(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A Ctrl-C after every record is written but before the sidecar: the data file never appears alone."""

    import engine.steps
    from engine.interrupt import what_is_left
    from engine.jobs import export_job
    from engine.local import LocalRunner

    def interrupted(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(engine.steps, "place_sidecar", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_job(_export_params(tmp_path), LocalRunner())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source.db"]
    assert what_is_left().endswith("late.vmig.jsonl was not written: nothing partial was left in place")


def test_a_sidecar_the_disk_refuses_leaves_nothing(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import errno

    from engine.jobs import export_job
    from engine.local import LocalRunner
    from vmig.errors import StoreError

    real_fsync = os.fsync

    def full_disk_for_sidecars(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".vmig.meta.json.partial"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_disk_for_sidecars)
    with pytest.raises(StoreError, match=r"cannot write the sidecar .*late\.vmig\.meta\.json: No space left on device"):
        export_job(_export_params(tmp_path), LocalRunner())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source.db"], "neither data, sidecar nor .partial stays"


def test_a_finished_export_says_it_is_complete(tmp_path: Path) -> None:
    from engine.interrupt import what_is_left
    from engine.jobs import export_job
    from engine.local import LocalRunner

    export_job(_export_params(tmp_path), LocalRunner())
    assert what_is_left().endswith("late.vmig.jsonl and its sidecar were complete before the stop")
    assert (tmp_path / "late.vmig.meta.json").exists()
