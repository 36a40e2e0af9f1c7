"""vex against the floor on Pinecone, served by the local fake of its API (tests/fakes/pinecone.py).

No Pinecone server installs here: the fake runs in its own process, and both sides talk to it through the official
SDK over HTTP. Import: `vex import` of a `.vmig.jsonl` (read, validate, filter, flatten metadata, batch by size,
upsert) against a bare loop of `index.upsert` with records already in memory (vectors as a numpy matrix, turned
into the SDK's float lists inside the timing) and the largest batch size the SDK's spelling fits in 2 MB, and
against the SDK's own batched upsert with as many requests in flight as vex sends. vex encodes the records itself
(float32's shortest form), so its requests hold nearly twice as many records. Export: `vex export` to a
`.vmig.jsonl` (list, fetch, restore metadata, write with its checksum) against a bare loop of `list_paginated` and
`fetch` with the same page sizes that writes each record as a JSON line. Modules are imported and a first SDK
client made once before anything is timed; each side's timing includes making its own clients and creating or
describing the index, as a hand-written script would.

Each setting of `--latency-ms` runs on a fake that waits that long before each data-plane answer. At 0 the
fake answers as fast as it can, so the figures compare vex's CPU work around the SDK with the SDK's alone; a
real Pinecone is never that close, and a latency stands in for the network and the server's own time.

    python bench/bench_pinecone.py                                  # 20,000 records of 384 dims, 0 and 20 ms
    python bench/bench_pinecone.py --records 50000 --rounds 2 --latency-ms 0
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_stores import _floor_data, make_data  # noqa: E402 - importable once the path is set
from bench.fakes import free_port  # noqa: E402
from bench.fakes import start_fake as start_fake_process  # noqa: E402

API_KEY = "bench-key"


def start_fake(latency_ms: float = 0.0) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    args = ["--port", str(port), "--api-key", API_KEY, "--latency-ms", str(latency_ms)]
    return start_fake_process("tests.fakes.pinecone", args, [port]), f"http://127.0.0.1:{port}"


def options(url: str, index: str) -> dict[str, str]:
    return {"index": index, "api_key": API_KEY, "controller_host": url, "cloud": "aws", "region": "us-east-1"}


def vex_import(url: str, index: str, data: Path) -> float:
    from engine.jobs import import_job
    from engine.local import LocalRunner
    from engine.params import ImportParams, StoreSpec

    started = time.perf_counter()
    summary = import_job(ImportParams(input=data, target=StoreSpec(store="pinecone", options=options(url, index))),
                         LocalRunner())  # fmt: skip
    elapsed = time.perf_counter() - started
    assert summary.failed == 0 and summary.upserted > 0, summary.as_dict()
    return elapsed


def vex_export(url: str, index: str, output: Path) -> float:
    from engine.jobs import export_job
    from engine.local import LocalRunner
    from engine.params import ExportParams, StoreSpec

    started = time.perf_counter()
    export_job(ExportParams(source=StoreSpec(store="pinecone", options=options(url, index)), output=output,
                            force=True), LocalRunner())  # fmt: skip
    return time.perf_counter() - started


def floor_batch(count: int) -> int:
    """The batch size vex's import uses for these records: Pinecone's 2 MB by each record's JSON size."""
    from connectors.pinecone import MAX_VECTORS_PER_REQUEST, REQUEST_BUDGET

    vectors, ids, texts, metas = _floor_data(min(count, 100))
    records = [{"id": ids[i], "values": vectors[i].tolist(), "metadata": {**metas[i], "text": texts[i]}}
               for i in range(len(ids))]  # fmt: skip
    sizes = [len(orjson.dumps(record)) for record in records]
    return max(1, min(MAX_VECTORS_PER_REQUEST, REQUEST_BUDGET // (max(sizes) + 1)))


def warm_up(url: str, tmp: Path) -> None:
    """What either side would otherwise pay once inside its timing, on a one-record index: vex's modules, the
    SDK's, a data-plane call, and an export on each side (the lazily imported writer and formatting workers
    cost vex's first export about 0.2 s in a process; every later one is warm)."""
    from pinecone import Pinecone

    pc = Pinecone(api_key=API_KEY, host=url)
    deployment = {"deployment_type": "managed", "cloud": "aws", "region": "us-east-1"}
    model = pc.indexes.create(name="warm-up", dimension=4, metric="cosine", deployment=deployment)
    pc.index(host=model.host).upsert(vectors=[("w", [1.0, 0.0, 0.0, 0.0], {"k": "v"})], namespace="bench")
    vex_export(url, "warm-up", tmp / "warm-up.vmig.jsonl")
    floor_export(url, "warm-up", tmp / "warm-up.jsonl")


def floor_import(url: str, index: str, count: int, batch: int, in_flight: int = 0) -> float:
    """A bare loop of upserts (in_flight 0), or the SDK's own batched upsert with `in_flight` requests at once."""
    from pinecone import Pinecone

    vectors, ids, texts, metas = _floor_data(count)
    metadatas = [{**metas[i], "text": texts[i]} for i in range(count)]
    started = time.perf_counter()  # a script makes its clients and creates the index too, as vex does
    pc = Pinecone(api_key=API_KEY, host=url)
    deployment = {"deployment_type": "managed", "cloud": "aws", "region": "us-east-1"}
    model = pc.indexes.create(name=index, dimension=vectors.shape[1], metric="cosine", deployment=deployment)
    target = pc.index(host=model.host)
    values = vectors.tolist()  # the SDK takes lists of floats; one call is the fastest way to them from numpy
    records = [(ids[i], values[i], metadatas[i]) for i in range(count)]
    if in_flight:
        answer = target.upsert(vectors=records, namespace="bench", batch_size=batch, max_concurrency=in_flight)
        assert answer.upserted_count == count, answer
    else:
        for start in range(0, count, batch):
            target.upsert(vectors=records[start : start + batch], namespace="bench")
    return time.perf_counter() - started


def floor_export(url: str, index: str, output: Path) -> tuple[float, int]:
    """A bare loop of `list_paginated` and `fetch`, writing each record as a JSON line, as a hand-written export
    would (no checks, no metadata restored, no checksum)."""
    from pinecone import Pinecone

    started = time.perf_counter()  # a script makes its clients and looks up the host too, as vex does
    pc = Pinecone(api_key=API_KEY, host=url)
    target = pc.index(host=pc.indexes.describe(index).host)
    fetched, token = 0, None
    with open(output, "wb") as out:
        while True:
            ids: list[str] = []
            while len(ids) < 1000:
                page = target.list_paginated(namespace="bench", limit=100, pagination_token=token)
                ids.extend(item.id for item in page.vectors)
                token = page.pagination.next if page.pagination else None
                if token is None:
                    break
            if ids:
                for vector in target.fetch(ids=ids, namespace="bench").vectors.values():
                    out.write(orjson.dumps({"id": vector.id, "vector": vector.values, "metadata": vector.metadata}))
                    out.write(b"\n")
                    fetched += 1
            if token is None:
                break
    return time.perf_counter() - started, fetched


def main() -> None:
    from connectors.pinecone import REQUESTS_IN_FLIGHT

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds (each on fresh indexes)")
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0.0, 20.0])
    args = parser.parse_args()
    rows: list[tuple[str, float, int, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="vex-bench-pinecone-") as tmp:
        data = Path(tmp) / "data.vmig.jsonl"
        make_data(data, args.records)
        batch = floor_batch(args.records)
        for latency in args.latency_ms:
            process, url = start_fake(latency)
            try:
                warm_up(url, Path(tmp))
                for round_number in range(args.rounds):
                    vex_index, floor_index = f"vex-{round_number}", f"floor-{round_number}"
                    vex_in = vex_import(url, vex_index, data)
                    floor_in = floor_import(url, floor_index, args.records, batch)
                    sdk_in = floor_import(url, f"sdk-{round_number}", args.records, batch, REQUESTS_IN_FLIGHT)
                    vex_out = vex_export(url, vex_index, Path(tmp) / f"out-{round_number}.vmig.jsonl")
                    floor_out, fetched = floor_export(url, floor_index, Path(tmp) / f"floor-{round_number}.jsonl")
                    assert fetched == args.records, fetched
                    rows.append(("import", latency, batch, args.records / vex_in, args.records / floor_in))
                    rows.append((f"import*{REQUESTS_IN_FLIGHT}", latency, batch, args.records / vex_in,
                                 args.records / sdk_in))  # fmt: skip
                    rows.append(("export", latency, 1000, args.records / vex_out, args.records / floor_out))
            finally:
                process.terminate()
                process.wait(timeout=10)
    print(f"\nPinecone (local fake, official SDK), {args.records:,} records x 384 dims, {args.rounds} round(s)")
    print(
        f"import*{REQUESTS_IN_FLIGHT}: the floor is the SDK's batched upsert, {REQUESTS_IN_FLIGHT} requests in flight"
    )
    print(f"{'path':<10}{'latency':>9}{'batch':>7}{'vex rec/s':>11}{'floor rec/s':>13}{'vex/floor':>11}")
    for path, latency, size, vex_rate, floor_rate in rows:
        print(
            f"{path:<10}{latency:>7.0f}ms{size:>7}{vex_rate:>11,.0f}{floor_rate:>13,.0f}{vex_rate / floor_rate:>11.2f}"
        )


if __name__ == "__main__":
    main()
