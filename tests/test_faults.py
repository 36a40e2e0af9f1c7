"""The fault-injection proxies do what the reliability tests rely on."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.faults import http_fault_proxy, tcp_fault_proxy

PAYLOAD = b"x" * 200_000


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD)


@pytest.fixture
def upstream() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_tcp_proxy_resets_then_recovers(upstream: int) -> None:
    with tcp_fault_proxy(upstream) as proxy:
        proxy.plan.arm("reset", after_bytes=50_000)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{proxy.port}/", timeout=10)
        assert httpx.get(f"http://127.0.0.1:{proxy.port}/", timeout=10).content == PAYLOAD
        assert proxy.plan.hits == 1 and proxy.plan.connections == 2


def test_tcp_proxy_stalls_past_a_client_timeout(upstream: int) -> None:
    with tcp_fault_proxy(upstream) as proxy:
        proxy.plan.arm("stall", after_bytes=1, stall_seconds=2.0)
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(f"http://127.0.0.1:{proxy.port}/", timeout=0.3)
        assert httpx.get(f"http://127.0.0.1:{proxy.port}/", timeout=10).status_code == 200


def test_http_proxy_answers_bursts_then_forwards(upstream: int) -> None:
    with http_fault_proxy(upstream) as proxy:
        proxy.plan.burst(503, 2)
        statuses = [httpx.get(proxy.url + "/", timeout=10).status_code for _ in range(3)]
        assert statuses == [503, 503, 200]
        proxy.plan.burst(429, 1, after=1)
        assert httpx.get(proxy.url + "/", timeout=10).status_code == 200
        response = httpx.get(proxy.url + "/", timeout=10)
        assert response.status_code == 429 and response.headers["Retry-After"] == "0"
        assert httpx.get(proxy.url + "/", timeout=10).content == PAYLOAD
