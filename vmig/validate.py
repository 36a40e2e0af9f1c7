"""Whole-file checks behind `vex validate` and `vex inspect`."""

from __future__ import annotations

import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from vmig.errors import IntegrityError
from vmig.paths import rejects_path, sidecar_path
from vmig.reader import ReadBatch, Reject, read_batches
from vmig.rejects import RejectsWriter
from vmig.sidecar import Sidecar, file_checksum, read_sidecar
from vmig.stats import RecordStats


@dataclass
class FileReport:
    path: Path
    stats: RecordStats = field(default_factory=RecordStats)
    rejected: int = 0
    duplicates: int = 0
    """Lines whose id an earlier line already had (also counted in `rejected`)."""
    reject_sample: list[tuple[int | None, str]] = field(default_factory=list)
    rejects_file: Path | None = None
    sidecar: Sidecar | None = None
    sidecar_problem: str | None = None
    checksum: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def scan_file(path: Path, write_rejects: bool = True) -> FileReport:
    """Read every line; compare checksum and count with the sidecar; list every problem."""
    report = FileReport(path=Path(path))
    try:
        report.sidecar = read_sidecar(report.path)
    except IntegrityError as exc:
        report.sidecar_problem = str(exc)
        report.problems.append(str(exc))
    rejects = RejectsWriter(rejects_path(report.path)) if write_rejects else None
    with tempfile.TemporaryDirectory(prefix="vex-validate-") as tmp:
        seen = _IdIndex(Path(tmp) / "ids.db")
        try:
            for read in read_batches(report.path):
                report.stats.add(read.batch)
                duplicates = seen.duplicates(read)
                report.duplicates += len(duplicates)
                found = sorted(read.rejects + duplicates, key=lambda r: r.line or 0)
                report.rejected += len(found)
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
        report.problems.append(f"{report.rejected} damaged or duplicate line(s)")
    report.checksum = file_checksum(report.path)
    sidecar = report.sidecar
    if sidecar is not None:
        if sidecar.checksum != report.checksum:
            report.problems.append(f"checksum mismatch: sidecar {sidecar.checksum}, file {report.checksum}")
        lines = report.stats.record_count + report.rejected - report.duplicates
        if sidecar.record_count != lines:
            report.problems.append(f"record count mismatch: sidecar {sidecar.record_count}, file {lines}")
    return report


class _IdIndex:
    """Ids seen so far, on disk: finds duplicates in a file of any size with bounded memory."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("CREATE TABLE ids (id TEXT PRIMARY KEY, line INTEGER)")

    def duplicates(self, read: ReadBatch) -> list[Reject]:
        found: list[Reject] = []
        ids = read.batch.column("id").to_pylist()
        for record_id, line in zip(ids, read.row_lines, strict=True):
            try:
                self.db.execute("INSERT INTO ids VALUES (?, ?)", (record_id, line))
            except sqlite3.IntegrityError:
                first = self.db.execute("SELECT line FROM ids WHERE id = ?", (record_id,)).fetchone()[0]
                found.append(Reject(line, f"duplicate id '{record_id}' (first on line {first})", b"", id=record_id))
        return found

    def close(self) -> None:
        self.db.close()


def sidecar_status(report: FileReport) -> str:
    if report.sidecar_problem:
        return f"unreadable ({sidecar_path(report.path).name})"
    if report.sidecar is None:
        return "none (nothing to verify against)"
    if report.sidecar.checksum == report.checksum:
        return "checksum OK"
    return "checksum MISMATCH"
