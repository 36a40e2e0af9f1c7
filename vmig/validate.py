"""Whole-file checks behind `vex validate` and `vex inspect`."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa

from vmig.decompress import DECOMPRESSION_ERRORS, open_data
from vmig.errors import IntegrityError, UsageError
from vmig.idset import IdSet
from vmig.paths import rejects_path, sidecar_path
from vmig.reader import ReadBatch, read_batches
from vmig.rejects import Reject, RejectsWriter
from vmig.sidecar import Sidecar, file_checksum, read_sidecar
from vmig.stats import RecordStats


@dataclass
class FileReport:
    path: Path
    stats: RecordStats = field(default_factory=RecordStats)
    """Counts of the valid records: each id once (a later line with an id already seen is a duplicate)."""
    rejected: int = 0
    """Damaged lines."""
    duplicates: int = 0
    """Lines whose id an earlier line already had (listed in the rejects file with the damaged ones)."""
    reject_sample: list[tuple[int | None, str]] = field(default_factory=list)
    rejects_file: Path | None = None
    sidecar: Sidecar | None = None
    sidecar_problem: str | None = None
    checksum: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def lines(self) -> int:
        """Lines that are not blank: what the sidecar's record_count counts."""
        return self.stats.record_count + self.duplicates + self.rejected

    @property
    def count_agrees(self) -> bool:
        return self.sidecar is None or self.sidecar.record_count == self.lines


def scan_file(path: Path, write_rejects: bool = True) -> FileReport:
    """Read every line; compare checksum and count with the sidecar; list every problem."""
    report = FileReport(path=Path(path))
    try:
        report.sidecar = read_sidecar(report.path)
    except IntegrityError as exc:
        report.sidecar_problem = str(exc)
        report.problems.append(str(exc))
    rejects = RejectsWriter(rejects_path(report.path)) if write_rejects else None
    seen = IdSet(Path(tempfile.mkdtemp(prefix="vex-validate-")))
    try:
        for read in read_batches(report.path):
            batch, duplicates = _drop_duplicates(read, seen)
            report.stats.add(batch)
            report.duplicates += len(duplicates)
            report.rejected += len(read.rejects)
            found = sorted(read.rejects + duplicates, key=lambda r: r.line or 0)
            room = 20 - len(report.reject_sample)
            report.reject_sample.extend((r.line, r.reason) for r in found[: max(room, 0)])
            if rejects is not None:
                rejects.add(found)
    except IntegrityError as exc:
        report.problems.append(str(exc))
    finally:
        seen.close()
        if rejects is not None:
            report.rejects_file = rejects.close()
    if report.rejected:
        report.problems.append(f"{report.rejected} damaged line(s)")
    if report.duplicates:
        report.problems.append(f"{report.duplicates} line(s) repeat an earlier line's id")
    report.checksum = file_checksum(report.path)
    sidecar = report.sidecar
    if sidecar is not None:
        if sidecar.checksum != report.checksum:
            report.problems.append(f"checksum mismatch: sidecar {sidecar.checksum}, file {report.checksum}")
        if not report.count_agrees:
            report.problems.append(f"record count mismatch: sidecar {sidecar.record_count}, file {report.lines}")
    return report


def _drop_duplicates(read: ReadBatch, seen: IdSet) -> tuple[pa.RecordBatch, list[Reject]]:
    """The batch without the lines whose id an earlier line had, and those lines as rejects naming the first."""
    batch = read.batch
    lines = np.asarray(read.row_lines, dtype=np.int64)
    repeats, first = seen.add(batch.column("id"), lines)
    if not len(repeats):
        return batch, []
    ids = batch.column("id")
    duplicates = [
        Reject(int(lines[index]), f"duplicate id '{ids[int(index)].as_py()}' (first on line {int(line)})", b"",
               id=ids[int(index)].as_py())
        for index, line in zip(repeats, first, strict=True)
    ]  # fmt: skip
    keep = np.ones(batch.num_rows, dtype=bool)
    keep[repeats] = False
    return batch.filter(pa.array(keep)), duplicates


_NOT_A_RECORD: tuple[type[BaseException], ...] = (UsageError, orjson.JSONDecodeError, *DECOMPRESSION_ERRORS)


def is_vmig_file(path: Path) -> bool:
    """Whether an existing file is ours to replace: empty, with a sidecar, or a first line that is a record.

    An export's output that is anything else (a database, someone's notes) is never replaced
    without `--force`."""
    if path.stat().st_size == 0 or sidecar_path(path).exists():
        return True
    try:
        with open_data(path) as stream:
            first = stream.readline(1 << 20).lstrip(b"\xef\xbb\xbf").strip()
        record = orjson.loads(first)
    except _NOT_A_RECORD:
        return False
    return isinstance(record, dict) and ("vex_version" in record or "id" in record)


def sidecar_status(report: FileReport) -> str:
    if report.sidecar_problem:
        return f"unreadable ({sidecar_path(report.path).name})"
    if report.sidecar is None:
        return "none (nothing to verify against)"
    checksum = "checksum OK" if report.sidecar.checksum == report.checksum else "checksum MISMATCH"
    if report.count_agrees:
        return checksum
    return f"{checksum}, record count MISMATCH (sidecar {report.sidecar.record_count}, file {report.lines})"
