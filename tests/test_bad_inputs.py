"""Runs the bad-input corpus: no traceback, the documented outcome, nothing half-written."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.bad_inputs import CORPUS, Case
from tests.conftest import each_at_once, run_vex


def test_the_corpus_is_large_and_distinct() -> None:
    assert len(CORPUS) >= 25
    assert len({case.name for case in CORPUS}) == len(CORPUS)


def _records_in(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        count = conn.execute("SELECT count(*) FROM memories").fetchone()[0]
    conn.close()
    return int(count)


def _run(case: Case, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """One case's input built and its `vex` command run (a locked source stays locked while it runs)."""
    args = case.build(tmp_path)
    lock = None
    if case.extra.get("lock"):
        lock = sqlite3.connect(tmp_path / "source.db", isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
    try:
        return run_vex(*args, cwd=tmp_path, env={"VEX_SQLITE_TIMEOUT": "0.2"})
    finally:
        if lock is not None:
            lock.execute("ROLLBACK")
            lock.close()


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, subprocess.CompletedProcess[str]]]:
    """Every case run once, one per core at once (each is a cold process in a folder of its own), so that the
    test of each case only reads its outcome."""
    folders = {case.name: tmp_path_factory.mktemp("bad-input") for case in CORPUS}
    results = each_at_once(lambda case: _run(case, folders[case.name]), CORPUS)
    return {case.name: (folders[case.name], result) for case, result in zip(CORPUS, results, strict=True)}


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_bad_input(case: Case, outcomes: dict[str, tuple[Path, subprocess.CompletedProcess[str]]]) -> None:
    tmp_path, result = outcomes[case.name]
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert result.returncode == case.exit_code, output
    assert case.message in output
    if result.returncode in (2,) or (result.returncode == 3 and case.rejected_lines is None):
        assert len(result.stderr.strip().splitlines()) == 1, "a refusal is one line"

    rejects_files = list(tmp_path.glob("*.rejects.jsonl"))
    rejects = [json.loads(line) for f in rejects_files for line in f.read_text().splitlines()]
    if case.rejected_lines:
        assert [r["line"] for r in rejects] == case.rejected_lines
        assert all(r["reason"] for r in rejects)
    if "rejected_ids" in case.extra:
        assert [r["id"] for r in rejects] == case.extra["rejected_ids"]

    target = tmp_path / "target.db"
    if case.target_records is None:
        assert not target.exists(), "nothing may be written to the target"
    else:
        assert _records_in(target) == case.target_records
    assert not list(tmp_path.glob(".*.partial")), "no temporary file is left behind"
    if "intact" in case.extra:
        assert _records_in(tmp_path / str(case.extra["intact"])) == 50, "the source is untouched"
    if "unchanged" in case.extra:
        name, content = case.extra["unchanged"]  # type: ignore[misc]
        assert (tmp_path / name).read_text() == content
    assert not (tmp_path / "out.vmig.jsonl").exists() or result.returncode == 0


def test_the_readme_lists_every_case_with_its_exit_code() -> None:
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    for number, case in enumerate(CORPUS, start=1):
        assert f"| {number} | {case.name} | {case.outcome} | {case.exit_code} |" in readme, case.name
