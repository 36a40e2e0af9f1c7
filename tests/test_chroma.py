"""Chroma specifics: exact vectors, batch limits, rejected records, refusals, a real server."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from connectors.chroma import ChromaConnector, ChromaOptions
from tests.chroma_server import ChromaServer, free_port
from tests.conftest import ROOT, run_vex
from tests.records import read_vmig, sample_records, write_vmig

DEMO_DB = ROOT / "demo" / "memory.db"


def _last(result) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_l2_collection_keeps_float32_vectors_bit_for_bit(tmp_path: Path) -> None:
    records = sample_records(count=20, odd_ones=False)
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    store = ["--path", str(tmp_path / "c"), "--collection", "exact"]
    result = run_vex("import", "--from", str(source), "--to", "chroma", *store, "--metric", "euclid")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "o.vmig.jsonl"
    assert run_vex("export", "--from", "chroma", *store, "--output", str(out)).returncode == 0
    back = read_vmig(out)
    for record in records:
        assert np.array_equal(np.asarray(back[record["id"]]["vector"], dtype=np.float32), record["vector"])


def test_more_records_than_a_request_holds(tmp_path: Path, chroma_server: ChromaServer) -> None:
    records = sample_records(count=2500, odd_ones=False)
    source = write_vmig(tmp_path / "big.vmig.jsonl", records)
    store = ["--url", chroma_server.url, "--collection", "big_batches"]
    result = run_vex("import", "--from", str(source), "--to", "chroma", *store, "--json")
    assert result.returncode == 0, result.stderr
    assert _last(result)["upserted"] == 2500
    with ChromaConnector(ChromaOptions(url=chroma_server.url, collection="big_batches")) as chroma:
        assert chroma.describe().count == 2500


def test_records_the_store_refuses_are_counted_as_failed(tmp_path: Path) -> None:
    records = sample_records(count=10, odd_ones=False)
    records[3]["metadata"] = {"#not-a-chroma-key": 1}
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    result = run_vex("import", "--from", str(source), "--to", "chroma", "--path", str(tmp_path / "c"),
                     "--collection", "refusals", "--json")  # fmt: skip
    assert result.returncode == 1
    summary = _last(result)
    assert summary["upserted"] == 9 and summary["failed"] == 1
    assert summary["failed_sample"][0]["id"] == "mem-0003"
    assert "Invalid metadata" in summary["failed_sample"][0]["reason"]


def test_duplicate_ids_in_one_request_keep_the_last(tmp_path: Path) -> None:
    records = sample_records(count=3, odd_ones=False)
    records.append(dict(records[0], text="the later version"))
    source = write_vmig(tmp_path / "d.vmig.jsonl", records)
    store = ["--path", str(tmp_path / "c"), "--collection", "dups"]
    result = run_vex("import", "--from", str(source), "--to", "chroma", *store, "--json")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "o.vmig.jsonl"
    assert run_vex("export", "--from", "chroma", *store, "--output", str(out)).returncode == 0
    back = read_vmig(out)
    assert len(back) == 3 and back["mem-0000"]["text"] == "the later version"


def test_vektor_to_chroma_server_and_back_verified(tmp_path: Path, chroma_server: ChromaServer) -> None:
    result = run_vex("migrate", "--from", "vektor", "--to", "chroma", "--db", str(DEMO_DB), "--url", chroma_server.url,
                     "--collection", "demo_memories", "--verify", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = _last(result)
    assert summary["upserted"] == 300 and summary["verify"]["ok"]
    out = tmp_path / "trading.vmig.jsonl"
    result = run_vex("export", "--from", "chroma", "--url", chroma_server.url, "--collection", "demo_memories",
                     "--namespace", "trading", "--output", str(out))  # fmt: skip
    assert result.returncode == 0 and len(read_vmig(out)) == 100


def test_missing_collection_on_export(chroma_server: ChromaServer, tmp_path: Path) -> None:
    result = run_vex("export", "--from", "chroma", "--url", chroma_server.url, "--collection", "nope_nope",
                     "--output", str(tmp_path / "o.vmig.jsonl"))  # fmt: skip
    assert result.returncode == 2 and "not found" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o.vmig.jsonl").exists()


def test_unreachable_server(tmp_path: Path) -> None:
    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=3, odd_ones=False))
    result = run_vex("import", "--from", str(source), "--to", "chroma", "--url", f"http://127.0.0.1:{free_port()}",
                     "--collection", "abc", "--api-key", "chroma-secret-token")  # fmt: skip
    assert result.returncode == 1 and "unreachable" in result.stderr
    assert "Traceback" not in result.stderr and "chroma-secret-token" not in result.stderr + result.stdout


@pytest.mark.parametrize("metric", ["dot", "euclid"])
def test_existing_collection_with_another_metric_or_dims(tmp_path: Path, metric: str) -> None:
    store = ["--path", str(tmp_path / "c"), "--collection", "fixed"]
    small = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=4, odd_ones=False))
    assert run_vex("import", "--from", str(small), "--to", "chroma", *store).returncode == 0
    result = run_vex("import", "--from", str(small), "--to", "chroma", *store, "--metric", metric)
    assert result.returncode == 2 and "distance" in result.stderr
    wide = write_vmig(tmp_path / "w.vmig.jsonl", sample_records(count=4, dims=12, odd_ones=False))
    result = run_vex("import", "--from", str(wide), "--to", "chroma", *store)
    assert result.returncode == 2 and "nothing would fit" in result.stderr
    with ChromaConnector(ChromaOptions(path=tmp_path / "c", collection="fixed")) as chroma:
        assert chroma.describe().count == 4


def _reserved_lookalikes() -> dict[str, object]:
    """User metadata under every key vex keeps its own fields in, and the escape's own shapes."""
    from connectors import chroma

    own = [chroma.NAMESPACE_KEY, chroma.MODEL_KEY, chroma.CREATED_KEY, chroma.SCORE_KEY, chroma.SOURCE_KEY,
           chroma.EXTRA_KEY, chroma.JSON_KEYS, chroma.NULL_KEYS]  # fmt: skip
    meta: dict[str, object] = {key: f"the user's {key}" for key in own}
    meta.update({
        "_vex": "bare prefix",
        "_vex_user:x": "looks escaped already",
        "_vex_user:_vex_model": 7,
        "_vex_nested": {"a": [1, {"b": None}]},
        "_vex_list": ["x", 2],
        "_vex_null": None,
        chroma.JSON_KEYS + "_too": None,
        "plain": "kept",
        "none": None,
    })  # fmt: skip
    meta[chroma.NULL_KEYS] = None  # a null under our null list's own name
    meta[chroma.JSON_KEYS] = {"nested": ["under", "our json list's name"]}
    return meta


def test_user_keys_that_look_like_vex_own_round_trip(tmp_path: Path, chroma_server: ChromaServer) -> None:
    records = sample_records(count=3, odd_ones=False)
    records[1]["metadata"] = _reserved_lookalikes()
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    store = ["--path", str(tmp_path / "c"), "--collection", "lookalikes"]
    result = run_vex("import", "--from", str(source), "--to", "chroma", *store, "--json")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "o.vmig.jsonl"
    assert run_vex("export", "--from", "chroma", *store, "--output", str(out)).returncode == 0
    back = read_vmig(out)
    for record in records:
        assert back[record["id"]]["metadata"] == record["metadata"]
        assert back[record["id"]]["namespace"] == record["namespace"]
        assert back[record["id"]]["model"] == record["model"]
    result = run_vex("migrate", "--from", "jsonl", "--to", "chroma", "--source-path", str(source),
                     "--url", chroma_server.url, "--collection", "lookalikes", "--verify", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    assert _last(result)["verify"]["ok"]
