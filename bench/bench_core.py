"""Throughput and memory of the core paths: vektor -> jsonl and jsonl -> vektor.

Prints records/s and peak RSS for each size (every operation runs in a fresh
process so its peak RSS is its own), then the wall time of a 1,000-record
`vex export` and `vex import` end to end, as a user runs them.

    python bench/bench_core.py                 # 100k records
    python bench/bench_core.py --sizes 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
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


def make_vektor(path: Path, count: int, dims: int = DIMS) -> None:
    """A layout-1 VEKTOR file with `count` random unit vectors, written in bulk."""
    from connectors.vektor import LAYOUT1_DDL

    rng = np.random.default_rng(0)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute(LAYOUT1_DDL)
        for start in range(0, count, 20_000):
            size = min(20_000, count - start)
            vectors = rng.standard_normal((size, dims)).astype("<f4")
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            conn.executemany(
                "INSERT INTO memories VALUES (?, ?, ?, ?, ?, ?)",
                (
                    (
                        f"mem-{start + i}",
                        f"memory text number {start + i}",
                        vectors[i].tobytes(),
                        json.dumps({"importance": (start + i) % 10 / 10, "agent_id": "default"}),
                        "2025-01-15T10:23:00.000Z",
                        "bench",
                    )
                    for i in range(size)
                ),
            )
    conn.close()


def child(operation: str, source: str, target: str) -> None:
    """Run one job in this process and report its time and peak RSS."""
    from engine.jobs import export_job, import_job
    from engine.local import LocalRunner
    from engine.params import ExportParams, ImportParams, StoreSpec

    started = time.perf_counter()
    if operation == "export":
        summary = export_job(
            ExportParams(source=StoreSpec(store="vektor", options={"db": source}), output=Path(target)), LocalRunner()
        )
    else:
        summary = import_job(
            ImportParams(input=Path(source), target=StoreSpec(store="vektor", options={"db": target})), LocalRunner()
        )
    elapsed = time.perf_counter() - started
    print(json.dumps({"records": summary.upserted, "seconds": elapsed, **peak_rss_mib()}))


def run_child(operation: str, source: Path, target: Path) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--child", operation, str(source), str(target)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def small_job_wall_times(workdir: Path, repeats: int) -> dict[str, float]:
    """Median wall time of `vex export` and `vex import` of 1,000 records, process start included."""
    db = workdir / "small.db"
    make_vektor(db, 1000)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PREFECT_API_URL", None)
    times: dict[str, list[float]] = {"export": [], "import": []}
    for attempt in range(repeats):
        out = workdir / f"small-{attempt}.vmig.jsonl"
        for name, args in (
            ("export", ["export", "--from", "vektor", "--db", str(db), "--output", str(out)]),
            ("import", ["import", "--from", str(out), "--to", "vektor", "--db", str(workdir / f"small-{attempt}.db")]),
        ):
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "cli.main", *args], check=True, capture_output=True, env=env, cwd=ROOT
            )
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--repeats", type=int, default=5, help="runs of the 1,000-record jobs")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="vex-bench-") as tmp:
        workdir = Path(tmp)
        for size in args.sizes:
            db = workdir / f"src-{size}.db"
            make_vektor(db, size)
            data = workdir / f"data-{size}.vmig.jsonl"
            exported = run_child("export", db, data)
            imported = run_child("import", data, workdir / f"dst-{size}.db")
            for label, result in (("vektor -> jsonl", exported), ("jsonl -> vektor", imported)):
                rows.append((label, size, result["records"] / result["seconds"], rss_label(result), result["seconds"]))
            data.unlink()
            db.unlink()
            (workdir / f"dst-{size}.db").unlink()
        small = small_job_wall_times(workdir, args.repeats)
    print(f"\n{'path':<18}{'records':>10}{'records/s':>12}{'peak RSS MiB':>22}{'seconds':>10}")
    for label, size, rate, rss, seconds in rows:
        print(f"{label:<18}{size:>10,}{rate:>12,.0f}{rss:>22}{seconds:>10.1f}")
    print(f"\n1,000-record jobs, wall time end to end (median of {args.repeats}, local mode):")
    print(f"  vex export  {small['export']:.2f} s")
    print(f"  vex import  {small['import']:.2f} s")


if __name__ == "__main__":
    main()
