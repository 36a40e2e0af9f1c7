"""Whole-file checks behind `vex validate` and `vex inspect`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vmig.errors import IntegrityError
from vmig.paths import rejects_path, sidecar_path
from vmig.reader import read_batches
from vmig.rejects import RejectsWriter
from vmig.sidecar import Sidecar, file_checksum, read_sidecar
from vmig.stats import RecordStats


@dataclass
class FileReport:
    path: Path
    stats: RecordStats = field(default_factory=RecordStats)
    rejected: int = 0
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
    try:
        for read in read_batches(report.path):
            report.stats.add(read.batch)
            report.rejected += len(read.rejects)
            room = 20 - len(report.reject_sample)
            report.reject_sample.extend((r.line, r.reason) for r in read.rejects[: max(room, 0)])
            if rejects is not None:
                rejects.add(read.rejects)
    except IntegrityError as exc:
        report.problems.append(str(exc))
    finally:
        if rejects is not None:
            report.rejects_file = rejects.close()
    if report.rejected:
        report.problems.append(f"{report.rejected} damaged line(s)")
    report.checksum = file_checksum(report.path)
    sidecar = report.sidecar
    if sidecar is not None:
        if sidecar.checksum != report.checksum:
            report.problems.append(f"checksum mismatch: sidecar {sidecar.checksum}, file {report.checksum}")
        lines = report.stats.record_count + report.rejected
        if sidecar.record_count != lines:
            report.problems.append(f"record count mismatch: sidecar {sidecar.record_count}, file {lines}")
    return report


def sidecar_status(report: FileReport) -> str:
    if report.sidecar_problem:
        return f"unreadable ({sidecar_path(report.path).name})"
    if report.sidecar is None:
        return "none (nothing to verify against)"
    if report.sidecar.checksum == report.checksum:
        return "checksum OK"
    return "checksum MISMATCH"
