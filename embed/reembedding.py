"""The re-embed step's work on a batch: which records get vectors of the target's model, and those vectors.

`auto` re-embeds a record whose `model` is not the target model or whose vector is not of that model's
dimension; `always` every record; `never` none. A record that needs it and has no text (null, or only
whitespace) is mapped by the drift adapter where one is given and it is of the adapter's source model, else
skipped with that reason. Texts go through the embedding cache first, so a resumed or repeated run encodes only
what it has not seen. Columns throughout: the batch's vectors are never turned into Python lists.
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
from embed.cache import EmbeddingCache, default_path
from embed.models import canonical
from embed.plan import SKIP_NO_TEXT, Mode, Reembedded, ReembedPlan

_CACHES: dict[tuple[Path, int], EmbeddingCache] = {}
_LIST = pa.list_(pa.float32())


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
    has_text = _has_text(batch.column("text"))
    mappable = _of_source(batch, adapter) if adapter is not None else np.zeros(batch.num_rows, dtype=bool)
    adapt = need & ~has_text & mappable
    rows = np.flatnonzero(need & has_text)
    keep, skipped = _without_text(need & ~has_text & ~mappable)
    if not len(rows) and not skipped and not np.any(adapt):
        return Reembedded(batch)
    out, counts = batch, {}
    if len(rows):
        texts = batch.column("text").take(pa.array(rows)).to_pylist()
        vectors, cached = _vectors(plan, texts, size)
        out = _with_vectors(batch, rows, vectors, name)
        if len(rows) - cached:
            counts["encoded"] = len(rows) - cached
        if cached:
            counts["from the cache"] = cached
    if adapter is not None and np.any(adapt):
        out = _with_vectors(out, np.flatnonzero(adapt), adapter.apply(_matrix(batch, adapt)), name)
        counts["adapted (no text)"] = int(np.sum(adapt))
    if keep is not None:
        out = out.filter(pa.array(keep))
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


def _has_text(text: pa.Array) -> np.ndarray:
    present = pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0)
    return np.asarray(pc.fill_null(present, False).to_numpy(zero_copy_only=False), dtype=bool)


def _without_text(rows: np.ndarray) -> tuple[np.ndarray | None, Counter[str]]:
    """Rows that need new vectors, have no text and no adapter that maps them: skipped with the reason. The rows
    to keep (None: all) and the skip count."""
    count = int(rows.sum())
    if not count:
        return None, Counter()
    return ~rows, Counter({SKIP_NO_TEXT: count})


def _vectors(plan: ReembedPlan, texts: list[str], size: int) -> tuple[np.ndarray, int]:
    """Each text's vector, from the cache where it has one (a text twice in a batch is encoded once); and how
    many came from the cache."""
    assert plan.model is not None
    if not texts:
        return np.zeros((0, size), dtype=np.float32), 0
    key = (default_path(), plan.cache_mb)  # the state directory as it is now (tests and benchmarks change it)
    cache = _CACHES.get(key)
    if cache is None:
        cache = _CACHES[key] = EmbeddingCache(key[0], plan.cache_mb)
    name = canonical(plan.model)
    digests = [EmbeddingCache.digest(text) for text in texts]
    first: dict[bytes, int] = {}
    for row, digest in enumerate(digests):
        first.setdefault(digest, row)
    found = cache.get(name, list(first))
    missing = [digest for digest in first if digest not in found]
    if missing:
        fresh = encoder.encode(plan.model, [texts[first[digest]] for digest in missing])
        cache.put(name, missing, fresh)
        found.update(zip(missing, fresh, strict=True))
    unique = list(first)
    table = np.stack([found[digest] for digest in unique]) if unique else np.zeros((0, size), np.float32)
    position = {digest: i for i, digest in enumerate(unique)}
    matrix = table[np.fromiter((position[d] for d in digests), dtype=np.int64, count=len(digests))]
    fresh_set = set(missing)
    cached = sum(1 for digest in digests if digest not in fresh_set)
    return np.asarray(matrix, dtype=np.float32), cached


def _with_vectors(batch: pa.RecordBatch, rows: np.ndarray, vectors: np.ndarray, name: str) -> pa.RecordBatch:
    """The batch with these rows' vectors replaced, their `model` set to the target's and `dims` recomputed."""
    n = batch.num_rows
    chosen = np.zeros(n, dtype=bool)
    chosen[rows] = True
    lengths = np.where(chosen, vectors.shape[1], 0)
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    fresh = pa.ListArray.from_arrays(offsets, pa.array(vectors.reshape(-1)), mask=pa.array(~chosen))
    mask = pa.array(chosen)
    column = fresh if chosen.all() else pc.if_else(mask, fresh, batch.column("vector").cast(_LIST))
    models = pc.if_else(mask, pa.scalar(name, pa.string()), batch.column("model"))
    dims = pc.list_value_length(column).cast(pa.int32())
    schema = batch.schema
    for field, values in (("vector", column), ("dims", dims), ("model", models)):
        index = schema.get_field_index(field)
        batch = batch.set_column(index, schema.field(field).with_type(values.type), values)
    return batch
