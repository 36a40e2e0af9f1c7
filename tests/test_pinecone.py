"""Pinecone through the CLI, against the local fake of its API (tests/fakes/pinecone.py) that the official SDK
talks to unchanged: round trips, namespaces, sparse vectors, Pinecone's limits, injected 429/503s, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from tests.conftest import DEMO_DB, export_to_a_demo_copy, one_line_error, run_vex, run_vex_cases, summary_of
from tests.fakes.pinecone import FakePinecone
from tests.records import read_vmig, sample_records, write_lines, write_vmig


def _options(fake: FakePinecone, index: str, *, create: bool = True) -> list[str]:
    options = ["--index", index, "--api-key", fake.api_key, "--controller-host", fake.url]
    return options + (["--cloud", "aws", "--region", "us-east-1"] if create else [])


def test_vektor_to_pinecone_to_file_to_vektor_keeps_every_record(pinecone_fake: FakePinecone, tmp_path: Path) -> None:
    index = "demo-trip"
    options = _options(pinecone_fake, index)
    moved = run_vex("migrate", "--from", "vektor", "--to", "pinecone", "--db", str(DEMO_DB), *options, "--verify",
                    "--json", cwd=tmp_path)  # fmt: skip
    assert moved.returncode == 0, moved.stderr
    assert summary_of(moved)["upserted"] == 300 and summary_of(moved)["verify"]["matched"] == 300
    stored = pinecone_fake.indexes[index]
    assert sorted(stored.namespaces) == ["personal", "research", "trading"]  # vex namespaces are Pinecone's
    assert export_to_a_demo_copy("pinecone", options, tmp_path)["matched"] == 300


def test_metadata_ids_and_sparse_vectors_come_back_exactly(pinecone_fake: FakePinecone, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    records = [
        {"id": "plain", "text": "t", "vector": rng.standard_normal(4).astype(np.float32).tolist(), "namespace": None,
         "metadata": {"n": 5, "big": 2**60, "f": 0.5, "s": "x", "tags": ["a", "b"], "mixed": ["a", 1], "none": None,
                      "nested": {"a": [1, {"b": None}]}, "empty": [], "text": "the user's own text key",
                      "_vex_id": "a user key like ours"},
         "sparse_vector": {"indices": [3, 17, 40000], "values": [0.5, -1.25, 3.0e-7]}},
        {"id": "naïve ✓", "text": None, "vector": rng.standard_normal(4).astype(np.float32).tolist(),
         "namespace": "ns", "metadata": {}},
        {"id": "vex:u:looks-mapped", "text": "x", "vector": rng.standard_normal(4).astype(np.float32).tolist(),
         "namespace": "ns", "metadata": {"k": True}},
    ]  # fmt: skip
    source = write_lines(tmp_path / "in.vmig.jsonl", records)
    options = _options(pinecone_fake, "exact")
    imported = run_vex("import", "--from", str(source), "--to", "pinecone", *options, "--json", cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    stored_ids = set(pinecone_fake.indexes["exact"].namespaces["ns"])
    assert all(i.startswith("vex:u:") and i.isascii() for i in stored_ids) and len(stored_ids) == 2
    out = tmp_path / "out.vmig.jsonl"
    assert run_vex("export", "--from", "pinecone", *options, "--output", str(out), cwd=tmp_path).returncode == 0
    back = {line["id"]: line for line in map(orjson.loads, out.read_bytes().splitlines())}
    assert set(back) == {r["id"] for r in records}
    for record in records:
        line = back[record["id"]]
        assert line["metadata"] == record["metadata"] or _decoded(line) == record["metadata"], line
        assert np.array_equal(np.asarray(line["vector"], dtype=np.float32), np.asarray(record["vector"], np.float32))
        assert line.get("text") == record["text"]
        assert line.get("namespace") == record["namespace"]
    assert back["plain"]["sparse_vector"] == {"indices": [3, 17, 40000], "values": [0.5, -1.25, 3.0e-7]}


def _decoded(line: dict[str, Any]) -> dict[str, Any]:
    """A line's metadata with the format's JSON-encoded keys decoded (what `vex import` restores)."""
    meta = dict(line["metadata"])
    for key in line.get("metadata_json_keys", []):
        meta[key] = json.loads(meta[key])
    return meta


def test_injected_429s_end_with_every_record_written_exactly_once(pinecone_fake: FakePinecone, tmp_path: Path) -> None:
    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=30, odd_ones=False))
    options = _options(pinecone_fake, "throttled")
    pinecone_fake.fail_next(429, times=2, retry_after=0, path="/vectors/upsert")
    result = run_vex("import", "--from", str(source), "--to", "pinecone", *options, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert summary_of(result)["upserted"] == 30
    writes = pinecone_fake.indexes["throttled"].writes
    assert len(writes) == 30 and set(writes.values()) == {1}
    assert pinecone_fake.requests["data /vectors/upsert"] >= 5  # 3 namespaces, 2 of the requests answered 429


def test_503s_past_the_sdk_s_retries_are_retried_by_the_step(pinecone_fake: FakePinecone, tmp_path: Path) -> None:
    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=12, odd_ones=False))
    options = _options(pinecone_fake, "unavailable")
    assert run_vex("import", "--from", str(source), "--to", "pinecone", *options, cwd=tmp_path).returncode == 0
    pinecone_fake.fail_next(503, times=5, retry_after=0, path="/vectors/upsert")  # the SDK tries 4 times
    again = run_vex("import", "--from", str(source), "--to", "pinecone", *options, "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert summary_of(again)["upserted"] == 12


def test_limits_give_failed_records_with_the_reason(pinecone_fake: FakePinecone, tmp_path: Path) -> None:
    records = sample_records(count=6, odd_ones=False)
    records[0]["id"] = "x" * 600
    records[1]["text"] = "long " * 10_000  # 50 KB of text in the metadata
    records[2]["metadata"]["blob"] = "y" * 50_000
    pinecone_fake.fail_requests_with(records[3]["id"], "simulated per-request refusal")
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    options = _options(pinecone_fake, "limits")
    result = run_vex("import", "--from", str(source), "--to", "pinecone", *options, "--json", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    summary = summary_of(result)
    reasons = {entry["id"]: entry["reason"] for entry in summary["failed_sample"]}
    assert summary["upserted"] == 2 and summary["failed"] == 4
    assert "600 characters: Pinecone takes at most 512" in reasons["x" * 600]
    assert "Pinecone takes at most 40,960 a record" in reasons[records[1]["id"]]
    assert "--truncate-text" in reasons[records[2]["id"]]
    assert "simulated per-request refusal" in reasons[records[3]["id"]]
    pinecone_fake.failing_ids.clear()
    cut = run_vex("import", "--from", str(source), "--to", "pinecone", *options, "--truncate-text", "--json",
                  cwd=tmp_path)  # fmt: skip
    summary = summary_of(cut)
    assert summary["upserted"] == 4 and summary["failed"] == 2  # the long id; the blob is metadata, not text
    assert summary["altered"] == {"text truncated to fit 40 KB of metadata": 1}
    assert any("text truncated" in warning for warning in summary["warnings"])
    kept = pinecone_fake.indexes["limits"].namespaces[records[1]["namespace"]][records[1]["id"]]["metadata"]["text"]
    assert records[1]["text"].startswith(kept) and len(kept) < len(records[1]["text"])


def test_bad_input_is_one_line_with_its_exit_code(pinecone_fake: FakePinecone, tmp_path: Path) -> None:
    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=5, odd_ones=False))
    out = "o.vmig.jsonl"  # each case runs in its own folder
    assert run_vex("import", "--from", str(source), "--to", "pinecone", *_options(pinecone_fake, "eight"),
                   cwd=tmp_path).returncode == 0  # fmt: skip
    pinecone_fake.create_index("wide", dimension=16)
    pinecone_fake.create_index("dotty", dimension=8, metric="dotproduct")
    wrong_key = ["--index", "eight", "--api-key", "wrong", "--controller-host", pinecone_fake.url]
    cases = {
        "a refused key": (["export", "--from", "pinecone", *wrong_key, "--output", out], 4, "API key was refused"),
        "an index that is not there": (["export", "--from", "pinecone", *_options(pinecone_fake, "nosuch"),
                                        "--output", out], 2, "'nosuch' not found"),
        "no way to create it": (["import", "--from", str(source), "--to", "pinecone",
                                 *_options(pinecone_fake, "nosuch", create=False)], 2, "pass --cloud and --region"),
        "other dims": (["import", "--from", str(source), "--to", "pinecone", *_options(pinecone_fake, "wide")], 2,
                       "holds 16-d vectors but the input's are 8-d"),
        "another metric": (["import", "--from", str(source), "--to", "pinecone", *_options(pinecone_fake, "dotty"),
                            "--metric", "cosine"], 2, "uses dot distance, not cosine"),
        "unreachable": (["export", "--from", "pinecone", "--index", "eight", "--api-key", "k", "--controller-host",
                         "http://127.0.0.1:9", "--output", out], 4, "unreachable"),
        "no key": (["export", "--from", "pinecone", "--index", "eight", "--output", out], 2,
                   "pass --api-key or set PINECONE_API_KEY"),
    }  # fmt: skip
    commands = {name: args for name, (args, _, _) in cases.items()}
    results = run_vex_cases(commands, tmp_path, env={"PINECONE_API_KEY": ""})
    for name, (_, code, fragment) in cases.items():
        result = results[name]
        assert result.returncode == code, (name, result.stderr)
        assert fragment in one_line_error(result.stderr), (name, result.stderr)
        assert "wrong" not in result.stderr


def test_a_pod_index_is_exported_from_a_list_of_ids(pinecone_fake: FakePinecone, tmp_path: Path) -> None:
    index = pinecone_fake.create_index("pods", dimension=8, pod=True)
    records = sample_records(count=9, odd_ones=False)
    for record in records:
        record["namespace"] = None
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    options = _options(pinecone_fake, "pods")
    assert run_vex("import", "--from", str(source), "--to", "pinecone", *options, cwd=tmp_path).returncode == 0
    assert len(index.namespaces["__default__"]) == 9
    out = tmp_path / "o.vmig.jsonl"
    refused = run_vex("export", "--from", "pinecone", *options, "--output", str(out), cwd=tmp_path)
    assert refused.returncode == 2
    assert "is pod-based and cannot list its ids: pass --ids-from FILE" in one_line_error(refused.stderr)
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(r["id"] for r in records[:7]) + "\n")
    listed = run_vex("export", "--from", "pinecone", *options, "--ids-from", str(ids), "--output", str(out),
                     cwd=tmp_path)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert sorted(read_vmig(out)) == sorted(r["id"] for r in records[:7])


def test_inspect_and_stores_know_pinecone(pinecone_fake: FakePinecone, tmp_path: Path) -> None:
    source = write_vmig(tmp_path / "s.vmig.jsonl", sample_records(count=9, odd_ones=False))
    options = _options(pinecone_fake, "seen")
    assert run_vex("import", "--from", str(source), "--to", "pinecone", *options, cwd=tmp_path).returncode == 0
    report = json.loads(run_vex("inspect", "--from", "pinecone", *options, "--json").stdout)
    assert report["records"] == 9 and report["metric"] == "cosine"
    assert report["layout"] == "serverless index, dense 8-d, cosine"
    entry = json.loads(run_vex("stores", "pinecone", "--json").stdout)
    assert entry["namespaces"] == "native" and entry["installed"] is True


@pytest.mark.parametrize("count", [2500])
def test_export_walks_list_pages_and_resumes_from_the_token(
    pinecone_fake: FakePinecone, tmp_path: Path, count: int
) -> None:
    """More ids than one list page (100) and one fetch (1,000): every record, in one run and across a stop."""
    from connectors.pinecone import PineconeConnector, PineconeOptions

    records = sample_records(count=count, odd_ones=False)
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    options = _options(pinecone_fake, "paged")
    assert run_vex("import", "--from", str(source), "--to", "pinecone", *options, cwd=tmp_path).returncode == 0
    connector = PineconeConnector(
        PineconeOptions(index="paged", api_key=pinecone_fake.api_key, controller_host=pinecone_fake.url)
    )
    pages = connector.extract(None, None)
    first = next(pages)
    pages.close()
    rest = [page.batch for page in connector.extract(None, first.next_cursor)]
    seen = first.batch.column("id").to_pylist() + [i for batch in rest for i in batch.column("id").to_pylist()]
    assert sorted(seen) == sorted(r["id"] for r in records) and len(seen) == count


def test_an_export_whose_requests_fail_past_the_sdk_s_retries_writes_every_record_once(
    pinecone_fake: FakePinecone, tmp_path: Path
) -> None:
    """Fetches run a few at once, ahead of the pages written. A list request answered 503 4 times (the SDK's 4
    tries) mid-way, with fetches in flight, ends the step's first attempt, and the second reads the chunk again;
    4 503s on the fetches, however they fall among the fetches in flight, end the same. Each record is in the
    file once."""
    records = sample_records(count=2400, odd_ones=False)
    for record in records:
        record["namespace"] = None  # one namespace: runs of 1,000, 1,000 and 400 ids, 24 list pages
    source = write_vmig(tmp_path / "s.vmig.jsonl", records)
    options = _options(pinecone_fake, "refetched")
    assert run_vex("import", "--from", str(source), "--to", "pinecone", *options, cwd=tmp_path).returncode == 0
    faults = {"/vectors/list": 15, "/vectors/fetch": 0}
    for path, after in faults.items():
        lists = pinecone_fake.requests["data /vectors/list"]
        pinecone_fake.fail_next(503, times=4, retry_after=0, path=path, after=after)
        out = tmp_path / f"o{after}.vmig.jsonl"
        exported = run_vex("export", "--from", "pinecone", *options, "--output", str(out), cwd=tmp_path)
        assert exported.returncode == 0, exported.stderr
        assert not pinecone_fake.faults
        if path == "/vectors/list":  # 15 answered, 4 refused, then from the start again: 24 more
            assert pinecone_fake.requests["data /vectors/list"] - lists == 15 + 4 + 24
        ids = [orjson.loads(line)["id"] for line in out.read_bytes().splitlines()]
        assert len(ids) == len(records) and set(ids) == {r["id"] for r in records}


def test_fetch_reads_the_same_through_the_sdk_s_client_and_its_public_fetch(pinecone_fake: FakePinecone) -> None:
    """The export reads `fetch` answers itself (orjson) through the SDK's HTTP client; an SDK without that client
    is read through its public `fetch`. Both readings give the same values, metadata and sparse values."""
    from pinecone import Pinecone

    from connectors.pinecone import _get_fetched

    pinecone_fake.create_index("both-readings", dimension=4)
    pc = Pinecone(api_key=pinecone_fake.api_key, host=pinecone_fake.url)
    index = pc.index(host=pc.indexes.describe("both-readings").host)
    index.upsert(vectors=[{"id": "a", "values": [0.5, 0.25, 0.0, 1.0], "metadata": {"k": "v", "n": 2}},
                          {"id": "b", "values": [1.0, 0.0, 0.0, 0.0],
                           "sparse_values": {"indices": [3, 9], "values": [0.5, 0.75]}}], namespace="ns")  # fmt: skip

    class PublicOnly:
        fetch = index.fetch

    own, public = _get_fetched(index, ["a", "b", "gone"], "ns"), _get_fetched(PublicOnly(), ["a", "b", "gone"], "ns")
    assert set(own) == set(public) == {"a", "b"}
    for key in own:
        assert own[key]["values"] == list(public[key]["values"])
        assert (own[key].get("metadata") or {}) == (public[key]["metadata"] or {})
        sparse = public[key]["sparseValues"]
        expected = None if sparse is None else {"indices": list(sparse["indices"]), "values": list(sparse["values"])}
        assert own[key].get("sparseValues") == expected
    assert own["b"]["sparseValues"] == {"indices": [3, 9], "values": [0.5, 0.75]}
