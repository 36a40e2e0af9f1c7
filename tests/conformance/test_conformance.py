"""The connector conformance suite: every store in tests/stores passes the same tests.

The round trips go through the real `vex` command line; cursor and describe
checks use the connector API, since that is what the flows rely on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from connectors.registry import get_connector
from engine.params import StoreSpec, open_store
from tests.conftest import run_vex, run_vex_cases
from tests.records import DIMS, read_vmig, sample_records, to_batch, write_vmig
from tests.stores import StoreContext, StoreKind, all_kinds, flags

KINDS = all_kinds()


@pytest.fixture(params=KINDS, ids=[k.id for k in KINDS])
def kind(request: pytest.FixtureRequest) -> StoreKind:
    return request.param


@pytest.fixture
def store_options(kind: StoreKind, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    safe = "".join(c if c.isalnum() else "_" for c in request.node.name)[-40:].strip("_").lower()
    return kind.options(StoreContext(tmp_path, request, f"t_{safe}"))


def expected_after(kind: StoreKind, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records a store is meant to hold, by its declared capabilities."""
    caps = get_connector(kind.store).capabilities
    kept = []
    for record in records:
        if record["vector"] is None and caps.needs_vector:
            continue
        if caps.fixed_dims and record["vector"] is not None and len(record["vector"]) != DIMS:
            continue
        kept.append(record)
    return kept


def summary_of(result: Any) -> dict[str, Any]:
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def import_sample(
    tmp_path: Path, kind: StoreKind, options: dict[str, str], records: list[dict[str, Any]]
) -> dict[str, Any]:
    source = write_vmig(tmp_path / "sample.vmig.jsonl", records)
    result = run_vex("import", "--from", str(source), "--to", kind.store, *flags(options), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return summary_of(result)


def export_store(tmp_path: Path, kind: StoreKind, options: dict[str, str], *extra: str, name: str = "out") -> Path:
    output = tmp_path / f"{name}.vmig.jsonl"
    result = run_vex(
        "export", "--from", kind.store, *flags(options), "--output", str(output), "--json", *extra, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    return output


def assert_same_record(kind: StoreKind, expected: dict[str, Any], actual: dict[str, Any]) -> None:
    assert actual["text"] == expected["text"]
    assert actual["namespace"] == expected["namespace"]
    assert actual["metadata"] == expected["metadata"]
    assert actual["model"] == expected["model"]
    if expected["created_at"] is None:
        assert actual["created_at"] is None
    else:
        micros = int(actual["created_at"].timestamp() * 1_000_000)
        assert abs(micros - expected["created_at"]) < 1000
    if expected["vector"] is None:
        assert actual["vector"] is None
    else:
        got = np.asarray(actual["vector"], dtype=np.float32)
        want = np.asarray(expected["vector"], dtype=np.float32)
        assert got.shape == want.shape
        if kind.tolerance == 0:
            assert np.array_equal(got, want)
        else:
            assert np.allclose(got, want, atol=kind.tolerance, rtol=0), np.abs(got - want).max()


def test_round_trip_keeps_every_field(kind: StoreKind, store_options: dict[str, str], tmp_path: Path) -> None:
    records = sample_records()
    summary = import_sample(tmp_path, kind, store_options, records)
    expected = expected_after(kind, records)
    assert summary["upserted"] == len(expected)
    assert summary["upserted"] + sum(summary["skipped"].values()) == len(records)

    exported = read_vmig(export_store(tmp_path, kind, store_options))
    assert sorted(exported) == sorted(r["id"] for r in expected)
    with open_store(StoreSpec(store=kind.store, options=dict(store_options))) as store:
        stored = store.stored_form(to_batch(expected))  # the store's documented transformation
    for record, vector in zip(expected, stored.column("vector").to_pylist(), strict=True):
        assert_same_record(kind, dict(record, vector=vector), exported[record["id"]])


def test_reimport_does_not_duplicate(kind: StoreKind, store_options: dict[str, str], tmp_path: Path) -> None:
    records = sample_records(count=12, odd_ones=False)
    import_sample(tmp_path, kind, store_options, records)
    import_sample(tmp_path, kind, store_options, records)
    assert len(read_vmig(export_store(tmp_path, kind, store_options))) == 12


def test_limit_and_namespace_filter(kind: StoreKind, store_options: dict[str, str], tmp_path: Path) -> None:
    records = sample_records(count=30, odd_ones=False)
    import_sample(tmp_path, kind, store_options, records)
    exports = {
        "limited": ["--limit", "7"],
        "trading": ["--namespace", "trading"],
        "both": ["--namespace", "research", "--limit", "3"],
    }
    commands = {name: ["export", "--from", kind.store, *flags(store_options), "--output", "out.vmig.jsonl", *extra]
                for name, extra in exports.items()}  # fmt: skip
    results = run_vex_cases(commands, tmp_path, at_once=not kind.one_process)
    for result in results.values():
        assert result.returncode == 0, result.stderr
    limited, trading, both = (read_vmig(tmp_path / f"case-{i}" / "out.vmig.jsonl") for i in range(len(exports)))
    assert len(limited) == 7
    assert sorted(trading) == sorted(r["id"] for r in records if r["namespace"] == "trading")
    assert len(both) == 3 and all(r["namespace"] == "research" for r in both.values())


def test_auto_create_and_dims_detection(kind: StoreKind, store_options: dict[str, str], tmp_path: Path) -> None:
    spec = StoreSpec(store=kind.store, options=dict(store_options))
    with open_store(spec) as store:
        assert not store.describe().exists
    records = sample_records(count=10, odd_ones=False)
    import_sample(tmp_path, kind, store_options, records)
    with open_store(spec) as store:
        info = store.describe()
    assert info.exists
    assert info.dims == DIMS
    if info.count is not None:
        assert info.count == 10


def _finish(store: Any) -> None:
    """As a run ends: the finish step, and a file target's sidecar step (its file appears only with it)."""
    from engine import steps

    written = steps.finish(store)
    if written is not None:
        steps.write_sidecar(written, "test")


def test_empty_store_exports_nothing(kind: StoreKind, store_options: dict[str, str], tmp_path: Path) -> None:
    with open_store(StoreSpec(store=kind.store, options=dict(store_options))) as store:
        store.ensure_target(DIMS, None)
        _finish(store)
    output = export_store(tmp_path, kind, store_options)
    assert output.read_bytes() == b""
    sidecar = json.loads(output.with_name("out.vmig.meta.json").read_text())
    assert sidecar["record_count"] == 0


def test_resume_from_cursor(kind: StoreKind, store_options: dict[str, str], tmp_path: Path) -> None:
    records = sample_records(count=25, odd_ones=False)
    spec = StoreSpec(store=kind.store, options=dict(store_options))
    with open_store(spec) as store:
        store.ensure_target(DIMS, None)
        store.load(to_batch(records))
        _finish(store)
    with open_store(spec) as store:
        store.page_size = 6
        pages = store.extract(None, None)
        first = next(pages)
        assert first.batch.num_rows == 6 and first.next_cursor is not None
        cursor = json.loads(json.dumps(first.next_cursor))  # a cursor survives a checkpoint file
    with open_store(spec) as store:
        store.page_size = 6
        rest = [page.batch for page in store.extract(None, cursor)]
    ids = first.batch.column("id").to_pylist() + [i for b in rest for i in b.column("id").to_pylist()]
    assert len(ids) == len(set(ids)) == 25
    assert set(ids) == {r["id"] for r in records}


def test_verify_after_import_accounts_for_every_record(
    kind: StoreKind, store_options: dict[str, str], tmp_path: Path
) -> None:
    records = sample_records()
    import_sample(tmp_path, kind, store_options, records)
    report_path = tmp_path / "verify.json"
    result = run_vex(
        "verify", "--from", "jsonl", "--to", kind.store, "--source-path", str(tmp_path / "sample.vmig.jsonl"),
        *flags(store_options, "target-"),
        "--report", str(report_path), cwd=tmp_path,
    )  # fmt: skip
    report = json.loads(report_path.read_text())
    assert result.returncode == 0, (result.stderr, report)
    expected = expected_after(kind, records)
    assert report["matched"] == len(expected)
    assert sum(report["skipped_by_rule"].values()) == len(records) - len(expected)


def test_sync_writes_only_changes_and_deletes_what_left(
    kind: StoreKind, store_options: dict[str, str], tmp_path: Path
) -> None:
    caps = get_connector(kind.store).capabilities
    if caps.writes_file or not caps.deletes:
        pytest.skip(f"{kind.store} is not a sync target (a file, or a store that cannot delete)")
    records = sample_records(count=30, odd_ones=False)
    source = tmp_path / "source.vmig.jsonl"
    state = tmp_path / "state.sqlite"

    def sync(*extra: str) -> dict[str, Any]:
        target = flags(store_options, "target-")
        result = run_vex(
            "sync", "--from", "jsonl", "--source-path", str(source), "--to", kind.store, *target,
            "--state", str(state), "--json", *extra, cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return summary_of(result)

    write_vmig(source, records)
    first = sync()
    assert (first["upserted"], first["unchanged"], first["deleted"]) == (30, 0, 0)

    changed = [dict(records[3], text="rewritten"), dict(records[7], metadata={"k": "new"})]
    added = [dict(records[0], id=f"new-{n}", namespace=records[n]["namespace"]) for n in range(2)]
    removed = {records[5]["id"], records[11]["id"]}
    kept = [r for r in records if r["id"] not in removed and r["id"] not in {records[3]["id"], records[7]["id"]}]
    write_vmig(source, kept + changed + added)
    second = sync("--delete")
    assert (second["upserted"], second["unchanged"], second["deleted"]) == (4, len(kept), 2)

    exported = read_vmig(export_store(tmp_path, kind, store_options))
    assert sorted(exported) == sorted(r["id"] for r in kept + changed + added)
    assert exported[records[3]["id"]]["text"] == "rewritten"
    assert exported[records[7]["id"]]["metadata"] == {"k": "new"}
    third = sync("--delete")
    assert (third["upserted"], third["unchanged"], third["deleted"]) == (0, 30, 0)
