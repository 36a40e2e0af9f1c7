"""What could not be read as a record (`Reject`), and `<stem>.rejects.jsonl`, where each is kept with its reason."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import orjson

_RAW_LIMIT = 1 << 20
"""Raw text kept per rejected line; longer lines are cut and marked so."""


@dataclass(frozen=True)
class Reject:
    """A line or source record that could not be read as a record."""

    line: int | None
    reason: str
    raw: bytes
    id: str | None = None


class RejectsWriter:
    """Collect the rejects of a job into `path`: those of this run, after those a resumed run kept.

    A new run starts the file afresh. A resumed run keeps the first `keep_bytes` of it, the
    rejects of the chunks its checkpoint covers, and appends its own after them; what the
    interrupted run wrote past its checkpoint is cut, since those chunks are read again.
    The file is written in place and flushed at each checkpoint (`size`), so even a run
    killed outright leaves the rejects its checkpoint counts.
    """

    def __init__(self, path: Path, keep_bytes: int = 0) -> None:
        self.path = Path(path)
        self.keep_bytes = keep_bytes
        self.count = 0
        self.reasons: list[tuple[int | None, str]] = []
        self._handle: BinaryIO | None = None
        if keep_bytes:
            self._open()

    def _open(self) -> BinaryIO:
        if self._handle is None:
            kept = self.keep_bytes if self.path.exists() else 0
            self._handle = open(self.path, "r+b" if kept else "wb")
            self._handle.truncate(min(kept, os.fstat(self._handle.fileno()).st_size))
            self._handle.seek(0, os.SEEK_END)
        return self._handle

    @property
    def size(self) -> int:
        """Bytes of rejects on disk so far (flushed): what a checkpoint records."""
        if self._handle is None:
            return 0
        self._handle.flush()
        return self._handle.tell()

    def add(self, rejects: list[Reject]) -> None:
        if not rejects:
            return
        handle = self._open()
        for reject in rejects:
            raw = reject.raw[:_RAW_LIMIT].decode("utf-8", errors="replace")
            entry: dict[str, object] = {"line": reject.line, "reason": reject.reason, "raw": raw}
            if reject.id is not None:
                entry["id"] = reject.id
            if len(reject.raw) > _RAW_LIMIT:
                entry["raw_truncated"] = True
            handle.write(orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE))
            self.count += 1
            if len(self.reasons) < 20:
                self.reasons.append((reject.line, reject.reason))

    def close(self) -> Path | None:
        """The rejects file, or None (and a stale file of an earlier run removed) when there are none."""
        if self._handle is None:
            self.path.unlink(missing_ok=True)
            return None
        empty = self.size == 0
        self._handle.close()
        self._handle = None
        if empty:
            self.path.unlink(missing_ok=True)
            return None
        return self.path
