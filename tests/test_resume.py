"""A run stopped part way and the same command again: the rejects file still lists every damaged line once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.base import LoadResult
from connectors.vektor import VektorConnector
from engine.jobs import import_job
from engine.local import LocalSteps
from engine.params import ImportParams, StoreSpec
from tests.records import sample_records, write_vmig
from vmig.errors import StoreError

RECORDS = 20_000
EVERY = 250
"""One damaged line after every EVERY good ones; the file is read in pages of 4,096 lines."""


def _messy_file(path: Path) -> tuple[Path, list[int]]:
    clean = write_vmig(path.with_name("clean.vmig.jsonl"), sample_records(RECORDS, dims=8, odd_ones=False))
    lines, damaged = [], []
    for number, line in enumerate(clean.read_bytes().splitlines(keepends=True), start=1):
        lines.append(line)
        if number % EVERY == 0:
            lines.append(b'{"id": "bad-%d", "vector": [1.0, "x"]}\n' % number)
            damaged.append(len(lines))
    path.write_bytes(b"".join(lines))
    return path, damaged


def test_resumed_import_keeps_the_rejects_of_the_interrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, damaged = _messy_file(tmp_path / "messy.vmig.jsonl")
    params = ImportParams(
        input=data, target=StoreSpec(store="vektor", options={"db": tmp_path / "t.db"}), verify=False, chunk_rows=4096
    )
    loads = 0
    real_load = VektorConnector.load

    def failing_load(self: VektorConnector, batch):  # type: ignore[no-untyped-def]
        nonlocal loads
        loads += 1
        if loads == 3:
            raise StoreError("the disk is gone")
        result: LoadResult = real_load(self, batch)
        return result

    monkeypatch.setattr(VektorConnector, "load", failing_load)
    with pytest.raises(StoreError):
        import_job(params, LocalSteps())
    rejects_file = tmp_path / "messy.rejects.jsonl"
    assert rejects_file.exists(), "the rejects of the chunks already loaded are on disk"

    monkeypatch.setattr(VektorConnector, "load", real_load)
    summary = import_job(params, LocalSteps())
    assert any("resumed" in warning for warning in summary.warnings)
    assert summary.upserted == RECORDS and summary.rejected == len(damaged)
    listed = [json.loads(line)["line"] for line in rejects_file.read_text().splitlines()]
    assert listed == damaged
