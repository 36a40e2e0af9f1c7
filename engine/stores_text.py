"""`vex stores` on a terminal: one line a store, or one store's capabilities and options."""

from __future__ import annotations

import textwrap

from engine.stores import StoreEntry


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _sparse(entry: StoreEntry) -> str:
    """Every store keeps a record's sparse vector; one without the capability carries it beside the record
    (folded into what vex keeps for it, `vmig.sparse`), not as a sparse vector it could search."""
    return "yes" if entry.sparse_vectors else "carried"


def _dims(entry: StoreEntry) -> str:
    if entry.max_dims is None:
        return "any"
    shown = f"{entry.max_dims:,}"
    if entry.max_dims_indexed is not None:
        shown += f" (indexed up to {entry.max_dims_indexed:,})"
    return shown


def print_stores(entries: list[StoreEntry]) -> None:
    rows = [("store", "installed", "export", "import", "embedded", "namespaces", "sparse", "max dims")]
    for entry in entries:
        installed = "yes" if entry.installed else "no"
        rows.append(
            (
                entry.name,
                installed,
                _yes(entry.can_export),
                _yes(entry.can_import),
                _yes(entry.embedded),
                entry.namespaces,
                _sparse(entry),
                _dims(entry),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    missing = [entry for entry in entries if not entry.installed]
    for entry in missing:
        print(f"{entry.name} is not installed: {entry.install}")
    print("`vex stores NAME` lists a store's options.")


def print_store(entry: StoreEntry) -> None:
    print(f"{entry.name}: {entry.summary}")
    if entry.client is not None:
        state = "installed" if entry.installed else f"not installed: {entry.install}"
        print(f"client    : {entry.client} ({state})")
    directions = [word for word, can in (("export", entry.can_export), ("import", entry.can_import)) if can]
    print(f"can       : {', '.join(directions) or 'nothing'}")
    print(f"embedded  : {_yes(entry.embedded)}")
    print(f"namespaces: {entry.namespaces}")
    held = "held as the record's sparse vector" if entry.sparse_vectors else "kept beside the record, not searchable"
    print(f"sparse    : {_sparse(entry)} ({held})")
    print(f"metrics   : {', '.join(entry.metrics)}")
    print(f"max dims  : {_dims(entry)}")
    print("options:")
    for option in entry.options:
        notes = []
        if option.required:
            notes.append("required")
        if option.default is not None:
            notes.append(f"default {option.default}")
        if option.secret:
            notes.append("secret: never printed or stored")
        flag = option.flag if option.value is None else f"{option.flag} {option.value}"
        print(f"  {flag}" + (f"  ({'; '.join(notes)})" if notes else ""))
        for line in textwrap.wrap(option.description, width=96):
            print(f"      {line}")
