"""The connector protocol every store implements, and the data it trades in.

A connector is an options model, capabilities as data, and five methods. The
flows read the capabilities instead of branching on store names, so adding a
store never touches the pipeline.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from vmig.errors import MissingExtraError, StoreError, UsageError
from vmig.rejects import Reject
from vmig.stats import RecordStats

ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "vex-migrate/qdrant-ids")
"""UUIDv5 namespace of mapped ids: the same id maps to the same UUID in every store keyed by UUIDs."""


def uuid_for(record_id: str) -> uuid.UUID:
    """The UUID a store keyed by UUIDs keeps a record under: the id itself when it is one, else its UUIDv5.

    Where `str(uuid_for(id)) != id` the store must keep the original id beside the record.
    """
    try:
        return uuid.UUID(record_id)
    except ValueError:
        return uuid.uuid5(ID_NAMESPACE, record_id)


Cursor = Any
"""Opaque, JSON-serialisable position in a store's enumeration (resume point)."""


class StoreOptions(BaseModel):
    """Base of every connector's options; unknown options are an error, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Capabilities:
    """What a store can do and hold; the flows decide from this, never from the name."""

    can_export: bool = True
    can_import: bool = True
    max_batch: int = 1000
    fixed_dims: bool = True
    """Every vector in the target has one dimension: other dims are skipped."""
    needs_vector: bool = True
    """A record without a vector cannot be stored: null vectors are skipped."""
    metrics: tuple[str, ...] = ("cosine",)
    """Metrics a new target can be made with; a run passes the source's metric on when it is one of them."""
    vector_tolerance: float = 0.0
    """Largest absolute per-component change a round trip may make (e.g. normalisation)."""
    writes_file: bool = False
    """The target is a `.vmig.jsonl` file: it gets a sidecar."""
    one_record_per_id: bool = True
    """A second record with an id replaces the first (a keyed store); an archive keeps both."""


@dataclass(frozen=True)
class Location:
    """A file or folder on this machine that a store lives in; `scope` is the part of a shared folder it uses
    (a collection), None for the whole of it. A run refuses to write where it reads (`engine.overlap`)."""

    path: Path
    role: str
    """How messages name it: "the vektor database", "the output file", ..."""
    scope: str | None = None


@dataclass(frozen=True)
class StoreInfo:
    exists: bool
    dims: int | None = None
    metric: str | None = None
    count: int | None = None
    count_by_namespace: dict[str, int] | None = None


@dataclass
class Page:
    """One page of an enumeration and the cursor after it (None at the end)."""

    batch: pa.RecordBatch
    next_cursor: Cursor
    rejects: list[Reject] = field(default_factory=list)
    """Source records that could not be read (damaged lines, bad blobs)."""


@dataclass(frozen=True)
class WrittenFile:
    """What a file target hands back from `finish`: the data file and what its sidecar says of it."""

    path: Path
    checksum: str
    """`sha256:` of the file's exact bytes."""
    stats: RecordStats
    sealed: bool = True
    """Complete but still under its temporary name: the sidecar step puts both in place together."""


@dataclass
class LoadResult:
    written: int
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(id, reason) for every record the store refused."""


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


class Connector(ABC):
    """A store. Construct with its Options; use as a context manager."""

    name: ClassVar[str]
    Options: ClassVar[type[StoreOptions]]
    capabilities: ClassVar[Capabilities]

    def __init__(self, options: StoreOptions) -> None:
        self.options = options
        self.page_size = self.capabilities.max_batch
        """Records per extracted page; tests lower it to exercise cursors."""

    def label(self) -> str:
        """How the store is named in messages and the summary (never with secrets)."""
        return self.name

    @abstractmethod
    def describe(self) -> StoreInfo: ...

    def extract(self, namespace: str | None, cursor: Cursor | None) -> Iterator[Page]:
        """Every record after `cursor` (None: from the start), `page_size` at most a page; `--limit` is the
        chunk reader's, not the store's. Closing the generator early releases what the read holds."""
        raise NotImplementedError(f"{self.name} cannot be exported from")

    def ensure_target(self, dims: int | None, metric: str | None) -> None:
        raise NotImplementedError(f"{self.name} cannot be imported into")

    def load(self, batch: pa.RecordBatch) -> LoadResult:
        raise NotImplementedError(f"{self.name} cannot be imported into")

    def classify(self, exc: Exception, doing: str) -> Exception:
        """Sort a client exception into TransientError (retried) or a permanent error; stores override."""
        return StoreError(f"{self.label()}: {doing} failed: {exc}")

    def guarded(self, doing: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Call the store's client so that no raw client exception escapes: each one is classified."""
        try:
            return fn(*args, **kwargs)
        except (UsageError, StoreError):
            raise
        except Exception as exc:  # noqa: BLE001 - every client error is sorted, none escapes raw
            raise self.classify(exc, doing) from None

    def locations(self) -> list[Location]:
        """The files and folders of this machine the store lives in (none for a server)."""
        return []

    def before_write(self) -> None:
        """Refuse, before anything is written, a target the run must not replace (e.g. a file that is not ours)."""

    def incarnation(self) -> str | None:
        """What tells this target apart from one deleted and created again under the same name (a table's
        oid, a collection's id, a file's inode), where the store has such a thing; None where it has not.

        A checkpoint keeps it, so a resume never skips records that went with an earlier incarnation."""
        return None

    def stored_form(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The batch as this store gives it back (e.g. vectors normalised for cosine).

        Verify compares a target's records with this form of the source's, so a
        documented transformation is not reported as a mismatch.
        """
        return batch

    def warm_up(self) -> None:
        """Start what reading will need (worker processes) while the run does something else first."""

    def prepare_write(self, expected_records: int | None) -> None:
        """Told before the first write how many records the run expects, where the source could say."""

    def finish(self) -> WrittenFile | None:
        """Make what was loaded durable (indexes build); a file target returns its sealed file."""
        return None

    def abort(self) -> None:
        """Undo what is not yet durable after a failure."""

    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> Connector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
