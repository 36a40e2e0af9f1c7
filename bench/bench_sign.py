"""Time of signing and checking a file against the issue's bar: the sidecar's SHA-256 plus one parse of the file.

`vex sign` and a signature check hash every record's canonical JSON (the JavaScript vex's form, so the
numbers of every vector are read and printed again); the bar is what an import already spends on a
file before its first write: the SHA-256 of its bytes and one parse of every line (`vmig.reader`,
with its worker processes). Each operation runs in a fresh process (worker start included), the
rounds interleaved so that a busy machine weighs on all of them alike.

    python bench/bench_sign.py                         # 100,000 records of 384 dims, 3 rounds
    python bench/bench_sign.py --records 20000 --rounds 1
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OPERATIONS = ("sha256+parse", "sign", "check", "check every record")
EXPORTS = ("export", "export --sign")
"""jsonl -> jsonl exports of the same file, without and with signing as it writes."""


def make_file(path: Path, count: int, dims: int) -> None:
    """Random unit vectors, text and metadata, written by vex's own writer (as an export writes them)."""
    import numpy as np

    from vmig.batch import build_batch
    from vmig.writer import VmigWriter

    rng = np.random.default_rng(0)
    with VmigWriter(path, default_source="bench") as writer:
        for start in range(0, count, 10_000):
            size = min(10_000, count - start)
            vectors = rng.standard_normal((size, dims)).astype("<f4")
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            numbers = range(start, start + size)
            writer.write_batch(
                build_batch(
                    [f"mem-{n}" for n in numbers],
                    vectors=vectors,
                    text=[f"memory text number {n}" for n in numbers],
                    metadata=[json.dumps({"importance": n % 10 / 10, "agent_id": "default"}) for n in numbers],
                    created_at=[1_736_936_580_000_000 + n for n in numbers],
                    source_store="bench",
                )
            )


def child(operation: str, data: str, key: str) -> None:
    """One operation, timed from its start to its end in this process (its workers' start included)."""
    path = Path(data)
    if operation == "sha256+parse":
        from vmig.reader import read_batches
        from vmig.sidecar import file_checksum

        started = time.perf_counter()
        file_checksum(path)
        records = sum(read.batch.num_rows for read in read_batches(path))
    elif operation == "sign":
        from vmig.sigcheck import sign_file
        from vmig.signing import load_key

        signing_key = load_key(Path(key))
        started = time.perf_counter()
        records = sign_file(path, signing_key)[0].record_count
    elif operation in EXPORTS:
        from engine.jobs import export_job
        from engine.local import LocalRunner
        from engine.params import ExportParams, StoreSpec

        signed = operation == "export --sign"
        params = ExportParams(
            source=StoreSpec(store="jsonl", options={"path": path}),
            output=path.with_name("exported.vmig.jsonl"),
            sign=signed,
            key=Path(key) if signed else None,
            restart=True,
        )
        started = time.perf_counter()
        records = export_job(params, LocalRunner()).read
    else:
        from vmig.sigcheck import check_file

        started = time.perf_counter()
        report = check_file(path, every_record=operation == "check every record")
        assert report.ok, report.problem
        records = report.records
    print(json.dumps({"seconds": time.perf_counter() - started, "records": records}))


def run_child(operation: str, data: Path, key: Path) -> float:
    output = subprocess.run(
        [sys.executable, __file__, "--child", operation, str(data), str(key)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(json.loads(output.strip().splitlines()[-1])["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=3, metavar=("OPERATION", "FILE", "KEY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    from vmig.parallel import worker_count
    from vmig.signing import create_key

    with tempfile.TemporaryDirectory(prefix="vex-bench-sign-") as folder:
        data = Path(folder) / "bench.vmig.jsonl"
        make_file(data, args.records, args.dims)
        key = create_key(Path(folder) / "bench.key").path
        run_child("sign", data, key)  # the signature the checks read; also warms the page cache
        times: dict[str, list[float]] = {operation: [] for operation in OPERATIONS + EXPORTS}
        for _ in range(args.rounds):
            for operation in OPERATIONS + EXPORTS:
                times[operation].append(run_child(operation, data, key))
        size = data.stat().st_size
    bar = statistics.median(times["sha256+parse"])
    print(f"{args.records:,} records x {args.dims} dims ({size / 2**20:.0f} MiB), {worker_count()} workers, "
          f"{args.rounds} rounds (median; each round in brackets)")  # fmt: skip
    print()
    print("| operation | seconds | records/s | / (sha256 + parse) |")
    print("|---|---|---|---|")
    for operation in OPERATIONS:
        print(_row(operation, times[operation], args.records, bar))
    print()
    print("| operation | seconds | records/s | / export |")
    print("|---|---|---|---|")
    for operation in EXPORTS:
        print(_row(operation, times[operation], args.records, statistics.median(times["export"])))


def _row(operation: str, values: list[float], records: int, reference: float) -> str:
    median = statistics.median(values)
    rounds = " / ".join(f"{value:.2f}" for value in values)
    return f"| {operation} | {median:.2f} ({rounds}) | {records / median:,.0f} | {median / reference:.2f} |"


if __name__ == "__main__":
    main()
