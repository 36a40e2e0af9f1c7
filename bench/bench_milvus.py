"""vex against the floor on Milvus Lite (the real engine, pure Python, serving pymilvus over gRPC on 127.0.0.1).

Both sides run in this process and talk to Milvus Lite through `pymilvus.MilvusClient`, so the figures compare
vex's work around the client with the client alone. Import: `vex import` of a `.vmig.jsonl` (read, validate,
filter, rows with the id, vector, text, namespace, model, created_at, metadata and vex_fields, upsert requests of
1,000 checked by their counts, then the index and the load) against a bare loop that upserts the same rows, already
in memory, into a collection of the same schema, 1,000 a request, then builds the same index, loads it and closes
the database (Milvus Lite writes its segments then, when vex's run closes it too). Export:
`vex export` to a `.vmig.jsonl` (pk-ordered pages of 1,000, rows back to records, write) against pymilvus's own
`query_iterator` with the same batch size, every field, each row's values read and dropped (pymilvus decodes a
row only when it is read; both open the database, load the collection and close it again).

    python bench/bench_milvus.py                 # 20,000 records of 384 dims
    python bench/bench_milvus.py --records 50000 --rounds 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_stores import DIMS, _floor_data, make_data  # noqa: E402 - importable once the path is set

BATCH = 1_000


def vex_import(path: Path, data: Path) -> float:
    from engine.jobs import import_job
    from engine.local import LocalRunner
    from engine.params import ImportParams, StoreSpec

    target = StoreSpec(store="milvus", options={"path": path, "collection": "bench"})
    started = time.perf_counter()
    summary = import_job(ImportParams(input=data, target=target), LocalRunner())
    elapsed = time.perf_counter() - started
    assert summary.failed == 0 and summary.upserted > 0, summary.as_dict()
    return elapsed


def vex_export(path: Path, output: Path) -> float:
    from engine.jobs import export_job
    from engine.local import LocalRunner
    from engine.params import ExportParams, StoreSpec

    source = StoreSpec(store="milvus", options={"path": path, "collection": "bench"})
    started = time.perf_counter()
    summary = export_job(ExportParams(source=source, output=output, force=True), LocalRunner())
    elapsed = time.perf_counter() - started
    assert summary.upserted > 0, summary.as_dict()
    return elapsed


def _release(path: Path) -> None:
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(str(path.resolve()))


def floor_import(path: Path, count: int) -> float:
    """The rows vex writes, made before the clock starts, into a collection of vex's schema (made by vex)."""
    from pymilvus import MilvusClient

    from connectors.milvus import MilvusConnector, MilvusOptions

    with MilvusConnector(MilvusOptions(path=path, collection="bench")) as milvus:
        milvus.ensure_target(DIMS, "cosine")  # the same schema; the connector then closes, the floor writes alone
    vectors, ids, texts, metas = _floor_data(count)
    values = vectors.tolist()
    rows: list[dict[str, Any]] = [
        {"id": ids[i], "vector": values[i], "text": texts[i], "namespace": "bench", "model": None,
         "created_at": 1_736_936_580_000_000 + i,
         "metadata": orjson.dumps({"importance": metas[i]["importance"]}).decode(),
         "vex_fields": '{"source_store":"bench"}'}
        for i in range(count)
    ]  # fmt: skip
    client = MilvusClient(str(path.resolve()))
    started = time.perf_counter()
    try:
        for start in range(0, count, BATCH):
            answer = client.upsert("bench", rows[start : start + BATCH])
            assert answer["upsert_count"] == len(rows[start : start + BATCH])
        params = client.prepare_index_params()
        params.add_index("vector", index_type="AUTOINDEX", metric_type="COSINE")
        client.create_index("bench", params)
        client.load_collection("bench")
    finally:
        client.close()
        _release(path)  # Milvus Lite writes its segments as it stops, as it does when vex closes it
    return time.perf_counter() - started


def floor_export(path: Path) -> tuple[float, int]:
    from pymilvus import MilvusClient

    started = time.perf_counter()
    client = MilvusClient(str(path.resolve()))  # vex's export opens the database and loads the collection too
    try:
        client.load_collection("bench")
        iterator = client.query_iterator("bench", batch_size=BATCH, output_fields=["*"])
        fetched = 0
        while True:
            page = iterator.next()
            if not page:
                break
            fetched += len([dict(row) for row in page])  # the values read (pymilvus decodes a row when asked)
        iterator.close()
    finally:
        client.close()
        _release(path)
    return time.perf_counter() - started, fetched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds (each on fresh databases)")
    args = parser.parse_args()
    import pymilvus  # noqa: F401 - imported once, before any clock starts

    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="vex-bench-milvus-") as tmp:
        data = Path(tmp) / "data.vmig.jsonl"
        make_data(data, args.records)
        for round_number in range(args.rounds):
            vex_db, floor_db = Path(tmp) / f"vex-{round_number}.db", Path(tmp) / f"floor-{round_number}.db"
            vex_in = vex_import(vex_db, data)
            floor_in = floor_import(floor_db, args.records)
            vex_out = vex_export(vex_db, Path(tmp) / f"out-{round_number}.vmig.jsonl")
            floor_out, fetched = floor_export(floor_db)
            assert fetched == args.records, fetched
            rows.append(("import", args.records / vex_in, args.records / floor_in))
            rows.append(("export", args.records / vex_out, args.records / floor_out))
    print(f"\nMilvus Lite (pymilvus), {args.records:,} records x {DIMS} dims, batch {BATCH}, {args.rounds} round(s)")
    print(f"{'path':<8}{'vex rec/s':>11}{'floor rec/s':>13}{'vex/floor':>11}")
    for path, vex_rate, floor_rate in rows:
        print(f"{path:<8}{vex_rate:>11,.0f}{floor_rate:>13,.0f}{vex_rate / floor_rate:>11.2f}")


if __name__ == "__main__":
    main()
