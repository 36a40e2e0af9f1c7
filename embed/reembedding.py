"""The re-embed step's work on a batch: which records get vectors of the target's model, and those vectors.

`auto` re-embeds a record whose `model` is not the target model or whose vector is not of that model's
dimension; `always` every record; `never` none. A record that needs it and has no text is skipped with that
reason (an adapter, which maps vectors without text, is a later step). Texts go through the embedding cache
first, so a resumed or repeated run encodes only what it has not seen.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from embed import encoder
from embed.adapter import Adapter
from embed.adapter import load as load_adapter
from embed.cache import EmbeddingCache
from embed.models import canonical
from embed.plan import SKIP_NO_TEXT, Mode, Reembedded, ReembedPlan
from vmig.batch import vector_array

_CACHES: dict[int, EmbeddingCache] = {}


def reembed_batch(batch: pa.RecordBatch, plan: ReembedPlan | None) -> Reembedded:
    if plan is None or plan.mode == "never" or batch.num_rows == 0:
        return Reembedded(batch)
    adapter = _adapter(plan.adapter) if plan.adapter is not None else None
    if plan.model is None:
        assert adapter is not None
        return _adapted_only(batch, adapter)
    name = canonical(plan.model)
    size = encoder.dimension(plan.model)
    need = _needs(batch, name, size, plan.mode)
    has_text = pc.is_valid(batch.column("text")).to_numpy(zero_copy_only=False)
    mappable = _of_source(batch, adapter) if adapter is not None else np.zeros(batch.num_rows, dtype=bool)
    adapt = need & ~has_text & mappable
    lost = need & ~has_text & ~mappable
    skipped = Counter({SKIP_NO_TEXT: int(np.sum(lost))}) if np.any(lost) else Counter()
    rows = np.flatnonzero(need & has_text)
    if not len(rows) and not skipped and not np.any(adapt):
        return Reembedded(batch)
    texts = batch.column("text").take(pa.array(rows)).to_pylist()
    vectors, cached = _vectors(plan, texts, size)
    out = _with_vectors(batch, rows, vectors, name)
    counts = {"encoded": len(rows) - cached} if len(rows) - cached else {}
    if cached:
        counts["from the cache"] = cached
    if adapter is not None and np.any(adapt):
        out = _with_vectors(out, np.flatnonzero(adapt), adapter.apply(_matrix(batch, adapt)), name)
        counts["adapted (no text)"] = int(np.sum(adapt))
    if skipped:
        out = out.filter(pa.array(~lost))
    return Reembedded(out, skipped, counts, adapter.quality if adapter is not None else None)


def _adapted_only(batch: pa.RecordBatch, adapter: Adapter) -> Reembedded:
    """`--adapter` without `--model`: every record of the adapter's source model is mapped."""
    rows = _of_source(batch, adapter)
    if not np.any(rows):
        return Reembedded(batch, quality=adapter.quality)
    mapped = adapter.apply(_matrix(batch, rows))
    out = _with_vectors(batch, np.flatnonzero(rows), mapped, adapter.target_model)
    return Reembedded(out, Counter(), {"adapted": int(np.sum(rows))}, adapter.quality)


def _of_source(batch: pa.RecordBatch, adapter: Adapter) -> np.ndarray:
    """Records the adapter can map: vectors of its source dimension, of its source model (or of no stated one)."""
    dims = pc.fill_null(pc.equal(batch.column("dims"), pa.scalar(adapter.source_dims, pa.int32())), False)
    model = pc.fill_null(pc.equal(batch.column("model"), pa.scalar(adapter.source_model)), True)
    return np.asarray(pc.and_(dims, model).to_numpy(zero_copy_only=False), dtype=bool)


def _matrix(batch: pa.RecordBatch, rows: np.ndarray) -> np.ndarray:
    vectors = batch.column("vector").filter(pa.array(rows))
    return np.asarray(vectors.flatten().to_numpy(zero_copy_only=False), dtype=np.float32).reshape(len(vectors), -1)


_ADAPTERS: dict[str, Adapter] = {}


def _adapter(path: str) -> Adapter:
    if path not in _ADAPTERS:
        _ADAPTERS[path] = load_adapter(Path(path))
    return _ADAPTERS[path]


def _needs(batch: pa.RecordBatch, name: str, size: int, mode: Mode) -> np.ndarray:
    if mode == "always":
        return np.ones(batch.num_rows, dtype=bool)
    models = batch.column("model")
    other_model = pc.fill_null(pc.not_equal(models, pa.scalar(name)), True)
    other_dims = pc.fill_null(pc.not_equal(batch.column("dims"), pa.scalar(size, pa.int32())), True)
    return np.asarray(pc.or_(other_model, other_dims).to_numpy(zero_copy_only=False), dtype=bool)


def _vectors(plan: ReembedPlan, texts: list[str], size: int) -> tuple[np.ndarray, int]:
    """Each text's vector, from the cache where it has one; and how many came from there."""
    assert plan.model is not None
    if not texts:
        return np.zeros((0, size), dtype=np.float32), 0
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
