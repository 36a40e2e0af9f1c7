"""PostgreSQL with pgvector (see `connectors.pgvector.connector`)."""

from connectors.pgvector.connector import PgvectorConnector, PgvectorOptions

__all__ = ["PgvectorConnector", "PgvectorOptions"]
