"""The run form of a deployment: a typed model per store, chosen by its name, with secrets by reference.

Each store's form is its connector's options model (the same fields, titles, descriptions, defaults and
enums `vex stores NAME` prints) with one change: a credential (`api_key`, `password`) becomes
`api_key_secret`/`password_secret`, the *name* of a Prefect Secret block or of an environment variable of the
worker that runs the flow. The value is looked up when the run starts and never enters the run's
parameters, so the Prefect database, the API's flow-run records and the UI never hold it. There is no form
field that takes a literal secret. The command line keeps taking `--api-key`/`--password`/environment values.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, SecretStr, create_model
from pydantic.fields import FieldInfo

from connectors.registry import get_connector
from engine.params import SECRET_FIELDS, StoreSpec
from engine.stores import store_entry, store_names
from vmig.errors import UsageError

SECRET_SUFFIX = "_secret"


class StoreForm(BaseModel):
    """Base of every store's form."""

    model_config = ConfigDict(extra="forbid")
    store: str

    def to_spec(self) -> StoreSpec:
        """The store as a run opens it: options as given, each secret looked up by its name now."""
        values = self.model_dump(exclude={"store"}, exclude_none=True)
        secrets: dict[str, SecretStr] = {}
        for field in SECRET_FIELDS:
            name = values.pop(field + SECRET_SUFFIX, None)
            if name:
                secrets[field] = resolve_secret(name, f"{self.store} {field.replace('_', ' ')}")
        return StoreSpec(store=self.store, options=values, **secrets)


def resolve_secret(name: str, what: str) -> SecretStr:
    """The value of a Prefect Secret block called `name`, else of the environment variable `name`."""
    from prefect.blocks.system import Secret

    try:
        block: Any = Secret.load(name, _sync=True)  # type: ignore[call-arg]
    except ValueError:
        block = None
    if block is not None:
        return SecretStr(str(block.get()))
    if name in os.environ:
        return SecretStr(os.environ[name])
    raise UsageError(
        f"{what}: '{name}' is neither a Prefect Secret block nor an environment variable of this worker "
        f"(create the block: prefect block create secret, or set {name} where the worker runs)"
    )


def _secret_field(option: str, info: FieldInfo) -> tuple[Any, Any]:
    label = option.replace("_", " ")
    return (
        str | None,
        Field(
            default=None,
            title=f"{label.capitalize()} secret",
            description=(
                f"Name of a Prefect Secret block, or of an environment variable of the worker, that holds the "
                f"{label} ({info.description or 'a credential'}); never the {label} itself"
            ),
        ),
    )


def _form_for(name: str) -> type[StoreForm]:
    connector = get_connector(name)
    summary = " ".join(store_entry(name).summary.split(". ")[0].split()).rstrip(".") + "."
    fields: dict[str, Any] = {
        "store": (Literal[name], Field(default=name, title="Store", description=summary)),  # type: ignore[valid-type]
    }
    for option, info in connector.Options.model_fields.items():
        if option in SECRET_FIELDS:
            fields[option + SECRET_SUFFIX] = _secret_field(option, info)
            continue
        copied = FieldInfo.merge_field_infos(info, title=option.replace("_", " ").capitalize())
        fields[option] = (info.annotation, copied)
    model = create_model(  # type: ignore[call-overload]
        f"{name.capitalize()}Store", __base__=StoreForm, __doc__=f"{name}: {summary}", **fields
    )
    model.model_config["title"] = name
    return model  # type: ignore[no-any-return]


@cache
def store_forms() -> tuple[type[StoreForm], ...]:
    """A form per store, in `vex stores` order."""
    return tuple(_form_for(name) for name in store_names())


def store_choice() -> Any:
    """The type of a form's store field: one of the stores' forms, told apart by `store` (each form's `store`
    takes only its own name, and no form takes another's fields). A plain union, not a pydantic discriminated
    one: the Prefect UI renders a plain one (`anyOf`) as a choice between the stores' forms, each showing its
    own fields, where it shows a discriminated one (`oneOf`) as a box of raw JSON."""
    return Union[store_forms()]  # noqa: UP007 - a tuple of types needs Union[]
