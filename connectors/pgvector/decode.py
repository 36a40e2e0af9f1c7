"""The rows of a binary `COPY ... TO STDOUT` page as a canonical batch: columns cut out of the messages
with numpy (`copy_codec`), metadata parsed a row at a time only where `_vex` keys may be in it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from connectors.pgvector import copy_codec
from vmig import metadata as md
from vmig import reserved
from vmig.batch import build_batch
from vmig.rejects import Reject


@dataclass(frozen=True)
class PageLayout:
    """What decoding a page needs to know of the table."""

    native_extras: bool
    column_keys: bool
    """A sixth field holds the other columns as a JSON object: metadata keys, over the metadata's own."""
    namespace_column: bool
    half: bool
    store: str
    page_key: bool = False
    """A last field holds the key pages are read by (`TableMap.row_key`), for the cursor only."""

    @property
    def fields(self) -> int:
        """Fields a row of the page has."""
        count = 10 if self.native_extras else 6 if self.column_keys else 5
        return count + 1 if self.page_key else count


def decode_page(messages: list[bytes], layout: PageLayout) -> tuple[pa.RecordBatch, list[Reject]]:
    """Binary COPY rows to a canonical batch, less the rows whose JSON holds an integer beyond 64 bits: they
    are rejects naming the number (jsonb keeps every digit; read into vex, the number would change)."""
    fields = copy_codec.split_rows(messages, layout.fields)
    batch = _page_batch(fields, layout)
    json_fields = (3, 9) if layout.native_extras else (3, 5) if layout.column_keys else (3,)
    wide: dict[int, int] = {}
    for column in json_fields:
        wide.update(md.wide_integer_rows(copy_codec.read_text(fields, column)))
    if not wide:
        return batch, []
    keep = np.ones(batch.num_rows, dtype=bool)
    keep[list(wide)] = False
    ids = batch.column("id").to_pylist()
    rejects = [
        Reject(None, f"pgvector row {ids[row]}: {md.WideIntegerError(number)}", b"", id=ids[row])
        for row, number in sorted(wide.items())
    ]
    return batch.filter(pa.array(keep)), rejects


def _rows_to_parse(metas: pa.Array, reserved: bool) -> tuple[pa.Array, list[int]]:
    """Metadata texts (null as `{}`) and the rows that need parsing: those that are not a JSON object, and
    in a layout that keeps vex's fields under `_vex` (`reserved`) those that may hold a key starting with
    `_vex` (vex's own, or a user's escaped one). The rest go through as the server wrote them, no step per
    row: in a table vex did not write, or wrote with a column for every field, that is every row."""
    texts = metas.fill_null("{}")
    maybe = pc.invert(pc.starts_with(texts, "{"))
    if reserved:
        maybe = pc.or_(maybe, pa.array(md.may_need_escape(texts)))
    return texts, pc.indices_nonzero(maybe).to_pylist()


def _page_batch(fields: copy_codec.Fields, layout: PageLayout) -> pa.RecordBatch:
    """Binary COPY rows (id, vector, text, metadata, namespace[, the native extras][, the page key, left out])
    to a canonical batch: columns cut out with numpy, metadata a step per row only where `_vex` may be in it."""
    vectors = copy_codec.read_vectors(fields, 1, half=layout.half)
    # A native table has a column for every field: its metadata is the user's keys only, `_vex...` ones too.
    texts, parse = _rows_to_parse(copy_codec.read_text(fields, 3), reserved=not layout.native_extras)
    if layout.native_extras:
        metadata: pa.Array | list[str | None] = texts
        if parse:
            metadata = texts.to_pylist()
            for i in parse:
                metadata[i] = md.dumps(md.loads(metadata[i])) or "{}"
        extras = copy_codec.read_text(fields, 9).to_pylist()
        sources = copy_codec.read_text(fields, 8).fill_null(layout.store)
        return build_batch(
            copy_codec.read_text(fields, 0),
            vectors=vectors,
            text=copy_codec.read_text(fields, 2),
            model=copy_codec.read_text(fields, 5),
            namespace=copy_codec.read_text(fields, 4),
            metadata=metadata,
            created_at=copy_codec.read_timestamptz(fields, 6),
            score=copy_codec.read_float8(fields, 7),
            source_store=pc.if_else(pc.equal(sources, ""), layout.store, sources),
            extra=[md.dumps(value) if text and (value := orjson.loads(text)) else None for text in extras],
        )
    rows = len(texts)
    ids: pa.Array | list[str] = copy_codec.read_text(fields, 0)
    namespaces = copy_codec.read_text(fields, 4).to_pylist()
    meta_texts: list[str | None] = texts.to_pylist()
    models: list[str | None] = [None] * rows
    created: list[Any] = [None] * rows
    scores: list[float | None] = [None] * rows
    sources_list: list[str | None] = [layout.store] * rows
    extra_texts: list[str | None] = [None] * rows
    if not layout.namespace_column:
        namespaces = [None] * rows
    from_columns = copy_codec.read_text(fields, 5).to_pylist() if layout.column_keys else None
    for i in range(rows) if from_columns is not None else parse:
        meta, kept = reserved.unpack(md.loads(meta_texts[i]), reserved.KINDS)
        if from_columns is not None:  # a NULL column is a key the record does not have
            meta.update((key, value) for key, value in md.loads(from_columns[i]).items() if value is not None)
        meta_texts[i] = md.dumps(meta)
        if isinstance(kept.get("id"), str):  # a key vex mapped to a UUID: the record's own id
            ids = ids if isinstance(ids, list) else ids.to_pylist()
            ids[i] = kept["id"]
        if not layout.namespace_column:
            namespaces[i] = kept.get("namespace")
        models[i] = kept.get("model")
        created[i] = kept.get("created_at")
        scores[i] = kept.get("score")
        sources_list[i] = kept.get("source_store", layout.store)
        extra = kept.get("extra")
        extra_texts[i] = md.dumps(extra) if extra else None
    return build_batch(
        ids, vectors=vectors, text=copy_codec.read_text(fields, 2), model=models,
        namespace=namespaces, metadata=meta_texts, created_at=created, score=scores, source_store=sources_list,
        extra=extra_texts,
    )  # fmt: skip
