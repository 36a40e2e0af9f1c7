"""Names of the files that travel with a `.vmig.jsonl` data file."""

from __future__ import annotations

import os
from pathlib import Path

_DATA_SUFFIXES = (".gz", ".zst", ".jsonl", ".ndjson", ".json", ".vmig")


def stem_of(data_path: Path) -> str:
    """`memories.vmig.jsonl.gz` -> `memories`: the name shared by sidecar and rejects."""
    name = data_path.name
    changed = True
    while changed:
        changed = False
        for suffix in _DATA_SUFFIXES:
            if name.endswith(suffix) and len(name) > len(suffix):
                name = name[: -len(suffix)]
                changed = True
    return name


def sidecar_path(data_path: Path) -> Path:
    return data_path.with_name(f"{stem_of(data_path)}.vmig.meta.json")


def rejects_path(data_path: Path) -> Path:
    return data_path.with_name(f"{stem_of(data_path)}.rejects.jsonl")


def temporary_path(final: Path) -> Path:
    """The hidden sibling a writer fills before renaming it to `final`."""
    return final.with_name(f".{final.name}.partial")


def compression_of(data_path: Path) -> str | None:
    """ "gzip", "zstd" or None, from the file name as the format says."""
    if data_path.name.endswith(".gz"):
        return "gzip"
    if data_path.name.endswith(".zst"):
        return "zstd"
    return None


def state_home() -> Path:
    """Where vex keeps what outlives a run (checkpoints, models, the embedding cache): VEX_STATE_DIR, else the
    user's state directory."""
    base = os.environ.get("VEX_STATE_DIR") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "vex"
    )
    return Path(base)
