"""Worker-process reading gives exactly what in-process reading gives; batch time formatting matches per-value."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pytest

from vmig import reader
from vmig.lines import MAX_LINE_BYTES
from vmig.reader import read_batches
from vmig.timefmt import format_micros, format_micros_column, to_micros


def _messy_file(path: Path, count: int) -> Path:
    """Good records with blank lines, damaged lines, a BOM and an over-long line among them."""
    rng = random.Random(5)
    lines = []
    for i in range(count):
        record = {"id": f"r{i}", "vector": [rng.random() for _ in range(8)], "text": f"t{i}"}
        lines.append(json.dumps(record).encode())
        if i % 97 == 3:
            lines.append(b"")
        if i % 131 == 7:
            lines.append(b'{"id": "bad", "vector": [1, "x"]}')
        if i % 173 == 11:
            lines.append(b"{not json")
    lines[0] = b"\xef\xbb\xbf" + lines[0]
    lines.insert(len(lines) // 2, b'{"id": "long", "text": "' + b"x" * (MAX_LINE_BYTES + 10) + b'"}')
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _summary(reads: list[reader.ReadBatch]) -> tuple[list[str], list[int], list[tuple[int | None, str]]]:
    ids = [i for read in reads for i in read.batch.column("id").to_pylist()]
    lines = [n for read in reads for n in read.row_lines]
    rejects = [(r.line, r.reason) for read in reads for r in read.rejects]
    return ids, lines, rejects


def test_workers_read_the_same_records_lines_and_rejects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "RANGE_BYTES", 64 << 10)  # many ranges, lines cut at range edges
    path = _messy_file(tmp_path / "m.vmig.jsonl", 3000)
    serial = list(read_batches(path, 256, workers=0))
    parallel = list(read_batches(path, 256, workers=2))
    assert _summary(parallel) == _summary(serial)
    ids, _lines, rejects = _summary(serial)
    assert len(ids) == 3000 and len(rejects) == 3000 // 131 + 1 + 3000 // 173 + 1 + 1


def test_resuming_at_a_batch_boundary_with_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "RANGE_BYTES", 64 << 10)
    path = _messy_file(tmp_path / "m.vmig.jsonl", 2000)
    whole = list(read_batches(path, 256, workers=0))
    middle = whole[len(whole) // 2]
    rest = list(read_batches(path, 256, middle.next_offset, middle.next_line, workers=2))
    expected = whole[len(whole) // 2 + 1 :]
    assert _summary(rest) == _summary(expected)


def test_batch_time_formatting_matches_per_value() -> None:
    rng = random.Random(9)
    values = [0, 1, 999, 1000, -1, -1001, 1_736_936_580_123_000, -62_135_596_800_000_000, None]
    values += [rng.randint(-62_135_596_800_000_000, 253_402_300_799_999_999) for _ in range(2000)]
    column = pa.array(values, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    expected = [None if v is None else format_micros(v) for v in values]
    assert format_micros_column(column) == expected
    assert all(to_micros(text) == v for v, text in zip(values, expected, strict=True) if v is not None)


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_workers_leave_with_a_killed_run_and_need_no_main_guard(tmp_path: Path) -> None:
    """A script without `if __name__ == "__main__"` reads with workers; SIGKILLed, it leaves no worker behind."""
    import signal
    import subprocess
    import sys
    import time

    path = _messy_file(tmp_path / "m.vmig.jsonl", 2000)
    ready = tmp_path / "ready"
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import pathlib, time\n"
        "from vmig.reader import read_batches\n"
        f"rows = sum(r.batch.num_rows for r in read_batches(pathlib.Path({str(path)!r}), 256, workers=2))\n"
        f"pathlib.Path({str(ready)!r}).write_text(str(rows))\n"
        "time.sleep(60)\n"
    )
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen([sys.executable, str(script)], cwd=root, env={"PYTHONPATH": str(root)})
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready.exists() and ready.read_text() == "2000", "the unguarded script read the file with workers"
        workers = _children(process.pid)
        assert len(workers) >= 2
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        deadline = time.monotonic() + 15
        while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(Path(f"/proc/{pid}").exists() for pid in workers), "a worker outlived the killed run"
    finally:
        if process.poll() is None:
            process.kill()


def _write(path: Path, batches: list[pa.RecordBatch], workers: int, spool_gone: bool = False) -> str:
    from vmig.writer import VmigWriter

    writer = VmigWriter(path, default_source="t", workers=workers).open()
    if spool_gone:
        writer._start_workers_when_large()
        assert writer._spool is not None and writer._spool.memory is not None
        writer._spool.memory_path = str(path.with_name("gone"))  # what workers find where /proc is closed to them
    for batch in batches:
        writer.write_batch(batch)
    return writer.commit()


def _batches(count: int = 3) -> list[pa.RecordBatch]:
    from tests.records import sample_records, to_batch
    from vmig.spool import SLICE_ROWS

    records = sample_records(count * (SLICE_ROWS + 5), dims=16)  # nested metadata, nulls, odd ids among them
    return [to_batch(records[i : i + SLICE_ROWS + 5]) for i in range(0, len(records), SLICE_ROWS + 5)]


@pytest.fixture
def spool_early(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers from the second batch on: the switch from formatting here to the workers is in every test."""
    from vmig import writer

    monkeypatch.setattr(writer, "WARM_FROM_ROWS", 1)
    monkeypatch.setattr(writer, "SPOOL_FROM_ROWS", 1000)


@pytest.fixture
def spool_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers from the first record on."""
    from vmig import writer

    monkeypatch.setattr(writer, "WARM_FROM_ROWS", 0)
    monkeypatch.setattr(writer, "SPOOL_FROM_ROWS", 0)


def test_formatting_workers_write_the_same_bytes(tmp_path: Path, spool_early: None) -> None:
    batches = _batches()
    one = _write(tmp_path / "one.vmig.jsonl", batches, workers=0)
    spooled = _write(tmp_path / "spooled.vmig.jsonl", batches, workers=2)
    assert spooled == one
    assert (tmp_path / "spooled.vmig.jsonl").read_bytes() == (tmp_path / "one.vmig.jsonl").read_bytes()


def test_a_worker_that_cannot_map_its_slot_hands_the_slice_back(tmp_path: Path, spool_now: None) -> None:
    """The slot files vanish under the run: the writer formats those slices itself, the bytes are unchanged."""
    batches = _batches()
    one = _write(tmp_path / "one.vmig.jsonl", batches, workers=0)
    assert _write(tmp_path / "here.vmig.jsonl", batches, workers=2, spool_gone=True) == one


@pytest.fixture
def handed_over(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What reached the writer's I/O thread, slice by slice: 'slot' or 'pipe'."""
    from vmig import spool, writer

    kinds: list[str] = []

    def counting(item: spool.Lines, sink: object) -> None:
        kinds.append("pipe" if isinstance(item, bytes) else "slot")
        spool.write_lines(item, sink)

    monkeypatch.setattr(writer, "write_lines", counting)
    return kinds


def test_slots_are_reused_for_many_slices_in_order(
    tmp_path: Path, spool_now: None, handed_over: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from vmig import spool

    batches = _batches()
    monkeypatch.setattr(spool, "SLICE_ROWS", 37)
    one = _write(tmp_path / "one.vmig.jsonl", batches, workers=0)
    handed_over.clear()
    assert _write(tmp_path / "slots.vmig.jsonl", batches, workers=2) == one
    slots = 2 * 2 + 2
    assert handed_over == ["slot"] * len(handed_over) and len(handed_over) > 10 * slots


def test_without_room_in_shared_memory_the_pipe_carries_the_lines(
    tmp_path: Path, spool_now: None, handed_over: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    from vmig import spool

    def full(descriptor: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool.os, "posix_fallocate", full)
    batches = _batches()
    one = _write(tmp_path / "one.vmig.jsonl", batches, workers=0)
    handed_over.clear()
    assert _write(tmp_path / "piped.vmig.jsonl", batches, workers=2) == one
    assert handed_over and set(handed_over) == {"pipe"}
    open_before = len(os.listdir("/proc/self/fd"))
    line_spool = spool.LineSpool(2, "t")
    assert line_spool.memory is None and len(os.listdir("/proc/self/fd")) == open_before, "nothing is kept open"
    line_spool.close()


def test_a_slice_larger_than_its_slot_s_room_goes_pickled(
    tmp_path: Path, spool_now: None, handed_over: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from vmig import spool

    monkeypatch.setattr(spool, "SLOT_BYTES", spool.LINES_BYTES + 2000)  # room for a slice of a few rows only
    batches = _batches()
    one = _write(tmp_path / "one.vmig.jsonl", batches, workers=0)
    handed_over.clear()
    assert _write(tmp_path / "pickled.vmig.jsonl", batches, workers=2) == one
    assert set(handed_over) == {"slot"}


def test_wide_rows_are_cut_into_slices_whose_lines_fit_a_slot(
    tmp_path: Path, spool_now: None, handed_over: list[str]
) -> None:
    from tests.records import sample_records, to_batch
    from vmig import spool
    from vmig.writer import record_lines

    batch = to_batch(sample_records(400, dims=4096))
    rows = spool._slice_rows(batch)
    assert 1 < rows < spool.SLICE_ROWS
    widest = max(range(0, batch.num_rows, rows), key=lambda start: batch.slice(start, rows).nbytes)
    assert sum(map(len, record_lines(batch.slice(widest, rows)))) <= spool.LINES_BYTES
    assert sum(map(len, record_lines(batch.slice(0, 2 * rows)))) > spool.LINES_BYTES, "the cut is not needlessly small"
    one = _write(tmp_path / "one.vmig.jsonl", [batch], workers=0)
    handed_over.clear()
    assert _write(tmp_path / "wide.vmig.jsonl", [batch], workers=2) == one
    assert set(handed_over) == {"slot"} and len(handed_over) == -(-batch.num_rows // rows)


def test_workers_keep_freed_memory_unless_the_environment_says_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from vmig import parallel

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "4242")
    pool = parallel._pool(2)
    seen = [pool.submit(os.getenv, name).result() for name in parallel.WORKER_MEMORY_ENV]
    assert seen == ["1000", "4242", str(32 << 20)]
    assert os.getenv("MIMALLOC_PURGE_DELAY") is None, "the setting is the workers' only"


def test_a_small_export_starts_no_formatting_workers(tmp_path: Path) -> None:
    from vmig.writer import VmigWriter

    writer = VmigWriter(tmp_path / "small.vmig.jsonl", workers=4).open()
    for batch in _batches():
        writer.write_batch(batch)
    assert writer._spool is None and not writer._warming
    writer.commit()


def test_an_export_expected_large_starts_its_workers_at_open_and_uses_them_once_up(tmp_path: Path) -> None:
    """With the count known, workers start before the first record and take over as soon as all are up."""
    from vmig.spool import SPOOL_FROM_ROWS
    from vmig.writer import VmigWriter

    batches = _batches(4)
    one = _write(tmp_path / "one.vmig.jsonl", batches, workers=0)
    writer = VmigWriter(tmp_path / "early.vmig.jsonl", default_source="t", workers=2, expected_records=SPOOL_FROM_ROWS)
    writer.open()
    assert writer._warming is not None and len(writer._warming) == 2, "spawned before the first record"
    writer.write_batch(batches[0])  # formatted here, or by the workers if they are up already
    for future in writer._warming:
        future.result(timeout=120)
    for batch in batches[1:]:
        writer.write_batch(batch)
    assert writer._spool is not None, "the workers format once started, long before SPOOL_FROM_ROWS records"
    assert writer.stats.record_count < SPOOL_FROM_ROWS
    assert writer.commit() == one


def test_an_export_tells_its_file_how_many_records_to_expect(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The source's count reaches the writer, which decides on it whether to start workers at once."""
    from connectors import jsonl
    from engine.jobs import export_job
    from engine.local import LocalRunner
    from engine.params import ExportParams, StoreSpec
    from tests.records import sample_records, write_vmig

    seen: list[int | None] = []

    class Recording(jsonl.VmigWriter):
        def open(self) -> jsonl.VmigWriter:
            seen.append(self.expected_records)
            return super().open()

    source = write_vmig(tmp_path / "in.vmig.jsonl", sample_records(37))
    monkeypatch.setattr(jsonl, "VmigWriter", Recording)
    spec = StoreSpec(store="jsonl", options={"path": str(source)})
    summary = export_job(ExportParams(source=spec, output=tmp_path / "out.vmig.jsonl", limit=30), LocalRunner())
    assert summary.upserted == 30
    assert seen == [30], "the count, cut by --limit"


def test_the_slots_memory_goes_with_the_run(tmp_path: Path, spool_now: None) -> None:
    import os

    from vmig.writer import VmigWriter

    writer = VmigWriter(tmp_path / "w.vmig.jsonl", workers=2).open()
    writer._start_workers_when_large()
    spool = writer._spool
    assert spool is not None and spool.memory is not None and spool.memory_path is not None
    descriptor = int(spool.memory_path.rsplit("/", 1)[1])
    assert os.readlink(f"/proc/self/fd/{descriptor}").startswith("/memfd:vex-lines"), "in no file system"
    writer.write_batch(_batches()[0])
    writer.abort()
    assert spool.memory is None
    with pytest.raises(OSError):
        os.fstat(descriptor)
    assert not (tmp_path / "w.vmig.jsonl").exists()


def test_read_ahead_keeps_order_raises_in_place_and_closes_the_source() -> None:
    import threading

    from vmig.parallel import read_ahead

    closed = threading.Event()

    def pages(fail_at: int | None = None):  # type: ignore[no-untyped-def]
        try:
            for number in range(50):
                if number == fail_at:
                    raise ConnectionError(f"lost at {number}")
                yield number
        finally:
            closed.set()

    assert list(read_ahead(pages(), depth=2)) == list(range(50))
    got = []
    with pytest.raises(ConnectionError, match="lost at 7"):
        for number in read_ahead(pages(fail_at=7)):
            got.append(number)
    assert got == list(range(7))
    closed.clear()
    early = read_ahead(pages())
    assert [next(early) for _ in range(3)] == [0, 1, 2]
    early.close()
    assert closed.is_set(), "the source is closed once the consumer stops"
    assert not [t for t in threading.enumerate() if t.name == "vex-read-ahead"]
