"""The command line's argument model: vex's flags parsed into job parameters.

It lives below the command line and the flows, so `vex` and `python -m flows.<name>` read
the same flags with the same code. Store options are each store's own (its pydantic
options model, field names with dashes); in `migrate` and `verify` an unprefixed option
goes to whichever side's store takes it, and `--source-`/`--target-` name a side.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from connectors.registry import get_connector
from engine.params import (
    SECRET_FIELDS,
    ExportParams,
    ImportParams,
    MigrateParams,
    StoreSpec,
    SyncParams,
    VerifyParams,
)
from engine.redact import register_secret, register_url
from vmig.errors import UsageError
from vmig.signing import trusted_key

PROG = "vex"


@dataclass(frozen=True)
class Request:
    """A parsed job or verify command: its parameters, and how the person wants to see it run."""

    command: str
    params: Any
    label: str
    """What the progress bar names."""
    prefect: bool
    quiet: bool
    json: bool


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--prefect", action="store_true", help="run as tracked Prefect flow (also: PREFECT_API_URL set)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")


def _reembedding(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", help="re-embed from text with this model (all-MiniLM-L6-v2, all-mpnet-base-v2, a dir)"
    )
    parser.add_argument(
        "--reembed", choices=("auto", "always", "never"), default="auto",
        help="with --model: auto (records of another model or dims, the default), always, never",
    )  # fmt: skip
    parser.add_argument("--embed-cache-mb", type=int, default=1024, help="bound of the embedding cache (MiB)")
    parser.add_argument(
        "--adapter", metavar="FILE|auto",
        help="a .vxa drift adapter (vex adapter fit) that maps text-less records; auto: fit one on the fly from "
        "the source's records that have text (their stored vectors against --model's embeddings of their text)",
    )  # fmt: skip
    parser.add_argument(
        "--fit-sample", type=int, default=2000, metavar="N", help="with --adapter auto: records to fit on (2000)"
    )


def _job(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--namespace", help="only records of this namespace")
    parser.add_argument("--limit", type=int, help="stop after N records")
    parser.add_argument("--chunk-rows", type=int, default=10_000, help="records per task run (default 10000)")
    parser.add_argument("--restart", action="store_true", help="ignore an interrupted run's checkpoint, start over")
    _common(parser)


def _looked_at(sub: Any, command: str, summary: str, store_help: str) -> None:
    """What inspect and validate take: a FILE (.vmig.jsonl, .gz, .zst), or a store with its options.

    FILE is not an argparse positional: one would take the value of a store option (`--db x.db`) for itself.
    It is the one plain word left among the unknown arguments (`engine.inspection.looked_at`)."""
    parser = sub.add_parser(
        command,
        help=summary,
        usage=f"vex {command} [FILE | --from STORE [store options]] [--namespace NS] [--json]",
        epilog=store_help,
        allow_abbrev=False,
    )
    parser.add_argument("--from", dest="source", metavar="STORE", help="a store instead of a file")
    parser.add_argument("--namespace", help="only records of this namespace (with --from)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    if command == "validate":
        parser.add_argument("--trust", metavar="PUBKEY|FILE", help=TRUST_HELP)


TRUST_HELP = (
    "the public key (ed25519:<base64>, or a file holding it: a key's .pub, a .vmig.sig) the file must be signed "
    "with; an unsigned file fails"
)


def _store_to_store(parser: argparse.ArgumentParser) -> None:
    """What migrate and sync take."""
    parser.add_argument("--from", dest="source", required=True, metavar="STORE")
    parser.add_argument("--to", dest="target", required=True, metavar="STORE")
    parser.add_argument("--dims", type=int, help="dimension of a new target (default: from the data)")
    parser.add_argument("--rejects", metavar="FILE", help="where unreadable source records go")
    parser.add_argument("--verify", action="store_true", help="compare source and target record by record at the end")
    parser.add_argument(
        "--workers", type=int, metavar="N", help="move the source in N partitions at once on Dask (a Prefect run)"
    )
    parser.add_argument("--dask-address", metavar="URL", help="with --workers: an existing Dask scheduler")
    _reembedding(parser)
    _job(parser)


def build_parser() -> argparse.ArgumentParser:
    store_help = (
        "store options: --db FILE (vektor), --path (jsonl file; qdrant/chroma directory), --url, --collection, "
        "--table, --api-key, --metric, ...; in migrate, sync and verify, --source-X/--target-X pick a side "
        "(`vex stores`-style errors list what each store takes)"
    )
    parser = _MainParser(
        prog=PROG,
        description="Move vector data between stores without losing a record.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    export = sub.add_parser("export", help="store -> .vmig.jsonl + sidecar", epilog=store_help, allow_abbrev=False)
    export.add_argument("--from", dest="source", required=True, metavar="STORE")
    export.add_argument("--output", required=True, metavar="FILE", help=".vmig.jsonl, .gz or .zst")
    export.add_argument("--force", action="store_true", help="replace an existing output that is not a .vmig file")
    export.add_argument("--sign", action="store_true", help="sign the file as it is written: <stem>.vmig.sig")
    export.add_argument("--key", metavar="KEYFILE", help="with --sign: the private key (default: your own)")
    _job(export)

    imp = sub.add_parser("import", help=".vmig.jsonl -> store", epilog=store_help, allow_abbrev=False)
    imp.add_argument("--from", dest="input", required=True, metavar="FILE")
    imp.add_argument("--to", dest="target", required=True, metavar="STORE")
    imp.add_argument("--no-verify", action="store_true", help="skip the checksum, count and signature checks (says so)")
    imp.add_argument("--trust", metavar="PUBKEY|FILE", help=TRUST_HELP)
    imp.add_argument("--dims", type=int, help="dimension of a new target (default: from the data)")
    _reembedding(imp)
    _job(imp)

    migrate = sub.add_parser(
        "migrate", help="store -> store, no intermediate file", epilog=store_help, allow_abbrev=False
    )
    _store_to_store(migrate)

    sync = sub.add_parser(
        "sync", help="store -> store again: only new and changed records, deletes with --delete", epilog=store_help,
        allow_abbrev=False,
    )  # fmt: skip
    _store_to_store(sync)
    sync.add_argument("--delete", action="store_true", help="delete from the target what left the source")
    sync.add_argument(
        "--state", metavar="FILE", help="the sync's state (default: one file per pair in the user's data directory)"
    )
    sync.add_argument(
        "--watermark", metavar="COLUMN",
        help="a column the source sets on every write (VEKTOR: updated_at): later runs read only what changed",
    )  # fmt: skip

    verify = sub.add_parser("verify", help="compare two stores record by record", epilog=store_help, allow_abbrev=False)
    verify.add_argument("--from", dest="source", required=True, metavar="STORE")
    verify.add_argument("--to", dest="target", required=True, metavar="STORE")
    verify.add_argument("--namespace", help="only records of this namespace")
    verify.add_argument("--sample", type=int, help="compare a random sample of N records (default: all)")
    verify.add_argument("--seed", type=int, default=0, help="seed of the sample")
    verify.add_argument(
        "--report", metavar="FILE", default="vex-verify.json", help="JSON report (default vex-verify.json)"
    )
    _common(verify)

    sign = sub.add_parser("sign", help="sign a .vmig.jsonl: <stem>.vmig.sig (BLAKE3 + Ed25519)", allow_abbrev=False)
    sign.add_argument("file", metavar="FILE")
    sign.add_argument("--key", metavar="KEYFILE", help="private key file (default: your own, created on first use)")
    sign.add_argument("--json", action="store_true")

    checks = "check a .vmig.jsonl against its sidecar, its signature and the format, or read every record of a store"
    _looked_at(sub, "validate", checks, store_help)
    counts = "a file or store: counts by namespace/model/dims, null vectors, metric, layout, sidecar"
    _looked_at(sub, "inspect", counts, store_help)

    adapter = sub.add_parser("adapter", help="drift adapters: vex adapter fit ...")
    action = adapter.add_subparsers(dest="action", metavar="ACTION", required=True)
    fit = action.add_parser("fit", help="learn a map between two models' spaces from the same texts")
    fit.add_argument(
        "--from", dest="source", required=True, metavar="FILE|corpus|STORE",
        help="a .vmig.jsonl, 'corpus' (built-in sentences), or a store and its options (--db, --path, --url, ...)",
    )  # fmt: skip
    fit.add_argument("--source-model", required=True, help="the model the vectors to map come from")
    fit.add_argument("--target-model", required=True, help="the model to map them into")
    fit.add_argument("--output", required=True, metavar="FILE", help="the .vxa adapter file to write")
    fit.add_argument("--sample", type=int, default=2000, help="texts to fit and measure on (default 2000)")
    fit.add_argument(
        "--mlp", action="store_true", help="also train a small MLP on top of the linear map; kept if it measures better"
    )
    fit.add_argument("--json", action="store_true")

    stores = sub.add_parser("stores", help="every store: installed or not, what it can do, its options")
    stores.add_argument("name", nargs="?", metavar="STORE", help="one store's options and capabilities")
    stores.add_argument("--json", action="store_true")
    return parser


class _MainParser(argparse.ArgumentParser):
    """`vex --help` names the stores; finding which are installed imports every connector, so only help does it
    (every command would otherwise pay a quarter of a second for it)."""

    def format_help(self) -> str:
        self.epilog = _stores_epilog()
        return super().format_help()


def _stores_epilog() -> str:
    """The stores `vex --help` names, with those whose client is missing marked (a cheap import check)."""
    from engine.stores import store_names

    names = []
    for name in store_names():
        library = get_connector(name).client_library
        names.append(name if library is None or library.installed() else f"{name} (not installed)")
    return f"stores: {', '.join(names)}\n`vex stores` shows what each can do and takes; `vex stores NAME` its options."


def request(args: argparse.Namespace, extra: list[str]) -> Request:
    """Job or verify parameters from the parsed flags; a value out of range is one line naming its flag."""
    pairs = parse_pairs(extra)
    _register_secrets(pairs)
    prefect = bool(getattr(args, "prefect", False) or os.environ.get("PREFECT_API_URL"))
    shown = {"prefect": prefect, "quiet": args.quiet, "json": args.json}
    if args.command == "verify":
        source, target = two_sides(args.source, args.target, pairs)
        params = _params(
            VerifyParams,
            source=source,
            target=target,
            namespace=args.namespace,
            sample=args.sample,
            seed=args.seed,
            report=_file_flag("--report", args.report),
        )
        return Request("verify", params, f"verify {args.target}", **shown)
    common = {"namespace": args.namespace, "limit": args.limit, "chunk_rows": args.chunk_rows, "restart": args.restart}
    if args.command == "export":
        output = _file_flag("--output", args.output)
        source_spec = single_side(args.source, pairs)
        if args.key is not None and not args.sign:
            raise UsageError("--key goes with --sign")
        key = _export_key(args.key) if args.sign else None
        params = _params(
            ExportParams, source=source_spec, output=output, force=args.force, sign=args.sign, key=key, **common
        )
        return Request("export", params, output.name, **shown)
    if args.command == "import":
        params = _params(
            ImportParams,
            input=_file_flag("--from", args.input),
            target=single_side(args.target, pairs),
            check_sidecar=not args.no_verify,
            trust=None if args.trust is None else trusted_key(args.trust),
            dims=args.dims,
            **_reembed_flags(args),
            **common,
        )
        return Request("import", params, args.target, **shown)
    source, target = two_sides(args.source, args.target, pairs)
    rejects = None if args.rejects is None else _file_flag("--rejects", args.rejects)
    both = {"source": source, "target": target, "dims": args.dims, "rejects": rejects, "verify": args.verify,
            "workers": args.workers, "dask_address": args.dask_address}  # fmt: skip
    if args.workers is not None or args.dask_address is not None:
        shown["prefect"] = True  # partitions are task runs on Dask
    if args.command == "sync":
        state = None if args.state is None else _file_flag("--state", args.state)
        params = _params(SyncParams, delete=args.delete, state=state, watermark=args.watermark, **both,
                         **_reembed_flags(args), **common)  # fmt: skip
        return Request("sync", params, args.target, **shown)
    params = _params(MigrateParams, **both, **_reembed_flags(args), **common)
    return Request("migrate", params, args.target, **shown)


def _export_key(given: str | None) -> Path:
    """The key `export --sign` signs with, made now when there is none yet (and said where), so that a key
    problem stops the export before it reads anything."""
    from engine.signing_command import announce_new_key, signing_key

    key, created = signing_key(given)
    if created:
        announce_new_key(key)
    return key.path


def _reembed_flags(args: argparse.Namespace) -> dict[str, Any]:
    adapter: Any = args.adapter if args.adapter in (None, "auto") else _file_flag("--adapter", args.adapter)
    return {"model": args.model, "reembed": args.reembed, "embed_cache_mb": args.embed_cache_mb, "adapter": adapter,
            "fit_sample": args.fit_sample}  # fmt: skip


def _file_flag(flag: str, text: str) -> Path:
    """A file named on the command line; an empty name is a usage error, not the current folder."""
    if not text.strip():
        raise UsageError(f"{flag} needs a file name")
    return Path(text)


def _params(params_model: Any, /, **values: Any) -> Any:
    """Parameters from flags; a value out of range is one line naming the flag (not pydantic's report)."""
    try:
        return params_model(**values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            if not error["loc"]:  # a rule between flags: its own words
                problems.append(str(error["msg"]).removeprefix("Value error, "))
                continue
            flag = "--" + str(error["loc"][0]).replace("_", "-")
            problems.append(f"{flag}: {error['msg'].lower()} (got {error.get('input')!r})")
        raise UsageError("; ".join(problems)) from None


def _register_secrets(pairs: dict[str, Any]) -> None:
    for key, value in pairs.items():
        if not isinstance(value, str):
            continue
        if key.endswith(("api_key", "password", "token")):
            register_secret(value)
        if key.endswith(("url", "host", "dsn")):
            register_url(value)


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
    token = values.pop("token", None)
    return StoreSpec(
        store=store,
        options=values,
        api_key=SecretStr(str(secret)) if secret is not None else None,
        password=SecretStr(str(password)) if password is not None else None,
        token=SecretStr(str(token)) if token is not None else None,
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
