"""The HTTP side the fakes share: a handler that answers JSON, a server that runs it in a thread.

Each fake (tests/fakes/pinecone.py, tests/fakes/weaviate.py) keeps only what its API says; how a body is
read, how an answer goes out and how the server is started is written here once. A fake runs on its own
as `python -m tests.fakes.NAME` from the repository root. The module is not named `http`: with this folder
on sys.path, that name would hide the standard library's.
"""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


class JsonHandler(BaseHTTPRequestHandler):
    """Answers in JSON; a subclass says which methods it takes and `respond`s to them.

    HTTP/1.1 keeps the connections the clients pool open; a method outside `methods` gets the 501 that
    the standard handler gives for a method it has no `do_` for.
    """

    protocol_version = "HTTP/1.1"
    methods: frozenset[str] = frozenset({"GET", "POST", "DELETE"})

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a fake's access log is noise in test output

    def respond(self, method: str) -> None:
        raise NotImplementedError

    def read_body(self) -> bytes:
        """The request body, read whole (the clients always send a Content-Length)."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_json(self, status: int, answer: Any, headers: dict[str, str] | None = None, head: bool = False) -> None:
        """`answer` as JSON with its length; None is an empty body, a HEAD request gets the headers alone."""
        payload = b"" if answer is None else orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(payload)

    def _dispatch(self, method: str) -> None:
        if method in self.methods:
            self.respond(method)
        else:
            self.send_error(501, f"Unsupported method ({method!r})")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")


class QuietServer(ThreadingHTTPServer):
    """A threading server that lets a client go away with its connections open (a CLI run ending)."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def serve(
    handler: type[JsonHandler], port: int, server_class: type[ThreadingHTTPServer] = ThreadingHTTPServer
) -> ThreadingHTTPServer:
    """`handler` on 127.0.0.1:`port` (0: a free port), served from a daemon thread; the caller shuts it down."""
    server = server_class(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server
