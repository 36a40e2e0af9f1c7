"""Writing an export-sized file: through the page cache against `vmig.directio.DirectFile` (O_DIRECT).

Each run writes the same 4 MiB blocks of bytes until --gib GiB are written, then fsyncs, as the
`.vmig.jsonl` writer does, and prints wall time and the process's user and system CPU. Runs
alternate between the two ways (--repeat N each); the file goes in --dir (default: a temporary
folder in this checkout, on the disk exports usually go to) and is deleted after each run.

    python bench/bench_write.py --gib 4 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vmig.directio import DirectFile  # noqa: E402 - importable once the path is set

BLOCK_BYTES = 4 << 20


def _ordinary(path: Path) -> Any:
    return open(path, "wb")


def _direct(path: Path) -> Any:
    return DirectFile(path)


def write_once(opener: Callable[[Path], Any], path: Path, total: int, block: bytes) -> tuple[float, float, float]:
    """(wall, user, system) seconds for writing `total` bytes and fsyncing them."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    handle = opener(path)
    written = 0
    while written < total:
        handle.write(block)
        written += len(block)
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    path.unlink()
    return wall, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=4.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    block = (os.urandom(1 << 16).hex().encode() * (BLOCK_BYTES // (1 << 17) + 1))[:BLOCK_BYTES]
    total = int(args.gib * (1 << 30))
    ways: dict[str, Callable[[Path], Any]] = {"page cache": _ordinary, "O_DIRECT": _direct}
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in ways}
    with tempfile.TemporaryDirectory(dir=args.dir or ROOT) as folder:
        path = Path(folder) / "bench_write.out"
        for _ in range(args.repeat):
            for name, opener in ways.items():
                results[name].append(write_once(opener, path, total, block))
    print(f"{args.gib:g} GiB in 4 MiB writes, then fsync; medians of {args.repeat} (each run: wall s)")
    print(f"{'way':<12}{'wall s':>8}{'user s':>8}{'system s':>10}{'CPU s':>8}  each run")
    for name, runs in results.items():
        wall, user, system = (statistics.median(run[i] for run in runs) for i in range(3))
        each = ", ".join(f"{run[0]:.2f}" for run in runs)
        print(f"{name:<12}{wall:>8.2f}{user:>8.2f}{system:>10.2f}{user + system:>8.2f}  {each}")


if __name__ == "__main__":
    main()
