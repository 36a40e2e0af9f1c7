"""Store options on the command line: `--db x`, `--source-url y`, routed to the side that takes them.

Each store declares its options in its pydantic model; the flags are those
field names with dashes. In `migrate`, an unprefixed option goes to whichever
side's store takes it, and `--source-`/`--target-` name a side explicitly.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from connectors.registry import get_connector
from engine.params import SECRET_FIELDS, StoreSpec
from vmig.errors import UsageError


def parse_pairs(args: list[str]) -> dict[str, str | bool]:
    """`['--db', 'a', '--flag', '--x=1']` -> {'db': 'a', 'flag': True, 'x': '1'}."""
    pairs: dict[str, str | bool] = {}
    index = 0
    while index < len(args):
        token = args[index]
        if not token.startswith("--") or token == "--":
            raise UsageError(f"unexpected argument '{token}'")
        name, has_value, value = token[2:].partition("=")
        key = name.replace("-", "_")
        if not key:
            raise UsageError(f"unexpected argument '{token}'")
        if key in pairs:
            raise UsageError(f"--{name} given twice")
        if has_value:
            pairs[key] = value
        elif index + 1 < len(args) and not args[index + 1].startswith("--"):
            index += 1
            pairs[key] = args[index]
        else:
            pairs[key] = True
        index += 1
    return pairs


def _spec(store: str, options: dict[str, Any]) -> StoreSpec:
    """Secrets leave the plain options (a password written into a URL too: see StoreSpec)."""
    values = dict(options)
    secret = values.pop("api_key", None)
    password = values.pop("password", None)
    return StoreSpec(
        store=store,
        options=values,
        api_key=SecretStr(str(secret)) if secret is not None else None,
        password=SecretStr(str(password)) if password is not None else None,
    )


def _fields(store: str) -> set[str]:
    return set(get_connector(store).Options.model_fields)


def _flag(key: str, prefix: str = "") -> str:
    return f"--{prefix}{key.replace('_', '-')}"


def single_side(store: str, pairs: dict[str, str | bool]) -> StoreSpec:
    """All store options belong to the one store of export or import."""
    fields = _fields(store)
    for key in pairs:
        if key.startswith(("source_", "target_")) and key not in fields:
            raise UsageError(f"{_flag(key)}: --source-/--target- prefixes are for migrate and verify")
    return _spec(store, dict(pairs))


def two_sides(source: str, target: str, pairs: dict[str, str | bool]) -> tuple[StoreSpec, StoreSpec]:
    """Route options of `migrate`/`verify` to the source, the target, or complain."""
    source_fields, target_fields = _fields(source), _fields(target)
    chosen: dict[str, dict[str, Any]] = {"source": {}, "target": {}}
    for key, value in pairs.items():
        for side in ("source", "target"):
            if key.startswith(f"{side}_"):
                chosen[side][key[len(side) + 1 :]] = value
                break
        else:
            takers = [side for side, fields in (("source", source_fields), ("target", target_fields)) if key in fields]
            if len(takers) == 2:
                shown = "****" if key in SECRET_FIELDS else value
                raise UsageError(
                    f"both {source} and {target} take {_flag(key)}: say {_flag(key, 'source-')} {shown} "
                    f"or {_flag(key, 'target-')} {shown}"
                )
            if not takers:
                raise UsageError(f"neither {source} nor {target} takes {_flag(key)}")
            chosen[takers[0]][key] = value
    return _spec(source, chosen["source"]), _spec(target, chosen["target"])
