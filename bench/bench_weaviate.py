"""vex against the floor on Weaviate, served by the local fake of its REST and gRPC API (tests/fakes/weaviate.py).

No Weaviate server installs here: the fake runs in its own process, and both sides talk to it through the official
`weaviate-client`, so the figures compare vex's work around the client with the client alone (a real Weaviate adds
its network and server time to both). Import: `vex import` of a `.vmig.jsonl` (read, validate, filter, map ids and
metadata to properties, fixed-size batches) against two bare loops fed the same objects, already in memory: one
`fixed_size` batch of the same size and concurrency (`import`), and `insert_many` a request at a time (`import*`,
the faster: the floor). Export: `vex export` to a `.vmig.jsonl` (cursor read,
properties back to records, write) against a bare loop of `fetch_objects(after=...)` with the same page size.

    python bench/bench_weaviate.py                 # 20,000 records of 384 dims
    python bench/bench_weaviate.py --records 50000 --rounds 2
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_stores import _floor_data, make_data  # noqa: E402 - importable once the path is set
from bench.fakes import free_port  # noqa: E402
from bench.fakes import start_fake as start_fake_process  # noqa: E402

API_KEY = "bench-key"


def start_fake() -> tuple[subprocess.Popen[bytes], int, int]:
    port, grpc_port = free_port(), free_port()
    args = ["--port", str(port), "--grpc-port", str(grpc_port), "--api-key", API_KEY]
    return start_fake_process("tests.fakes.weaviate", args, [port, grpc_port]), port, grpc_port


def options(port: int, grpc_port: int, collection: str) -> dict[str, str]:
    return {"url": f"http://127.0.0.1:{port}", "grpc_port": str(grpc_port), "api_key": API_KEY,
            "collection": collection}  # fmt: skip


def vex_import(port: int, grpc_port: int, collection: str, data: Path) -> float:
    from engine.jobs import import_job
    from engine.local import LocalRunner
    from engine.params import ImportParams, StoreSpec

    target = StoreSpec(store="weaviate", options=options(port, grpc_port, collection))
    started = time.perf_counter()
    summary = import_job(ImportParams(input=data, target=target), LocalRunner())
    elapsed = time.perf_counter() - started
    assert summary.failed == 0 and summary.upserted > 0, summary.as_dict()
    return elapsed


def vex_export(port: int, grpc_port: int, collection: str, output: Path) -> float:
    from engine.jobs import export_job
    from engine.local import LocalRunner
    from engine.params import ExportParams, StoreSpec

    source = StoreSpec(store="weaviate", options=options(port, grpc_port, collection))
    started = time.perf_counter()
    export_job(ExportParams(source=source, output=output, force=True), LocalRunner())
    return time.perf_counter() - started


def _client(port: int, grpc_port: int) -> Any:
    import weaviate
    from weaviate.classes.init import Auth

    return weaviate.connect_to_custom(
        http_host="127.0.0.1", http_port=port, http_secure=False, grpc_host="127.0.0.1", grpc_port=grpc_port,
        grpc_secure=False, auth_credentials=Auth.api_key(API_KEY), skip_init_checks=True,
    )  # fmt: skip


def floor_import(port: int, grpc_port: int, collection: str, count: int, batch: int, concurrency: int) -> float:
    """The same objects vex writes (id, text, namespace, created_at, importance), prepared before the clock starts."""
    from weaviate.classes.config import Configure, DataType, Property

    from connectors.weaviate import object_uuid
    from vmig.timefmt import format_micros

    vectors, ids, texts, metas = _floor_data(count)
    values = vectors.tolist()
    uuids = [object_uuid(i) for i in ids]
    props = [{"vex_id": ids[i], "text": texts[i], "namespace": "bench", "importance": metas[i]["importance"],
              "created_at": format_micros(1_736_936_580_000_000 + i)} for i in range(count)]  # fmt: skip
    client = _client(port, grpc_port)
    try:
        target = client.collections.create(
            collection,
            properties=[Property(name="vex_id", data_type=DataType.TEXT),
                        Property(name="text", data_type=DataType.TEXT),
                        Property(name="namespace", data_type=DataType.TEXT),
                        Property(name="importance", data_type=DataType.NUMBER),
                        Property(name="created_at", data_type=DataType.DATE)],
            vector_config=Configure.Vectors.self_provided(),
        )  # fmt: skip
        started = time.perf_counter()
        with target.batch.fixed_size(batch_size=batch, concurrent_requests=concurrency) as bulk:
            for i in range(count):
                bulk.add_object(properties=props[i], uuid=uuids[i], vector=values[i])
        elapsed = time.perf_counter() - started
        assert not target.batch.failed_objects, target.batch.failed_objects[:3]
        return elapsed
    finally:
        client.close()


def floor_insert_many(port: int, grpc_port: int, collection: str, count: int, batch: int) -> float:
    """The same objects, prepared before the clock starts, one `insert_many` request after another."""
    from weaviate.classes.config import Configure
    from weaviate.classes.data import DataObject

    from connectors.weaviate import object_uuid
    from vmig.timefmt import format_micros

    vectors, ids, texts, metas = _floor_data(count)
    values = vectors.tolist()
    objects = [
        DataObject(properties={"vex_id": ids[i], "text": texts[i], "namespace": "bench",
                               "importance": metas[i]["importance"],
                               "created_at": format_micros(1_736_936_580_000_000 + i)},
                   uuid=object_uuid(ids[i]), vector=values[i])
        for i in range(count)
    ]  # fmt: skip
    client = _client(port, grpc_port)
    try:
        target = client.collections.create(collection, vector_config=Configure.Vectors.self_provided())
        target.data.insert_many(objects[:1])  # the properties made by the first object, as a created collection has
        started = time.perf_counter()
        for start in range(0, count, batch):
            answer = target.data.insert_many(objects[start : start + batch])
            assert not answer.errors, list(answer.errors.values())[:3]
        return time.perf_counter() - started
    finally:
        client.close()


def floor_export(port: int, grpc_port: int, collection: str, page: int) -> tuple[float, int]:
    client = _client(port, grpc_port)
    try:
        source = client.collections.use(collection)
        started = time.perf_counter()
        fetched, after = 0, None
        while True:
            objects = source.query.fetch_objects(limit=page, after=after, include_vector=True).objects
            fetched += len(objects)
            if len(objects) < page:
                break
            after = objects[-1].uuid
        return time.perf_counter() - started, fetched
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds (each on fresh collections)")
    args = parser.parse_args()
    import weaviate  # noqa: F401 - imported once, before any clock starts (it takes about a second)

    from connectors.weaviate import PAGE, WeaviateOptions

    defaults = WeaviateOptions()
    batch, concurrency, page = (
        defaults.batch_size,
        defaults.concurrent_requests,
        PAGE,
    )
    process, port, grpc_port = start_fake()
    rows: list[tuple[str, int, float, float]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="vex-bench-weaviate-") as tmp:
            data = Path(tmp) / "data.vmig.jsonl"
            make_data(data, args.records)
            for round_number in range(args.rounds):
                vex_name, floor_name = f"Vex_{round_number}", f"Floor_{round_number}"
                vex_in = vex_import(port, grpc_port, vex_name, data)
                floor_in = floor_import(port, grpc_port, floor_name, args.records, batch, concurrency)
                many_in = floor_insert_many(port, grpc_port, f"Many_{round_number}", args.records, batch)
                vex_out = vex_export(port, grpc_port, vex_name, Path(tmp) / f"out-{round_number}.vmig.jsonl")
                floor_out, fetched = floor_export(port, grpc_port, floor_name, page)
                assert fetched == args.records, fetched
                rows.append(("import", batch, args.records / vex_in, args.records / floor_in))
                rows.append(("import*", batch, args.records / vex_in, args.records / many_in))
                rows.append(("export", page, args.records / vex_out, args.records / floor_out))
    finally:
        process.terminate()
        process.wait(timeout=10)
    print(f"\nWeaviate (local fake, official client), {args.records:,} records x 384 dims, {args.rounds} round(s)")
    print(f"{'path':<8}{'batch':>7}{'vex rec/s':>11}{'floor rec/s':>13}{'vex/floor':>11}")
    for path, size, vex_rate, floor_rate in rows:
        print(f"{path:<8}{size:>7}{vex_rate:>11,.0f}{floor_rate:>13,.0f}{vex_rate / floor_rate:>11.2f}")


if __name__ == "__main__":
    main()
