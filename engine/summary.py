"""Where every record went: upserted, skipped by reason, failed, or rejected as damaged.

The counts must add up to what was read; the exit code is derived from them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmig.errors import EXIT_FAILED_RECORDS, EXIT_INTEGRITY, EXIT_OK

SKIP_DIMS = "dims mismatch"
SKIP_NULL_VECTOR = "null vector"
FAILED_SAMPLE = 20
"""Failed records listed by id in the summary; all of them are counted."""


class RunEndedBadly(Exception):
    """A finished run that failed records or found differences, as the exception its Failed Prefect state
    carries. Prefect turns a failed state's data into an exception wherever the state is resolved (a
    deployment run, `state.result()`); a summary there was a TypeError. The result rides along for
    `engine.commandline.run_tracked`, which gives the command line the same summary as local mode."""

    def __init__(self, message: str, result: Any) -> None:
        super().__init__(message)
        self.result = result

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.result))


@dataclass
class RunSummary:
    action: str
    source: str
    target: str
    read: int = 0
    upserted: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    failed: int = 0
    failed_sample: list[tuple[str, str]] = field(default_factory=list)
    replaced: int = 0
    """Records the target holds no longer: a later record of the run had the same id and replaced them."""
    rejected: int = 0
    rejects_path: Path | None = None
    reject_sample: list[tuple[int | None, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    target_dims: int | None = None
    output_checksum: str | None = None
    verify: Any = None
    """The VerifyReport of `migrate --verify`, when it ran."""
    reembedded: Counter[str] = field(default_factory=Counter)
    """Records given vectors of `--model`, by how (encoded now, from the embedding cache)."""
    adapter_quality: dict[str, float] | None = None
    """The drift adapter's quality as measured when it was fitted, where a run applied one."""
    altered: Counter[str] = field(default_factory=Counter)
    """Records written changed by an option, by what was done (`--truncate-text`: "text truncated")."""
    unchanged: int = 0
    """A sync's records the target already holds as they are: not written again."""
    deleted: int = 0
    """A sync's records deleted from the target because they left the source (`--delete`)."""

    def add_failed(self, failures: list[tuple[str, str]]) -> None:
        self.failed += len(failures)
        room = FAILED_SAMPLE - len(self.failed_sample)
        if room > 0:
            self.failed_sample.extend(failures[:room])

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    @property
    def rate(self) -> float:
        return self.read / self.duration_s if self.duration_s > 0 else 0.0

    def balanced(self) -> bool:
        """Every record read is upserted, replaced by a later one, skipped or failed: nothing unaccounted."""
        return self.upserted + self.unchanged + self.replaced + self.skipped_total + self.failed == self.read

    def problems(self) -> list[str]:
        """Why the exit code is not 0, in words (empty when it is)."""
        found = []
        if self.failed:
            found.append(f"{self.failed} records failed to load")
        if self.replaced:
            found.append(f"{self.replaced} records replaced by a later record with the same id")
        if self.rejected:
            found.append(f"{self.rejected} damaged lines or records rejected")
        if not self.balanced():
            found.append("the counts do not add up")
        if self.verify is not None and not self.verify.ok:
            found.append(f"verify found differences: {self.verify.difference()}")
        return found

    def exit_code(self) -> int:
        if self.rejected or (self.verify is not None and not self.verify.ok):
            return EXIT_INTEGRITY
        if self.failed or self.replaced or not self.balanced():
            return EXIT_FAILED_RECORDS
        return EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "source": self.source,
            "target": self.target,
            "total": self.read,
            "upserted": self.upserted,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "skipped": dict(self.skipped),
            "failed": self.failed,
            "failed_sample": [{"id": i, "reason": r} for i, r in self.failed_sample],
            "replaced": self.replaced,
            "altered": dict(self.altered),
            "reembedded": dict(self.reembedded),
            "adapter_quality": self.adapter_quality,
            "rejected": self.rejected,
            "rejects_file": str(self.rejects_path) if self.rejects_path else None,
            "warnings": list(self.warnings),
            "duration_s": round(self.duration_s, 3),
            "records_per_s": round(self.rate, 1),
            "verify": self.verify.as_dict() if self.verify is not None else None,
            "exit_code": self.exit_code(),
        }

    def rows(self) -> list[tuple[str, str]]:
        """Label/value rows of the summary block, in the seed's order."""
        # A file is written; a store is upserted into (a record of an id it holds replaces that one).
        rows = [
            ("total records", str(self.read)),
            ("written" if self.action == "export" else "upserted", str(self.upserted)),
        ]
        if self.action == "sync":
            rows += [("unchanged", str(self.unchanged)), ("deleted", str(self.deleted))]
        rows.extend((f"  {what}", str(count)) for what, count in sorted(self.altered.items()))
        if self.reembedded:
            rows.append(("re-embedded", str(sum(self.reembedded.values()))))
            rows.extend((f"  {how}", str(count)) for how, count in sorted(self.reembedded.items()))
        if self.adapter_quality is not None:
            quality = self.adapter_quality
            rows.append(
                ("adapter", f"mean cosine {quality['mean_cosine']:.3f}, recall@10 {quality['recall_at_10']:.3f}")
            )
        rows.append(("skipped", str(self.skipped_total)))
        rows.extend((f"  {reason}", str(count)) for reason, count in sorted(self.skipped.items()))
        rows.append(("failed", str(self.failed)))
        if self.replaced:
            rows.append(("replaced", f"{self.replaced} (same id as a later record)"))
        if self.rejected:
            rows.append(("damaged lines", str(self.rejected)))
        rows.append(("duration", f"{self.duration_s:.1f}s"))
        rows.append(("rate", f"{self.rate:,.0f} records/s"))
        return rows
