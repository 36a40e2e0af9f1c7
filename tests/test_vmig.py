"""The format layer: reader variants, writer rules, compression, atomicity, sidecar."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import orjson
import pytest

from tests.records import read_vmig, sample_records, to_batch, write_vmig
from vmig.errors import IntegrityError
from vmig.paths import temporary_path
from vmig.reader import read_batches
from vmig.sidecar import read_sidecar, verify_against_sidecar
from vmig.timefmt import format_micros, to_micros
from vmig.writer import VmigWriter


def test_float32_vectors_round_trip_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = (rng.standard_normal((200, 384)) * 10.0 ** rng.integers(-30, 30, (200, 1))).astype(np.float32)
    records = [
        {"id": str(i), "text": None, "vector": v, "namespace": None, "metadata": {}, "created_at": None}
        for i, v in enumerate(vectors)
    ]
    path = write_vmig(tmp_path / "f.vmig.jsonl", records)
    back = read_vmig(path)
    for i, vector in enumerate(vectors):
        assert np.array_equal(np.asarray(back[str(i)]["vector"], dtype=np.float32), vector)


def test_written_records_obey_the_format_rules(tmp_path: Path) -> None:
    path = write_vmig(tmp_path / "r.vmig.jsonl", sample_records())
    for line in path.read_text().splitlines():
        record = json.loads(line)
        assert record["id"] and record["vex_version"] == "1.0.0"
        assert record["text"] is not None or record["vector"] is not None
        if record["vector"] is not None:
            assert record["dims"] == len(record["vector"])
        assert all(not isinstance(v, (dict, list)) for v in record["metadata"].values())
        for key in record.get("metadata_json_keys", []):
            assert isinstance(record["metadata"][key], str)


def test_nested_metadata_is_restored_exactly(tmp_path: Path) -> None:
    records = sample_records(count=5, odd_ones=False)
    back = read_vmig(write_vmig(tmp_path / "n.vmig.jsonl", records))
    for record in records:
        assert back[record["id"]]["metadata"] == record["metadata"]


def test_reader_accepts_variants_of_other_vex_versions(tmp_path: Path) -> None:
    lines = [
        {
            "id": 1,
            "text": "epoch seconds",
            "vector": [1, 2.5],
            "created_at": 1736936580,
            "metadata": None,
            "modality": "text",
            "vex_version": "1.1.0",
        },
        {
            "id": "b",
            "text": "epoch ms",
            "vector": None,
            "created_at": 1736936580123,
            "source": "pinecone",
            "metadata": {"tags": ["x", "y"], "n": {"deep": 1}},
        },
        {"id": "c", "text": "iso", "created_at": "2025-01-15T10:23:00Z", "metadata": {}},
    ]
    path = tmp_path / "variants.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    reads = list(read_batches(path))
    assert not reads[0].rejects
    rows = {row["id"]: row for row in reads[0].batch.to_pylist()}
    assert rows["1"]["created_at"].timestamp() == 1736936580
    assert json.loads(rows["1"]["extra"]) == {"modality": "text"}
    assert rows["1"]["metadata"] is None and rows["1"]["dims"] == 2
    assert rows["b"]["created_at"].timestamp() == pytest.approx(1736936580.123)
    assert rows["b"]["source_store"] == "pinecone"
    assert json.loads(rows["b"]["metadata"]) == {"tags": ["x", "y"], "n": {"deep": 1}}

    out = tmp_path / "out.vmig.jsonl"
    with VmigWriter(out) as writer:
        writer.write_batch(reads[0].batch)
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert written[0]["modality"] == "text" and written[0]["vex_version"] == "1.0.0"
    assert written[1]["source_store"] == "pinecone"
    assert json.loads(written[1]["metadata"]["tags"]) == ["x", "y"]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"id": "a", "text": "x", "vector": [1, "2"]}', "not a number"),
        (b'{"text": "no id", "vector": [1.0]}', "missing 'id'"),
        (b'{"id": "a", "vector": [1.0, 2.0], "dims": 3}', "'dims' is 3"),
        (b'{"id": "a", "vector": [1e39]}', "finite float32"),
        (b'{"id": "a", "vector": [NaN]}', "not valid JSON"),
        (b'{"id": "a", "text": null, "vector": null}', "neither"),
        (b'{"id": "a", "text": "x", "metadata": [1]}', "must be an object"),
        (b'{"id": "a", "text": "x"', "not valid JSON"),
        (b'["id", "a"]', "not an object"),
        (b'{"id": "a", "text": "x", "created_at": "yesterday"}', "ISO-8601"),
        (b'{"id": "\xff\xfe", "text": "x"}', "UTF-8"),
    ],
)
def test_damaged_lines_are_rejected_with_line_numbers(tmp_path: Path, line: bytes, reason: str) -> None:
    good = b'{"id": "ok", "text": "fine", "vector": [0.5]}\n'
    path = tmp_path / "d.jsonl"
    path.write_bytes(good + line + b"\n" + good.replace(b'"ok"', b'"ok2"'))
    reads = list(read_batches(path))
    rejects = [r for read in reads for r in read.rejects]
    assert [r.line for r in rejects] == [2]
    assert reason in rejects[0].reason
    assert sum(read.batch.num_rows for read in reads) == 2


WIDE_INTEGER_LINES = [
    (b'{"id": "m", "vector": [1.0], "metadata": {"n": 123456789012345678901234}}', "metadata 'n'"),
    (b'{"id": "m", "vector": [1.0], "metadata": {"a": [1, {"b": -9223372036854775809}]}}', "metadata 'a'"),
    (b'{"id": "m", "vector": [1.0], "metadata": {"d": "[99999999999999999999]"}, "metadata_json_keys": ["d"]}',
     "metadata 'd'"),
    (b'{"id": "m", "vector": [1.0], "custom": {"k": 18446744073709551616}}', "'custom'"),
]  # fmt: skip


@pytest.mark.parametrize("workers", [0, 2])
def test_integers_beyond_64_bits_are_refused_not_changed(tmp_path: Path, workers: int) -> None:
    """orjson reads such an integer as the nearest float: the line is a reject naming the number, while the
    64-bit extremes, large floats, long digit strings and a long numeric id come through exactly."""
    kept = [
        b'{"id": "x", "vector": [1.0], "metadata": {"u": 18446744073709551615, "i": -9223372036854775808, '
        b'"f": 1e30, "s": "123456789012345678901234"}}',
        b'{"id": 123456789012345678901234567890, "vector": [1.0], "text": "numeric id"}',
    ]
    path = tmp_path / "wide.jsonl"
    path.write_bytes(b"\n".join([kept[0], *(line for line, _ in WIDE_INTEGER_LINES), kept[1]]) + b"\n")
    reads = list(read_batches(path, workers=workers))
    rejects = [r for read in reads for r in read.rejects]
    assert [r.line for r in rejects] == [2, 3, 4, 5]
    for reject, (_, where) in zip(rejects, WIDE_INTEGER_LINES, strict=True):
        assert reject.reason.startswith(where) and "beyond 64 bits" in reject.reason, reject.reason
    assert "123456789012345678901234," in rejects[0].reason
    rows = [row for read in reads for row in read.batch.select(["id", "metadata"]).to_pylist()]
    assert rows[0] == {"id": "x", "metadata": '{"u":18446744073709551615,"i":-9223372036854775808,"f":1e+30,'
                       '"s":"123456789012345678901234"}'}  # fmt: skip
    assert rows[1]["id"] == "123456789012345678901234567890"


@pytest.mark.parametrize("suffix", [".vmig.jsonl.gz", ".vmig.jsonl.zst"])
def test_compressed_files_round_trip_and_are_deterministic(tmp_path: Path, suffix: str) -> None:
    records = sample_records(count=20)
    first = write_vmig(tmp_path / f"a{suffix}", records)
    second = write_vmig(tmp_path / f"b{suffix}", records)
    assert first.read_bytes() == second.read_bytes()
    assert sorted(read_vmig(first)) == sorted(r["id"] for r in records)
    sidecar = read_sidecar(first)
    assert sidecar is not None and sidecar.record_count == len(records)
    verify_against_sidecar(first, sidecar)


def test_truncated_gzip_is_an_integrity_error(tmp_path: Path) -> None:
    path = write_vmig(tmp_path / "t.vmig.jsonl.gz", sample_records(count=200))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IntegrityError, match="damaged or truncated"):
        for _ in read_batches(path):
            pass
    assert gzip  # the module under test is the stdlib's


def test_aborted_writer_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "x.vmig.jsonl"
    path.write_text("previous complete file\n")
    with pytest.raises(RuntimeError), VmigWriter(path) as writer:
        writer.write_batch(to_batch(sample_records(count=3)))
        raise RuntimeError("crash mid-export")
    assert path.read_text() == "previous complete file\n"
    assert not temporary_path(path).exists()


def test_checksum_and_count_mismatches_are_detected(tmp_path: Path) -> None:
    path = write_vmig(tmp_path / "c.vmig.jsonl", sample_records(count=5))
    sidecar = read_sidecar(path)
    assert sidecar is not None
    verify_against_sidecar(path, sidecar)
    with pytest.raises(IntegrityError, match="record count mismatch"):
        verify_against_sidecar(path, sidecar.model_copy(update={"record_count": 6}))
    path.write_bytes(path.read_bytes().replace(b"memory number 1 ", b"memory number 9 "))
    with pytest.raises(IntegrityError, match="checksum mismatch"):
        verify_against_sidecar(path, sidecar)


def test_sidecar_counts_by_namespace_model_and_dims(tmp_path: Path) -> None:
    write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=30))
    payload = orjson.loads((tmp_path / "s.vmig.meta.json").read_bytes())
    assert payload["record_count"] == 32
    assert payload["counts"]["namespace"] == {"default": 12, "research": 10, "trading": 10}
    assert payload["counts"]["dims"] == {"8": 30, "16": 1, "null": 1}
    assert payload["counts"]["model"]["all-MiniLM-L6-v2"] == 30
    assert payload["checksum"].startswith("sha256:") and len(payload["checksum"]) == 71


@pytest.mark.parametrize(
    ("value", "micros"),
    [
        ("2025-01-15T10:23:00.000Z", 1_736_936_580_000_000),
        (1_736_936_580, 1_736_936_580_000_000),
        (1_736_936_580_123, 1_736_936_580_123_000),
        ("1736936580", 1_736_936_580_000_000),
        ("2025-01-15 10:23:00+01:00", 1_736_932_980_000_000),
    ],
)
def test_timestamps_in_every_accepted_form(value: object, micros: int) -> None:
    assert to_micros(value) == micros
    assert to_micros(format_micros(micros)) == micros


def test_a_batch_larger_than_a_write_slice_is_written_whole_and_in_order(tmp_path: Path) -> None:
    from vmig.spool import SLICE_ROWS
    from vmig.writer import record_lines

    records = sample_records(2 * SLICE_ROWS + 17, dims=8, odd_ones=False)
    batch = to_batch(records)
    path = tmp_path / "big.vmig.jsonl"
    with VmigWriter(path, workers=0) as writer:
        writer.write_batch(batch)
    assert path.read_bytes() == b"".join(record_lines(batch))
    assert [orjson.loads(line)["id"] for line in path.read_bytes().splitlines()] == [r["id"] for r in records]
