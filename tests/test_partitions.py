"""Sources cut for `--workers`: a `.vmig.jsonl` file in byte ranges that start at lines, read by the ordinary
reader up to the next range's start, and a pgvector table in ranges of the key its pages follow. Every record
is read once, in order, and a damaged line is reported with its line number in the file, whichever share it
falls in."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from connectors.jsonl import JsonlConnector, JsonlOptions
from connectors.pgvector.connector import PgvectorConnector
from connectors.pgvector.options import PgvectorOptions
from tests.pg_server import PgServer
from tests.records import sample_records, write_lines, write_vmig
from tests.test_pgvector import make_llamaindex_table
from vmig import reader
from vmig.errors import UsageError
from vmig.reader import read_batches

DAMAGED = '{"id": "broken", "vector": [0.1, '


@pytest.fixture
def source(tmp_path: Path) -> tuple[Path, list[str], int]:
    """300 records with a blank line and a damaged one among them; the damaged line's number."""
    records = sample_records(count=300, odd_ones=False)
    lines: list[dict[str, object] | str] = [*records[:130], "", *records[130:211], DAMAGED, *records[211:]]
    return write_lines(tmp_path / "in.vmig.jsonl", lines), [str(r["id"]) for r in records], 130 + 1 + 81 + 1


@pytest.mark.parametrize("parts", [1, 3, 7])
def test_each_share_is_read_once_and_rejects_keep_their_line_numbers(
    source: tuple[Path, list[str], int], parts: int
) -> None:
    path, ids, damaged_line = source
    connector = JsonlConnector(JsonlOptions(path=path))
    shares = connector.partitions(None, parts)
    assert shares is not None and len(shares) == parts
    assert shares[0].start == {"offset": 0, "line": 1} and shares[-1].stop is None
    content = path.read_bytes()
    read_ids: list[str] = []
    rejected: list[int | None] = []
    for share, following in zip(shares, [*shares[1:], None], strict=True):
        if following is not None:
            assert share.stop == following.start["offset"]
            assert content[share.stop - 1 : share.stop] == b"\n"  # a cut falls between lines
            assert content[: share.stop].count(b"\n") + 1 == following.start["line"]
        connector.stop = share.stop
        for page in connector.extract(None, share.start):
            read_ids.extend(page.batch.column("id").to_pylist())
            rejected.extend(reject.line for reject in page.rejects)
    assert read_ids == ids
    assert rejected == [damaged_line]


def test_the_worker_pool_reader_stops_where_the_share_ends(
    source: tuple[Path, list[str], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large files are parsed by processes over ranges of their own; a share's end bounds them too."""
    monkeypatch.setattr(reader, "RANGE_BYTES", 4096)  # many ranges in each share
    path, ids, damaged_line = source
    shares = JsonlConnector(JsonlOptions(path=path)).partitions(None, 2)
    assert shares is not None
    read_ids: list[str] = []
    rejected: list[int | None] = []
    for share in shares:
        for read in read_batches(path, 50, share.start["offset"], share.start["line"], workers=2,
                                 stop_offset=share.stop):  # fmt: skip
            read_ids.extend(read.batch.column("id").to_pylist())
            rejected.extend(reject.line for reject in read.rejects)
    assert read_ids == ids and rejected == [damaged_line]


def test_a_small_file_gives_fewer_shares_and_a_compressed_one_is_refused(tmp_path: Path) -> None:
    one = write_lines(tmp_path / "one.vmig.jsonl", sample_records(count=1, odd_ones=False))
    shares = JsonlConnector(JsonlOptions(path=one)).partitions(None, 4)
    assert shares is not None and [(s.start, s.stop) for s in shares] == [({"offset": 0, "line": 1}, None)]
    packed = tmp_path / "in.vmig.jsonl.gz"
    packed.write_bytes(gzip.compress(one.read_bytes()))
    with pytest.raises(UsageError, match="gzip-compressed and cannot be cut into byte ranges"):
        JsonlConnector(JsonlOptions(path=packed)).partitions(None, 2)


def test_a_scaled_out_migrate_from_a_file_moves_every_share(
    source: tuple[Path, list[str], int], tmp_path: Path
) -> None:
    """The scale-out path itself, with the local runner (the Dask runner is tested in tests/test_dask.py)."""
    from engine.jobs import migrate_job
    from engine.local import LocalRunner
    from engine.params import MigrateParams, StoreSpec

    path, ids, damaged_line = source
    params = MigrateParams(
        source=StoreSpec(store="jsonl", options={"path": path}),
        target=StoreSpec(store="vektor", options={"db": tmp_path / "out.db"}),
        workers=3, chunk_rows=40, verify=True,
    )  # fmt: skip
    summary = migrate_job(params, LocalRunner())
    assert (summary.read, summary.upserted, summary.rejected, summary.failed) == (len(ids), len(ids), 1, 0)
    assert [line for line, _ in summary.reject_sample] == [damaged_line]
    assert summary.verify is not None and summary.verify.ok and summary.verify.matched == len(ids)
    assert "moved by 3 partitions at once (--workers 3)" in summary.warnings


def test_a_pgvector_table_is_cut_by_its_integer_key_in_numeric_order(pg_server: PgServer) -> None:
    """A LlamaIndex table pages by its BIGSERIAL key: shares cut at keys 3, 6, 9 of 12 must compare as numbers
    (as text, '10' < '3' and the shares would overlap or skip)."""
    make_llamaindex_table(pg_server, "shares")
    with pg_server.admin("vexdb") as conn:
        for i in range(12):
            conn.execute("INSERT INTO data_shares (text, metadata_, node_id, embedding) VALUES (%s, '{}', %s, %s)",
                         (f"text {i}", f"n-{i}", "[" + ",".join(["0.5"] * 8) + "]"))  # fmt: skip
    connector = PgvectorConnector(PgvectorOptions(url=pg_server.dsn(), layout="llamaindex", collection="shares"))
    connector.page_size = 2
    with connector:
        shares = connector.partitions(None, 4)
        assert shares is not None and [(s.start, s.stop) for s in shares][1:3] == [("3", "6"), ("6", "9")]
        read: list[str] = []
        for share in shares:
            connector.stop = share.stop
            read.extend(i for page in connector.extract(None, share.start) for i in page.batch.column("id").to_pylist())
    assert read == [f"n-{i}" for i in range(12)]


def test_a_scaled_out_migrate_from_pgvector_moves_each_namespace_share(pg_server: PgServer, tmp_path: Path) -> None:
    from engine.jobs import import_job, migrate_job
    from engine.local import LocalRunner
    from engine.params import ImportParams, MigrateParams, StoreSpec

    records = sample_records(count=90, odd_ones=False)
    source = StoreSpec(store="pgvector", options={"url": pg_server.dsn(), "table": "scaled_source"})
    write_vmig(tmp_path / "in.vmig.jsonl", records)
    import_job(ImportParams(input=tmp_path / "in.vmig.jsonl", target=source), LocalRunner())
    trading = sorted(str(r["id"]) for r in records if r["namespace"] == "trading")
    params = MigrateParams(source=source, target=StoreSpec(store="vektor", options={"db": tmp_path / "out.db"}),
                           namespace="trading", workers=3, chunk_rows=5, verify=True)  # fmt: skip
    summary = migrate_job(params, LocalRunner())
    assert (summary.read, summary.upserted, summary.failed) == (len(trading), len(trading), 0)
    assert summary.verify is not None and summary.verify.ok and summary.verify.matched == len(trading)
    assert "moved by 3 partitions at once (--workers 3)" in summary.warnings
