"""What `vex stores` says of each store, read from the connectors' own declarations.

Nothing here is written by hand per store: the capabilities, the client library and the
options model of each connector are the source, so the listing cannot drift from what a
run accepts.
"""

from __future__ import annotations

import inspect
import sys
import types
import typing
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic.fields import FieldInfo

from connectors.base import Connector
from connectors.registry import BUILTIN, available, get_connector


@dataclass(frozen=True)
class OptionHelp:
    flag: str
    value: str | None
    """What the flag takes ("PATH", "cosine|dot|euclid"); None for an on/off flag."""
    default: str | None
    required: bool
    secret: bool
    description: str


@dataclass(frozen=True)
class StoreEntry:
    name: str
    summary: str
    installed: bool
    client: str | None
    """The client library and its installed version ("qdrant-client 1.17.1"); None when vex needs no other."""
    install: str | None
    """The pip command that makes the store usable; None when it already is."""
    can_export: bool
    can_import: bool
    embedded: bool
    namespaces: str
    sparse_vectors: bool
    metrics: tuple[str, ...]
    max_dims: int | None
    max_dims_indexed: int | None
    options: tuple[OptionHelp, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def store_names() -> list[str]:
    """Built-in stores first, in their usual order, then any registered through the entry-point group."""
    names = list(BUILTIN)
    return names + [name for name in available() if name not in names]


def store_entry(name: str) -> StoreEntry:
    """One store's entry; an unknown name is the usual usage error listing the known ones."""
    cls = get_connector(name)
    caps = cls.capabilities
    library = cls.client_library
    installed = library is None or library.installed()
    return StoreEntry(
        name=cls.name,
        summary=_summary(cls),
        installed=installed,
        client=None if library is None else _client_text(library.package, installed),
        install=None if installed or library is None else library.install_command(),
        can_export=_overrides(cls, "extract"),
        can_import=_overrides(cls, "load"),
        embedded=caps.embedded,
        namespaces=caps.namespaces,
        sparse_vectors=caps.sparse_vectors,
        metrics=caps.metrics,
        max_dims=caps.max_dims,
        max_dims_indexed=caps.max_dims_indexed,
        options=tuple(_option(field, info) for field, info in cls.Options.model_fields.items()),
    )


def all_entries() -> list[StoreEntry]:
    return [store_entry(name) for name in store_names()]


def _overrides(cls: type[Connector[Any]], method: str) -> bool:
    """A direction is offered when the connector implements its method (and its capabilities allow it)."""
    implemented = getattr(cls, method) is not getattr(Connector, method)
    allowed = cls.capabilities.can_export if method == "extract" else cls.capabilities.can_import
    return implemented and allowed


def _summary(cls: type[Connector[Any]]) -> str:
    """The first paragraph of the docstring of the module that describes the store: the connector's package
    where it is one (`connectors.pgvector`), else its module."""
    parent = sys.modules.get(cls.__module__.rpartition(".")[0])
    described = parent if parent is not None and parent.__name__ != "connectors" else inspect.getmodule(cls)
    doc = inspect.getdoc(described) or ""
    return " ".join(doc.split("\n\n")[0].split())


def _client_text(package: str, installed: bool) -> str:
    if not installed:
        return package
    try:
        return f"{package} {version(package)}"
    except PackageNotFoundError:
        return package


def _option(name: str, info: FieldInfo) -> OptionHelp:
    annotation = info.annotation
    secret = _holds(annotation, SecretStr)
    default = None if info.is_required() or info.default is None else _shown_default(info.default)
    return OptionHelp(
        flag="--" + name.replace("_", "-"),
        value=_value_kind(annotation),
        default=default,
        required=info.is_required(),
        secret=secret,
        description=" ".join((info.description or "").split()),
    )


def _shown_default(value: Any) -> str | None:
    if isinstance(value, bool):
        return None if value is False else "on"
    return str(value)


def _holds(annotation: Any, kind: type) -> bool:
    return annotation is kind or any(_holds(arg, kind) for arg in typing.get_args(annotation))


def _value_kind(annotation: Any) -> str | None:
    """How help shows what a flag takes, from its type: PATH, N, TEXT, a|b|c; None for an on/off flag."""
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return _value_kind(args[0])
    if typing.get_origin(annotation) is typing.Literal:
        return "|".join(str(arg) for arg in args)
    if annotation is bool:
        return None
    if annotation is Path:
        return "PATH"
    if annotation in (int, float):
        return "N"
    if annotation is SecretStr:
        return "SECRET"
    return "TEXT"
