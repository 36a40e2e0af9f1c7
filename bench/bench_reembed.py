"""Re-embedding through vex against the raw `SentenceTransformer.encode` floor, on this machine's device.

The texts are distinct real English sentences (`embed/corpus.py`). The same texts go through a bare
`encode` call with vex's batch size (the floor) and through `vex import --model --reembed always` (read a
`.vmig.jsonl`, re-embed with a cold embedding cache, write a `.vmig.jsonl`); then vex again on the same texts,
served by the cache: in this process, and as a new `vex` process (which never imports torch). The model is
loaded before any timing, the rounds are interleaved, and each vex run gets a fresh state directory (a cold
cache). GPU figures, where a GPU is present, are labelled as such.

    python bench/bench_reembed.py                                  # 5,000 texts, all-MiniLM-L6-v2, 2 rounds
    python bench/bench_reembed.py --texts 1000 --model all-mpnet-base-v2 --rounds 1
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=5000)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    from embed import encoder
    from embed.corpus import sentences
    from engine.jobs import import_job
    from engine.local import LocalRunner
    from engine.params import ImportParams, StoreSpec

    texts = sentences(args.texts)
    if len(texts) < args.texts:
        sys.exit(f"this machine has {len(texts):,} distinct sentences, not {args.texts:,}")
    with tempfile.TemporaryDirectory(prefix="vex-bench-reembed-") as tmp:
        source = Path(tmp) / "in.vmig.jsonl"
        source.write_bytes(b"".join(orjson.dumps({"id": f"t{i}", "text": t, "vex_version": "1.0.0"}) + b"\n"
                                    for i, t in enumerate(texts)))  # fmt: skip
        model = encoder.load(args.model)  # loading is timed by neither side
        # Warm-up, for both sides: the first pass over a corpus runs far slower (62-92 s here against 22-26 s
        # after), as the CPU kernels for each new batch shape are prepared once.
        model.encode(texts, batch_size=encoder.BATCH_SIZE, show_progress_bar=False)

        def vex_import(state: Path, name: str) -> tuple[float, dict[str, int]]:
            os.environ["VEX_STATE_DIR"] = str(state)
            target = StoreSpec(store="jsonl", options={"path": str(Path(tmp) / f"{name}.vmig.jsonl")})
            params = ImportParams(input=source, target=target, check_sidecar=False, model=args.model,
                                  reembed="always")  # fmt: skip
            started = time.perf_counter()
            summary = import_job(params, LocalRunner())
            return time.perf_counter() - started, dict(summary.reembedded)

        rows: dict[str, list[float]] = {}
        counts: dict[str, dict[str, int]] = {}
        for round_ in range(args.rounds):
            started = time.perf_counter()
            model.encode(texts, batch_size=encoder.BATCH_SIZE, convert_to_numpy=True, show_progress_bar=False)
            rows.setdefault("raw encode (floor)", []).append(time.perf_counter() - started)
            print(f"round {round_ + 1}: floor {rows['raw encode (floor)'][-1]:.1f} s", file=sys.stderr, flush=True)
            state = Path(tmp) / f"state-{round_}"
            for label, name in (("vex import, cold cache", "cold"), ("vex import, warm cache", "warm")):
                seconds, counts[label] = vex_import(state, f"{name}-{round_}")
                rows.setdefault(label, []).append(seconds)
                print(f"round {round_ + 1}: {label} {seconds:.1f} s", file=sys.stderr, flush=True)
            label = "vex import, warm, new process"
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "cli.main", "import", "--from", str(source), "--to", "jsonl", "--path",
                 str(Path(tmp) / f"proc-{round_}.vmig.jsonl"), "--model", args.model, "--reembed", "always",
                 "--no-verify", "--json"],
                cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, check=True,
            )  # fmt: skip
            rows.setdefault(label, []).append(time.perf_counter() - started)
            counts[label] = orjson.loads(done.stdout)["reembedded"]
    device = encoder.device()
    label = "GPU" if device == "cuda" else "CPU"
    cores = os.cpu_count()
    print(f"\nre-embedding {args.texts:,} texts with {args.model} on {label} ({device}, {cores} cores), "
          f"batch size {encoder.BATCH_SIZE}, {args.rounds} round(s), texts/s per round")  # fmt: skip
    floors = rows["raw encode (floor)"]
    table = [("path", "texts/s", "vs floor", "re-embedded")]
    for name, seconds in rows.items():
        rates = " / ".join(f"{args.texts / s:,.0f}" for s in seconds)
        ratios = " / ".join(f"{f / s:.2f}" for f, s in zip(floors, seconds, strict=True))
        table.append((name, rates, ratios, str(counts.get(name, ""))))
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    for row in table:
        print(f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}")


if __name__ == "__main__":
    main()
