"""VEKTOR files: layout detection, what each layout carries, and lossless round trips."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from connectors.vektor import _SQLITE, VektorConnector, VektorOptions
from tests.conftest import run_vex
from tests.records import read_vmig, sample_records, write_vmig
from tests.vektor_layouts import DIMS, LAYOUTS, make_window, window_id, window_row

TIME_KEYS = {"exported_at", "imported_at", "imported_to", "imports", "source_store"}


def _export(db: Path, output: Path) -> None:
    result = run_vex("export", "--from", "vektor", "--db", str(db), "--output", str(output))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("layout", [1, 2, 3])
def test_layout_is_detected(layout: int, tmp_path: Path) -> None:
    db = LAYOUTS[layout](tmp_path / "m.db")
    with VektorConnector(VektorOptions(db=db)) as store:
        assert store.layout() == layout
        info = store.describe()
    assert info.dims == DIMS and info.count == 50


@pytest.mark.parametrize("layout", [1, 2, 3])
def test_round_trip_through_layout1_is_byte_identical(layout: int, tmp_path: Path) -> None:
    """vektor -> jsonl -> vektor -> jsonl gives the same bytes, for each layout as the first source."""
    first_db = LAYOUTS[layout](tmp_path / "source.db")
    first, second = tmp_path / "first.vmig.jsonl", tmp_path / "second.vmig.jsonl"
    _export(first_db, first)
    result = run_vex("import", "--from", str(first), "--to", "vektor", "--db", str(tmp_path / "copy.db"))
    assert result.returncode == 0, result.stderr
    _export(tmp_path / "copy.db", second)

    assert first.read_bytes() == second.read_bytes()
    assert len(first.read_bytes().splitlines()) == 50
    meta_first = json.loads((tmp_path / "first.vmig.meta.json").read_text())
    meta_second = json.loads((tmp_path / "second.vmig.meta.json").read_text())
    assert {k: v for k, v in meta_first.items() if k not in TIME_KEYS} == {
        k: v for k, v in meta_second.items() if k not in TIME_KEYS
    }
    assert meta_first["imports"][0]["upserted"] == 50


def test_layout3_carries_graph_edges_and_agent_columns(tmp_path: Path) -> None:
    db = LAYOUTS[3](tmp_path / "graph.db")
    output = tmp_path / "g.vmig.jsonl"
    _export(db, output)
    records = read_vmig(output)
    first = records["g-0"]["metadata"]
    assert first["agent_id"] == "agent-0" and first["edge_type"] == "semantic" and first["summary"] is None
    assert [e["id"] for e in first["graph_edges"]] == ["e-0", "e-extra"]
    assert first["graph_edges"][1] == {
        "id": "e-extra",
        "target_id": "g-9",
        "edge_type": "relates",
        "weight": 0.9,
        "created_at": 1_736_936_700,
    }
    assert "graph_edges" not in records["g-1"]["metadata"]
    assert sum(len(r["metadata"].get("graph_edges", [])) for r in records.values()) == 26
    assert records["g-2"]["created_at"].timestamp() == 1_736_936_580 + 120
    # the file obeys the format: metadata flat, nested values as JSON text listed per record
    line = json.loads(output.read_text().splitlines()[0])
    assert isinstance(line["metadata"]["graph_edges"], str)
    assert set(line["metadata_json_keys"]) == {"graph_edges"}


def test_layout2_reads_vectors_from_sqlite_vec(tmp_path: Path) -> None:
    db = LAYOUTS[2](tmp_path / "vec.db")
    output = tmp_path / "v.vmig.jsonl"
    _export(db, output)
    records = read_vmig(output)
    assert records["l2-3"]["vector"] is None
    expected = np.random.default_rng(2).standard_normal((50, DIMS)).astype("<f4")
    assert np.array_equal(np.asarray(records["l2-10"]["vector"], dtype=np.float32), expected[10])
    assert records["l2-10"]["metadata"] == {"rank": 10, "nested": {"k": [10]}}


def test_import_upserts_into_existing_file(tmp_path: Path) -> None:
    db = LAYOUTS[1](tmp_path / "m.db")
    output = tmp_path / "m.vmig.jsonl"
    _export(db, output)
    lines = output.read_text().splitlines()
    changed = json.loads(lines[0])
    changed["text"] = "rewritten"
    new = dict(changed, id="brand-new")
    edited = tmp_path / "edit.vmig.jsonl"
    edited.write_text(json.dumps(changed) + "\n" + json.dumps(new) + "\n")
    result = run_vex("import", "--from", str(edited), "--to", "vektor", "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert "no sidecar" in result.stderr
    again = tmp_path / "again.vmig.jsonl"
    _export(db, again)
    records = read_vmig(again)
    assert len(records) == 51
    assert records[changed["id"]]["text"] == "rewritten"


def test_writing_into_another_layout_is_refused(tmp_path: Path) -> None:
    db = LAYOUTS[3](tmp_path / "graph.db")
    source = LAYOUTS[1](tmp_path / "l1.db")
    before = db.read_bytes()
    result = run_vex(
        "migrate", "--from", "vektor", "--to", "vektor", "--source-db", str(source), "--target-db", str(db)
    )
    assert result.returncode == 2
    assert "layout 3" in result.stderr and "Traceback" not in result.stderr
    assert db.read_bytes() == before


@pytest.mark.parametrize(
    ("update", "reason"),
    [
        ("embedding = x'0102030405'", "not a whole number of float32"),
        ("metadata = '{\"ticket\": 340282366920938463463374607431768211455}'",
         "holds the integer 340282366920938463463374607431768211455, beyond 64 bits"),
    ],
    ids=["damaged blob", "metadata integer beyond 64 bits"],
)  # fmt: skip
def test_a_record_vex_cannot_carry_is_rejected_not_counted(tmp_path: Path, update: str, reason: str) -> None:
    db = LAYOUTS[1](tmp_path / "m.db")
    with sqlite3.connect(db) as conn:
        conn.execute(f"UPDATE memories SET {update} WHERE id = 'l1-4'")
    conn.close()
    output = tmp_path / "out.vmig.jsonl"
    result = run_vex("export", "--from", "vektor", "--db", str(db), "--output", str(output), "--json")
    assert result.returncode == 3
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["total"] == 49 and summary["rejected"] == 1
    rejects = [json.loads(line) for line in (tmp_path / "out.rejects.jsonl").read_text().splitlines()]
    assert rejects[0]["id"] == "l1-4" and reason in rejects[0]["reason"]
    assert "l1-4" not in read_vmig(output)


class WindowWriter(threading.Thread):
    """Another writer on the file: each commit inserts the next id and deletes the oldest, so every committed
    state is a window of `count` consecutive ids, the k-th one starting at id k."""

    def __init__(self, db: Path, count: int) -> None:
        super().__init__(daemon=True)
        self.db, self.count = db, count
        self.commits = 0
        self.stop = threading.Event()
        self.error: Exception | None = None

    def run(self) -> None:
        # The same SQLite library as the connector: two copies in one process would not see each other's locks.
        conn = _SQLITE.connect(str(self.db), timeout=60, isolation_level=None)
        try:
            while not self.stop.is_set():
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO memories VALUES (?, ?, ?, ?, ?, ?)", window_row(self.count + self.commits))
                conn.execute("DELETE FROM memories WHERE id = ?", (window_id(self.commits),))
                conn.execute("COMMIT")
                self.commits += 1
        except Exception as exc:  # noqa: BLE001 - the test reports it
            self.error = exc
        finally:
            conn.close()

    def wait_for(self, commits: int, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while self.commits < commits and self.error is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.commits >= commits, self.error


@pytest.mark.parametrize("journal_mode", ["delete", "wal"])
def test_export_during_concurrent_writes_is_one_committed_state(journal_mode: str, tmp_path: Path) -> None:
    """`vex export` while another connection commits insert-one/delete-one: the file holds exactly the rows of
    one committed state (a window of `count` consecutive ids), never a mix of several."""
    count = 40_000
    db = make_window(tmp_path / "busy.db", count, journal_mode)
    output = tmp_path / "busy.vmig.jsonl"
    writer = WindowWriter(db, count)
    writer.start()
    try:
        writer.wait_for(5)
        before = writer.commits
        result = run_vex("export", "--from", "vektor", "--db", str(db), "--output", str(output), timeout=120)
        after = writer.commits
        writer.wait_for(after + 5)  # the writer goes on once the export let go
    finally:
        writer.stop.set()
        writer.join(60)
    assert writer.error is None and result.returncode == 0, (writer.error, result.stderr)
    numbers = sorted(int(json.loads(line)["id"][2:]) for line in output.read_text().splitlines())
    assert len(numbers) == count
    first = numbers[0]
    assert numbers == list(range(first, first + count)), "the exported rows were never all committed at once"
    assert before <= first <= after
    if journal_mode == "wal":
        assert after > before, "in WAL mode the writer commits while the export reads"


def _writer(db: Path, layout: int, timeout: float = 5) -> object:
    """Another connection on the file, from the connector's own SQLite library (two copies of the library in
    one process would not see each other's locks)."""
    conn = _SQLITE.connect(str(db), timeout=timeout, isolation_level=None)
    if layout == 2:
        import sqlite_vec

        conn.enable_load_extension(True)
        sqlite_vec.load(conn)
    return conn


def _read_all(db: Path) -> pa.Table:
    with VektorConnector(VektorOptions(db=db)) as store:
        return pa.Table.from_batches([page.batch for page in store.extract(None, None)])


@pytest.mark.parametrize("layout", [1, 2, 3])
def test_an_export_reads_every_table_from_one_snapshot(layout: int, tmp_path: Path) -> None:
    """A WAL file changed between two pages (rows deleted, text rewritten, sqlite-vec vectors and graph edges
    removed): the export still gives the file as it was when it began, vectors and edges included."""
    db = LAYOUTS[layout](tmp_path / "m.db")
    writer: Any = _writer(db, layout)
    assert writer.execute("PRAGMA journal_mode=wal").fetchone()[0] == "wal"
    shutil.copy(db, tmp_path / "before.db")  # nothing in the WAL yet: the file alone is the state
    with VektorConnector(VektorOptions(db=db)) as store:
        store.page_size = 10
        pages = store.extract(None, None)
        batches = [next(pages).batch]
        writer.execute("BEGIN")
        writer.execute("UPDATE memories SET content = 'changed'")
        writer.execute("DELETE FROM memories WHERE rowid % 2 = 0")
        side = {2: "memories_vec", 3: "graph_edges"}.get(layout)
        if side:
            writer.execute(f"DELETE FROM {side}")
        writer.execute("COMMIT")
        batches += [page.batch for page in pages]
    writer.close()
    exported = pa.Table.from_batches(batches)
    assert exported.num_rows == 50
    assert exported.equals(_read_all(tmp_path / "before.db"))
    assert _read_all(db).num_rows == 25  # the writer's commit is there for the next export


@pytest.mark.parametrize("how", ["exhausted", "abandoned", "closed"])
def test_in_rollback_journal_mode_writers_wait_for_the_export(how: str, tmp_path: Path) -> None:
    """The price of one snapshot in the default journal mode: the export's SHARED lock holds every writer's
    commit back until the export ends, is dropped or its store closed, then writes go through."""
    db = LAYOUTS[1](tmp_path / "m.db")
    writer: Any = _writer(db, 1, timeout=0.2)
    assert writer.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    store = VektorConnector(VektorOptions(db=db))
    store.page_size = 10
    pages = store.extract(None, None)
    next(pages)
    with pytest.raises(_SQLITE.OperationalError, match="locked"):
        writer.execute("DELETE FROM memories WHERE id = 'l1-0'")
    if how == "exhausted":
        assert sum(page.batch.num_rows for page in pages) == 40
    elif how == "abandoned":
        pages.close()
    else:
        store.close()
    writer.execute("DELETE FROM memories WHERE id = 'l1-0'")
    assert writer.execute("SELECT count(*) FROM memories").fetchone()[0] == 49
    writer.close()
    store.close()


LOOKALIKES: list[dict[str, Any]] = [
    {
        "_vex": {"model": "mine", "score": 2},  # shaped like vex's own fields
        "_vex_user:x": [1, None],
        "_vexfoo": None,
        "_vex_model": {"nested": {"deep": None}},
        "plain": 'a "_vex in a value',
    },
    {"_vex": 5, "_vex_user:_vex": "escaped twice"},
    {"_vex": None},
    {"_vex_model": {"a": [1, 2]}, "n": 1},
    {"_vex": {}, "_vexfoo": {"_vex": {"model": "inner"}}},
]


def _lookalike_file(tmp_path: Path, with_model: bool) -> Path:
    records = sample_records(len(LOOKALIKES) + 1, odd_ones=False)
    for record, meta in zip(records, LOOKALIKES, strict=False):
        record["metadata"] = meta
    for record in records:
        record["model"] = record["model"] if with_model else None  # with a model, vex's own `_vex` is there too
    # From vektor itself, so without a model nothing of vex's own needs `_vex`: the rows take the fast path.
    return write_vmig(tmp_path / f"lookalikes-{with_model}.vmig.jsonl", records, source="vektor")


@pytest.mark.parametrize("with_model", [True, False], ids=["beside vex's own _vex", "alone"])
def test_user_keys_that_look_like_vex_own_round_trip(with_model: bool, tmp_path: Path) -> None:
    """import -> export and vektor -> vektor `--verify` keep a user's `_vex`, `_vex_user:x`, `_vexfoo` and
    `_vex_model` keys, nested or null, exactly; vex's own fields still come back as fields."""
    source = _lookalike_file(tmp_path, with_model)
    db = tmp_path / "m.db"
    result = run_vex("import", "--from", str(source), "--to", "vektor", "--db", str(db))
    assert result.returncode == 0, result.stderr
    exported = tmp_path / "out.vmig.jsonl"
    _export(db, exported)
    before, after = read_vmig(source), read_vmig(exported)
    assert {k: r["metadata"] for k, r in after.items()} == {k: r["metadata"] for k, r in before.items()}
    assert {k: r["model"] for k, r in after.items()} == {k: r["model"] for k, r in before.items()}
    with sqlite3.connect(db) as conn:
        stored = json.loads(conn.execute("SELECT metadata FROM memories WHERE id = 'mem-0000'").fetchone()[0])
        untouched = conn.execute("SELECT metadata FROM memories WHERE id = 'mem-0005'").fetchone()[0]
    conn.close()
    assert stored["_vex_user:_vex"] == {"model": "mine", "score": 2}
    assert stored.get("_vex") == ({"model": "all-MiniLM-L6-v2"} if with_model else None)
    if not with_model:
        assert json.loads(untouched) == before["mem-0005"]["metadata"]  # a row with no `_vex` key, as it came

    copy = tmp_path / "copy.db"
    migrated = run_vex(
        "migrate", "--from", "vektor", "--to", "vektor", "--source-db", str(db), "--target-db", str(copy), "--verify"
    )
    assert migrated.returncode == 0, migrated.stderr
    again = tmp_path / "again.vmig.jsonl"
    _export(copy, again)
    assert {k: r["metadata"] for k, r in read_vmig(again).items()} == {k: r["metadata"] for k, r in before.items()}


def test_a_file_vektor_wrote_keeps_its_own_vex_looking_keys(tmp_path: Path) -> None:
    """Layout 1 as VEKTOR's app writes it: a `_vex` that is not what vex writes there, and `x` beside
    `_vex_user:x`, stay the user's keys as they are (vex never writes either)."""
    db = LAYOUTS[1](tmp_path / "m.db")
    foreign = {
        "l1-1": {"_vex": 5},
        "l1-2": {"_vex": {"model": 7}},
        "l1-3": {"_vex": {"note": "mine"}, "_vex_model": "m"},
        "l1-4": {"x": 1, "_vex_user:x": 2},
    }
    with sqlite3.connect(db) as conn:
        for record_id, meta in foreign.items():
            conn.execute("UPDATE memories SET metadata = ? WHERE id = ?", (json.dumps(meta), record_id))
        conn.execute("UPDATE memories SET metadata = NULL WHERE id = 'l1-5'")
    conn.close()
    output = tmp_path / "out.vmig.jsonl"
    _export(db, output)
    records = read_vmig(output)
    assert {k: records[k]["metadata"] for k in foreign} == foreign
    assert records["l1-5"]["metadata"] == {}
    assert {records[k]["model"] for k in foreign} == {None}


def test_layout2_metadata_is_all_the_users(tmp_path: Path) -> None:
    """vex never writes layout 2, so a `_vex` key there is the user's: exported as it is, not taken as vex's."""
    db = LAYOUTS[2](tmp_path / "vec.db")
    meta = {"_vex": {"model": "m", "score": 1.0}, "_vex_user:x": 1}
    writer: Any = _writer(db, 2)
    writer.execute("UPDATE memories SET metadata = ? WHERE id = 'l2-5'", (json.dumps(meta),))
    writer.close()
    output = tmp_path / "v.vmig.jsonl"
    _export(db, output)
    record = read_vmig(output)["l2-5"]
    assert record["metadata"] == meta
    assert record["model"] is None and record["score"] is None
