"""Re-imports into PostgreSQL tables whose ids have no unique index, against vex's own table.

LlamaIndex's `data_<name>` (`node_id`) and langchain_community's older `langchain_pg_embedding`
(`custom_id`) have no unique constraint on the id, so vex replaces a record's rows by
delete-then-insert instead of an upsert. This times `vex import` of the same `.vmig.jsonl` into
each layout: a first load into an empty table, then re-imports of the same records (every row
replaced), each `vex import` in its own process, with a VACUUM of the table between runs so
that every re-import meets the same table. The native table (id primary key, `ON CONFLICT`
upsert) is the reference.

    python bench/bench_reimport.py                          # 100,000 records, 2 re-imports
    python bench/bench_reimport.py --records 300000 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_pgvector import DIMS, _server, _table_ddl  # noqa: E402 - importable once the path is set
from bench.bench_stores import make_data  # noqa: E402

LAYOUTS: dict[str, tuple[list[str], list[str], str]] = {
    # name: (vex options, DDL that makes the empty table, table to VACUUM)
    "native": (["--table", "native_t"], ["DROP TABLE IF EXISTS native_t", _table_ddl("native_t")], "native_t"),
    "llamaindex": (
        ["--layout", "llamaindex", "--collection", "bench"],
        [
            "DROP TABLE IF EXISTS data_bench",
            f"CREATE TABLE data_bench (id BIGSERIAL PRIMARY KEY, text VARCHAR NOT NULL, metadata_ JSONB, "
            f"node_id VARCHAR, embedding VECTOR({DIMS}))",
            "CREATE INDEX bench_idx_1 ON data_bench ((metadata_ ->> 'ref_doc_id'))",
        ],
        "data_bench",
    ),
    "langchain (legacy)": (
        ["--layout", "langchain", "--collection", "bench"],
        [
            "DROP TABLE IF EXISTS langchain_pg_embedding, langchain_pg_collection",
            "CREATE TABLE langchain_pg_collection (uuid UUID PRIMARY KEY, name VARCHAR, cmetadata JSON)",
            "CREATE TABLE langchain_pg_embedding (uuid UUID PRIMARY KEY, collection_id UUID REFERENCES "
            f"langchain_pg_collection(uuid) ON DELETE CASCADE, embedding VECTOR({DIMS}), document VARCHAR, "
            "cmetadata JSONB, custom_id VARCHAR)",
        ],
        "langchain_pg_embedding",
    ),
}


def _sql(dsn: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement.encode())  # the bench's own fixed statements


def _timed_import(dsn: str, data: Path, options: list[str]) -> float:
    command = [sys.executable, "-m", "cli.main", "import", "--from", str(data), "--to", "pgvector", "--url", dsn,
               "--index", "none", "--quiet", *options]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, timeout=3600)
    return time.perf_counter() - started


def _rows(dsn: str, table: str) -> int:
    import psycopg

    with psycopg.connect(dsn) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2, help="re-imports per layout; the table gives their median")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="vex-bench-reimport-") as tmp:
        work = Path(tmp)
        dsn, server = _server(work)
        try:
            data = work / "data.vmig.jsonl"
            make_data(data, args.records)
            for name, (options, ddl, table) in LAYOUTS.items():
                _sql(dsn, *ddl)
                first = _timed_import(dsn, data, options)
                again = []
                for _ in range(args.repeat):
                    _sql(dsn, f"VACUUM {table}")
                    again.append(_timed_import(dsn, data, options))
                rows = _rows(dsn, table)
                if rows != args.records:
                    raise SystemExit(f"{name}: {rows:,} rows after the re-imports, expected {args.records:,}")
                results.append((name, first, statistics.median(again), again))
                _sql(dsn, ddl[0])
        finally:
            if server is not None:
                server.cleanup()  # type: ignore[attr-defined]
    label = f"re-import: median of {args.repeat}"
    print(f"\n{args.records:,} records x {DIMS} dims; each run a `vex import` process; {label}")
    print(f"{'layout':<22}{'first load s':>14}{'re-import s':>13}{'re-import rec/s':>17}  each re-import")
    for name, first, median, runs in results:
        print(
            f"{name:<22}{first:>14.2f}{median:>13.2f}{args.records / median:>17,.0f}  "
            + " ".join(f"{run:.2f}" for run in runs)
        )


if __name__ == "__main__":
    main()
