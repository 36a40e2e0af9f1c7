"""`vex adapter fit`: a drift adapter learned from paired embeddings of the same texts, with its quality."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import orjson

from vmig.errors import EXIT_OK, UsageError


def fit_command(args: argparse.Namespace) -> int:
    from embed import encoder
    from embed.adapter import fit
    from embed.models import canonical

    texts = _texts(args.source, args.sample)
    if len(texts) < 20:
        raise UsageError(f"{args.source} has {len(texts)} distinct texts: an adapter needs at least 20")
    source = encoder.encode(args.source_model, texts)
    target = encoder.encode(args.target_model, texts)
    adapter = fit(source, target, canonical(args.source_model), canonical(args.target_model))
    output = Path(args.output)
    partial = output.with_name(output.name + ".partial")
    adapter.save(partial)
    os.replace(partial, output)  # never a half-written adapter under its name
    if args.json:
        sys.stdout.write(orjson.dumps({"output": str(output), **adapter.header()}).decode() + "\n")
        return EXIT_OK
    quality = adapter.quality
    print(f"{output}: {adapter.source_model} ({adapter.source_dims}-d) -> {adapter.target_model} "
          f"({adapter.target_dims}-d), {adapter.kind}, fitted on {adapter.sample} texts")  # fmt: skip
    print(f"held out {quality['held_out']:.0f} texts: mean cosine {quality['mean_cosine']:.3f}, recall@10 "
          f"{quality['recall_at_10']:.3f}, neighbour overlap@10 {quality['neighbour_overlap_at_10']:.3f}")  # fmt: skip
    return EXIT_OK


def _texts(source: str, sample: int) -> list[str]:
    """Distinct texts: the built-in corpus (`corpus`), or the records of a `.vmig.jsonl` file."""
    if source == "corpus":
        from embed.corpus import sentences

        return sentences(sample)
    path = Path(source)
    if not path.exists():
        raise UsageError(f"file not found: {path} (or --from corpus for the built-in sentences)")
    from vmig.reader import read_batches

    seen: dict[str, None] = {}
    for read in read_batches(path):
        for text in read.batch.column("text").to_pylist():
            if text:
                seen[text] = None
                if len(seen) >= sample:
                    return list(seen)
    return list(seen)
