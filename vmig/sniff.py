"""What a path given as a `.vmig.jsonl` file really is, from its first bytes, before a reader meets it.

A VEKTOR database or a Qdrant folder handed to `vex inspect` would otherwise be read as
thousands of damaged lines; naming what it is tells the person which `--from` to use.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

SAMPLE_BYTES = 64 * 1024
_SQLITE_MAGIC = b"SQLite format 3\x00"
_COMPRESSED = (b"\x1f\x8b", b"\x28\xb5\x2f\xfd")
"""gzip and zstandard: read as `.vmig.jsonl.gz` / `.zst` by the file reader."""
_OTHER_FORMATS = {b"PAR1": "a Parquet file", b"ARROW1": "an Arrow file", b"PK\x03\x04": "a zip archive"}


@dataclass(frozen=True)
class FileKind:
    jsonl: bool
    """Lines of JSON objects (possibly damaged, possibly compressed): the file reader takes it."""
    vektor_db: bool = False
    """A SQLite database with a `memories` table: a VEKTOR store."""
    what: str = ""
    """What it is in words, when it is not JSONL."""
    store_hint: str | None = None
    """The `--from` options that read it as a store, where one does."""


def sniff(path: Path) -> FileKind:
    if path.is_dir():
        return _directory(path)
    with path.open("rb") as handle:
        head = handle.read(SAMPLE_BYTES)
    if head.startswith(_SQLITE_MAGIC):
        return _sqlite(path)
    if not head or head.startswith(_COMPRESSED):
        return FileKind(jsonl=True)
    for magic, name in _OTHER_FORMATS.items():
        if head.startswith(magic):
            return FileKind(jsonl=False, what=name)
    if b"\x00" in head:
        return FileKind(jsonl=False, what="binary data, not lines of JSON")
    if not any(line.lstrip().startswith(b"{") for line in head.splitlines()):
        return FileKind(jsonl=False, what="text with no JSON object on any of its first lines")
    return FileKind(jsonl=True)


def _sqlite(path: Path) -> FileKind:
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error:
        tables = set()
    if "memories" in tables:
        return FileKind(jsonl=False, vektor_db=True, what="a VEKTOR database", store_hint=f"--from vektor --db {path}")
    return FileKind(jsonl=False, what="a SQLite database without a memories table (not a VEKTOR database)")


def _directory(path: Path) -> FileKind:
    if (path / "chroma.sqlite3").exists():
        return FileKind(jsonl=False, what="an embedded Chroma folder", store_hint=f"--from chroma --path {path}")
    if (path / "meta.json").exists() and (path / "collection").is_dir():
        return FileKind(jsonl=False, what="a Qdrant local-mode folder", store_hint=f"--from qdrant --path {path}")
    return FileKind(jsonl=False, what="a directory")
