"""Resume: the cursor after the last chunk the target acknowledged, kept on disk per job.

Like a Singer state bookmark, a checkpoint is written only after the target has
durably taken a chunk, so a re-run of the same command continues from there;
idempotent upserts make a replayed chunk harmless. File targets are written
whole (temporary file, then rename) and start over instead.

A checkpoint is bound to the target it was made against: it records how many
records the run had written there and the target's incarnation (see
`Connector.incarnation`). A target deleted, emptied or created again since then
cannot hold what the checkpoint says it holds, so the run starts over instead of
skipping the records that went with it. Beside the checkpoint lies the set of ids
the run wrote (`vmig.idset`), so a record that repeats an earlier id is counted as
a replacement after a resume too.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from engine.summary import RunSummary
from vmig.paths import state_home


def state_dir() -> Path:
    return state_home() / "checkpoints"


def job_key(description: dict[str, Any]) -> str:
    """A stable name for "the same job": stores, options (no secrets), namespace, limit."""
    return hashlib.sha256(orjson.dumps(description, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()[:32]


@dataclass(frozen=True)
class TargetMark:
    """What a checkpoint knows of its target: enough to tell that it is no longer the same one."""

    label: str
    records: int
    """Distinct records the run had written there; the target holds at least these."""
    incarnation: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "records": self.records, "incarnation": self.incarnation}


@dataclass
class Checkpoint:
    path: Path

    @classmethod
    def for_job(cls, description: dict[str, Any]) -> Checkpoint:
        return cls(state_dir() / f"{job_key(description)}.json")

    @property
    def ids_folder(self) -> Path:
        """Where the set of ids the run wrote is kept between runs."""
        return self.path.with_suffix(".ids")

    def read(self) -> dict[str, Any] | None:
        try:
            payload = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        return payload if isinstance(payload, dict) and "cursor" in payload else None

    def save(self, cursor: Any, summary: RunSummary, target: TargetMark, rejects_bytes: int = 0) -> None:
        payload = {
            "cursor": cursor,
            "rejects_bytes": rejects_bytes,
            "read": summary.read,
            "upserted": summary.upserted,
            "replaced": summary.replaced,
            "skipped": dict(summary.skipped),
            "failed": summary.failed,
            "rejected": summary.rejected,
            "target": target.as_dict(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_suffix(".partial")
        temp.write_bytes(orjson.dumps(payload))
        os.replace(temp, self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
        shutil.rmtree(self.ids_folder, ignore_errors=True)


def restore(summary: RunSummary, saved: dict[str, Any]) -> None:
    """Carry the counts of the interrupted run into this one, so the totals still add up."""
    summary.read = int(saved.get("read", 0))
    summary.upserted = int(saved.get("upserted", 0))
    summary.replaced = int(saved.get("replaced", 0))
    summary.skipped.update({str(k): int(v) for k, v in dict(saved.get("skipped", {})).items()})
    summary.failed = int(saved.get("failed", 0))
    summary.rejected = int(saved.get("rejected", 0))


def saved_mark(saved: dict[str, Any]) -> TargetMark | None:
    """The target a checkpoint was made against; None for one written before checkpoints recorded it."""
    mark = saved.get("target")
    if not isinstance(mark, dict):
        return None
    incarnation = mark.get("incarnation")
    return TargetMark(
        label=str(mark.get("label", "")),
        records=int(mark.get("records", 0)),
        incarnation=None if incarnation is None else str(incarnation),
    )
