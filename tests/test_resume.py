"""A run stopped part way and the same command again: the rejects file still lists every damaged line once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.base import LoadResult
from connectors.vektor import VektorConnector
from engine.jobs import import_job
from engine.local import LocalRunner
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
        input=data,
        target=StoreSpec(store="vektor", options={"db": tmp_path / "t.db"}),
        check_sidecar=False,
        chunk_rows=4096,
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
        import_job(params, LocalRunner())
    rejects_file = tmp_path / "messy.rejects.jsonl"
    assert rejects_file.exists(), "the rejects of the chunks already loaded are on disk"

    monkeypatch.setattr(VektorConnector, "load", real_load)
    summary = import_job(params, LocalRunner())
    assert any("resumed" in warning for warning in summary.warnings)
    assert summary.upserted == RECORDS and summary.rejected == len(damaged)
    listed = [json.loads(line)["line"] for line in rejects_file.read_text().splitlines()]
    assert listed == damaged


# -- a checkpoint is bound to its target (issue 14, case 1) ---------------------------------------------

STALE_RECORDS = 6_000
INTERRUPT_AT = 4_096
"""Rows loaded when the run fails: one chunk of 4,096 (the file is read in pages of 4,096 lines)."""


def _interrupted_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: str, options: dict) -> ImportParams:
    """An import that stops with a failure after two chunks were acknowledged, leaving its checkpoint."""
    from connectors.registry import get_connector

    data = write_vmig(tmp_path / "full.vmig.jsonl", sample_records(STALE_RECORDS, dims=8, odd_ones=False))
    params = ImportParams(input=data, target=StoreSpec(store=store, options=options), chunk_rows=4_096)
    cls = get_connector(store)
    real_load = cls.load
    loaded = 0

    def failing_load(self, batch):  # type: ignore[no-untyped-def]
        nonlocal loaded
        if loaded >= INTERRUPT_AT:
            raise StoreError("interrupted")
        loaded += batch.num_rows
        return real_load(self, batch)

    monkeypatch.setattr(cls, "load", failing_load)
    with pytest.raises(StoreError):
        import_job(params, LocalRunner())
    monkeypatch.setattr(cls, "load", real_load)
    return params


def _count(store: str, options: dict) -> int:
    from engine.params import open_store

    with open_store(StoreSpec(store=store, options=options)) as connector:
        count = connector.describe().count
    assert count is not None
    return count


def _remove(path: Path) -> None:
    import shutil

    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


@pytest.mark.parametrize(
    ("store", "where"),
    [("vektor", {"db": "k1.db"}), ("qdrant", {"path": "qk", "collection": "memories"})],
    ids=["vektor", "qdrant"],
)
def test_a_checkpoint_of_a_deleted_target_starts_over(
    store: str, where: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = {key: (tmp_path / value if key in ("db", "path") else value) for key, value in where.items()}
    params = _interrupted_import(tmp_path, monkeypatch, store, options)
    assert 0 < _count(store, options) < STALE_RECORDS
    _remove(options["db"] if "db" in options else options["path"])

    summary = import_job(params, LocalRunner())
    assert not any(w.startswith("resumed") for w in summary.warnings)
    assert any("no longer exists" in w and "starts over" in w for w in summary.warnings), summary.warnings
    assert (summary.read, summary.upserted) == (STALE_RECORDS, STALE_RECORDS)
    assert _count(store, options) == STALE_RECORDS, "every record is in the new target"


def test_a_checkpoint_of_an_emptied_target_starts_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    db = tmp_path / "k2.db"
    params = _interrupted_import(tmp_path, monkeypatch, "vektor", {"db": db})
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM memories")
    conn.close()
    summary = import_job(params, LocalRunner())
    assert any("holds 0 records, fewer than the 4096" in w for w in summary.warnings), summary.warnings
    assert _count("vektor", {"db": db}) == STALE_RECORDS


def test_a_checkpoint_of_an_intact_target_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "k3.db"
    params = _interrupted_import(tmp_path, monkeypatch, "vektor", {"db": db})
    summary = import_job(params, LocalRunner())
    assert any(w.startswith("resumed an interrupted run after 4096 records") for w in summary.warnings)
    assert (summary.read, summary.upserted, summary.replaced) == (STALE_RECORDS, STALE_RECORDS, 0)
    assert _count("vektor", {"db": db}) == STALE_RECORDS


def test_a_checkpoint_of_a_recreated_target_starts_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deleted and filled again by something else, the target's count alone would pass: its incarnation differs."""
    from connectors.vektor import VektorConnector

    db = tmp_path / "k4.db"
    monkeypatch.setattr(VektorConnector, "incarnation", lambda self: "first" if not marker.exists() else "second")
    marker = tmp_path / "recreated"
    params = _interrupted_import(tmp_path, monkeypatch, "vektor", {"db": db})
    marker.touch()
    summary = import_job(params, LocalRunner())
    assert any("deleted and created again" in w for w in summary.warnings), summary.warnings
    assert summary.upserted == STALE_RECORDS


def test_a_transient_error_mid_chunk_rereads_the_whole_chunk(tmp_path: Path) -> None:
    """A page after the first of a chunk fails once: the retry reads the chunk again from its start.

    The reader used to keep its cursor after the pages it had read, while the retry dropped those pages:
    20 of 200 records went missing silently."""
    from connectors.vektor import VektorOptions
    from engine.chunks import ChunkReader
    from engine.steps import EXTRACT
    from tests.vektor_layouts import make_layout1
    from vmig.errors import TransientError

    class FlakyVektor(VektorConnector):
        failures = 1

        def extract(self, namespace, cursor):  # type: ignore[no-untyped-def]
            for number, page in enumerate(super().extract(namespace, cursor)):
                if number == 1 and FlakyVektor.failures:
                    FlakyVektor.failures -= 1
                    raise TransientError("the connection was reset")
                yield page

    db = make_layout1(tmp_path / "s.db", count=200)
    with FlakyVektor(VektorOptions(db=db)) as source:
        source.page_size = 10
        reader = ChunkReader(source, None, None)
        ids: list[str] = []
        for _ in range(50):
            if reader.finished:
                break
            ids += LocalRunner().run(EXTRACT, reader, 30).batch.column("id").to_pylist()
    assert FlakyVektor.failures == 0, "the fault was injected"
    assert len(ids) == len(set(ids)) == 200


def _fill(store: str, options: dict, count: int = 5) -> None:
    from engine.params import open_store
    from tests.records import to_batch

    with open_store(StoreSpec(store=store, options=options)) as connector:
        connector.ensure_target(8, None)
        connector.load(to_batch(sample_records(count, dims=8, odd_ones=False)))
        connector.finish()


def _incarnation(store: str, options: dict) -> str | None:
    from engine.params import open_store

    with open_store(StoreSpec(store=store, options=options)) as connector:
        return connector.incarnation()


def test_a_chroma_collection_created_again_is_another_incarnation(tmp_path: Path) -> None:
    import chromadb

    options = {"path": tmp_path / "c", "collection": "memories"}
    _fill("chroma", options)
    first = _incarnation("chroma", options)
    assert first is not None and _incarnation("chroma", options) == first
    chromadb.PersistentClient(path=str(tmp_path / "c")).delete_collection("memories")
    _fill("chroma", options)
    assert _incarnation("chroma", options) not in (None, first)


def test_a_pgvector_table_created_again_is_another_incarnation(pg_server) -> None:  # type: ignore[no-untyped-def]
    options = {"url": pg_server.dsn(), "table": "reborn"}
    with pg_server.admin("vexdb") as conn:
        conn.execute("DROP TABLE IF EXISTS reborn")
    _fill("pgvector", options)
    first = _incarnation("pgvector", options)
    assert first is not None and _incarnation("pgvector", options) == first
    with pg_server.admin("vexdb") as conn:
        conn.execute("DROP TABLE reborn")
    _fill("pgvector", options)
    assert _incarnation("pgvector", options) not in (None, first)


def test_a_vektor_file_is_told_from_another(tmp_path: Path) -> None:
    first, second = {"db": tmp_path / "a.db"}, {"db": tmp_path / "b.db"}
    _fill("vektor", first)
    _fill("vektor", second)
    assert _incarnation("vektor", first) == _incarnation("vektor", first) != _incarnation("vektor", second)
