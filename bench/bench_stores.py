"""vex against the floor: importing into each embedded store.

For each store, the same records go in twice, each time into a fresh store in
a fresh process: once with vex (`vex import` of a `.vmig.jsonl`, the whole
pipeline: read, validate, filter, load), once with a bare loop written with the
store's own client and the same batch size, fed from arrays already in memory
(the floor: what the client alone costs). The table prints both rates and
vex/floor.

    python bench/bench_stores.py                     # 20,000 records
    python bench/bench_stores.py --records 100000 --stores qdrant chroma
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.rss import peak_rss_mib, rss_label  # noqa: E402 - importable once the path is set

DIMS = 384
BATCH = 1000


def make_data(path: Path, count: int) -> None:
    """A `.vmig.jsonl` + sidecar of `count` unit vectors with text and metadata."""
    from connectors.base import WrittenFile
    from engine.steps import write_sidecar
    from vmig.batch import build_batch
    from vmig.writer import VmigWriter

    rng = np.random.default_rng(0)
    writer = VmigWriter(path, default_source="bench").open()
    for start in range(0, count, 10_000):
        size = min(10_000, count - start)
        vectors = rng.standard_normal((size, DIMS)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        ids = [f"mem-{start + i}" for i in range(size)]
        writer.write_batch(
            build_batch(
                ids,
                vectors=vectors,
                text=[f"memory text number {start + i}" for i in range(size)],
                namespace=["bench"] * size,
                metadata=[json.dumps({"importance": (start + i) % 10 / 10}) for i in range(size)],
                created_at=[1_736_936_580_000_000 + i for i in range(size)],
            )
        )
    checksum = writer.commit(publish=False)
    write_sidecar(WrittenFile(path, checksum, writer.stats), "bench")


def vex_child(store: str, data: Path, where: Path) -> dict[str, float]:
    from engine.jobs import import_job
    from engine.local import LocalRunner
    from engine.params import ImportParams, StoreSpec

    options = {"path": str(where), "collection": "bench"}
    started = time.perf_counter()
    summary = import_job(ImportParams(input=data, target=StoreSpec(store=store, options=options)), LocalRunner())
    return {"records": summary.upserted, "seconds": time.perf_counter() - started}


def _floor_data(count: int) -> tuple[np.ndarray, list[str], list[str], list[dict[str, object]]]:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((count, DIMS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"mem-{i}" for i in range(count)]
    texts = [f"memory text number {i}" for i in range(count)]
    metas = [{"importance": i % 10 / 10, "namespace": "bench"} for i in range(count)]
    return vectors, ids, texts, metas


def floor_child(store: str, count: int, where: Path) -> dict[str, float]:
    vectors, ids, texts, metas = _floor_data(count)
    if store == "qdrant":
        import uuid

        from qdrant_client import QdrantClient, models

        client = QdrantClient(path=str(where))
        client.create_collection(
            "bench", vectors_config=models.VectorParams(size=DIMS, distance=models.Distance.COSINE)
        )
        point_ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, i)) for i in ids]
        started = time.perf_counter()
        for s in range(0, count, BATCH):
            payloads = [{"text": texts[i], "metadata": metas[i]} for i in range(s, min(s + BATCH, count))]
            client.upsert(
                "bench",
                points=models.Batch(
                    ids=point_ids[s : s + BATCH], vectors=vectors[s : s + BATCH].tolist(), payloads=payloads
                ),
                wait=True,
            )
        elapsed = time.perf_counter() - started
        client.close()
    else:
        import chromadb

        client = chromadb.PersistentClient(path=str(where))
        collection = client.get_or_create_collection(
            "bench", metadata={"hnsw:space": "cosine"}, embedding_function=None
        )
        started = time.perf_counter()
        for s in range(0, count, BATCH):
            collection.upsert(
                ids=ids[s : s + BATCH], embeddings=vectors[s : s + BATCH], documents=texts[s : s + BATCH],
                metadatas=metas[s : s + BATCH],
            )  # fmt: skip
        elapsed = time.perf_counter() - started
    return {"records": count, "seconds": elapsed}


def run_child(*args: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--stores", nargs="+", default=["qdrant", "chroma"], choices=["qdrant", "chroma"])
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, store, *rest = args.child
        result = (
            vex_child(store, Path(rest[0]), Path(rest[1]))
            if kind == "vex"
            else floor_child(store, int(rest[0]), Path(rest[1]))
        )
        result.update(peak_rss_mib())
        print(json.dumps(result))
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="vex-bench-stores-") as tmp:
        work = Path(tmp)
        data = work / "data.vmig.jsonl"
        make_data(data, args.records)
        for store in args.stores:
            vex = run_child("vex", store, str(data), str(work / f"{store}-vex"))
            floor = run_child("floor", store, str(args.records), str(work / f"{store}-floor"))
            assert vex["records"] == floor["records"] == args.records, (vex, floor)
            vex_rate = vex["records"] / vex["seconds"]
            floor_rate = floor["records"] / floor["seconds"]
            rows.append((store, args.records, vex_rate, floor_rate, vex_rate / floor_rate, rss_label(vex)))
    print(
        f"\n{'store (embedded)':<18}{'records':>9}{'vex rec/s':>11}{'floor rec/s':>13}{'vex/floor':>11}"
        f"{'vex RSS MiB':>22}"
    )
    for store, count, vex_rate, floor_rate, ratio, rss in rows:
        print(f"{store:<18}{count:>9,}{vex_rate:>11,.0f}{floor_rate:>13,.0f}{ratio:>11.2f}{rss:>22}")


if __name__ == "__main__":
    main()
