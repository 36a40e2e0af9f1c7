"""Resume: the cursor after the last chunk the target acknowledged, kept on disk per job.

Like a Singer state bookmark, a checkpoint is written only after the target has
durably taken a chunk, so a re-run of the same command continues from there;
idempotent upserts make a replayed chunk harmless. File targets are written
whole (temporary file, then rename) and start over instead.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from engine.summary import RunSummary


def state_dir() -> Path:
    base = os.environ.get("VEX_STATE_DIR") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "vex"
    )
    return Path(base) / "checkpoints"


def job_key(description: dict[str, Any]) -> str:
    """A stable name for "the same job": stores, options (no secrets), namespace, limit."""
    return hashlib.sha256(orjson.dumps(description, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()[:32]


@dataclass
class Checkpoint:
    path: Path

    @classmethod
    def for_job(cls, description: dict[str, Any]) -> Checkpoint:
        return cls(state_dir() / f"{job_key(description)}.json")

    def load(self) -> dict[str, Any] | None:
        try:
            payload = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        return payload if isinstance(payload, dict) and "cursor" in payload else None

    def save(self, cursor: Any, summary: RunSummary, rejects_bytes: int = 0) -> None:
        payload = {
            "cursor": cursor,
            "rejects_bytes": rejects_bytes,
            "read": summary.read,
            "upserted": summary.upserted,
            "skipped": dict(summary.skipped),
            "failed": summary.failed,
            "rejected": summary.rejected,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_suffix(".partial")
        temp.write_bytes(orjson.dumps(payload))
        os.replace(temp, self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def restore(summary: RunSummary, saved: dict[str, Any]) -> None:
    """Carry the counts of the interrupted run into this one, so the totals still add up."""
    summary.read = int(saved.get("read", 0))
    summary.upserted = int(saved.get("upserted", 0))
    summary.skipped.update({str(k): int(v) for k, v in dict(saved.get("skipped", {})).items()})
    summary.failed = int(saved.get("failed", 0))
    summary.rejected = int(saved.get("rejected", 0))
