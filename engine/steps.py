"""The pipeline's steps, each declared once with its retry policy.

A `Step` is a plain function and whether a transient error (a timeout, a reset, a 429 or
5xx: `TransientError`) is retried. Runners call steps: local mode calls the function
(`engine.local`), Prefect mode calls it as a task run (`tasks/`); neither wraps or
re-implements a step, and the retry policy is the one in `engine.retry`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, ParamSpec, Protocol, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from connectors.base import Connector, LoadResult, WrittenFile
from embed.plan import Reembedded, ReembedPlan
from engine.chunks import Chunk, ChunkReader
from engine.holding import TargetRule, filter_dimensions, most_common_dims
from engine.syncstate import Key, SyncState
from engine.verify import VerifyReport, verify_stores
from vmig import sparse
from vmig.errors import UsageError
from vmig.lines import count_lines
from vmig.paths import compression_of
from vmig.sidecar import (
    ImportEntry,
    Sidecar,
    build_sidecar,
    place_sidecar,
    read_sidecar,
    record_import,
    verify_against_sidecar,
)
from vmig.sigcheck import check_before_import
from vmig.signing import load_key, make_signature, signature_path, write_signature

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Step(Generic[P, R]):
    name: str
    fn: Callable[P, R]
    retried: bool
    """A TransientError is retried (3 attempts, exponential backoff with jitter); anything else fails at once."""


class Runner(Protocol):
    """Calls steps: directly (local mode) or as Prefect task runs."""

    def run(self, step: Step[P, R], *args: P.args, **kwargs: P.kwargs) -> R: ...

    def run_all(self, step: Step[..., R], calls: list[tuple[Any, ...]]) -> list[R]:
        """The step once per argument tuple, at once where the runner can (a Dask task runner), results in order;
        every call ends before the first error is raised."""
        ...


@dataclass(frozen=True)
class TargetWish:
    """What a run asks of its target before it has seen it."""

    dims: int | None = None
    """A dimension the user gave (`--dims`)."""
    dims_hint: int | None = None
    """The input's most common dims, where known before reading (sidecar counts)."""
    metric: str | None = None
    """The source's metric: a target created by the run gets it, unless the target's own --metric says."""


@dataclass(frozen=True)
class PreparedTarget:
    rule: TargetRule
    incarnation: str | None
    """See `Connector.incarnation`: a checkpoint keeps it."""


def extract(reader: ChunkReader, rows: int) -> Chunk:
    """The next chunk: thousands of records per call keep a task run's overhead negligible."""
    return reader.next_chunk(rows)


def validate_input(path: Path, check_sidecar: bool, trust: str | None = None) -> tuple[Sidecar | None, list[str]]:
    """A data file against its sidecar (checksum, record count) and its signature (`vmig.sigcheck`) before
    anything is written; returns warnings."""
    sidecar = read_sidecar(path)
    warnings: list[str] = []
    if sidecar is None:
        if compression_of(path) is not None:
            count_lines(path)  # a truncated archive fails here, before the first write
        warnings.append(f"{path.name} has no sidecar: checksum and record count could not be verified")
    elif not check_sidecar:
        warnings.append("--no-verify: checksum and record count were not checked")
    else:
        verify_against_sidecar(path, sidecar)
    checksum = sidecar.checksum if sidecar is not None and check_sidecar else None  # the file's, as just checked
    warnings += check_before_import(path, check_sidecar, trust, checksum)
    return sidecar, warnings


def reembed(batch: pa.RecordBatch, plan: ReembedPlan | None) -> Reembedded:
    """Records get vectors of the target's model (`--model`): `embed.reembedding`; without a plan, as they are."""
    if plan is None:
        return Reembedded(batch)
    from embed.reembedding import reembed_batch  # torch and sentence-transformers only for runs that name a model

    return reembed_batch(batch, plan)


def ensure_target(target: Connector, wish: TargetWish, batch: pa.RecordBatch) -> PreparedTarget | None:
    """Create the target, or check that the existing one fits the input; None while no vector was seen yet
    (a fixed-dimension target cannot be made before a record says its dimension)."""
    caps = target.capabilities
    if not caps.fixed_dims:
        target.ensure_target(None, None)
        return PreparedTarget(TargetRule(None, caps.needs_vector), target.incarnation())
    info = target.describe()
    existing = info.dims if info.exists and info.dims else None
    if existing is not None:
        _refuse_a_target_nothing_fits(target, wish, existing, batch)
    dims = existing or wish.dims or wish.dims_hint or most_common_dims(batch)
    if dims is None:
        return None
    carried = wish.metric if not info.exists and wish.metric in caps.metrics else None
    target.ensure_target(dims, carried)
    return PreparedTarget(TargetRule(dims, caps.needs_vector), target.incarnation())


def _refuse_a_target_nothing_fits(target: Connector, wish: TargetWish, dims: int, batch: pa.RecordBatch) -> None:
    """An existing target that none of the input fits is a mistake, not a run of skips."""
    label = target.label()
    if wish.dims is not None and dims != wish.dims:
        raise UsageError(f"{label} already holds {dims}-d vectors; --dims {wish.dims} does not match")
    seen = most_common_dims(batch)
    fits = pc.sum(pc.equal(batch.column("dims"), pa.scalar(dims, pa.int32()))).as_py()
    if seen is not None and not fits and (wish.dims_hint is None or wish.dims_hint != dims):
        raise UsageError(
            f"{label} holds {dims}-d vectors but the input's are {wish.dims_hint or seen}-d: "
            "nothing would fit; choose another collection/table or re-embed"
        )


def load(target: Connector, batch: pa.RecordBatch) -> LoadResult:
    """Idempotent upserts, in slices the store accepts; the result accounts for every record."""
    size = max(1, target.capabilities.max_batch)
    if not target.capabilities.sparse_column:
        batch = sparse.fold(batch)
    total = LoadResult(0)
    for start in range(0, batch.num_rows, size):
        result = target.load(batch.slice(start, size))
        total.written += result.written
        total.failed.extend(result.failed)
        for what, count in result.altered.items():
            total.altered[what] = total.altered.get(what, 0) + count
    return total


@dataclass(frozen=True)
class Changed:
    """A sync's chunk cut to the records that are new or changed, with their fingerprints."""

    batch: pa.RecordBatch
    prints: dict[Key, bytes]


def select_changed(state: SyncState, batch: pa.RecordBatch) -> Changed:
    """Only what changed since the target last acknowledged it goes on (`engine.syncstate`)."""
    mask, prints = state.changed(batch)
    return Changed(batch.filter(pa.array(mask)), prints)


def record_synced(state: SyncState, written: list[Key], prints: dict[Key, bytes]) -> None:
    """Fingerprints of the records the target acknowledged, kept for the next run."""
    state.acknowledged(written, prints)


def mark_present(source: Connector, state: SyncState, namespace: str | None) -> int:
    """A `--watermark` sync with `--delete`: every id the source holds marked as present in the state (the run
    read only what changed), so that what is not there has left it. Returns how many the source holds."""
    listed = 0
    for keys in source.list_keys(namespace):
        state.mark_present(keys)
        listed += len(keys)
    return listed


def delete(target: Connector, namespace: str | None, ids: list[str]) -> None:
    """Records that left the source, deleted from the target (idempotent: a retry deletes nothing twice)."""
    target.delete(namespace, ids)


def transfer_part(job: Any) -> Any:
    """One partition of a `--workers` migrate, moved in its worker (`engine.scaleout`)."""
    from engine.scaleout import transfer_part as move

    return move(job)


def finish(target: Connector) -> WrittenFile | None:
    """Make what was loaded durable (index builds); a file target hands back its sealed file."""
    return target.finish()


def write_sidecar(
    written: WrittenFile,
    source_store: str,
    signing_key: Path | None = None,
    adapter_quality: dict[str, float] | None = None,
) -> Path:
    """The sidecar of a sealed data file, and both put in place together; with `signing_key` (and the record
    hashes the writer made) its signature first, so the data never appears without it. A signature left by an
    earlier file of the same name is removed: it would not match."""
    if signing_key is not None and written.record_hashes is not None:
        signature = make_signature(load_key(signing_key), written.record_hashes, file_digest=written.checksum)
        write_signature(written.path, signature)
    else:
        signature_path(written.path).unlink(missing_ok=True)
    sidecar = build_sidecar(source_store, written.checksum, written.stats, adapter_quality)
    return place_sidecar(written.path, sidecar, with_data=written.sealed)


def record_import_entry(path: Path, entry: ImportEntry) -> None:
    """An import's line in the data file's sidecar (its audit trail)."""
    record_import(path, entry)


def verify(
    source: Connector, target: Connector, namespace: str | None, sample: int | None, seed: int, progress: Any
) -> VerifyReport:
    """Every record of `source` (or a sample) compared with `target`; streams both stores once."""
    return verify_stores(source, target, namespace, sample, seed, progress)


EXTRACT = Step("extract", extract, retried=True)
VALIDATE = Step("validate", validate_input, retried=False)
REEMBED = Step("reembed", reembed, retried=False)
FILTER_DIMENSIONS = Step("filter-dimensions", filter_dimensions, retried=False)
ENSURE_TARGET = Step("ensure-target", ensure_target, retried=True)
LOAD = Step("load", load, retried=True)
SELECT_CHANGED = Step("select-changed", select_changed, retried=False)
RECORD_SYNCED = Step("record-synced", record_synced, retried=False)
MARK_PRESENT = Step("mark-present", mark_present, retried=True)
DELETE = Step("delete", delete, retried=True)
TRANSFER_PART = Step("transfer-part", transfer_part, retried=False)
FINISH = Step("finish", finish, retried=True)
WRITE_SIDECAR = Step("write-sidecar", write_sidecar, retried=False)
RECORD_IMPORT = Step("record-import", record_import_entry, retried=False)
VERIFY = Step("verify", verify, retried=True)

STEPS: tuple[Step[Any, Any], ...] = (
    EXTRACT,
    VALIDATE,
    SELECT_CHANGED,
    REEMBED,
    FILTER_DIMENSIONS,
    ENSURE_TARGET,
    LOAD,
    RECORD_SYNCED,
    MARK_PRESENT,
    DELETE,
    TRANSFER_PART,
    FINISH,
    WRITE_SIDECAR,
    RECORD_IMPORT,
    VERIFY,
)
"""Every step, in the order a run meets them."""
