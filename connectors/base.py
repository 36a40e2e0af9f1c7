"""The connector protocol every store implements, and the data it trades in.

A connector is an options model, capabilities as data, and five methods. The
flows read the capabilities instead of branching on store names, so adding a
store never touches the pipeline.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from connectors.clients import ClientLibrary
from vmig.errors import StoreError, UsageError, VexError
from vmig.rejects import Reject
from vmig.stats import RecordStats

Cursor = Any
"""Opaque, JSON-serialisable position in a store's enumeration (resume point)."""


class StoreOptions(BaseModel):
    """Base of every connector's options; unknown options are an error, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
    """An option's docstring is its description: `vex stores NAME` prints it, so help cannot drift."""


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
    embedded: bool = False
    """Runs inside this process on local files (no server to start)."""
    namespaces: str = "field"
    """How a vex namespace is kept: "field" (a column or payload key), "native" (the store's own namespaces)."""
    sparse_vectors: bool = False
    """Holds a record's `sparse_vector` as one (searchable where the store searches); every store keeps it."""
    sparse_column: bool = False
    """Reads and writes the batch's `sparse_vector` column itself; other stores get it folded into `extra`
    on the way in and unfolded on the way out (`vmig.sparse`), by the pipeline."""
    max_dims: int | None = None
    """Largest vector dimension the store takes (None: no limit of its own)."""
    max_dims_indexed: int | None = None
    """Largest dimension the store can build its vector index for, where lower than `max_dims`."""
    deletes: bool = False
    """Can delete records by id (`Connector.delete`): what `vex sync --delete` needs of its target."""


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
    layout: str | None = None
    """How the store keeps records, where it has more than one way (a VEKTOR layout, a pgvector table layout)."""


@dataclass
class Page:
    """One page of an enumeration and the cursor after it (None at the end)."""

    batch: pa.RecordBatch
    next_cursor: Cursor
    rejects: list[Reject] = field(default_factory=list)
    """Source records that could not be read (damaged lines, bad blobs)."""


@dataclass(frozen=True)
class Partition:
    """One worker's share of a source: `extract(namespace, start)` with `stop` set reads exactly it."""

    start: Cursor
    stop: Any
    """Where the share ends, exclusive, in the store's terms; the connector's `stop` while it is read."""
    estimate: int | None = None
    """Records it holds at most, where the store says cheaply."""


@dataclass(frozen=True)
class WrittenFile:
    """What a file target hands back from `finish`: the data file and what its sidecar says of it."""

    path: Path
    checksum: str
    """`sha256:` of the file's exact bytes."""
    stats: RecordStats
    sealed: bool = True
    """Complete but still under its temporary name: the sidecar step puts both in place together."""
    record_hashes: list[str] | None = None
    """Each record's hash as it was written, when the file is to be signed (`vex export --sign`)."""


@dataclass
class LoadResult:
    written: int
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(id, reason) for every record the store refused."""
    altered: dict[str, int] = field(default_factory=dict)
    """Written records an option let the store change, by what was done ("text truncated"): never silent."""


OptionsT = TypeVar("OptionsT", bound=StoreOptions)


class Connector(ABC, Generic[OptionsT]):
    """A store. Construct with its Options; use as a context manager."""

    name: ClassVar[str]
    Options: ClassVar[type[StoreOptions]]
    capabilities: ClassVar[Capabilities]
    client_library: ClassVar[ClientLibrary | None] = None
    """The client it imports on first use (None: nothing beyond vex's own dependencies)."""

    def __init__(self, options: OptionsT) -> None:
        if not isinstance(options, self.Options):
            raise TypeError(f"{self.name} takes {self.Options.__name__}, not {type(options).__name__}")
        self.opts = options
        if self.client_library is not None:
            # A missing client is one usage error where the store is named, not an ImportError deep in a step.
            self.client_library.load(self.name)
        self.page_size = self.capabilities.max_batch
        """Records per extracted page; tests lower it to exercise cursors."""
        self.stop: Any = None
        """Where `extract` ends (a `Partition.stop`); None: at the end of the source."""

    def client_package(self) -> Any:
        """The client library's module, imported now; a missing one names the pip extra."""
        if self.client_library is None:
            raise TypeError(f"{self.name} declares no client library")
        return self.client_library.load(self.name)

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

    def partitions(self, namespace: str | None, parts: int) -> list[Partition] | None:
        """The source cut into up to `parts` ranges that workers read apart (`--workers`), in the store's own
        terms (rowids, key ranges, byte ranges); None where the store cannot be cut."""
        return None

    def highest(self, column: str) -> Any:
        """The highest value of a modification column of the source (`vex sync --watermark`), as JSON can hold
        it; None when the store holds no rows or the column is empty. A store without such a column says so."""
        raise UsageError(f"{self.name} has no column of its own that records when a record changed: "
                         "leave out --watermark (the sync compares every record instead)")  # fmt: skip

    def read_changed_since(self, column: str, value: Any) -> None:
        """Later reads return only the records whose `column` is at or after `value`, or is empty (a record
        with no value could have changed at any time)."""
        raise UsageError(f"{self.name} cannot read only the records changed since a time: leave out --watermark")

    def list_keys(self, namespace: str | None) -> Iterator[list[tuple[str, str]]]:
        """Every record's (namespace or "", id), a page at a time, without reading the records: what a
        `--watermark` sync with `--delete` compares with its state to find the records that left."""
        raise UsageError(f"{self.name} cannot list its ids on their own: leave out --watermark")

    def takes_concurrent_writers(self) -> bool:
        """Several processes may load into it at once (`--workers`): servers do; a folder one process locks
        (embedded Qdrant, Chroma, Milvus Lite) or a file being written does not."""
        return not self.capabilities.embedded and not self.capabilities.writes_file

    def delete(self, namespace: str | None, ids: list[str]) -> None:
        """Remove these records (ids as the records carry them) where they are; ids it does not hold are no
        error, so a delete that is repeated after a stop does no harm. Stores with `capabilities.deletes`."""
        raise NotImplementedError(f"{self.name} cannot delete records")

    def classify(self, exc: Exception, doing: str) -> Exception:
        """Sort a client exception into TransientError (retried) or a permanent error; stores override."""
        return StoreError(f"{self.label()}: {doing} failed: {exc}")

    @contextmanager
    def translated(self, doing: str) -> Iterator[None]:
        """Run a block of client calls so that no raw client exception escapes: each one is sorted by
        `classify`, the one place a connector maps its client's errors."""
        try:
            yield
        except VexError:
            raise
        except Exception as exc:  # noqa: BLE001 - every client error is sorted, none escapes raw
            raise self.classify(exc, doing) from None

    def guarded(self, doing: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """`fn(*args, **kwargs)`, its exceptions sorted by `classify`."""
        with self.translated(doing):
            return fn(*args, **kwargs)

    def refuse_mismatch(self, info: StoreInfo, dims: int | None, metric: str | None, what: str, flag: str) -> None:
        """Refuse an existing target (`what`, e.g. "qdrant collection 'x'") whose dimension or metric differs
        from the run's, before anything is written; `flag` names the option that picks another target."""
        if dims is not None and info.dims is not None and info.dims != dims:
            raise UsageError(f"{what} holds {info.dims}-d vectors, the data has {dims}-d: use another {flag}")
        if metric is not None and info.metric is not None and info.metric != metric:
            raise UsageError(f"{what} uses {info.metric} distance, not {metric}: use another {flag} or --metric")

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

    def notices(self) -> list[str]:
        """What the run should tell the person about the target once it is finished (an index it skipped)."""
        return []

    def abort(self) -> None:
        """Undo what is not yet durable after a failure."""

    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> Connector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
