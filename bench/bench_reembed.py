"""Re-embedding through vex against the raw `SentenceTransformer.encode` floor, on this machine's device.

The same texts go through `vex import --model` (read, re-embed with the embedding cache, write a `.vmig.jsonl`)
and through a bare `encode` call with the same batch size; a second vex run shows what the cache saves.
GPU figures, where a GPU is present, are labelled as such.

    python bench/bench_reembed.py                       # 2,000 texts, all-MiniLM-L6-v2
    python bench/bench_reembed.py --texts 5000 --model all-mpnet-base-v2
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def corpus(count: int) -> list[str]:
    """Distinct English sentences this machine has: the docstrings of installed Python modules."""
    import pkgutil
    import pydoc

    seen: list[str] = []
    for module in pkgutil.iter_modules():
        if len(seen) >= count:
            break
        try:
            doc = pydoc.synopsis(module.module_finder.path + "/" + module.name + ".py") if hasattr(
                module.module_finder, "path") else None  # fmt: skip
        except Exception:  # noqa: BLE001 - a module that cannot be read is skipped
            doc = None
        if doc and len(doc) > 20:
            seen.append(doc)
    base = seen or ["A sentence about vectors and memory."]
    return [f"{base[i % len(base)]} ({i})" for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vex-bench-reembed-") as tmp:
        os.environ["VEX_STATE_DIR"] = tmp + "/state"  # a cold cache
        from embed import encoder
        from engine.jobs import import_job
        from engine.local import LocalRunner
        from engine.params import ImportParams, StoreSpec

        texts = corpus(args.texts)
        source = Path(tmp) / "in.vmig.jsonl"
        source.write_bytes(b"".join(orjson.dumps({"id": f"t{i}", "text": t, "vex_version": "1.0.0"}) + b"\n"
                                    for i, t in enumerate(texts)))  # fmt: skip
        model = encoder.load(args.model)  # loading is timed by neither side
        started = time.perf_counter()
        model.encode(texts, batch_size=encoder.BATCH_SIZE, convert_to_numpy=True, show_progress_bar=False)
        floor = time.perf_counter() - started
        rows = []
        for run in ("cold cache", "warm cache"):
            target = StoreSpec(store="jsonl", options={"path": str(Path(tmp) / f"{run[:4]}.vmig.jsonl")})
            params = ImportParams(input=source, target=target, check_sidecar=False, model=args.model,
                                  reembed="always")  # fmt: skip
            started = time.perf_counter()
            summary = import_job(params, LocalRunner())
            rows.append((run, time.perf_counter() - started, dict(summary.reembedded)))
    device = encoder.device()
    label = "GPU" if device == "cuda" else "CPU"
    print(f"\nre-embedding {args.texts:,} texts with {args.model} on {label} ({device})")
    print(f"{'path':<28}{'texts/s':>10}{'vs floor':>10}")
    print(f"{'raw encode (floor)':<28}{args.texts / floor:>10,.0f}{1.0:>10.2f}")
    for run, seconds, counts in rows:
        print(f"{'vex import, ' + run:<28}{args.texts / seconds:>10,.0f}{floor / seconds:>10.2f}   {counts}")


if __name__ == "__main__":
    main()
