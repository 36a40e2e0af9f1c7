"""What every connector needs of its store's client library: importing it on first use, and telling a network
failure (retried) from any other."""

from __future__ import annotations

from typing import Any

from vmig.errors import MissingExtraError


def client_module(store: str, extra: str, module: str, package: str) -> Any:
    """Import a store's client on first use; a missing one names the pip extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(store, extra, package) from None


def is_network_error(exc: Exception) -> bool:
    """Connection refused/reset and timeouts, from httpx or the socket layer: worth a retry."""
    try:
        import httpx
    except ImportError:
        return isinstance(exc, (ConnectionError, TimeoutError))
    return isinstance(exc, (httpx.TransportError, ConnectionError, TimeoutError))


def network_reason(exc: BaseException) -> str:
    """Why a connection failed, in words (not an exception class): the innermost cause that says it."""
    import socket

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return "connection refused: is the server running at that address?"
        if isinstance(current, socket.gaierror):
            return "host name not found"
        if isinstance(current, TimeoutError) or "timed out" in str(current).lower():
            return "timed out"
        if isinstance(current, ConnectionResetError):
            return "connection reset"
        current = current.__cause__ or current.__context__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    lowered = text.lower()
    if "refused" in lowered:
        return "connection refused: is the server running at that address?"
    return text[:200] or "no answer"
