"""`<stem>.rejects.jsonl`: every damaged line, with its number and the reason."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import orjson

from vmig.reader import Reject

_RAW_LIMIT = 1 << 20
"""Raw text kept per rejected line; longer lines are cut and marked so."""


class RejectsWriter:
    """Collect rejects of one run into `path`; the file reflects the latest run only."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.temp = self.path.with_name(f".{self.path.name}.partial")
        self.count = 0
        self.reasons: list[tuple[int | None, str]] = []
        self._handle: BinaryIO | None = None

    def add(self, rejects: list[Reject]) -> None:
        if not rejects:
            return
        if self._handle is None:
            self._handle = open(self.temp, "wb")
        for reject in rejects:
            raw = reject.raw[:_RAW_LIMIT].decode("utf-8", errors="replace")
            entry: dict[str, object] = {"line": reject.line, "reason": reject.reason, "raw": raw}
            if reject.id is not None:
                entry["id"] = reject.id
            if len(reject.raw) > _RAW_LIMIT:
                entry["raw_truncated"] = True
            self._handle.write(orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE))
            self.count += 1
            if len(self.reasons) < 20:
                self.reasons.append((reject.line, reject.reason))

    def close(self) -> Path | None:
        """Rename the rejects into place, or remove a stale file when there were none."""
        if self._handle is None:
            self.path.unlink(missing_ok=True)
            return None
        self._handle.close()
        os.replace(self.temp, self.path)
        return self.path
