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
