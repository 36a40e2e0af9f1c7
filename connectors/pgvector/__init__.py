"""PostgreSQL with pgvector: binary COPY imports, streaming exports, the table layouts people have.

Layouts (`--layout`):
- `native` (default): the table vex creates, `id text primary key, embedding vector(d) not null,
  text, metadata jsonb, namespace, model, created_at timestamptz, score, source_store, extra jsonb`.
- `langchain`: LangChain's PGVector store, `langchain_pg_embedding` joined to
  `langchain_pg_collection` (the collection is `--collection NAME`). Both tables LangChain has made are
  read and written, told apart by their columns: langchain-postgres' (`id` primary key) and
  langchain_community's older one (`uuid` primary key, the user's id in `custom_id`, which is neither
  unique nor NOT NULL: its rows are paged by `uuid` and replaced by delete-then-insert, see `TableMap.row_key`).
- `langchain-v2`: a table of langchain-postgres' `PGVectorStore` (`--table NAME`): `langchain_id` uuid key,
  `content`, `embedding`, `langchain_metadata` (the column options rename any of them); created with
  that DDL where missing.
- `llamaindex`: LlamaIndex's PGVectorStore table `data_<name>` (`--collection [SCHEMA.]NAME`, the
  `schema_name`/`table_name` PGVectorStore was given), keyed by `node_id`.
- any other table through `--id-column`, `--vector-column`, `--text-column`, `--metadata-column`,
  `--namespace-column`.

Where a layout has no column for namespace, model, created_at, score, origin or unknown
format keys, they travel in the metadata JSON under the reserved key `_vex`, so a trip
through any layout loses nothing; there a user's own key that starts with `_vex` is stored
as `_vex_user:<key>` and comes back as it was (the native table, with a column for every
field, keeps metadata exactly as given). A load is one transaction per batch: binary COPY into
a temporary staging table, then `INSERT ... ON CONFLICT (id) DO UPDATE`, so a re-run never
duplicates and a failed batch leaves no partial rows. The vector index is built after the
load. `halfvec` columns are read and written as such. An export reads the table as of one
moment, whatever others write meanwhile (see `snapshot`). The password never appears in a
message: give it in the URL, with `--password`, or as PGPASSWORD.

Modules, one concern each:
- `connector`: the connector protocol, each step handed to the modules below;
- `options`: the options, and the table each layout names;
- `tablemap`: where each field of a record lives in a table (`TableMap`), and how ids are keyed;
- `catalog`: the table's columns, keys and vector size read from the server into a `TableMap`;
- `session`: the connection, the statement watchdog, errors sorted into retried and permanent;
- `snapshot`: the one moment every page of an export reads;
- `statements`: SQL built over a `TableMap`, shared by reading, writing and the catalog;
- `read` and `decode`: export pages as binary COPY, and their rows as batches;
- `encode` and `write`: batches as binary COPY fields, and the load paths (COPY, upsert, delete-then-insert);
- `target`: the extension, the table where missing, the vector index after the load;
- `copy_codec`: PostgreSQL's binary COPY format, a column at a time.
"""

from connectors.pgvector.connector import PgvectorConnector
from connectors.pgvector.options import PgvectorOptions

__all__ = ["PgvectorConnector", "PgvectorOptions"]
