"""Every store the conformance suite runs against, one module per store.

A module here defines `KINDS: list[StoreKind]`. Adding a store to the suite is
adding a module; the suite itself never changes.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest


@dataclass
class StoreContext:
    """What a store kind may use to build fresh options for one test."""

    tmp_path: Path
    request: pytest.FixtureRequest
    name: str
    """A name unique to the test (collection/table/file stem)."""

    def fixture(self, name: str) -> Any:
        return self.request.getfixturevalue(name)


@dataclass
class StoreKind:
    id: str
    store: str
    options: Callable[[StoreContext], dict[str, str]]
    """CLI store options (flag name without dashes -> value) of a fresh, empty store."""
    tolerance: float = 0.0
    """Largest per-component vector difference after a round trip."""
    extra: dict[str, Any] = field(default_factory=dict)
    one_process: bool = False
    """Only one process at a time may open it (an embedded engine that locks its folder or file)."""


def all_kinds() -> list[StoreKind]:
    kinds: list[StoreKind] = []
    for module in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name):
        loaded = importlib.import_module(f"tests.stores.{module.name}")
        kinds.extend(getattr(loaded, "KINDS", []))
    return kinds


def flags(options: dict[str, str], prefix: str = "") -> list[str]:
    """{'db': 'x'} -> ['--db', 'x'] (with an optional --source-/--target- prefix)."""
    out: list[str] = []
    for key, value in options.items():
        out += [f"--{prefix}{key.replace('_', '-')}", str(value)]
    return out
