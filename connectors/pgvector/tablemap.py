"""Where each field of a record lives in a table (`TableMap`), and how a record id is spelled in its key column."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from connectors.ids import uuid_for
from vmig.errors import StoreError

TEXT_TYPES = ("text", "character", "varchar", "name", "citext")
INTEGER_WIDTHS = {"smallint": 2, "integer": 4, "bigint": 8}
OPCLASS = {"cosine": "cosine_ops", "dot": "ip_ops", "euclid": "l2_ops"}
"""pgvector's operator class suffix for each metric."""

NATIVE_EXTRAS = ("namespace", "model", "created_at", "score", "source_store", "extra")
"""vex's own columns beyond id, embedding, text and metadata, in the native table."""


def integer_key(record_id: str, width: int) -> int:
    """A record id as the whole number an integer key column of `width` bytes holds, or a StoreError:
    that record cannot be stored in this table (the others can)."""
    text = record_id.strip()
    digits = text[1:] if text[:1] in "+-" else text
    if digits.isascii() and digits.isdigit():
        number = int(text)
        if -(2 ** (8 * width - 1)) <= number < 2 ** (8 * width - 1):
            return number
    raise StoreError(f"id '{record_id}' is not a whole number the table's {8 * width}-bit integer key can hold")


@dataclass
class TableMap:
    """Where each field of a record lives in a table, and how rows are scoped and keyed."""

    table: tuple[str, ...]
    id: str
    vector: str
    text: str | None
    metadata: str | None
    namespace: str | None = None
    native_extras: bool = False
    """The table has vex's own model/created_at/score/source_store/extra columns."""
    scope_column: str | None = None
    scope_value: Any = None
    key_unique: bool = True
    """`id` has a unique constraint: ON CONFLICT upserts; otherwise delete-then-insert."""
    row_key: str | None = None
    """A unique column keying the rows where `id` does not, because the table lets ids be NULL or repeated:
    the legacy LangChain table's `uuid` (the user's id in `custom_id`), LlamaIndex's `id` (its `node_id`).
    Export pages by it (paging by the id would skip rows: a repeated id at a page boundary, NULL ids
    after the first page) and takes it as the id of a row whose id is NULL."""
    fills_row_key: bool = False
    """Import fills the row key (`encode.row_uuid`: LangChain's `uuid` has no server default); else the server
    does (LlamaIndex's `id` is a BIGSERIAL)."""
    types: dict[str, str] = field(default_factory=dict)
    """Column name -> formatted type, as the catalog gives it."""
    not_null: frozenset[str] = frozenset()
    search_columns: tuple[str, ...] = ()
    """NOT NULL `tsvector` columns with no default (LangChain PGVectorStore's hybrid search `<content>_tsv`):
    the table cannot take a row without them, so an import fills them from the text, as LangChain does."""
    column_keys: tuple[str, ...] = ()
    """Columns no field maps to (LangChain PGVectorStore's `metadata_columns`, anything a user added):
    their values travel as metadata keys, and go back to their columns on import."""
    vector_type: str = "vector"
    """The vector column's type: `vector`, or `halfvec` (read and written as such)."""

    @property
    def half(self) -> bool:
        return self.vector_type == "halfvec"

    @property
    def page_key(self) -> str:
        """The column export pages by: a unique one, so each row comes out once whatever the ids are."""
        return self.row_key or self.id

    @property
    def uuid_keys(self) -> bool:
        """Rows keyed by a `uuid` column (LangChain's PGVectorStore): other ids are mapped, and kept under `_vex`."""
        return self.types.get(self.id) == "uuid"

    @property
    def integer_keys(self) -> int | None:
        """The byte width of an integer key column, None for any other."""
        return INTEGER_WIDTHS.get(self.types.get(self.id, ""))

    def stored_key(self, record_id: str) -> uuid.UUID | int | str:
        """What the key column holds for a record id (integer keys: see `integer_key`)."""
        if self.uuid_keys:
            return uuid_for(record_id)
        width = self.integer_keys
        return record_id if width is None else integer_key(record_id, width)

    def keeps_original(self, record_id: str) -> bool:
        """The key column holds the id in another spelling: the id itself goes under `_vex`."""
        return (self.uuid_keys or self.integer_keys is not None) and str(self.stored_key(record_id)) != record_id
