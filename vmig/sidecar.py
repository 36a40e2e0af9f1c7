"""The `.vmig.meta.json` sidecar: what a data file holds and proof it is intact."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vmig.errors import IntegrityError, StoreError
from vmig.lines import count_lines
from vmig.parallel import OneInFlight
from vmig.paths import compression_of, sidecar_path, temporary_path
from vmig.schema import FORMAT_VERSION
from vmig.signals import held_signals
from vmig.stats import RecordStats
from vmig.timefmt import now_iso

_VERIFY_CHUNK = 4 << 20

TOOL_NAME = "vex-migrate"


def tool_version() -> str:
    try:
        from importlib.metadata import version

        return version(TOOL_NAME)
    except Exception:  # noqa: BLE001 - a source tree without installed metadata
        return "0.0.0+source"


class ImportEntry(BaseModel):
    """One import of the file into a store, appended on every import."""

    model_config = ConfigDict(extra="allow")

    target: str
    imported_at: str
    total: int
    upserted: int
    replaced: int = 0
    """Records replaced by a later record with the same id."""
    skipped: dict[str, int] = Field(default_factory=dict)
    failed: int = 0
    adapter_quality: dict[str, float] | None = None
    """The drift adapter's measured quality, where the import applied one."""


class Sidecar(BaseModel):
    """Extra keys written by other tools are kept and written back."""

    model_config = ConfigDict(extra="allow")

    format_version: str = FORMAT_VERSION
    vex_version: str = FORMAT_VERSION
    tool_version: str | None = None
    exported_at: str | None = None
    source_store: str | None = None
    record_count: int
    checksum: str
    counts: dict[str, dict[str, int]] = Field(default_factory=dict)
    imported_to: str | None = None
    imported_at: str | None = None
    imports: list[ImportEntry] = Field(default_factory=list)
    adapter_quality: dict[str, float] | None = None
    """The drift adapter's measured quality, where the run that wrote the file applied one."""


def file_checksum(path: Path) -> str:
    """`sha256:` of the file's exact bytes (compressed bytes for .gz/.zst)."""
    return _checksum_and_newlines(path)[0]


def _checksum_and_newlines(path: Path) -> tuple[str, int]:
    """One pass: the checksum and the number of newline bytes (lines, for an uncompressed file).

    hashlib lets go of the GIL on large buffers, so the hash of one chunk runs on a
    second core while the next chunk is read and its newlines counted.
    """
    digest = hashlib.sha256()
    newlines = 0
    # Two buffers, reused: one is hashed while the other is filled (fresh 4 MiB reads would page-fault).
    buffers = (bytearray(_VERIFY_CHUNK), bytearray(_VERIFY_CHUNK))
    hashing = OneInFlight("vex-sha256")
    try:
        with open(path, "rb", buffering=0) as handle:
            turn = 0
            while size := handle.readinto(buffers[turn]):
                # memchr speed: several times numpy's compare-and-count
                newlines += buffers[turn].count(b"\n", 0, size)
                hashing.submit(digest.update, memoryview(buffers[turn])[:size])
                turn = 1 - turn
        hashing.settle()
    finally:
        hashing.close(drop=True)
    return "sha256:" + digest.hexdigest(), newlines


def build_sidecar(
    source_store: str | None, checksum: str, stats: RecordStats, adapter_quality: dict[str, float] | None = None
) -> Sidecar:
    return Sidecar(
        tool_version=tool_version(),
        exported_at=now_iso(),
        source_store=source_store,
        record_count=stats.record_count,
        checksum=checksum,
        counts=stats.as_dict(),
        adapter_quality=adapter_quality,
    )


def place_sidecar(data_path: Path, sidecar: Sidecar, with_data: bool = False) -> Path:
    """Write atomically, so a sidecar on disk is always whole; `with_data` renames the data file still under
    its temporary name (`VmigWriter.commit(publish=False)`) right after it, so the two appear together.

    The sidecar goes first: a data file is never in place without its sidecar, whatever stops the run.
    Between the two renames SIGINT and SIGTERM wait. A sidecar that cannot be written (a full disk)
    is a `StoreError` that says nothing was left in place (the caller removes the data file)."""
    target = sidecar_path(data_path)
    temp = temporary_path(target)
    payload = orjson.dumps(sidecar.model_dump(mode="json", exclude_none=True), option=orjson.OPT_INDENT_2) + b"\n"
    try:
        with open(temp, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise StoreError(f"cannot write the sidecar {target}: {exc.strerror or exc}") from None
    with held_signals():
        os.replace(temp, target)
        if with_data:
            os.replace(temporary_path(data_path), data_path)
    return target


def read_sidecar(data_path: Path) -> Sidecar | None:
    """The sidecar of a data file, None when there is none; damage is an IntegrityError."""
    path = sidecar_path(data_path)
    if not path.exists():
        return None
    try:
        payload: Any = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise IntegrityError(f"sidecar {path} cannot be read: {exc}") from None
    if not isinstance(payload, dict):
        raise IntegrityError(f"sidecar {path} is not a JSON object")
    try:
        return Sidecar.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
        raise IntegrityError(f"sidecar {path} is not a valid vex sidecar ({problems})") from None


def verify_against_sidecar(data_path: Path, sidecar: Sidecar) -> None:
    """Raise IntegrityError unless checksum and record count match the file."""
    actual, newlines = _checksum_and_newlines(data_path)
    if actual != sidecar.checksum:
        raise IntegrityError(
            f"checksum mismatch for {data_path}: sidecar says {sidecar.checksum}, file is {actual} "
            "(the file changed or is damaged; --no-verify imports it anyway)"
        )
    if compression_of(data_path) is None and newlines == sidecar.record_count:
        return  # the common case, decided in the same pass; blank lines or compression need a real count
    lines = count_lines(data_path)
    if lines != sidecar.record_count:
        raise IntegrityError(
            f"record count mismatch for {data_path}: sidecar says {sidecar.record_count}, file has {lines} lines "
            "(--no-verify imports it anyway)"
        )


def record_import(data_path: Path, entry: ImportEntry) -> None:
    """Add an import to the sidecar's audit trail (no-op when the file has no sidecar)."""
    sidecar = read_sidecar(data_path)
    if sidecar is None:
        return
    sidecar.imported_to = entry.target
    sidecar.imported_at = entry.imported_at
    sidecar.imports.append(entry)
    place_sidecar(data_path, sidecar)
