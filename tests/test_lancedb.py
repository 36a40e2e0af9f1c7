"""LanceDB through the real `vex` command line: exact round trips from VEKTOR, migrate both ways, resume,
re-imports, a table another tool made, the index, and every bad input refused before anything is written."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from connectors.base import LoadResult
from connectors.lancedb import LanceDBConnector, LanceDBOptions
from engine.jobs import import_job
from engine.local import LocalRunner
from engine.params import ImportParams, StoreSpec
from tests.conftest import run_vex
from tests.records import read_vmig, sample_records, to_batch, write_vmig
from vmig.errors import StoreError

lancedb = pytest.importorskip("lancedb")


def _last(result: Any) -> dict[str, Any]:
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _table(path: Path, name: str) -> Any:
    return lancedb.connect(str(path)).open_table(name)


def _rows(path: Path, name: str) -> tuple[int, int]:
    """Rows in the table, and distinct ids among them."""
    ids = _table(path, name).to_arrow().column("id").to_pylist()
    return len(ids), len(set(ids))


def _same(expected: dict[str, Any], actual: dict[str, Any]) -> None:
    assert actual["text"] == expected["text"]
    assert actual["namespace"] == expected["namespace"]
    assert actual["metadata"] == expected["metadata"], "nested metadata comes back exactly"
    assert actual["model"] == expected["model"]
    assert np.array_equal(np.asarray(actual["vector"], dtype=np.float32), expected["vector"]), "float32 exactly"
    micros = int(actual["created_at"].timestamp() * 1_000_000)
    assert abs(micros - expected["created_at"]) < 2


def test_vektor_to_lancedb_to_jsonl_round_trips_every_field_exactly(tmp_path: Path) -> None:
    records = sample_records(count=60, dims=32, odd_ones=False)
    records[5]["metadata"] = {"deep": {"list": [1, {"x": None}, [2.5, "s"]], "empty": {}}, "big": 2**63 + 5}
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    vektor = tmp_path / "memory.db"
    assert run_vex("import", "--from", str(source), "--to", "vektor", "--db", str(vektor)).returncode == 0
    store = ["--target-path", str(tmp_path / "lance"), "--target-table", "memories"]
    moved = run_vex("migrate", "--from", "vektor", "--to", "lancedb", "--db", str(vektor), *store, "--verify", "--json")
    assert moved.returncode == 0, moved.stderr
    summary = _last(moved)
    assert summary["upserted"] == 60 and summary["verify"]["ok"] and summary["verify"]["matched"] == 60
    out = tmp_path / "back.vmig.jsonl"
    exported = run_vex("export", "--from", "lancedb", "--path", str(tmp_path / "lance"), "--output", str(out))
    assert exported.returncode == 0, exported.stderr
    back = read_vmig(out)
    assert sorted(back) == sorted(r["id"] for r in records)
    for record in records:
        _same(record, back[record["id"]])
    assert run_vex("validate", str(out)).returncode == 0
    check = run_vex("verify", "--from", "jsonl", "--source-path", str(source), "--to", "lancedb",
                    "--target-path", str(tmp_path / "lance"), "--json", cwd=tmp_path)  # fmt: skip
    assert check.returncode == 0, check.stderr + check.stdout


def test_demo_database_migrates_and_exports_by_namespace(tmp_path: Path) -> None:
    from tests.conftest import ROOT

    lance = tmp_path / "lance"
    result = run_vex("migrate", "--from", "vektor", "--to", "lancedb", "--db", str(ROOT / "demo" / "memory.db"),
                     "--path", str(lance), "--table", "demo", "--verify", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert _last(result)["upserted"] == 300 and _last(result)["verify"]["ok"]
    out = tmp_path / "trading.vmig.jsonl"
    result = run_vex("export", "--from", "lancedb", "--path", str(lance), "--table", "demo", "--namespace",
                     "trading", "--output", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    back = read_vmig(out)
    assert len(back) == 100 and {r["namespace"] for r in back.values()} == {"trading"}
    with LanceDBConnector(LanceDBOptions(path=lance, table="demo")) as connector:
        info = connector.describe()
    assert (info.dims, info.metric, info.count) == (384, "cosine", 300)
    assert info.count_by_namespace is not None and sum(info.count_by_namespace.values()) == 300


def _store(store: str, where: Path, name: str) -> dict[str, str]:
    return {
        "jsonl": {"path": str(where / f"{name}.vmig.jsonl")},
        "qdrant": {"path": str(where / f"q-{name}"), "collection": "mem"},
        "vektor": {"db": str(where / f"{name}.db")},
    }[store]


def _flags(options: dict[str, str], side: str) -> list[str]:
    return [item for key, value in options.items() for item in (f"--{side}-{key.replace('_', '-')}", value)]


@pytest.mark.parametrize("store", ["jsonl", "qdrant"])
def test_migrate_both_ways_with_verify(store: str, tmp_path: Path) -> None:
    records = sample_records(count=30, odd_ones=False)
    records[0]["sparse_vector"] = {"indices": [3, 70000], "values": [0.5, -1.25]}
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    first = {"path": str(source)} if store == "jsonl" else _store(store, tmp_path, "first")
    if store != "jsonl":
        plain = [item for key, value in first.items() for item in (f"--{key}", value)]
        assert run_vex("import", "--from", str(source), "--to", store, *plain, cwd=tmp_path).returncode == 0
    lance = {"path": str(tmp_path / "lance"), "table": f"from_{store}"}
    into = run_vex("migrate", "--from", store, "--to", "lancedb", *_flags(first, "source"), *_flags(lance, "target"),
                   "--verify", "--json", cwd=tmp_path)  # fmt: skip
    assert into.returncode == 0, into.stderr
    assert _last(into)["verify"]["matched"] == 30
    second = _store(store, tmp_path, "second")
    out = run_vex("migrate", "--from", "lancedb", "--to", store, *_flags(lance, "source"), *_flags(second, "target"),
                  "--verify", "--json", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert _last(out)["verify"]["matched"] == 30
    if store == "jsonl":
        back = read_vmig(Path(second["path"]))
        assert back["mem-0000"]["sparse_vector"] == {"indices": [3, 70000], "values": [0.5, -1.25]}


def test_lancedb_to_lancedb_keeps_the_metric(tmp_path: Path) -> None:
    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=12, odd_ones=False))
    first = ["--path", str(tmp_path / "a"), "--table", "t", "--metric", "dot"]
    assert run_vex("import", "--from", str(source), "--to", "lancedb", *first).returncode == 0
    result = run_vex("migrate", "--from", "lancedb", "--to", "lancedb", "--source-path", str(tmp_path / "a"),
                     "--source-table", "t", "--target-path", str(tmp_path / "b"), "--target-table", "copy",
                     "--verify", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    with LanceDBConnector(LanceDBOptions(path=tmp_path / "b", table="copy")) as connector:
        assert connector.describe().metric == "dot"


def test_reimport_of_the_same_file_leaves_one_row_per_id(tmp_path: Path) -> None:
    records = sample_records(count=25, odd_ones=False)
    records.append(dict(records[3], text="a later version of record 3"))
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    store = ["--path", str(tmp_path / "lance"), "--table", "again"]
    first = run_vex("import", "--from", str(source), "--to", "lancedb", *store, "--json")
    assert first.returncode == 1, "a record replaced by a later one with its id: the exit says so"
    assert (_last(first)["upserted"], _last(first)["replaced"]) == (25, 1)
    assert _rows(tmp_path / "lance", "again") == (25, 25)
    second = run_vex("import", "--from", str(source), "--to", "lancedb", *store, "--json")
    assert _last(second)["upserted"] == 25
    assert _rows(tmp_path / "lance", "again") == (25, 25)
    row = _table(tmp_path / "lance", "again").search().where("id = 'mem-0003'").to_arrow().to_pylist()
    assert row[0]["text"] == "a later version of record 3"


def test_delete_removes_exactly_the_ids_named_whatever_they_hold(tmp_path: Path) -> None:
    """Ids that would break a naive SQL predicate (quotes, a comma, a parenthesis) go, and only they; more ids
    than one predicate names are deleted in several calls; an id the table does not hold is no error."""
    records = sample_records(count=2_100, dims=8, odd_ones=False)
    odd = ["it's", "a,b", "x) OR (1=1", "''"]
    for record, record_id in zip(records, odd, strict=False):
        record["id"] = record_id
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    assert run_vex("import", "--from", str(source), "--to", "lancedb", "--path", str(tmp_path / "lance"),
                   "--table", "gone").returncode == 0  # fmt: skip
    target = LanceDBConnector(LanceDBOptions(path=tmp_path / "lance", table="gone"))
    doomed = [*odd[:3], *(r["id"] for r in records[10:2_010]), "never-there"]
    target.delete(None, doomed)
    target.close()
    left = set(_table(tmp_path / "lance", "gone").to_arrow().column("id").to_pylist())
    assert left == {r["id"] for r in records} - set(doomed)
    assert "''" in left and len(left) == 2_100 - 2_003


def _import_params(tmp_path: Path, count: int) -> ImportParams:
    data = write_vmig(tmp_path / "full.vmig.jsonl", sample_records(count, dims=8, odd_ones=False))
    options = {"path": tmp_path / "lance", "table": "resumed"}
    return ImportParams(input=data, target=StoreSpec(store="lancedb", options=options), chunk_rows=4_096)


@pytest.mark.parametrize("landed", [False, True], ids=["refused", "landed-unacknowledged"])
def test_an_interrupted_import_resumes_without_doubling_a_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, landed: bool
) -> None:
    """The second chunk (of 4,096 records) fails; with `landed` it was written before the failure (the run
    never heard so), the case an append would double on resume: the resumed run upserts instead."""
    params = _import_params(tmp_path, 10_000)
    real_load = LanceDBConnector.load
    calls = 0

    def failing_load(self: LanceDBConnector, batch: pa.RecordBatch) -> LoadResult:
        nonlocal calls
        calls += 1
        if calls == 2:
            if landed:
                real_load(self, batch)
            raise StoreError("the disk went away")
        return real_load(self, batch)

    monkeypatch.setattr(LanceDBConnector, "load", failing_load)
    with pytest.raises(StoreError):
        import_job(params, LocalRunner())
    assert _rows(tmp_path / "lance", "resumed")[0] == (8_192 if landed else 4_096)
    monkeypatch.setattr(LanceDBConnector, "load", real_load)
    summary = import_job(params, LocalRunner())
    assert any("resumed" in warning for warning in summary.warnings)
    assert _rows(tmp_path / "lance", "resumed") == (10_000, 10_000)


def test_an_export_resumes_in_the_version_it_started_in(tmp_path: Path) -> None:
    """Rows updated after a page was read move in the scan order; the cursor's version keeps the order."""
    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=300, odd_ones=False))
    lance = tmp_path / "lance"
    assert run_vex("import", "--from", str(source), "--to", "lancedb", "--path", str(lance)).returncode == 0
    with LanceDBConnector(LanceDBOptions(path=lance)) as connector:
        connector.page_size = 100
        pages = connector.extract(None, None)
        first = next(pages)
        pages.close()
    seen = first.batch.column("id").to_pylist()
    changed = sample_records(count=300, odd_ones=False)[:50]
    for record in changed:
        record["text"] = "updated after the first page"
    table = _table(lance, "memories")
    rows = to_batch(changed)
    with LanceDBConnector(LanceDBOptions(path=lance)) as writer:
        writer.ensure_target(8, None)
        writer.load(rows)
    assert table.count_rows() == 300
    with LanceDBConnector(LanceDBOptions(path=lance)) as connector:
        connector.page_size = 100
        rest = [
            rid for page in connector.extract(None, first.next_cursor) for rid in page.batch.column("id").to_pylist()
        ]
    assert len(seen) == 100 and len(rest) == 200
    assert sorted(seen + rest) == sorted(f"mem-{i:04d}" for i in range(300)), "each record once, none skipped"


# -- bad input ------------------------------------------------------------------------------------------


def _sample(tmp_path: Path, dims: int = 8, name: str = "s") -> Path:
    return write_vmig(tmp_path / f"{name}.vmig.jsonl", sample_records(count=6, dims=dims, odd_ones=False))


def _one_clear_line(result: Any) -> None:
    assert result.returncode == 2, result.stderr + result.stdout
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_table_without_the_record_columns_is_refused_naming_them(tmp_path: Path) -> None:
    lance = tmp_path / "lance"
    db = lancedb.connect(str(lance))
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(16, dtype=np.float32)), 8)
    db.create_table("theirs", data=pa.table({"id": ["x", "y"], "vector": vectors, "text": ["a", "b"]}))
    before = _table(lance, "theirs").version
    result = run_vex("import", "--from", str(_sample(tmp_path)), "--to", "lancedb", "--path", str(lance),
                     "--table", "theirs")  # fmt: skip
    _one_clear_line(result)
    for column in ("model", "namespace", "metadata", "created_at"):
        assert column in result.stderr
    assert _table(lance, "theirs").version == before and _rows(lance, "theirs") == (2, 2)


def test_a_table_with_a_vector_of_another_type_is_refused(tmp_path: Path) -> None:
    from connectors.lancedb import table_schema

    lance = tmp_path / "lance"
    schema = table_schema(8, "cosine")
    at = schema.get_field_index("vector")
    schema = schema.set(at, pa.field("vector", pa.list_(pa.float64(), 8)))
    lancedb.connect(str(lance)).create_table("doubles", schema=schema)
    result = run_vex("import", "--from", str(_sample(tmp_path)), "--to", "lancedb", "--path", str(lance),
                     "--table", "doubles")  # fmt: skip
    _one_clear_line(result)
    assert "float32" in result.stderr and _rows(lance, "doubles") == (0, 0)


def test_dims_and_metric_mismatch_are_refused(tmp_path: Path) -> None:
    store = ["--path", str(tmp_path / "lance"), "--table", "fixed"]
    assert run_vex("import", "--from", str(_sample(tmp_path)), "--to", "lancedb", *store).returncode == 0
    result = run_vex("import", "--from", str(_sample(tmp_path)), "--to", "lancedb", *store, "--metric", "euclid")
    _one_clear_line(result)
    assert "distance" in result.stderr
    wide = _sample(tmp_path, dims=12, name="w")
    result = run_vex("import", "--from", str(wide), "--to", "lancedb", *store)
    _one_clear_line(result)
    assert "nothing would fit" in result.stderr
    assert _rows(tmp_path / "lance", "fixed") == (6, 6)


def test_a_path_that_is_not_a_lancedb_directory(tmp_path: Path) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    result = run_vex("import", "--from", str(_sample(tmp_path)), "--to", "lancedb", "--path", str(a_file))
    _one_clear_line(result)
    assert "not a LanceDB directory" in result.stderr and a_file.read_text() == "mine"
    other = tmp_path / "project"
    other.mkdir()
    (other / "main.py").write_text("print()")
    result = run_vex("import", "--from", str(_sample(tmp_path)), "--to", "lancedb", "--path", str(other))
    _one_clear_line(result)
    assert "not a LanceDB directory" in result.stderr and os.listdir(other) == ["main.py"]
    missing = tmp_path / "nowhere"
    result = run_vex("export", "--from", "lancedb", "--path", str(missing), "--output", str(tmp_path / "o.vmig.jsonl"))
    _one_clear_line(result)
    assert "no LanceDB directory" in result.stderr and not missing.exists()
    assert not (tmp_path / "o.vmig.jsonl").exists()


def test_a_missing_table_on_export(tmp_path: Path) -> None:
    store = ["--path", str(tmp_path / "lance")]
    assert run_vex("import", "--from", str(_sample(tmp_path)), "--to", "lancedb", *store).returncode == 0
    result = run_vex(
        "export", "--from", "lancedb", *store, "--table", "nope", "--output", str(tmp_path / "o.vmig.jsonl")
    )
    _one_clear_line(result)
    assert "'nope' not found" in result.stderr and "memories" in result.stderr


# -- a table another tool made, and the index ------------------------------------------------------------


def test_a_table_another_tool_made_exports_with_every_column(tmp_path: Path) -> None:
    """LangChain's LanceDB store: id, vector, text and a metadata struct; plus a column of the user's own."""
    lance = tmp_path / "lance"
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(np.arange(8, dtype=np.float32)), 4)
    metadata = pa.array([{"source": "a.pdf", "page": 1}, {"source": "b.pdf", "page": 2}])
    data = pa.table({"id": ["d1", "d2"], "vector": vectors, "text": ["one", "two"], "metadata": metadata,
                     "lang": ["en", "de"], "created_at": ["yesterday", "today"]})  # fmt: skip
    lancedb.connect(str(lance)).create_table("vectorstore", data=data)
    out = tmp_path / "o.vmig.jsonl"
    result = run_vex(
        "export", "--from", "lancedb", "--path", str(lance), "--table", "vectorstore", "--output", str(out)
    )
    assert result.returncode == 0, result.stderr
    back = read_vmig(out)
    assert back["d1"]["metadata"] == {"source": "a.pdf", "page": 1, "lang": "en", "created_at": "yesterday"}
    assert back["d1"]["created_at"] is None, "a column named like a record field but holding no time is metadata"
    assert back["d2"]["text"] == "two" and back["d2"]["vector"] == [4.0, 5.0, 6.0, 7.0]


def test_index_is_built_when_asked_and_skipped_with_a_warning_when_small(tmp_path: Path) -> None:
    small = ["--path", str(tmp_path / "lance"), "--table", "small", "--index", "ivf_pq"]
    result = run_vex("import", "--from", str(_sample(tmp_path)), "--to", "lancedb", *small, "--json")
    assert result.returncode == 0, result.stderr
    assert any("no ivf_pq index built" in w and "fewer than --index-min-rows" in w for w in _last(result)["warnings"])
    assert _table(tmp_path / "lance", "small").list_indices() == []
    many = write_vmig(tmp_path / "m.vmig.jsonl", sample_records(count=600, dims=32, odd_ones=False))
    store = ["--path", str(tmp_path / "lance"), "--table", "big", "--index", "ivf_pq", "--index-min-rows", "500"]
    result = run_vex("import", "--from", str(many), "--to", "lancedb", *store, "--metric", "dot", "--json")
    assert result.returncode == 0, result.stderr
    indices = _table(tmp_path / "lance", "big").list_indices()
    assert len(indices) == 1 and indices[0].columns == ["vector"]
    assert str(indices[0].index_details["metric_type"]).lower() == "dot"


def test_sigkill_during_an_import_then_the_same_command_again(tmp_path: Path) -> None:
    """A real crash: the process is killed while chunks are being written (perhaps one written and not yet
    checkpointed); the same command resumes and the table ends with every record once."""
    from tests.test_crash import _kill_when

    count = 60_000
    data = write_vmig(tmp_path / "data.vmig.jsonl", sample_records(count, dims=64, odd_ones=False))
    lance = tmp_path / "lance"
    args = ["import", "--from", str(data), "--to", "lancedb", "--path", str(lance), "--table", "killed",
            "--chunk-rows", "2000"]  # fmt: skip
    versions = lance / "killed.lance" / "_versions"

    def some_chunks_written() -> bool:
        return versions.is_dir() and len(list(versions.iterdir())) >= 6

    _kill_when(args, tmp_path, some_chunks_written)
    written = _rows(lance, "killed")[0]
    assert 0 < written < count
    result = run_vex(*args, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert any("resumed" in warning for warning in _last(result)["warnings"])
    assert _rows(lance, "killed") == (count, count)


def test_the_import_flow_in_prefect_mode_loads_and_says_what_finish_skipped(prefect_api: None, tmp_path: Path) -> None:
    """Tracked by Prefect, each step a task run: the same rows, and the index notice still reaches the summary."""
    from flows.import_file import import_flow

    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=40, odd_ones=False))
    options = {"path": str(tmp_path / "lance"), "table": "tracked", "index": "ivf_pq"}
    summary = import_flow(ImportParams(input=source, target=StoreSpec(store="lancedb", options=options)))
    assert summary.upserted == 40 and _rows(tmp_path / "lance", "tracked") == (40, 40)
    assert any("no ivf_pq index built" in warning for warning in summary.warnings)


def test_a_column_of_the_users_own_survives_a_reimport_and_exports_in_the_metadata(tmp_path: Path) -> None:
    source = _sample(tmp_path)
    store = ["--path", str(tmp_path / "lance"), "--table", "mine"]
    assert run_vex("import", "--from", str(source), "--to", "lancedb", *store).returncode == 0
    table = _table(tmp_path / "lance", "mine")
    table.add_columns(pa.field("reviewed", pa.bool_()))
    table.update(where="id = 'mem-0002'", values={"reviewed": True})
    result = run_vex("import", "--from", str(source), "--to", "lancedb", *store)
    assert result.returncode == 0, result.stderr
    rows = _table(tmp_path / "lance", "mine").to_arrow().select(["id", "reviewed"]).to_pylist()
    flags = {row["id"]: row["reviewed"] for row in rows}
    assert flags["mem-0002"] is True and flags["mem-0001"] is None, "the update left the user's column alone"
    out = tmp_path / "o.vmig.jsonl"
    assert run_vex("export", "--from", "lancedb", *store, "--output", str(out)).returncode == 0
    assert read_vmig(out)["mem-0002"]["metadata"]["reviewed"] is True


def test_a_column_of_the_users_own_that_must_be_filled_is_refused(tmp_path: Path) -> None:
    source = _sample(tmp_path)
    store = ["--path", str(tmp_path / "lance"), "--table", "strict"]
    assert run_vex("import", "--from", str(source), "--to", "lancedb", *store).returncode == 0
    table = _table(tmp_path / "lance", "strict")
    table.add_columns({"reviewed": "id = 'mem-0002'"})  # computed for every row: not nullable
    before = table.version
    more = write_vmig(tmp_path / "more.vmig.jsonl", sample_records(count=8, odd_ones=False, seed=3))
    result = run_vex("import", "--from", str(more), "--to", "lancedb", *store)
    _one_clear_line(result)
    assert "reviewed" in result.stderr and "may not be null" in result.stderr
    assert _table(tmp_path / "lance", "strict").version == before


def test_metadata_someone_else_wrote_into_a_vex_table_is_kept_not_a_crash(tmp_path: Path) -> None:
    """Anyone can write to the table: metadata that is no JSON object comes out under the key `metadata`."""
    source = _sample(tmp_path)
    lance = tmp_path / "lance"
    assert run_vex("import", "--from", str(source), "--to", "lancedb", "--path", str(lance)).returncode == 0
    table = _table(lance, "memories")
    edits = {"mem-0001": "not json", "mem-0002": "[1, 2]", "mem-0003": '{"a": }', "mem-0004": '{"a": 1},{"b": 2}'}
    for record_id, text in edits.items():
        table.update(where=f"id = '{record_id}'", values={"metadata": text})
    table.update(where="id = 'mem-0005'", values={"metadata": None, "extra": "no object"})
    out = tmp_path / "o.vmig.jsonl"
    result = run_vex("export", "--from", "lancedb", "--path", str(lance), "--output", str(out))
    assert result.returncode == 0, result.stderr
    back = read_vmig(out)
    assert back["mem-0001"]["metadata"] == {"metadata": "not json"}
    assert back["mem-0002"]["metadata"] == {"metadata": [1, 2]}
    assert back["mem-0003"]["metadata"] == {"metadata": '{"a": }'}
    assert back["mem-0004"]["metadata"] == {"metadata": '{"a": 1},{"b": 2}'}
    assert back["mem-0005"]["metadata"] == {"extra": "no object"}, "an extra that is no object: kept in the metadata"
    assert back["mem-0000"]["metadata"] == sample_records(count=6, odd_ones=False)[0]["metadata"]


def test_a_uri_takes_the_place_of_a_path(tmp_path: Path) -> None:
    source = _sample(tmp_path)
    uri = (tmp_path / "by-uri").as_uri()
    result = run_vex("import", "--from", str(source), "--to", "lancedb", "--uri", uri, "--table", "t", "--json")
    assert result.returncode == 0, result.stderr
    assert _last(result)["target"] == "lancedb:by-uri/t"
    out = tmp_path / "o.vmig.jsonl"
    assert run_vex("export", "--from", "lancedb", "--uri", uri, "--table", "t", "--output", str(out)).returncode == 0
    assert len(read_vmig(out)) == 6 and _rows(tmp_path / "by-uri", "t") == (6, 6)
    both = run_vex("import", "--from", str(source), "--to", "lancedb", "--uri", uri, "--path", str(tmp_path / "x"))
    _one_clear_line(both)
    assert "--path DIR" in both.stderr and not (tmp_path / "x").exists()


def test_an_hnsw_index_with_the_tables_metric(tmp_path: Path) -> None:
    many = write_vmig(tmp_path / "m.vmig.jsonl", sample_records(count=600, dims=16, odd_ones=False))
    store = ["--path", str(tmp_path / "lance"), "--table", "h", "--index", "ivf_hnsw_sq", "--index-min-rows", "256"]
    result = run_vex("import", "--from", str(many), "--to", "lancedb", *store, "--metric", "euclid", "--json")
    assert result.returncode == 0, result.stderr
    assert not _last(result)["warnings"]
    (index,) = _table(tmp_path / "lance", "h").list_indices()
    assert "hnsw" in str(index.index_type).lower() and str(index.index_details["metric_type"]).lower() == "l2"
    with LanceDBConnector(LanceDBOptions(path=tmp_path / "lance", table="h")) as connector:
        assert connector.describe().metric == "euclid"


def test_a_table_another_tool_made_has_the_metric_of_its_vector_index(tmp_path: Path) -> None:
    from lancedb.index import IvfPq

    lance = tmp_path / "lance"
    vectors = np.random.default_rng(1).standard_normal((300, 16)).astype(np.float32)
    data = pa.table({"id": [f"r{i}" for i in range(300)],
                     "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), 16)})  # fmt: skip
    table = lancedb.connect(str(lance)).create_table("theirs", data=data)
    with LanceDBConnector(LanceDBOptions(path=lance, table="theirs")) as connector:
        assert connector.describe().metric is None, "no index, no metric: nothing to check against"
    table.create_index("vector", config=IvfPq(distance_type="dot", num_partitions=2, num_sub_vectors=2))
    with LanceDBConnector(LanceDBOptions(path=lance, table="theirs")) as connector:
        info = connector.describe()
    assert (info.metric, info.dims, info.count, info.layout) == ("dot", 16, 300, "a table vex did not create")


def test_rows_without_an_id_are_rejects_of_the_export_not_a_failure(tmp_path: Path) -> None:
    lance = tmp_path / "lance"
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(np.arange(12, dtype=np.float32)), 4)
    data = pa.table({"id": pa.array([7, None, 9], pa.int64()), "vector": vectors, "text": ["a", "b", "c"]})
    lancedb.connect(str(lance)).create_table("ints", data=data)
    out = tmp_path / "o.vmig.jsonl"
    result = run_vex("export", "--from", "lancedb", "--path", str(lance), "--table", "ints", "--output", str(out),
                     "--json")  # fmt: skip
    assert result.returncode == 3, "a source record that could not be read: the exit says so (as a damaged line)"
    summary = _last(result)
    assert (summary["upserted"], summary["rejected"]) == (2, 1)
    assert "row 1 has no id" in Path(summary["rejects_file"]).read_text()
    assert sorted(read_vmig(out)) == ["7", "9"], "integer ids come out as text"
