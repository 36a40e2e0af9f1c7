"""A run never writes over what it reads: an output that is its own source, spelled another way or not.

`vex export --from vektor --db m2.db --output m2.db` once replaced the database with the
export of its first records. Every path a run will write (the target's files, a sidecar,
a rejects file) is compared with every path it reads before anything is opened for writing:
the same file by any spelling, through a link, or a hard link of it, and a file inside a
folder store. Folder stores that hold several collections overlap only in the same one.
"""

from __future__ import annotations

import os
from pathlib import Path

from connectors.base import Location
from vmig.errors import UsageError


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet: compare where they would be
        return a.resolve() == b.resolve()


def _inside(path: Path, folder: Path) -> bool:
    try:
        return folder.is_dir() and path.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False


def _overlap(written: Location, read: Location) -> bool:
    if _same_file(written.path, read.path):
        return written.scope is None or read.scope is None or written.scope == read.scope
    return _inside(written.path, read.path) or _inside(read.path, written.path)


def refuse_overlap(reads: list[Location], writes: list[Location]) -> None:
    """UsageError when a path the run writes is one it reads (or lies inside, or holds, a folder it reads)."""
    for written in writes:
        for read in reads:
            if _overlap(written, read):
                where = f"{read.path}" + (f" (collection {read.scope})" if read.scope else "")
                raise UsageError(
                    f"{written.role} {written.path} would overwrite {read.role} {where}, which this run reads: "
                    "choose another path"
                )
