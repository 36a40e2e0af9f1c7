"""Start a local fake (tests/fakes/) in its own process for a benchmark, as a user would run it.

bench_pinecone.py and bench_weaviate.py time the official clients against these fakes; the fake runs
apart so that its work does not share the benchmark's interpreter.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_fake(module: str, args: list[str], ports: list[int], tries: int = 400) -> subprocess.Popen[bytes]:
    """`python -m module args` from the repository root, returned once each of `ports` takes a connection.

    A fake that does not answer within `tries` waits (20 s or more) is killed and the benchmark stops.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(tries):
        try:
            for port in ports:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    process.wait(timeout=10)
    raise SystemExit(f"the fake ({module}) did not start")
