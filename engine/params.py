"""Job parameters as pydantic models: the CLI builds them, the Prefect UI renders them as forms."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator

from connectors.base import Connector, StoreOptions
from connectors.registry import get_connector
from engine.redact import split_url_password, with_url_password
from vmig.errors import UsageError

SECRET_FIELDS = frozenset({"api_key", "password", "token"})
"""Store options that are credentials: kept out of the options, never printed, never a form field."""


class StoreSpec(BaseModel):
    """Which store and how to reach it. Options are the store's own flags (`db`, `url`, ...)."""

    store: str = Field(description="store name: vektor, jsonl, qdrant, chroma, pgvector, ...")
    options: dict[str, Any] = Field(default_factory=dict, description="store options, as on the command line")
    api_key: SecretStr | None = Field(default=None, description="API key; never logged")
    password: SecretStr | None = Field(default=None, description="database password; never logged")
    token: SecretStr | None = Field(default=None, description="access token (Milvus, Zilliz); never logged")

    @model_validator(mode="after")
    def _password_out_of_url(self) -> StoreSpec:
        """A password written into a URL moves to the secret field, so parameters never show it."""
        url = self.options.get("url")
        if isinstance(url, str):
            bare, password = split_url_password(url)
            if password is not None:
                self.options["url"] = bare
                if self.password is None:
                    self.password = SecretStr(password)
        return self

    def public_options(self) -> dict[str, Any]:
        """Options safe to print: secrets are left out."""
        return {k: v for k, v in self.options.items() if k not in SECRET_FIELDS}


class JobParams(BaseModel):
    namespace: str | None = Field(default=None, description="only records of this namespace")
    limit: int | None = Field(default=None, ge=0, description="stop after this many records")
    chunk_rows: int = Field(default=10_000, ge=1, description="records per task run")
    restart: bool = Field(default=False, description="ignore the checkpoint of an interrupted run and start over")


class ExportParams(JobParams):
    source: StoreSpec
    output: Path = Field(description="the .vmig.jsonl (or .gz/.zst) file to write")
    force: bool = Field(default=False, description="replace an existing output that is not a .vmig.jsonl file")
    sign: bool = Field(default=False, description="sign the file as it is written: <stem>.vmig.sig")
    key: Path | None = Field(
        default=None, description="the private key file to sign with (default: VEX_SIGNING_KEY, else the user's own)"
    )


class ReembedParams(BaseModel):
    model: str | None = Field(default=None, description="re-embed text with this model (e.g. all-mpnet-base-v2)")
    reembed: Literal["auto", "always", "never"] = Field(
        default="auto", description="auto: records of another model or dims; always; never"
    )
    embed_cache_mb: int = Field(default=1024, ge=1, description="bound of the on-disk embedding cache, MiB")
    adapter: Literal["auto"] | Path | None = Field(
        default=None,
        description="a .vxa drift adapter (vex adapter fit) for text-less records; 'auto' fits one from the "
        "source's records that have text",
    )
    fit_sample: int = Field(default=2000, ge=20, description="with adapter 'auto': records with text to fit it on")

    @model_validator(mode="after")
    def _always_needs_a_model(self) -> ReembedParams:
        if self.model is None and self.adapter is None and self.reembed == "always":
            raise ValueError("--reembed always needs --model NAME")
        if self.adapter == "auto" and self.model is None:
            raise ValueError("--adapter auto needs --model NAME: the model it maps into")
        return self


class ImportParams(JobParams, ReembedParams):
    input: Path = Field(description="the .vmig.jsonl file to read")
    target: StoreSpec
    check_sidecar: bool = Field(
        default=True, description="check checksum, record count and signature (when signed) before writing"
    )
    trust: str | None = Field(
        default=None, description="the public key (ed25519:<base64>) the file must be signed with; unsigned fails"
    )
    dims: int | None = Field(default=None, ge=1, description="dimension of a new target (default: from the data)")


class VerifyParams(BaseModel):
    source: StoreSpec
    target: StoreSpec
    namespace: str | None = Field(default=None, description="only records of this namespace")
    sample: int | None = Field(default=None, ge=1, description="compare a random sample of N records (default: all)")
    seed: int = Field(default=0, description="seed of the sample")
    report: Path | None = Field(default=None, description="where the JSON report is written")


class MigrateParams(JobParams, ReembedParams):
    source: StoreSpec
    target: StoreSpec
    dims: int | None = Field(default=None, ge=1, description="dimension of a new target (default: from the data)")
    rejects: Path | None = Field(default=None, description="where unreadable source records are written")
    verify: bool = Field(default=False, description="compare source and target record by record at the end")
    workers: int | None = Field(
        default=None, ge=1, description="move the source in this many partitions at once on Dask (a Prefect run)"
    )
    dask_address: str | None = Field(
        default=None, description="an existing Dask scheduler (tcp://host:8786) for --workers; default a local one"
    )


class SyncParams(MigrateParams):
    delete: bool = Field(
        default=False, description="delete from the target the records that left the source since the last run"
    )
    state: Path | None = Field(
        default=None,
        description="the sync's state file (default: one per source/target pair in the user's data directory)",
    )
    watermark: str | None = Field(
        default=None,
        description="a column of the source that every write sets to its time (VEKTOR: updated_at; pgvector: a "
        "timestamp or serial column of the table): later runs read only the records changed since the last run "
        "began, and with delete list the ids to find what left",
    )


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def open_store(spec: StoreSpec) -> Connector:
    """Instantiate a connector from a spec, turning option errors into one-line usage errors."""
    cls = get_connector(spec.store)
    values = dict(spec.options)
    if spec.api_key is not None:
        values["api_key"] = spec.api_key
    if spec.token is not None:
        values["token"] = spec.token
    if spec.password is not None:
        if "password" in cls.Options.model_fields:
            values["password"] = spec.password
        elif isinstance(values.get("url"), str):
            values["url"] = with_url_password(values["url"], spec.password.get_secret_value())
    options_model: type[StoreOptions] = cls.Options
    unknown = sorted(set(values) - set(options_model.model_fields))
    if unknown:
        accepted = ", ".join(_flag(f) for f in options_model.model_fields) or "none"
        raise UsageError(f"{cls.name} does not take {', '.join(map(_flag, unknown))} (it takes: {accepted})")
    try:
        options = options_model(**values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            if error["type"] == "missing":
                problems.append(f"{_flag(field)} is required")
            else:
                problems.append(f"{_flag(field)}: {error['msg']}")
        raise UsageError(f"{cls.name}: {'; '.join(problems)}") from None
    return cls(options)
