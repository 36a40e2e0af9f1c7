"""`vex adapter fit`: a drift adapter learned from paired embeddings of the same texts, with its quality."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import orjson

from engine.chunks import ChunkReader
from engine.params import StoreSpec, open_store
from vmig.errors import EXIT_OK, UsageError


def fit_command(args: argparse.Namespace, extra: list[str] | None = None) -> int:
    from embed import encoder
    from embed.adapter import fit
    from embed.models import canonical

    texts = _texts(args.source, args.sample, extra or [])
    if len(texts) < 20:
        raise UsageError(f"{args.source} has {len(texts)} distinct texts: an adapter needs at least 20")
    source = encoder.encode(args.source_model, texts)
    target = encoder.encode(args.target_model, texts)
    adapter = fit(source, target, canonical(args.source_model), canonical(args.target_model), args.mlp)
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
    for kind, measured in (adapter.compared or {}).items():
        print(f"  {kind}: mean cosine {measured['mean_cosine']:.3f}, recall@10 {measured['recall_at_10']:.3f}")
    return EXIT_OK


def _texts(source: str, sample: int, store_options: list[str]) -> list[str]:
    """Distinct texts: the built-in corpus (`corpus`), the records of a store (with its options), or of a
    `.vmig.jsonl` file."""
    if source == "corpus":
        from embed.corpus import sentences

        return sentences(sample)
    from engine.stores import store_names

    if source in store_names():
        from engine.arguments import parse_pairs, single_side

        spec = single_side(source, parse_pairs(store_options))
    else:
        path = Path(source)
        if not path.exists():
            raise UsageError(f"file not found: {path} (or --from corpus, or --from STORE with its options)")
        spec = StoreSpec(store="jsonl", options={"path": path})
    seen: dict[str, None] = {}
    with open_store(spec) as store:
        reader = ChunkReader(store, None, None)
        try:
            for batch in reader.batches(max(sample, 1000)):
                for text in batch.column("text").to_pylist():
                    if text and text.strip():
                        seen[text] = None
                        if len(seen) >= sample:
                            return list(seen)
        finally:
            reader.close()
    return list(seen)
