"""The bad-input corpus: damaged inputs, each with its documented outcome.

Every case builds its input in a temporary directory, runs one real `vex`
command, and states what must happen: the exit code, a phrase of the one-line
message, which lines land in the rejects file, and what the target holds
afterwards. `tests/test_bad_inputs.py` runs them all; the README's reliability
section is this table.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.records import sample_records, write_vmig
from tests.vektor_layouts import make_layout1

GOOD = '{"id": "good-%d", "text": "fine", "vector": [0.5, 0.25], "vex_version": "1.0.0"}'


def good_lines(count: int, start: int = 0) -> list[str]:
    return [GOOD % i for i in range(start, start + count)]


def jsonl(tmp: Path, lines: list[str | bytes], name: str = "in.vmig.jsonl") -> Path:
    path = tmp / name
    path.write_bytes(b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines))
    return path


@dataclass
class Case:
    name: str
    outcome: str
    """What happens, in words (the documentation of the case)."""
    build: Callable[[Path], list[str]]
    """Makes the input under the directory and returns the vex arguments."""
    exit_code: int
    message: str = ""
    rejected_lines: list[int] | None = None
    target_records: int | None = None
    """Records in the target afterwards (None: the target must not exist)."""
    extra: dict[str, object] = field(default_factory=dict)


def _import(path: Path) -> list[str]:
    return ["import", "--from", str(path), "--to", "vektor", "--db", str(path.parent / "target.db")]


def _lines_case(lines: list[str | bytes]) -> Callable[[Path], list[str]]:
    return lambda tmp: _import(jsonl(tmp, lines))


def _with_sidecar(mutate: Callable[[dict[str, object], Path], None] | None) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        path = write_vmig(tmp / "in.vmig.jsonl", sample_records(count=5, odd_ones=False))
        sidecar = tmp / "in.vmig.meta.json"
        if mutate is None:
            sidecar.unlink()
        else:
            payload = json.loads(sidecar.read_text())
            mutate(payload, sidecar)
        return _import(path)

    return build


def _set(key: str, value: object) -> Callable[[dict[str, object], Path], None]:
    def mutate(payload: dict[str, object], sidecar: Path) -> None:
        payload[key] = value
        sidecar.write_text(json.dumps(payload))

    return mutate


def _raw_sidecar(text: str) -> Callable[[dict[str, object], Path], None]:
    return lambda payload, sidecar: sidecar.write_text(text)


def _truncated_archive(suffix: str) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        path = write_vmig(tmp / f"in.vmig.jsonl{suffix}", sample_records(count=300, odd_ones=False))
        (tmp / "in.vmig.meta.json").unlink()
        data = path.read_bytes()
        path.write_bytes(data[: len(data) * 2 // 3])
        return _import(path)

    return build


def _vektor_db(mutate: Callable[[sqlite3.Connection], None]) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        db = make_layout1(tmp / "source.db")
        with sqlite3.connect(db) as conn:
            mutate(conn)
        conn.close()
        return ["migrate", "--from", "vektor", "--to", "vektor", "--source-db", str(db),
                "--target-db", str(tmp / "target.db")]  # fmt: skip

    return build


def _file_as_db(content: bytes) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        db = tmp / "source.db"
        db.write_bytes(content)
        return ["migrate", "--from", "vektor", "--to", "vektor", "--source-db", str(db),
                "--target-db", str(tmp / "target.db")]  # fmt: skip

    return build


def _duplicate_ids(tmp: Path) -> list[str]:
    path = jsonl(tmp, [*good_lines(3), GOOD % 1])
    return ["validate", str(path)]


def _huge_line(tmp: Path) -> list[str]:
    huge = '{"id": "huge", "text": "' + "x" * (50 * 1024 * 1024) + '"}'
    return _import(jsonl(tmp, [*good_lines(2), huge, *good_lines(1, 2)]))


def _directory(tmp: Path) -> list[str]:
    (tmp / "dir.vmig.jsonl").mkdir()
    return _import(tmp / "dir.vmig.jsonl")


def _export_onto(spell: Callable[[Path], Path]) -> Callable[[Path], list[str]]:
    """An export whose --output is its own source database, spelled by `spell`."""

    def build(tmp: Path) -> list[str]:
        db = make_layout1(tmp / "source.db")
        return ["export", "--from", "vektor", "--db", str(db), "--output", str(spell(db)), "--limit", "10"]

    return build


def _symlink_to(db: Path) -> Path:
    (db.parent / "link.db").symlink_to(db.name)
    return db.parent / "link.db"


def _hard_link_of(db: Path) -> Path:
    (db.parent / "hard.db").hardlink_to(db)
    return db.parent / "hard.db"


def _import_onto_input(tmp: Path) -> list[str]:
    path = write_vmig(tmp / "in.vmig.jsonl", sample_records(count=5, odd_ones=False))
    return ["import", "--from", str(path), "--to", "vektor", "--db", str(path)]


def _export_over_notes(tmp: Path) -> list[str]:
    make_layout1(tmp / "source.db")
    (tmp / "notes.txt").write_text("my notes\n")
    return ["export", "--from", "vektor", "--db", str(tmp / "source.db"), "--output", str(tmp / "notes.txt")]


def _export_with(*flags: str) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        db = make_layout1(tmp / "source.db")
        return ["export", "--from", "vektor", "--db", str(db), "--output", str(tmp / "out.vmig.jsonl"), *flags]

    return build


def _into_integer_ids(tmp: Path) -> list[str]:
    with sqlite3.connect(tmp / "target.db") as conn:
        conn.execute("CREATE TABLE memories (id INTEGER PRIMARY KEY, content TEXT, embedding BLOB, metadata TEXT, "
                     "created_at TEXT, namespace TEXT)")  # fmt: skip
    conn.close()
    return _import(jsonl(tmp, [GOOD % 7, (GOOD % 7).replace('"good-7"', '"007"'), *good_lines(1)]))


def _locked_database(tmp: Path) -> list[str]:
    db = make_layout1(tmp / "source.db")
    return ["export", "--from", "vektor", "--db", str(db), "--output", str(tmp / "out.vmig.jsonl")]


CORPUS: list[Case] = [
    Case(
        "truncated last line",
        "valid lines imported; the cut line rejected",
        _lines_case([*good_lines(3), '{"id": "cut", "te']),
        3,
        "damaged",
        [4],
        3,
    ),
    Case(
        "invalid UTF-8",
        "line rejected as not UTF-8",
        _lines_case([*good_lines(1), b'{"id": "x\xff", "text": "a"}', *good_lines(1, 1)]),
        3,
        "not valid UTF-8",
        [2],
        2,
    ),
    Case(
        "UTF-8 BOM", "accepted: the BOM is skipped", _lines_case(["\ufeff" + GOOD % 0, *good_lines(2, 1)]), 0, "", [], 3
    ),
    Case(
        "NaN in a vector",
        "rejected (NaN is not JSON)",
        _lines_case([*good_lines(1), '{"id": "n", "vector": [NaN, 1.0]}']),
        3,
        "not valid JSON",
        [2],
        1,
    ),
    Case(
        "Infinity in a vector",
        "rejected",
        _lines_case(['{"id": "i", "vector": [Infinity]}', *good_lines(1)]),
        3,
        "not valid JSON",
        [1],
        1,
    ),
    Case(
        "float32 overflow",
        "rejected: 1e39 is not a finite float32",
        _lines_case(['{"id": "o", "vector": [1e39, 0]}', *good_lines(1)]),
        3,
        "finite float32",
        [1],
        1,
    ),
    Case(
        "string inside a vector",
        "rejected",
        _lines_case(['{"id": "s", "vector": [0.1, "0.2"]}', *good_lines(2)]),
        3,
        "not a number",
        [1],
        2,
    ),
    Case(
        "boolean inside a vector",
        "rejected",
        _lines_case(['{"id": "b", "vector": [true, 0.2]}', *good_lines(1)]),
        3,
        "not a number",
        [1],
        1,
    ),
    Case(
        "empty vector",
        "rejected",
        _lines_case(['{"id": "e", "vector": [], "text": "t"}', *good_lines(1)]),
        3,
        "empty",
        [1],
        1,
    ),
    Case(
        "a 50 MB line", "rejected as longer than 16 MiB, read in bounded memory", _huge_line, 3, "longer than", [3], 3
    ),
    Case(
        "duplicate ids",
        "validate counts the id once and flags the later line, naming the first",
        _duplicate_ids,
        3,
        "3 valid records, 1 duplicate ids, 0 damaged lines",
        [4],
        None,
    ),
    Case(
        "duplicate ids, imported",
        "the target keeps the later record; the earlier counted as replaced, not upserted",
        _lines_case([*good_lines(3), (GOOD % 1).replace('"fine"', '"later"')]),
        1,
        "1 records replaced by a later record with the same id",
        [],
        3,
    ),
    Case(
        "dims disagrees with the vector",
        "rejected",
        _lines_case(['{"id": "d", "vector": [1.0, 2.0], "dims": 3}', *good_lines(1)]),
        3,
        "'dims' is 3",
        [1],
        1,
    ),
    Case(
        "missing id",
        "rejected",
        _lines_case(['{"text": "no id", "vector": [1.0, 2.0]}', *good_lines(1)]),
        3,
        "missing 'id'",
        [1],
        1,
    ),
    Case("empty id", "rejected", _lines_case(['{"id": "", "text": "t"}', *good_lines(1)]), 3, "'id' is empty", [1], 1),
    Case(
        "neither text nor vector",
        "rejected",
        _lines_case(['{"id": "z", "text": null, "vector": null}', *good_lines(1)]),
        3,
        "neither",
        [1],
        1,
    ),
    Case(
        "metadata that is not an object",
        "rejected",
        _lines_case(['{"id": "m", "text": "t", "metadata": "a=b"}', *good_lines(1)]),
        3,
        "must be an object",
        [1],
        1,
    ),
    Case(
        "line that is a JSON array",
        "rejected",
        _lines_case(['["id", "x"]', *good_lines(1)]),
        3,
        "not an object",
        [1],
        1,
    ),
    Case(
        "unparseable created_at",
        "rejected",
        _lines_case(['{"id": "c", "text": "t", "created_at": "yesterday"}', *good_lines(1)]),
        3,
        "ISO-8601",
        [1],
        1,
    ),
    Case(
        "blank lines and CRLF endings",
        "accepted: blank lines skipped, CRLF read as LF",
        _lines_case([GOOD % 0 + "\r", "", GOOD % 1, "   "]),
        0,
        "",
        [],
        2,
    ),
    Case("empty file", "nothing to import: exit 0, no target created", _lines_case([]), 0, "", [], None),
    Case(
        "not JSONL at all (CSV)",
        "refused: no line is a record; nothing written",
        _lines_case(["id,text", "1,hello"]),
        3,
        "is not a .vmig.jsonl file",
        [1, 2],
        None,
    ),
    Case(
        "sidecar missing",
        "imported with a warning that nothing could be verified",
        _with_sidecar(None),
        0,
        "could not be verified",
        [],
        5,
    ),
    Case(
        "sidecar not JSON",
        "refused before any write",
        _with_sidecar(_raw_sidecar("{oops")),
        3,
        "cannot be read",
        None,
        None,
    ),
    Case(
        "sidecar wrong checksum",
        "refused before any write",
        _with_sidecar(_set("checksum", "sha256:" + "0" * 64)),
        3,
        "checksum mismatch",
        None,
        None,
    ),
    Case(
        "sidecar wrong record count",
        "refused before any write",
        _with_sidecar(_set("record_count", 6)),
        3,
        "record count mismatch",
        None,
        None,
    ),
    Case(
        "sidecar with wrong types",
        "refused before any write",
        _with_sidecar(_set("record_count", "many")),
        3,
        "not a valid vex sidecar",
        None,
        None,
    ),
    Case(
        "truncated gzip", "refused before any write", _truncated_archive(".gz"), 3, "damaged or truncated", None, None
    ),
    Case(
        "truncated zstd", "refused before any write", _truncated_archive(".zst"), 3, "damaged or truncated", None, None
    ),
    Case("input is a directory", "usage error", _directory, 2, "is a directory", None, None),
    Case(
        "SQLite file that is not a database",
        "integrity error, nothing written",
        _file_as_db(b"not a database" * 200),
        3,
        "not a SQLite database",
        None,
        None,
    ),
    Case(
        "SQLite file without a memories table",
        "usage error, nothing written",
        _file_as_db(b""),
        2,
        "no 'memories' table",
        None,
        None,
    ),
    Case(
        "BLOB length not a multiple of 4",
        "that record rejected with its id; the rest migrated",
        _vektor_db(lambda c: c.execute("UPDATE memories SET embedding = x'010203' WHERE id = 'l1-3'")),
        3,
        "not a whole number of float32",
        [],
        49,
        {"rejected_ids": ["l1-3"]},
    ),
    Case(
        "NaN inside a BLOB",
        "that record rejected with its id",
        _vektor_db(lambda c: c.execute("UPDATE memories SET embedding = x'0000c07f0000803f' WHERE id = 'l1-4'")),
        3,
        "NaN or infinite",
        [],
        49,
        {"rejected_ids": ["l1-4"]},
    ),
    Case(
        "metadata column not JSON",
        "that record rejected with its id",
        _vektor_db(lambda c: c.execute("UPDATE memories SET metadata = '{broken' WHERE id = 'l1-5'")),
        3,
        "vektor row",
        [],
        49,
        {"rejected_ids": ["l1-5"]},
    ),
    Case(
        "export output is its own source",
        "refused before anything is opened for writing; the database is intact",
        _export_onto(lambda db: db),
        2,
        "would overwrite the vektor database",
        None,
        None,
        {"intact": "source.db"},
    ),
    Case(
        "export output is its source spelled another way",
        "refused: DIR/../DIR/./source.db resolves to the source",
        _export_onto(lambda db: db.parent / ".." / db.parent.name / "." / db.name),
        2,
        "would overwrite the vektor database",
        None,
        None,
        {"intact": "source.db"},
    ),
    Case(
        "export output is a link to its source",
        "refused: the link resolves to the source",
        _export_onto(_symlink_to),
        2,
        "would overwrite the vektor database",
        None,
        None,
        {"intact": "source.db"},
    ),
    Case(
        "export output is a hard link of its source",
        "refused: the same file under another name",
        _export_onto(_hard_link_of),
        2,
        "would overwrite the vektor database",
        None,
        None,
        {"intact": "source.db"},
    ),
    Case(
        "import target is its own input",
        "refused before anything is written",
        _import_onto_input,
        2,
        "would overwrite the .vmig.jsonl file",
        None,
        None,
    ),
    Case(
        "export over a file that is not a .vmig",
        "refused without --force; the file is left as it was",
        _export_over_notes,
        2,
        "is not a .vmig.jsonl file: it is not replaced (--force replaces it)",
        None,
        None,
        {"intact": "source.db", "unchanged": ("notes.txt", "my notes\n")},
    ),
    Case(
        "negative --limit",
        "one-line usage error naming the flag",
        _export_with("--limit", "-1"),
        2,
        "--limit: input should be greater than or equal to 0 (got -1)",
        None,
        None,
    ),
    Case(
        "--chunk-rows 0",
        "one-line usage error naming the flag",
        _export_with("--chunk-rows", "0"),
        2,
        "--chunk-rows: input should be greater than or equal to 1 (got 0)",
        None,
        None,
    ),
    Case(
        "empty --output",
        "one-line usage error (it was taken as the current folder)",
        lambda tmp: [*_export_with()(tmp)[:-2], "--output", ""],
        2,
        "--output needs a file name",
        None,
        None,
    ),
    Case(
        "VEKTOR target whose id column converts ids",
        "refused before the first write: an INTEGER id column would store '007' as 7",
        _into_integer_ids,
        2,
        "its memories.id column is declared INTEGER",
        None,
        0,
    ),
    Case(
        "locked database",
        "retried 3 times, then a clear error naming the lock (exit 4: safe to re-run)",
        _locked_database,
        4,
        "database is locked",
        None,
        None,
        {"lock": True},
    ),
    Case(
        "metadata integer beyond 64 bits",
        "rejected naming the number (it would be read as a float); a long numeric id keeps its digits",
        _lines_case(
            [
                '{"id": "w", "text": "t", "metadata": {"n": 123456789012345678901234}}',
                '{"id": 123456789012345678901234567890, "text": "numeric id"}',
                *good_lines(1),
            ]
        ),
        3,
        "holds the integer 123456789012345678901234, beyond 64 bits",
        [1],
        2,
    ),
    Case(
        "metadata column with an integer beyond 64 bits",
        "that record rejected with its id",
        _vektor_db(
            lambda c: c.execute(
                "UPDATE memories SET metadata = '{\"n\": 1e2, \"big\": 99999999999999999999999}' WHERE id = 'l1-6'"
            )
        ),
        3,
        "holds the integer 99999999999999999999999",
        [],
        49,
        {"rejected_ids": ["l1-6"]},
    ),
]
