"""What a pgvector run is given: its options, and the table each layout names."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr, model_validator

from connectors.base import StoreOptions
from vmig.errors import UsageError


class PgvectorOptions(StoreOptions):
    url: str
    """`postgresql://user@host:port/db` (a password in it is kept secret like --password)."""
    password: SecretStr | None = None
    """The database password, where the URL does not carry it."""
    table: str = "vex_memories"
    """`[SCHEMA.]TABLE` of the native layout, or LangChain v2's table_name."""
    layout: Literal["native", "langchain", "langchain-v2", "llamaindex"] = "native"
    """Table layout: vex's own, LangChain PGVector (v1, v2) or LlamaIndex PGVectorStore."""
    collection: str | None = None
    """LangChain collection name, or LlamaIndex `[schema_name.]table_name` (without `data_`)."""
    index: Literal["hnsw", "ivfflat", "none"] = "hnsw"
    """Vector index built after an import (hnsw and ivfflat take at most 2,000 dims: use none above)."""
    metric: Literal["cosine", "dot", "euclid"] | None = None
    """Distance the `--index` is built for; default: the source's where it has one of these, else cosine."""
    timeout: float = 300.0
    """Seconds one statement may wait on the server before the connection is dropped and retried."""
    id_column: str | None = None
    """Column of the ids in a table of your own (default: the layout's)."""
    vector_column: str | None = None
    """Column of the vectors (default: the layout's)."""
    text_column: str | None = None
    """Column of the text (default: the layout's)."""
    metadata_column: str | None = None
    """Column of the metadata (default: the layout's)."""
    namespace_column: str | None = None
    """Column that holds vex's namespace (default: `namespace` where the table has one)."""

    # LangChain's `HybridSearchConfig.tsv_lang` default; see `TableMap.search_columns`.
    tsv_config: str = "pg_catalog.english"
    """Text search configuration of the `tsvector` columns an import fills; searches must use the same one."""

    @model_validator(mode="after")
    def _v2_names_its_table(self) -> PgvectorOptions:
        if self.layout == "langchain-v2" and "table" not in self.model_fields_set:
            raise ValueError("--layout langchain-v2 needs --table NAME: the table_name given to PGVectorStore")
        return self


def table_name(opts: PgvectorOptions) -> tuple[str, ...]:
    """The table the options name, as `(table,)` or `(schema, table)`."""
    if opts.layout == "langchain":
        return ("langchain_pg_embedding",)
    if opts.layout == "llamaindex":
        return llamaindex_table(opts.collection)
    return split_name(opts.table)


def langchain_v2_columns(opts: PgvectorOptions) -> dict[str, str]:
    """PGVectorStore's column names (its `id_column`, `content_column`, `embedding_column`,
    `metadata_json_column` defaults), each replaced by the matching column option where given."""
    return {
        "id": opts.id_column or "langchain_id",
        "text": opts.text_column or "content",
        "vector": opts.vector_column or "embedding",
        "metadata": opts.metadata_column or "langchain_metadata",
    }


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def split_name(name: str) -> tuple[str, ...]:
    """`[SCHEMA.]NAME` read the way PostgreSQL reads a name: unquoted parts fold to lower case (ASCII
    letters, as the server folds them), double-quoted parts stay as written (`""` is a quote).

    So `--table MyDocs` finds the table `CREATE TABLE MyDocs` made (`mydocs`), as psql would, and
    `--table '"MyDocs"'` the one `CREATE TABLE "MyDocs"` made.
    """
    parts: list[str] = []
    position, end = 0, len(name)
    while True:
        if name.startswith('"', position):
            close = position
            while True:
                close = name.find('"', close + 1)
                if close < 0:
                    raise UsageError(f"pgvector --table {name}: a double quote is not closed")
                if not name.startswith('"', close + 1):
                    break
                close += 1
            part, position = name[position + 1 : close].replace('""', '"'), close + 1
        else:
            dot = name.find(".", position)
            dot = end if dot < 0 else dot
            part, position = name[position:dot].strip().translate(_ASCII_LOWER), dot
        parts.append(part)
        if position >= end:
            break
        if name[position] != ".":
            raise UsageError(f"pgvector --table {name}: expected a dot after a quoted name")
        position += 1
    if not 1 <= len(parts) <= 2 or not all(parts):
        raise UsageError(f"pgvector --table must be TABLE or SCHEMA.TABLE, got '{name}'")
    return tuple(parts)


def llamaindex_table(collection: str | None) -> tuple[str, ...]:
    """LlamaIndex's PGVectorStore table for `--collection [SCHEMA.]NAME`: `data_<name>`, both lowercased
    as PGVectorStore lowercases its `table_name` and `schema_name`."""
    schema, _, name = (collection or "llamaindex").rpartition(".")
    table = f"data_{name.lower()}"
    return (schema.lower(), table) if schema else (table,)
