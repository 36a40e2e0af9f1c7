"""vex against the bare `lancedb` loop (the floor), importing into and exporting from a local LanceDB table.

Each measurement runs in a fresh process. The floors hold their records as Arrow already, made before the clock
starts, with the columns vex writes (id, a fixed-size float32 vector, text, namespace, metadata as JSON text,
created_at): import is `create_table` + `add` of 10,000-row tables (vex's batch); export is `to_batches` of the
whole table, every column, nothing done with the batches; lancedb -> lancedb is `to_batches` of one table
`add`ed to a new one. The vex rows:

- `load step`: the connector's `ensure_target` + `load` fed canonical batches from memory: the connector's own
  cost against the floor's `add` (the part this module controls);
- `extract`: the connector's `extract` of every page as canonical batches, against `to_batches`;
- `vex import`: the whole import of a `.vmig.jsonl` (read, parse, check the sidecar, filter, load), against the
  in-memory floor, which reads no file: the rest of vex's time is the file, not LanceDB;
- `vex export`: the whole export to `.vmig.jsonl` (read, write the lines, checksum, sidecar);
- `vex migrate`: lancedb -> lancedb through the pipeline, against the bare `to_batches` -> `add` copy;
- `hand script`: what one would write without vex (orjson lines in and out, Arrow columns, `add` /
  `to_batches`), with none of vex's checks, no checksum, no sidecar, no resume; `vex / script` compares vex's
  whole import or export with it.

    python bench/bench_lancedb.py                       # 100,000 records of 384 dims, 1 round
    python bench/bench_lancedb.py --records 20000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_stores import DIMS, make_data  # noqa: E402 - importable once the path is set

BATCH = 10_000
CREATED = 1_736_936_580_000_000


def _arrow_tables(count: int) -> list[Any]:
    """The records as the 10,000-row Arrow tables the floor adds: what `make_data` writes, in memory."""
    import pyarrow as pa

    from connectors.lancedb import table_schema

    schema = table_schema(DIMS, "cosine")
    rng = np.random.default_rng(0)
    tables = []
    for start in range(0, count, BATCH):
        size = min(BATCH, count - start)
        vectors = rng.standard_normal((size, DIMS)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        columns = {
            "id": pa.array([f"mem-{start + i}" for i in range(size)]),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), DIMS),
            "text": pa.array([f"memory text number {start + i}" for i in range(size)]),
            "namespace": pa.array(["bench"] * size),
            "metadata": pa.array([json.dumps({"importance": (start + i) % 10 / 10}) for i in range(size)]),
            "created_at": pa.array(np.arange(CREATED + start, CREATED + start + size)).cast(
                pa.timestamp("us", tz="UTC")
            ),
        }
        arrays = [columns[f.name] if f.name in columns else pa.nulls(size, f.type) for f in schema]
        tables.append(pa.Table.from_arrays(arrays, schema=schema))
    return tables


def _canonical_batches(count: int) -> list[Any]:
    """The same records as vex's canonical batches (what the pipeline hands the load step)."""
    from vmig.batch import build_batch

    rng = np.random.default_rng(0)
    batches = []
    for start in range(0, count, BATCH):
        size = min(BATCH, count - start)
        vectors = rng.standard_normal((size, DIMS)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        batches.append(
            build_batch(
                [f"mem-{start + i}" for i in range(size)],
                vectors=vectors,
                text=[f"memory text number {start + i}" for i in range(size)],
                namespace=["bench"] * size,
                metadata=[json.dumps({"importance": (start + i) % 10 / 10}) for i in range(size)],
                created_at=list(range(CREATED + start, CREATED + start + size)),
                source_store="bench",
            )
        )
    return batches


def _spec(where: Path, table: str = "memories") -> Any:
    from engine.params import StoreSpec

    return StoreSpec(store="lancedb", options={"path": where, "table": table})


def child(kind: str, count: int, data: Path, work: Path) -> dict[str, float]:
    """One measurement; `work/source` is a table vex imported, for the reading kinds."""
    import lancedb

    from engine.local import LocalRunner

    if kind == "floor-import":
        from connectors.lancedb import table_schema

        tables = _arrow_tables(count)
        started = time.perf_counter()
        table = lancedb.connect(str(work / "floor")).create_table("memories", schema=table_schema(DIMS, "cosine"))
        for part in tables:
            table.add(part)
        return {"seconds": time.perf_counter() - started, "records": table.count_rows()}
    if kind == "script-import":
        return _script_import(data, work / "script")
    if kind == "script-export":
        return _script_export(work / "source", work / "script.jsonl")
    if kind == "load-step":
        from connectors.lancedb import LanceDBConnector, LanceDBOptions

        batches = _canonical_batches(count)
        started = time.perf_counter()
        with LanceDBConnector(LanceDBOptions(path=work / "load", table="memories")) as target:
            target.ensure_target(DIMS, "cosine")
            written = sum(target.load(batch).written for batch in batches)
        return {"seconds": time.perf_counter() - started, "records": written}
    if kind == "vex-import":
        from engine.jobs import import_job
        from engine.params import ImportParams

        started = time.perf_counter()
        summary = import_job(ImportParams(input=data, target=_spec(work / "source")), LocalRunner())
        return {"seconds": time.perf_counter() - started, "records": summary.upserted}
    if kind == "floor-export":
        started = time.perf_counter()  # opening the table is part of the work, as it is for vex
        table = lancedb.connect(str(work / "source")).open_table("memories")
        rows = sum(batch.num_rows for batch in table.search().to_batches(BATCH))
        return {"seconds": time.perf_counter() - started, "records": rows}
    if kind == "extract":
        from connectors.lancedb import LanceDBConnector, LanceDBOptions

        started = time.perf_counter()
        with LanceDBConnector(LanceDBOptions(path=work / "source", table="memories")) as source:
            source.page_size = BATCH
            rows = sum(page.batch.num_rows for page in source.extract(None, None))
        return {"seconds": time.perf_counter() - started, "records": rows}
    if kind == "vex-export":
        from engine.jobs import export_job
        from engine.params import ExportParams

        started = time.perf_counter()
        summary = export_job(
            ExportParams(source=_spec(work / "source"), output=work / "out.vmig.jsonl", force=True), LocalRunner()
        )
        return {"seconds": time.perf_counter() - started, "records": summary.upserted}
    if kind == "floor-migrate":
        started = time.perf_counter()
        source = lancedb.connect(str(work / "source")).open_table("memories")
        target = lancedb.connect(str(work / "copy-floor")).create_table("memories", schema=source.schema)
        for batch in source.search().to_batches(BATCH):
            target.add(batch)
        return {"seconds": time.perf_counter() - started, "records": target.count_rows()}
    if kind == "vex-migrate":
        from engine.jobs import migrate_job
        from engine.params import MigrateParams

        started = time.perf_counter()
        summary = migrate_job(MigrateParams(source=_spec(work / "source"), target=_spec(work / "copy")), LocalRunner())
        return {"seconds": time.perf_counter() - started, "records": summary.upserted}
    raise SystemExit(f"unknown measurement {kind}")


def _script_import(data: Path, where: Path) -> dict[str, float]:
    """What one would write by hand without vex: orjson per line, Arrow columns, `add` every 10,000 lines;
    no sidecar check, no validation of a line, no resume."""
    import lancedb
    import orjson
    import pyarrow as pa

    from connectors.lancedb import table_schema

    schema = table_schema(DIMS, "cosine")
    started = time.perf_counter()
    table = lancedb.connect(str(where)).create_table("memories", schema=schema)

    def flush(rows: list[dict[str, Any]]) -> None:
        vectors = np.asarray([row["vector"] for row in rows], dtype=np.float32)
        created = [row.get("created_at") for row in rows]
        columns = {
            "id": pa.array([row["id"] for row in rows]),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), DIMS),
            "text": pa.array([row.get("text") for row in rows]),
            "model": pa.array([row.get("model") for row in rows], pa.string()),
            "namespace": pa.array([row.get("namespace") for row in rows], pa.string()),
            "metadata": pa.array([orjson.dumps(row.get("metadata") or {}).decode() for row in rows]),
            "created_at": pa.array(created, pa.string()).cast(pa.timestamp("us", tz="UTC")),
        }
        size = len(rows)
        table.add(pa.Table.from_arrays(
            [columns[f.name] if f.name in columns else pa.nulls(size, f.type) for f in schema], schema=schema
        ))  # fmt: skip

    rows: list[dict[str, Any]] = []
    with open(data, "rb") as lines:
        for line in lines:
            rows.append(orjson.loads(line))
            if len(rows) == BATCH:
                flush(rows)
                rows = []
    if rows:
        flush(rows)
    return {"seconds": time.perf_counter() - started, "records": table.count_rows()}


def _script_export(where: Path, output: Path) -> dict[str, float]:
    """By hand: `to_batches`, each row a dict, one orjson line each (numpy vectors as lists); no checksum,
    no sidecar, no resume."""
    import lancedb
    import orjson

    started = time.perf_counter()
    table = lancedb.connect(str(where)).open_table("memories")
    rows = 0
    with open(output, "wb") as out:
        for batch in table.search().to_batches(BATCH):
            for row in batch.to_pylist():
                created = row["created_at"]
                row["created_at"] = created.isoformat() if created is not None else None
                out.write(orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n")
                rows += 1
    return {"seconds": time.perf_counter() - started, "records": rows}


def run_child(kind: str, count: int, data: Path, work: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(count), str(data), str(work)],
        check=True, capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _warm(folder: Path) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            path.read_bytes()


PAIRS = [
    ("jsonl -> lancedb, load step", "load-step", "floor-import"),
    ("jsonl -> lancedb, vex import", "vex-import", "floor-import"),
    ("jsonl -> lancedb, hand script", "script-import", "floor-import"),
    ("jsonl -> lancedb, vex / script", "vex-import", "script-import"),
    ("lancedb -> jsonl, extract", "extract", "floor-export"),
    ("lancedb -> jsonl, vex export", "vex-export", "floor-export"),
    ("lancedb -> jsonl, hand script", "script-export", "floor-export"),
    ("lancedb -> jsonl, vex / script", "vex-export", "script-export"),
    ("lancedb -> lancedb, vex migrate", "vex-migrate", "floor-migrate"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, count, data, work = args.child
        print(json.dumps(child(kind, int(count), Path(data), Path(work))))
        return
    seconds: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="vex-bench-lancedb-") as tmp:
        base = Path(tmp)
        data = base / "data.vmig.jsonl"
        make_data(data, args.records)
        for round_ in range(args.rounds):
            work = base / f"round-{round_}"
            work.mkdir()
            # vex-import first: it makes the table the reading kinds read.
            for kind in ("vex-import", "floor-import", "script-import", "load-step", "floor-export", "extract",
                         "vex-export", "script-export", "floor-migrate", "vex-migrate"):  # fmt: skip
                if kind == "floor-export":
                    _warm(work / "source")  # the reading kinds all start with the table in the page cache
                result = run_child(kind, args.records, data, work)
                assert result["records"] == args.records, (kind, result)
                seconds.setdefault(kind, []).append(result["seconds"])
                print(f"round {round_ + 1} {kind:<14} {result['seconds']:7.2f} s", file=sys.stderr, flush=True)
    print(f"\n{'path':<34}{'records':>9}{'rec/s':>12}{'against':>13}  {'ratio (range)':<18}")
    for label, vex, floor in PAIRS:
        vex_rate = args.records / statistics.median(seconds[vex])
        floor_rate = args.records / statistics.median(seconds[floor])
        ratios = [f / v for v, f in zip(seconds[vex], seconds[floor], strict=True)]
        shown = f"{floor_rate and vex_rate / floor_rate:.2f}"
        if len(ratios) > 1:
            shown += f" ({min(ratios):.2f}-{max(ratios):.2f})"
        print(f"{label:<34}{args.records:>9,}{vex_rate:>12,.0f}{floor_rate:>13,.0f}  {shown:<18}")


if __name__ == "__main__":
    main()
