"""`vex sign FILE [--key KEYFILE]`: the file's records signed into `<stem>.vmig.sig` (the JavaScript vex's layout).

Without `--key` the user's own key is used (`vmig.signing.default_key_path`), created on first use; a
`--key` that names no file yet is created there. Either way a new key is written with permissions 0600
and the command says where, with its public key in `<key>.pub` for whoever checks the files (`--trust`).
The private key itself is never printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from vmig.errors import EXIT_OK, UsageError
from vmig.sigcheck import sign_file
from vmig.signing import SigningKey, create_key, default_key_path, load_key, public_path


def signing_key(given: str | None) -> tuple[SigningKey, bool]:
    """The key to sign with, and whether it was created now."""
    path = Path(given) if given else default_key_path()
    if given is not None and not given.strip():
        raise UsageError("--key needs a file name")
    if path.exists():
        return load_key(path), False
    return create_key(path), True


def sign_command(args: argparse.Namespace) -> int:
    file = Path(args.file)
    if not file.is_file():
        raise UsageError(f"file not found: {file}")
    key, created = signing_key(args.key)
    signature, written = sign_file(file, key)
    if args.json:
        payload = {
            "file": str(file),
            "signature_file": str(written),
            "records": signature.record_count,
            "root_hash": signature.root_hash,
            "public_key": signature.public_key,
            "key_file": str(key.path),
            "key_created": created,
        }
        sys.stdout.write(orjson.dumps(payload).decode() + "\n")
    else:
        print(f"signed {signature.record_count} records of {file}: {written}")
        print(f"public key: {signature.public_key}")
    if created:
        announce_new_key(key)
    return EXIT_OK


def announce_new_key(key: SigningKey) -> None:
    """Where a new key went (never the key itself)."""
    print(
        f"new signing key written to {key.path} (permissions 0600: keep it private); "
        f"its public key, for --trust, is in {public_path(key.path)}",
        file=sys.stderr,
    )
