"""What every connector needs of its store's client library: importing it on first use, and telling a network
failure (retried) from any other."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from dataclasses import dataclass
from typing import Any

from vmig.errors import MissingExtraError, install_command


@dataclass(frozen=True)
class ClientLibrary:
    """The client a connector imports on first use, declared once: `vex stores` tells from it whether the
    store is usable here and what to install, and `load` names the same extra when the import fails."""

    extra: str
    """The vex-migrate extra that installs it."""
    module: str
    """The name it is imported by."""
    package: str
    """Its name on the package index."""

    def installed(self) -> bool:
        try:
            return importlib.util.find_spec(self.module) is not None
        except (ImportError, ValueError):
            return False

    def install_command(self) -> str:
        return install_command(self.extra)

    def preload(self) -> None:
        """Start importing the client in a background thread, for a run that has other work to do first (an
        import checks its file's checksum): some clients take seconds to import (lancedb about 2-3 s here, most
        of it building pydantic models), and `load` then finds the module imported, or waits for the import
        under way (Python's module lock), instead of starting it. Nothing happens for a missing client: `load`
        names its extra as usual."""
        if self.module in sys.modules or not self.installed():
            return
        threading.Thread(target=self._import_quietly, name=f"preload-{self.module}", daemon=True).start()

    def _import_quietly(self) -> None:
        try:
            importlib.import_module(self.module)
        except Exception:  # noqa: BLE001 - a failed import is raised again, in words, by `load`
            pass

    def load(self, store: str) -> Any:
        """The imported module; a missing one is a usage error naming the pip extra."""
        try:
            return importlib.import_module(self.module)
        except ImportError:
            raise MissingExtraError(store, self.extra, self.package) from None


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
