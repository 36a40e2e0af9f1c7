"""Fault injection between vex and a real server, on 127.0.0.1 only.

`TcpFaultProxy` forwards bytes and, when armed, resets connections (RST) after a
number of bytes, stalls them, or slows them down. `HttpFaultProxy` forwards HTTP
requests and answers bursts of 429 or 503 first. Both run in a background
thread, bound every wait, and stop with the test.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

LOOPBACK = "127.0.0.1"


@dataclass
class TcpPlan:
    """What the proxy does to the next connections; counters say what it did."""

    fault: str | None = None
    """"reset" (RST both ends) or "stall" (stop forwarding for `stall_seconds`)."""
    after_bytes: int = 0
    """Bytes a connection carries (both directions) before the fault strikes it."""
    times: int = 0
    """How many faults to inject in all."""
    stall_seconds: float = 0.0
    bytes_per_second: float | None = None
    """Throttle every connection to this rate (None: full speed)."""
    hits: int = 0
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def arm(self, fault: str, after_bytes: int, times: int = 1, stall_seconds: float = 0.0) -> None:
        with self.lock:
            self.fault, self.after_bytes, self.times, self.stall_seconds, self.hits = (
                fault,
                after_bytes,
                times,
                stall_seconds,
                0,
            )

    def strike(self, carried: int) -> str | None:
        """The fault to inject now for a connection that has carried `carried` bytes, if any."""
        with self.lock:
            if self.fault is None or self.hits >= self.times or carried < self.after_bytes:
                return None
            self.hits += 1
            return self.fault


class TcpFaultProxy:
    def __init__(self, upstream_port: int | None = None, upstream_unix: str | None = None) -> None:
        self.upstream_port = upstream_port
        self.upstream_unix = upstream_unix
        self.plan = TcpPlan()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> TcpFaultProxy:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._serve(), self._loop)
        self.port = future.result(timeout=10)
        return self

    async def _serve(self) -> int:
        self._server = await asyncio.start_server(self._handle, LOOPBACK, 0)
        return int(self._server.sockets[0].getsockname()[1])

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.upstream_unix is not None:
            return await asyncio.wait_for(asyncio.open_unix_connection(self.upstream_unix), 10)
        return await asyncio.wait_for(asyncio.open_connection(LOOPBACK, self.upstream_port), 10)

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        with self.plan.lock:
            self.plan.connections += 1
        try:
            server_reader, server_writer = await self._open_upstream()
        except (TimeoutError, OSError):
            _reset(client_writer)
            return
        carried = [0]
        ends = (client_writer, server_writer)
        upward = asyncio.ensure_future(self._pipe(client_reader, server_writer, carried, ends))
        downward = asyncio.ensure_future(self._pipe(server_reader, client_writer, carried, ends))
        await asyncio.wait([upward, downward], return_when=asyncio.FIRST_COMPLETED)
        for task in (upward, downward):
            task.cancel()
        for writer in ends:
            if not writer.is_closing():
                writer.close()

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        carried: list[int],
        ends: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
    ) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                writer.close()
                return
            carried[0] += len(data)
            fault = self.plan.strike(carried[0])
            if fault == "reset":
                for end in ends:
                    _reset(end)
                return
            if fault == "stall":
                await asyncio.sleep(self.plan.stall_seconds)
            rate = self.plan.bytes_per_second
            if rate:
                await asyncio.sleep(len(data) / rate)
            writer.write(data)
            await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST, as a crashed peer or a middlebox does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@contextmanager
def tcp_fault_proxy(upstream_port: int | None = None, upstream_unix: str | None = None) -> Iterator[TcpFaultProxy]:
    proxy = TcpFaultProxy(upstream_port, upstream_unix).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@dataclass
class HttpPlan:
    """After `after` more requests, answer the next `count` with `status` instead of forwarding them."""

    status: int = 0
    count: int = 0
    after: int = 0
    answered: int = 0
    forwarded: int = 0
    seen: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def burst(self, status: int, count: int, after: int = 0) -> None:
        with self.lock:
            self.status, self.count, self.answered, self.after, self.seen = status, count, 0, after, 0


class HttpFaultProxy:
    """A reverse proxy for an HTTP server (e.g. `chroma run`) that injects 429/503 bursts."""

    def __init__(self, upstream_port: int) -> None:
        self.plan = HttpPlan()
        self.upstream = f"http://{LOOPBACK}:{upstream_port}"
        self.client = httpx.Client(base_url=self.upstream, timeout=30.0)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                plan = proxy.plan
                with plan.lock:
                    plan.seen += 1
                    inject = plan.seen > plan.after and plan.answered < plan.count
                    if inject:
                        plan.answered += 1
                    else:
                        plan.forwarded += 1
                if inject:
                    payload = b'{"error": "injected fault"}'
                    self.send_response(plan.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    if plan.status == 429:
                        self.send_header("Retry-After", "0")
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                response = proxy.client.request(self.command, self.path, content=body, headers=headers)
                self.send_response(response.status_code)
                for key, value in response.headers.items():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(response.content)))
                self.end_headers()
                self.wfile.write(response.content)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def start(self) -> HttpFaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.client.close()
        self._thread.join(timeout=10)


@contextmanager
def http_fault_proxy(upstream_port: int) -> Iterator[HttpFaultProxy]:
    proxy = HttpFaultProxy(upstream_port).start()
    try:
        yield proxy
    finally:
        proxy.stop()
