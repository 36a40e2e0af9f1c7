"""A batch of records as the binary COPY fields of a mapped table's columns, a column at a time; the fields
a layout has no column for go into the metadata under `_vex`."""

from __future__ import annotations

import uuid

import pyarrow as pa

from connectors.ids import uuid_for
from connectors.pgvector import copy_codec
from connectors.pgvector.statements import COLUMNS_FIELD
from connectors.pgvector.tablemap import TEXT_TYPES, TableMap, integer_key
from vmig import metadata as md
from vmig import reserved
from vmig.batch import vector_matrix
from vmig.errors import StoreError, UsageError


def copy_fields(
    batch: pa.RecordBatch, mapping: TableMap, store: str
) -> tuple[list[tuple[str, copy_codec.Field]], tuple[str, ...]]:
    """(column, encoded values) in COPY order, built a column at a time, and the metadata keys of this
    batch that go to columns of their own (carried in the staging field `COLUMNS_FIELD`)."""
    count = batch.num_rows
    metadata = batch.column("metadata")
    to_columns: tuple[str, ...] = ()
    if mapping.column_keys:
        metadata, by_column, to_columns = _split_column_keys(metadata, mapping.column_keys)
    fields = [
        (mapping.id, _encode_id(mapping, batch.column("id"))),
        (mapping.vector, copy_codec.vector(vector_matrix(batch), half=mapping.half)),
    ]
    if mapping.text:
        texts = batch.column("text")
        if mapping.text in mapping.not_null:  # LlamaIndex's and LangChain's PGVectorStore's text columns
            texts = texts.fill_null("")
        fields.append((mapping.text, _encode_text(mapping, mapping.text, texts)))
    if mapping.metadata:
        if not mapping.native_extras:
            metadata = _metadata_with_reserved(batch, mapping, metadata, store)
        fields.append((mapping.metadata, _encode_json(mapping, mapping.metadata, metadata.fill_null("{}"))))
    if mapping.namespace:
        fields.append((mapping.namespace, _encode_text(mapping, mapping.namespace, batch.column("namespace"))))
    if mapping.native_extras:
        fields += [
            ("model", copy_codec.text(batch.column("model"))),
            ("created_at", copy_codec.timestamptz(batch.column("created_at"))),
            ("score", copy_codec.float8(batch.column("score"))),
            ("source_store", copy_codec.text(batch.column("source_store"))),
            ("extra", copy_codec.jsonb(batch.column("extra"))),
        ]
    if mapping.scope_column:
        fields.append((mapping.scope_column, copy_codec.uuid_constant(mapping.scope_value, count)))
    if mapping.row_key and mapping.fills_row_key:
        fields.append((mapping.row_key, _row_keys(mapping, batch.column("id"))))
    if mapping.column_keys:
        fields.append((COLUMNS_FIELD, copy_codec.jsonb(by_column)))
    return fields, to_columns


def row_uuid(scope: uuid.UUID, record_id: str) -> uuid.UUID:
    """The `uuid` key of a record's row in the legacy LangChain table: the UUIDv5 of its id in the namespace of
    its collection's uuid. Derived, not random, so a re-run writes the same keys; per collection, because the
    column is the primary key of a table every collection shares, and the same id in two collections (one
    collection copied into another) must not claim the same key, as `uuid_for(id)` would."""
    return uuid.uuid5(scope, record_id)


def _encode_text(mapping: TableMap, column: str, values: pa.Array) -> copy_codec.Field:
    kind = mapping.types.get(column, "text")
    if not kind.startswith(TEXT_TYPES):
        raise UsageError(
            f"pgvector column {column} is {kind}: vex writes ids to text or uuid columns, text and namespaces "
            "to text columns"
        )
    return copy_codec.text(values)


def _encode_id(mapping: TableMap, ids: pa.Array) -> copy_codec.Field:
    """Ids as text; in a uuid key column a UUID as itself and any other id as its UUIDv5; in an integer
    key column a whole number as itself (any other id cannot be stored). Where the key spells an id
    differently, the original is kept in the metadata under `_vex`, so there must be a metadata column."""
    width = mapping.integer_keys
    if not mapping.uuid_keys and width is None:
        return _encode_text(mapping, mapping.id, ids)
    record_ids = ids.to_pylist()
    if mapping.metadata is None:
        for record_id in record_ids:
            if mapping.keeps_original(record_id):
                raise UsageError(
                    f"pgvector table {'.'.join(mapping.table)} keys rows by the {mapping.types[mapping.id]} "
                    f"column {mapping.id} and has no metadata column to keep other ids in: id '{record_id}' "
                    "would not come back as it is (name one with --metadata-column)"
                )
    if width is not None:
        return copy_codec.integers([integer_key(record_id, width) for record_id in record_ids], width)
    return copy_codec.uuids([uuid_for(record_id) for record_id in record_ids])


def _encode_json(mapping: TableMap, column: str, values: pa.Array) -> copy_codec.Field:
    kind = mapping.types.get(column, "jsonb")
    if kind == "jsonb":
        return copy_codec.jsonb(values)
    if kind == "json":
        return copy_codec.text(values)  # binary `json` is the text itself
    raise UsageError(f"pgvector column {column} is {kind}: vex writes metadata to json or jsonb columns")


def _metadata_with_reserved(batch: pa.RecordBatch, mapping: TableMap, metadata: pa.Array, store: str) -> pa.Array:
    """Metadata with the fields this layout has no column for under `_vex` (`vmig.reserved`): always model,
    created_at, score, origin and extra; the namespace without a namespace column; an id the key spells
    differently."""
    names = ("id", "model", "created_at", "score", "source_store", "extra")
    fields = reserved.field_columns(batch, names if mapping.namespace else (*names, "namespace"), store)
    fields["id"] = [record_id if mapping.keeps_original(record_id) else None for record_id in fields["id"]]
    return pa.array(reserved.pack(metadata, fields), type=pa.string())


def _split_column_keys(metadata: pa.Array, keys: tuple[str, ...]) -> tuple[pa.Array, pa.Array, tuple[str, ...]]:
    """Metadata without the keys that have columns, those keys as JSON objects, and the keys the batch uses."""
    wanted = set(keys)
    rest: list[str | None] = []
    moved: list[str] = []
    used: set[str] = set()
    for text in metadata.to_pylist():
        meta = md.loads(text)
        own = {key: meta.pop(key) for key in wanted.intersection(meta)}
        used.update(own)
        rest.append(md.dumps(meta) if own else text)
        moved.append(md.dumps(own) or "{}")
    return pa.array(rest, pa.string()), pa.array(moved, pa.string()), tuple(k for k in keys if k in used)


def _row_keys(mapping: TableMap, ids: pa.Array) -> copy_codec.Field:
    """The row key column of a batch (see `TableMap.row_key`), derived from each id in the batch's scope."""
    if not isinstance(mapping.scope_value, uuid.UUID):
        raise StoreError(f"pgvector table {'.'.join(mapping.table)}: rows keyed by uuid need a collection")
    return copy_codec.uuids([row_uuid(mapping.scope_value, record_id) for record_id in ids.to_pylist()])
