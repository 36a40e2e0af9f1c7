"""Record ids in stores that key records by UUID: the same id maps to the same UUID in every one of them."""

from __future__ import annotations

import uuid

ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "vex-migrate/qdrant-ids")
"""UUIDv5 namespace of mapped ids: the same id maps to the same UUID in every store keyed by UUIDs."""


def uuid_for(record_id: str) -> uuid.UUID:
    """The UUID a store keyed by UUIDs keeps a record under: the id itself when it is one, else its UUIDv5.

    Where `str(uuid_for(id)) != id` the store must keep the original id beside the record.
    """
    try:
        return uuid.UUID(record_id)
    except ValueError:
        return uuid.uuid5(ID_NAMESPACE, record_id)
