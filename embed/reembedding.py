"""The re-embed step's work on a batch: which records get vectors of the target's model, and those vectors.

`auto` re-embeds a record whose `model` is not the target model or whose vector is not of that model's
dimension; `always` every record; `never` none. A record that needs it and has no text is skipped with that
reason (an adapter, which maps vectors without text, is a later step). Texts go through the embedding cache
first, so a resumed or repeated run encodes only what it has not seen.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from embed import encoder
from embed.cache import EmbeddingCache
from embed.models import canonical
from embed.plan import SKIP_NO_TEXT, Mode, Reembedded, ReembedPlan
from vmig.batch import vector_array

_CACHES: dict[int, EmbeddingCache] = {}


def reembed_batch(batch: pa.RecordBatch, plan: ReembedPlan | None) -> Reembedded:
    if plan is None or plan.mode == "never" or batch.num_rows == 0:
        return Reembedded(batch)
    name = canonical(plan.model)
    size = encoder.dimension(plan.model)
    need = _needs(batch, name, size, plan.mode)
    has_text = pc.is_valid(batch.column("text")).to_numpy(zero_copy_only=False)
    skipped = Counter({SKIP_NO_TEXT: int(np.sum(need & ~has_text))}) if np.any(need & ~has_text) else Counter()
    rows = np.flatnonzero(need & has_text)
    if not len(rows) and not skipped:
        return Reembedded(batch)
    texts = batch.column("text").take(pa.array(rows)).to_pylist()
    vectors, cached = _vectors(plan, texts, size)
    out = _with_vectors(batch, rows, vectors, name)
    if skipped:
        out = out.filter(pa.array(~(need & ~has_text)))
    counts = {"encoded": len(rows) - cached} if len(rows) - cached else {}
    if cached:
        counts["from the cache"] = cached
    return Reembedded(out, skipped, counts)


def _needs(batch: pa.RecordBatch, name: str, size: int, mode: Mode) -> np.ndarray:
    if mode == "always":
        return np.ones(batch.num_rows, dtype=bool)
    models = batch.column("model")
    other_model = pc.fill_null(pc.not_equal(models, pa.scalar(name)), True)
    other_dims = pc.fill_null(pc.not_equal(batch.column("dims"), pa.scalar(size, pa.int32())), True)
    return np.asarray(pc.or_(other_model, other_dims).to_numpy(zero_copy_only=False), dtype=bool)


def _vectors(plan: ReembedPlan, texts: list[str], size: int) -> tuple[np.ndarray, int]:
    """Each text's vector, from the cache where it has one; and how many came from there."""
    cache = _CACHES.get(plan.cache_mb)
    if cache is None:
        cache = _CACHES[plan.cache_mb] = EmbeddingCache(limit_mb=plan.cache_mb)
    name = canonical(plan.model)
    digests = [EmbeddingCache.digest(text) for text in texts]
    found = cache.get(name, list(set(digests)))
    missing = sorted({d: i for i, d in enumerate(digests) if d not in found}.items(), key=lambda kv: kv[1])
    if missing:
        fresh = encoder.encode(plan.model, [texts[i] for _, i in missing])
        cache.put(name, [d for d, _ in missing], fresh)
        found.update((d, fresh[j]) for j, (d, _) in enumerate(missing))
    matrix = np.empty((len(texts), size), dtype=np.float32)
    for row, digest in enumerate(digests):
        matrix[row] = found[digest]
    encoded = {digest for digest, _ in missing}
    cached = sum(1 for digest in digests if digest not in encoded)
    return matrix, cached


def _with_vectors(batch: pa.RecordBatch, rows: np.ndarray, vectors: np.ndarray, name: str) -> pa.RecordBatch:
    if len(rows) == batch.num_rows:
        column = vector_array(vectors, batch.num_rows)
        models = pa.array([name] * batch.num_rows, pa.string())
    else:
        existing = batch.column("vector").to_pylist()
        labels = batch.column("model").to_pylist()
        for j, row in enumerate(rows):
            existing[row] = vectors[j]
            labels[row] = name
        column = vector_array(existing, batch.num_rows)
        models = pa.array(labels, pa.string())
    dims = pc.list_value_length(column).cast(pa.int32())
    schema = batch.schema
    batch = batch.set_column(schema.get_field_index("vector"), schema.field("vector"), column)
    batch = batch.set_column(schema.get_field_index("dims"), schema.field("dims"), dims)
    return batch.set_column(schema.get_field_index("model"), schema.field("model"), models)
