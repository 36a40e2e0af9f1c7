"""Store names to connector classes, imported on first use.

Like fsspec's registry: a name maps to a dotted path, the module is imported
only when that store is used, and a missing client library surfaces as an
error naming the pip extra. Third parties register connectors through the
`vex.connectors` entry-point group.
"""

from __future__ import annotations

import importlib
import importlib.util
from importlib.metadata import entry_points

from connectors.base import Connector
from vmig.errors import UsageError

ENTRY_POINT_GROUP = "vex.connectors"

BUILTIN: dict[str, str] = {
    "vektor": "connectors.vektor:VektorConnector",
    "jsonl": "connectors.jsonl:JsonlConnector",
    "qdrant": "connectors.qdrant:QdrantConnector",
    "chroma": "connectors.chroma:ChromaConnector",
    "pgvector": "connectors.pgvector:PgvectorConnector",
    "pinecone": "connectors.pinecone:PineconeConnector",
    "weaviate": "connectors.weaviate:WeaviateConnector",
    "milvus": "connectors.milvus:MilvusConnector",
    "lancedb": "connectors.lancedb:LanceDBConnector",
}


def _targets() -> dict[str, str]:
    found = dict(BUILTIN)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry.name, entry.value)
    return found


def available() -> list[str]:
    """Names of every store that has a module (built in or registered)."""
    names = []
    for name, target in _targets().items():
        module = target.split(":")[0]
        if importlib.util.find_spec(module) is not None:
            names.append(name)
    return sorted(names)


def get_connector(name: str) -> type[Connector]:
    """The connector class of a store name; unknown names are a usage error."""
    targets = _targets()
    target = targets.get(name.lower())
    if target is None or importlib.util.find_spec(target.split(":")[0]) is None:
        raise UsageError(f"unknown store '{name}'; known stores: {', '.join(available())}")
    module_name, _, class_name = target.partition(":")
    module = importlib.import_module(module_name)
    cls = getattr(module, class_name)
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise UsageError(f"'{target}' registered for store '{name}' is not a vex connector")
    return cls
