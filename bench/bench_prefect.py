"""What tracking costs: the same export and import in local mode and in Prefect mode against a running server.

A `prefect server start` on 127.0.0.1 (its own home, started once, before anything is timed); each run is the
`vex` command in a fresh process, as a user runs it, the wall time from start to exit. Prefect mode is the same
command with PREFECT_API_URL pointing at the server: a flow run, a task run per step and chunk, artifacts.

    python bench/bench_prefect.py                       # 100,000 records of 384 dims, 2 rounds
    python bench/bench_prefect.py --records 20000 --rounds 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_core import make_vektor  # noqa: E402 - importable once the path is set
from tests.prefect_server import prefect_server  # noqa: E402


def vex(args: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "cli.main", *args, "--quiet"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"vex {' '.join(args)} failed: {done.stderr.strip().splitlines()[-1:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    times: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="vex-bench-prefect-") as tmp:
        work = Path(tmp)
        source = work / "source.db"
        make_vektor(source, args.records)
        with prefect_server(work / "prefect-home") as tracked:
            local = {k: v for k, v in tracked.items() if k != "PREFECT_API_URL"}
            for env in (local, tracked):
                env["PYTHONPATH"] = str(ROOT)
            for round_number in range(args.rounds):
                for mode, env in (("local", local), ("prefect", tracked)):
                    out = work / f"{mode}-{round_number}.vmig.jsonl"
                    export = vex(["export", "--from", "vektor", "--db", str(source), "--output", str(out)], env, work)
                    target = work / f"{mode}-{round_number}.db"
                    imported = vex(["import", "--from", str(out), "--to", "vektor", "--db", str(target)], env, work)
                    times.setdefault(("export", mode), []).append(export)
                    times.setdefault(("import", mode), []).append(imported)
    print(f"\nPrefect mode against local mode, {args.records:,} records x 384 dims, median of {args.rounds} "
          f"(cores: {os.cpu_count()})")  # fmt: skip
    print(f"{'path':<8}{'local s':>10}{'prefect s':>11}{'prefect/local':>15}")
    for path in ("export", "import"):
        local_s = statistics.median(times[(path, "local")])
        tracked_s = statistics.median(times[(path, "prefect")])
        print(f"{path:<8}{local_s:>10.2f}{tracked_s:>11.2f}{tracked_s / local_s:>15.2f}")


if __name__ == "__main__":
    main()
