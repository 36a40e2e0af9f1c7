"""Sample records that exercise everything the format carries.

Nested metadata, several namespaces, timestamps, scores, a record without a
vector and one of another dimension: what a store cannot hold is skipped by
rule, and the tests check exactly which.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from vmig.batch import build_batch
from vmig.writer import VmigWriter

DIMS = 8


def sample_records(count: int = 40, dims: int = DIMS, seed: int = 7, odd_ones: bool = True) -> list[dict[str, Any]]:
    """Plain-dict records (as a user would write them), deterministic for a seed."""
    rng = np.random.default_rng(seed)
    records: list[dict[str, Any]] = []
    for i in range(count):
        vector = rng.standard_normal(dims).astype(np.float32)
        records.append(
            {
                "id": f"mem-{i:04d}",
                "text": f"memory number {i} about {'trading' if i % 3 == 0 else 'agents'}",
                "vector": vector,
                "namespace": ["default", "trading", "research"][i % 3],
                "metadata": {
                    "importance": round(float(i) / count, 3),
                    "agent_id": f"agent-{i % 4}",
                    "tags": ["a", "b"] if i % 2 else [],
                    "nested": {"depth": {"level": i % 5}, "ok": i % 2 == 0},
                    "note": None,
                },
                "created_at": 1_736_936_580_000_000 + i * 1_000_000,
                "model": "all-MiniLM-L6-v2",
            }
        )
    if odd_ones:
        records.append(
            {
                "id": "no-vector",
                "text": "a memory whose vector was never computed",
                "vector": None,
                "namespace": "default",
                "metadata": {"kind": "text-only"},
                "created_at": None,
                "model": None,
            }
        )
        records.append(
            {
                "id": "other-dims",
                "text": "a memory from another model",
                "vector": rng.standard_normal(dims * 2).astype(np.float32),
                "namespace": "default",
                "metadata": {"kind": "other-model"},
                "created_at": 1_736_936_580_000_000,
                "model": "other-model",
            }
        )
    return records


def to_batch(records: list[dict[str, Any]]):  # type: ignore[no-untyped-def]
    return build_batch(
        [r["id"] for r in records],
        vectors=[r["vector"] for r in records],
        text=[r["text"] for r in records],
        model=[r.get("model") for r in records],
        namespace=[r["namespace"] for r in records],
        metadata=[orjson.dumps(r["metadata"]).decode() for r in records],
        created_at=[r["created_at"] for r in records],
        sparse_vector=[r.get("sparse_vector") for r in records],
    )


def write_vmig(path: Path, records: list[dict[str, Any]], source: str = "test") -> Path:
    """A `.vmig.jsonl` with its sidecar, as `vex export` would write it."""
    from connectors.base import WrittenFile
    from engine.steps import write_sidecar

    writer = VmigWriter(path, default_source=source).open()
    writer.write_batch(to_batch(records))
    checksum = writer.commit(publish=False)
    write_sidecar(WrittenFile(path, checksum, writer.stats), source)
    return path


def read_vmig(path: Path) -> dict[str, dict[str, Any]]:
    """Records of a `.vmig.jsonl` by id, metadata decoded (for comparisons)."""
    from vmig import metadata as md
    from vmig.reader import read_batches

    out: dict[str, dict[str, Any]] = {}
    for read in read_batches(path):
        assert not read.rejects, read.rejects
        for row in read.batch.to_pylist():
            row["metadata"] = md.loads(row["metadata"])
            out[row["id"]] = row
    return out


def write_lines(path: Path, lines: Sequence[dict[str, Any] | str]) -> Path:
    """A `.vmig.jsonl` written line by line with no sidecar, as a user or another tool would.

    Unlike `write_vmig` it goes around the record schema: keys it has no column for (such as
    sparse_vector) stay as given, and a str is written as the raw line, for damaged input.
    """
    with path.open("wb") as handle:
        for line in lines:
            if isinstance(line, str):
                data = line.encode()
            else:
                data = orjson.dumps({"vex_version": "1.0.0", **line}, option=orjson.OPT_SERIALIZE_NUMPY)
            handle.write(data + b"\n")
    return path


def read_lines(path: Path) -> dict[str, dict[str, Any]]:
    """The lines of a `.vmig.jsonl` by id, as written: metadata left encoded, every key kept."""
    return {line["id"]: line for line in map(orjson.loads, path.read_bytes().splitlines())}
