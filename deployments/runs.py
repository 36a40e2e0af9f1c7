"""The flows deployments serve: vex's flows with a form a person can fill in the Prefect UI.

Each takes its fields as parameters of its own (no one `params` object behind a reference): a store is
chosen from a list and then shows that store's fields (`deployments.forms`), credentials are the names of
secrets, and every field has a title, a description and its default. A run turns the form into the job's
parameters, looks its secrets up, and runs the same flow body the command line's tracked runs do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from prefect import Flow, flow
from pydantic import Field

from deployments.forms import StoreForm, store_choice
from engine.params import ExportParams, ImportParams, MigrateParams, SyncParams, VerifyParams
from flows.export import export_flow
from flows.import_file import import_flow
from flows.migrate import migrate_flow
from flows.sync import sync_flow
from flows.verify import verify_flow

Store = store_choice()
Reembed = Literal["auto", "always", "never"]

SOURCE = "The store records are read from: choose it, then fill its fields"
TARGET = "The store records are written to: choose it, then fill its fields"
NAMESPACE = "Only records of this namespace (empty: every namespace)"
LIMIT = "Stop after this many records (empty: all)"
CHUNK_ROWS = "Records per task run"
MODEL = "Re-embed from text with this model: all-MiniLM-L6-v2, all-mpnet-base-v2, or a model directory"
REEMBED = "With a model: auto (records of another model or dims), always, never"
DIMS = "Dimension of a new target (empty: from the data)"
VERIFY = "Compare source and target record by record at the end"
STATE = (
    "Where the sync keeps its state (empty: one file per source/target pair in the worker's data directory; "
    "workers of one deployment share a file on a shared disk)"
)


def field(title: str, description: str, default: Any) -> Any:
    """A parameter's title, description and default as the run form shows them (`...`: required). Prefect
    titles a parameter with its name; the schema's `title` here is the one a person reads."""
    return Field(default, description=description, json_schema_extra={"title": title})


def _spec(form: Any) -> Any:
    assert isinstance(form, StoreForm)
    return form.to_spec()


@flow(name="vex-export", description=export_flow.description)
def export_form(
    source: Store = field("Source", SOURCE, ...),  # type: ignore[valid-type]
    output: Path = field("Output file", "The .vmig.jsonl (or .gz/.zst) file to write", ...),
    namespace: str | None = field("Namespace", NAMESPACE, None),
    limit: int | None = field("Limit", LIMIT, None),
    force: bool = field("Force", "Replace an output that is not a .vmig file", False),
    chunk_rows: int = field("Chunk rows", CHUNK_ROWS, 10_000),
) -> Any:
    params = ExportParams(source=_spec(source), output=output, namespace=namespace, limit=limit, force=force,
                          chunk_rows=chunk_rows)  # fmt: skip
    return export_flow.fn(params)


@flow(name="vex-import", description=import_flow.description)
def import_form(
    input: Path = field("Input file", "The .vmig.jsonl (or .gz/.zst) file to read", ...),
    target: Store = field("Target", TARGET, ...),  # type: ignore[valid-type]
    namespace: str | None = field("Namespace", NAMESPACE, None),
    limit: int | None = field("Limit", LIMIT, None),
    model: str | None = field("Model", MODEL, None),
    reembed: Reembed = field("Re-embed", REEMBED, "auto"),
    dims: int | None = field("Dims", DIMS, None),
    check_sidecar: bool = field("Check sidecar", "Check checksum and record count before writing", True),
    chunk_rows: int = field("Chunk rows", CHUNK_ROWS, 10_000),
) -> Any:
    params = ImportParams(input=input, target=_spec(target), namespace=namespace, limit=limit, model=model,
                          reembed=reembed, dims=dims, check_sidecar=check_sidecar, chunk_rows=chunk_rows)  # fmt: skip
    return import_flow.fn(params)


@flow(name="vex-migrate", description=migrate_flow.description)
def migrate_form(
    source: Store = field("Source", SOURCE, ...),  # type: ignore[valid-type]
    target: Store = field("Target", TARGET, ...),  # type: ignore[valid-type]
    namespace: str | None = field("Namespace", NAMESPACE, None),
    limit: int | None = field("Limit", LIMIT, None),
    model: str | None = field("Model", MODEL, None),
    reembed: Reembed = field("Re-embed", REEMBED, "auto"),
    dims: int | None = field("Dims", DIMS, None),
    verify: bool = field("Verify", VERIFY, False),
    chunk_rows: int = field("Chunk rows", CHUNK_ROWS, 10_000),
) -> Any:
    params = MigrateParams(source=_spec(source), target=_spec(target), namespace=namespace, limit=limit,
                           model=model, reembed=reembed, dims=dims, verify=verify, chunk_rows=chunk_rows)  # fmt: skip
    return migrate_flow.fn(params)


@flow(name="vex-sync", description=sync_flow.description)
def sync_form(
    source: Store = field("Source", SOURCE, ...),  # type: ignore[valid-type]
    target: Store = field("Target", TARGET, ...),  # type: ignore[valid-type]
    delete: bool = field("Delete", "Delete from the target the records that left the source", False),
    state: Path | None = field("State file", STATE, None),
    namespace: str | None = field("Namespace", NAMESPACE, None),
    model: str | None = field("Model", MODEL, None),
    reembed: Reembed = field("Re-embed", REEMBED, "auto"),
    dims: int | None = field("Dims", DIMS, None),
    verify: bool = field("Verify", VERIFY, False),
    chunk_rows: int = field("Chunk rows", CHUNK_ROWS, 10_000),
) -> Any:
    params = SyncParams(source=_spec(source), target=_spec(target), delete=delete, state=state, namespace=namespace,
                        model=model, reembed=reembed, dims=dims, verify=verify, chunk_rows=chunk_rows)  # fmt: skip
    return sync_flow.fn(params)


@flow(name="vex-verify", description=verify_flow.description)
def verify_form(
    source: Store = field("Source", "The store holding the records as they should be", ...),  # type: ignore[valid-type]
    target: Store = field("Target", "The store compared with it", ...),  # type: ignore[valid-type]
    namespace: str | None = field("Namespace", NAMESPACE, None),
    sample: int | None = field("Sample", "Compare a random sample of this many records (empty: all)", None),
    seed: int = field("Seed", "Seed of the sample", 0),
    report: Path | None = field("Report file", "Where the JSON report goes", None),
) -> Any:
    params = VerifyParams(source=_spec(source), target=_spec(target), namespace=namespace, sample=sample, seed=seed,
                          report=report)  # fmt: skip
    return verify_flow.fn(params)


FORMS: dict[str, Flow[..., Any]] = {
    "export": export_form,
    "import": import_form,
    "migrate": migrate_form,
    "sync": sync_form,
    "verify": verify_form,
}
"""Each command's deployable flow."""
