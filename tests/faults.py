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

    reset_after_bytes: int | None = None
    """Server-to-client bytes after which a connection is reset (RST), for `resets` connections."""
    resets: int = 0
    stall_seconds: float = 0.0
    """Pause before forwarding the first server response of the next `stalls` connections."""
    stalls: int = 0
    bytes_per_second: float | None = None
    """Throttle every connection to this rate (None: full speed)."""
    done_resets: int = 0
    done_stalls: int = 0
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class TcpFaultProxy:
    def __init__(self, upstream_port: int, upstream_host: str = LOOPBACK) -> None:
        self.upstream = (upstream_host, upstream_port)
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

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        plan = self.plan
        with plan.lock:
            plan.connections += 1
            reset_at = None
            if plan.reset_after_bytes is not None and plan.done_resets < plan.resets:
                plan.done_resets += 1
                reset_at = plan.reset_after_bytes
            stall = 0.0
            if plan.stall_seconds and plan.done_stalls < plan.stalls:
                plan.done_stalls += 1
                stall = plan.stall_seconds
        try:
            server_reader, server_writer = await asyncio.wait_for(asyncio.open_connection(*self.upstream), 10)
        except (TimeoutError, OSError):
            _reset(client_writer)
            return
        upward = asyncio.ensure_future(self._pipe(client_reader, server_writer, None, 0.0))
        downward = asyncio.ensure_future(self._pipe(server_reader, client_writer, reset_at, stall))
        await asyncio.wait([upward, downward], return_when=asyncio.FIRST_COMPLETED)
        for task in (upward, downward):
            task.cancel()
        for writer in (client_writer, server_writer):
            if not writer.is_closing():
                writer.close()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, reset_at: int | None, stall: float
    ) -> None:
        sent = 0
        while True:
            data = await reader.read(65536)
            if not data:
                writer.close()
                return
            if stall:
                await asyncio.sleep(stall)
                stall = 0.0
            if reset_at is not None and sent + len(data) >= reset_at:
                writer.write(data[: max(0, reset_at - sent)])
                _reset(writer)
                return
            rate = self.plan.bytes_per_second
            if rate:
                await asyncio.sleep(len(data) / rate)
            writer.write(data)
            await writer.drain()
            sent += len(data)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST, as a crashed peer or a middlebox does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@contextmanager
def tcp_fault_proxy(upstream_port: int) -> Iterator[TcpFaultProxy]:
    proxy = TcpFaultProxy(upstream_port).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@dataclass
class HttpPlan:
    """Answer the next `count` requests with `status` instead of forwarding them."""

    status: int = 0
    count: int = 0
    answered: int = 0
    forwarded: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def burst(self, status: int, count: int) -> None:
        with self.lock:
            self.status, self.count, self.answered = status, count, 0


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
                    inject = plan.answered < plan.count
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
