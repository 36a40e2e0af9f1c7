"""vex against the floor on Pinecone, served by the local fake of its API (tests/fakes/pinecone.py).

No Pinecone server installs here: the fake runs in its own process, and both sides talk to it through the
official SDK over HTTP, so the figures compare vex's work around the SDK with the SDK alone (a real Pinecone
adds its network and server time to both). Import: `vex import` of a `.vmig.jsonl` (read, validate, filter,
flatten metadata, batch by size, upsert) against a bare loop of `index.upsert` with records already in memory
and the same batch size. Export: `vex export` to a `.vmig.jsonl` (list, fetch, restore metadata, write)
against a bare loop of `list_paginated` and `fetch` with the same page sizes.

    python bench/bench_pinecone.py                 # 20,000 records of 384 dims
    python bench/bench_pinecone.py --records 50000 --rounds 2
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_stores import _floor_data, make_data  # noqa: E402 - importable once the path is set

API_KEY = "bench-key"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_fake() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.pinecone", "--port", str(port), "--api-key", API_KEY],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("the fake Pinecone did not start")


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


def floor_import(url: str, index: str, count: int, batch: int) -> float:
    from pinecone import Pinecone

    vectors, ids, texts, metas = _floor_data(count)
    values = vectors.tolist()
    pc = Pinecone(api_key=API_KEY, host=url)
    deployment = {"deployment_type": "managed", "cloud": "aws", "region": "us-east-1"}
    model = pc.indexes.create(name=index, dimension=vectors.shape[1], metric="cosine", deployment=deployment)
    target = pc.index(host=model.host)
    started = time.perf_counter()
    for start in range(0, count, batch):
        part = range(start, min(start + batch, count))
        target.upsert(vectors=[(ids[i], values[i], {**metas[i], "text": texts[i]}) for i in part], namespace="bench")
    return time.perf_counter() - started


def floor_export(url: str, index: str) -> tuple[float, int]:
    from pinecone import Pinecone

    pc = Pinecone(api_key=API_KEY, host=url)
    target = pc.index(host=pc.indexes.describe(index).host)
    started = time.perf_counter()
    fetched, token = 0, None
    while True:
        ids: list[str] = []
        while len(ids) < 1000:
            page = target.list_paginated(namespace="bench", limit=100, pagination_token=token)
            ids.extend(item.id for item in page.vectors)
            token = page.pagination.next if page.pagination else None
            if token is None:
                break
        if ids:
            fetched += len(target.fetch(ids=ids, namespace="bench").vectors)
        if token is None:
            break
    return time.perf_counter() - started, fetched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds (each on fresh indexes)")
    args = parser.parse_args()
    process, url = start_fake()
    rows: list[tuple[str, int, float, float]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="vex-bench-pinecone-") as tmp:
            data = Path(tmp) / "data.vmig.jsonl"
            make_data(data, args.records)
            batch = floor_batch(args.records)
            for round_number in range(args.rounds):
                vex_index, floor_index = f"vex-{round_number}", f"floor-{round_number}"
                vex_in = vex_import(url, vex_index, data)
                floor_in = floor_import(url, floor_index, args.records, batch)
                vex_out = vex_export(url, vex_index, Path(tmp) / f"out-{round_number}.vmig.jsonl")
                floor_out, fetched = floor_export(url, floor_index)
                assert fetched == args.records, fetched
                rows.append(("import", batch, args.records / vex_in, args.records / floor_in))
                rows.append(("export", 1000, args.records / vex_out, args.records / floor_out))
    finally:
        process.terminate()
        process.wait(timeout=10)
    print(f"\nPinecone (local fake, official SDK), {args.records:,} records x 384 dims, {args.rounds} round(s)")
    print(f"{'path':<8}{'batch':>7}{'vex rec/s':>11}{'floor rec/s':>13}{'vex/floor':>11}")
    for path, size, vex_rate, floor_rate in rows:
        print(f"{path:<8}{size:>7}{vex_rate:>11,.0f}{floor_rate:>13,.0f}{vex_rate / floor_rate:>11.2f}")


if __name__ == "__main__":
    main()
