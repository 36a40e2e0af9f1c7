"""Time and peak memory of `vex verify`, and how much of that memory is the stores' own.

Verify streams the target once into a temporary SQLite index on disk and then streams the
source against it, so its own memory should not grow with the stores. Each verify runs in a
fresh process (peak RSS is its own, workers reported apart). For Qdrant's local mode, which
loads a whole collection into the client's memory, the table also gives the peak of a process
that only opens the collection and counts it: the part of verify's peak that is Qdrant's.

    python bench/bench_verify.py                              # 100k records
    python bench/bench_verify.py --sizes 100000 1000000 --qdrant-sizes 20000 100000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_core import make_vektor  # noqa: E402 - importable once the path is set
from bench.rss import peak_rss_mib, rss_label  # noqa: E402


def child(job: str, spec: str) -> None:
    """One verify (or, for `open-qdrant`, only opening and counting a local Qdrant collection)."""
    from engine.jobs import verify_job
    from engine.params import StoreSpec, VerifyParams, open_store

    warnings.simplefilter("ignore")  # qdrant-client warns about local mode beyond 20,000 points
    sides = json.loads(spec)
    started = time.perf_counter()
    if job == "open-qdrant":
        with open_store(StoreSpec(**sides["target"])) as store:
            compared = store.describe().count or 0
        ok = True
    else:
        params = VerifyParams(source=StoreSpec(**sides["source"]), target=StoreSpec(**sides["target"]))
        report = verify_job(params)
        compared, ok = report.compared, report.ok
    elapsed = time.perf_counter() - started
    print(json.dumps({"records": compared, "ok": ok, "seconds": elapsed, **peak_rss_mib()}))


def run_child(job: str, source: dict[str, object], target: dict[str, object]) -> dict[str, float]:
    spec = json.dumps({"source": source, "target": target}, default=str)
    output = subprocess.run(
        [sys.executable, __file__, "--child", job, spec], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def vex(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "cli.main", *args, "--quiet"], check=True, capture_output=True, cwd=ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000], help="jsonl <-> vektor verifies")
    parser.add_argument("--qdrant-sizes", type=int, nargs="*", default=[20_000], help="jsonl -> qdrant (local)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="vex-bench-verify-") as tmp:
        workdir = Path(tmp)
        for size in sorted(set(args.sizes) | set(args.qdrant_sizes)):
            db = workdir / f"src-{size}.db"
            make_vektor(db, size)
            data = workdir / f"data-{size}.vmig.jsonl"
            vex("export", "--from", "vektor", "--db", str(db), "--output", str(data))
            jsonl = {"store": "jsonl", "options": {"path": data}}
            vektor = {"store": "vektor", "options": {"db": db}}
            if size in args.sizes:
                rows.append(("jsonl -> vektor", size, run_child("verify", jsonl, vektor)))
                rows.append(("vektor -> jsonl", size, run_child("verify", vektor, jsonl)))
            if size in args.qdrant_sizes:
                path = workdir / f"qdrant-{size}"
                vex("import", "--from", str(data), "--to", "qdrant", "--path", str(path), "--collection", "m")
                qdrant = {"store": "qdrant", "options": {"path": path, "collection": "m"}}
                rows.append(("jsonl -> qdrant local", size, run_child("verify", jsonl, qdrant)))
                rows.append(("  qdrant local, open + count only", size, run_child("open-qdrant", jsonl, qdrant)))
            data.unlink()
            db.unlink()
    print(f"\n{'verify':<36}{'records':>10}{'seconds':>10}{'records/s':>12}{'peak RSS MiB':>24}  match")
    for label, size, result in rows:
        verified = not label.startswith(" ")
        rate = f"{result['records'] / result['seconds']:,.0f}" if verified and result["seconds"] else ""
        match = ("yes" if result["ok"] else "NO") if verified else ""
        print(f"{label:<36}{size:>10,}{result['seconds']:>10.1f}{rate:>12}{rss_label(result):>24}  {match}")


if __name__ == "__main__":
    main()
