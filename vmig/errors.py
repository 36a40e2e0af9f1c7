"""The one exception hierarchy of vex, and the exit code each kind maps to.

It lives in the lowest layer so the format, the connectors and the flows all
raise the same types; the CLI turns them into a one-line message and an exit
code instead of a traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED_RECORDS = 1
EXIT_USAGE = 2
EXIT_INTEGRITY = 3
EXIT_UNREACHABLE = 4


class VexError(Exception):
    """Base of every error vex raises on purpose. The message is for the user."""

    exit_code: int = EXIT_FAILED_RECORDS


class UsageError(VexError):
    """Bad flags, unknown store, missing option or missing extra: fix the command."""

    exit_code = EXIT_USAGE


def install_command(extra: str) -> str:
    """The one way vex tells a person to install a store's client."""
    return f"pip install 'vex-migrate[{extra}]'"


class MissingExtraError(UsageError):
    """A store's client library is not installed."""

    def __init__(self, store: str, extra: str, package: str) -> None:
        super().__init__(f"the {store} connector needs the '{package}' package: {install_command(extra)}")


class IntegrityError(VexError):
    """Checksum, record count or a damaged file: the data cannot be trusted."""

    exit_code = EXIT_INTEGRITY


class StoreError(VexError):
    """A store refused the operation for a reason a retry will not fix."""

    exit_code = EXIT_FAILED_RECORDS


class TransientError(StoreError):
    """Timeouts, connection resets, 429 and 5xx: worth retrying with backoff. One that outlasts the retries
    ends the run with exit 4: the store could not be reached, and a re-run is safe."""

    exit_code = EXIT_UNREACHABLE


class AccessError(VexError):
    """The store refused the credentials (or their rights): nothing was written, fix the key and re-run."""

    exit_code = EXIT_UNREACHABLE
