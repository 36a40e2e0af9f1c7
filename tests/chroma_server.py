"""A real `chroma run` server process on 127.0.0.1 for the tests, started once per session."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest


@dataclass
class ChromaServer:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _chroma_command() -> list[str]:
    found = Path(sys.executable).with_name("chroma")
    return [str(found)] if found.exists() else [shutil.which("chroma") or "chroma"]


def start_chroma(data_dir: Path, timeout: float = 60.0) -> ChromaServer:
    port = free_port()
    process = subprocess.Popen(
        [*_chroma_command(), "run", "--path", str(data_dir), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chroma run exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1.0).status_code == 200:
                return ChromaServer(port, process)
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("chroma run did not answer its heartbeat in time")


def stop_chroma(server: ChromaServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=15)


@pytest.fixture(scope="session")
def chroma_server() -> Iterator[ChromaServer]:
    data_dir = Path(tempfile.mkdtemp(prefix="vex-chroma-server-"))
    server = start_chroma(data_dir)
    try:
        yield server
    finally:
        stop_chroma(server)
        shutil.rmtree(data_dir, ignore_errors=True)
