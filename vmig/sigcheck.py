"""Signing a data file and checking one against its `.vmig.sig`, with one clear line for every way it fails.

A check first looks at the signature alone (its count and root hash agree with its list, the Ed25519
signature of the root is valid, and with `--trust` it is the trusted key's). A file whose bytes have the
digest the signer bound into the signature is then done; any other has every record hashed and the list
compared: the first records that differ are named by line and id, and the message says whether records
were changed or added, removed, or put out of order, or whether the signature is for another file.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmig.errors import IntegrityError, UsageError
from vmig.recordhash import hashed_runs
from vmig.sidecar import file_checksum
from vmig.signing import (
    RootHasher,
    Signature,
    SigningKey,
    blake3_module,
    bound_file_digest,
    check_signer,
    make_signature,
    read_signature,
    signature_path,
    write_signature,
)

NAMED = 3
"""Mismatching records named in a message."""


def sign_file(path: Path, key: SigningKey, workers: int | None = None) -> tuple[Signature, Path]:
    """Hash every record and write `<stem>.vmig.sig`; a line that is not a JSON object cannot be signed."""
    hashes: list[str] = []
    root = RootHasher()
    with ThreadPoolExecutor(1, thread_name_prefix="vex-sha256") as side:
        digest = side.submit(file_checksum, path)  # hashlib lets go of the GIL: beside the record hashing
        _hash_all(path, workers, hashes, root)
        file_digest = digest.result()
    signature = make_signature(key, hashes, root.hexdigest(), file_digest)
    return signature, write_signature(path, signature)


def _hash_all(path: Path, workers: int | None, hashes: list[str], root: RootHasher) -> None:
    for run in hashed_runs(path, workers):
        if run.problems:
            position, reason = next(iter(run.problems.items()))
            raise IntegrityError(
                f"{path}: line {run.lines[position]} is {reason}: a file with such a line cannot be signed "
                "(`vex validate` lists the damaged lines)"
            )
        ready = [value for value in run.hashes if value is not None]  # all of them: no None without a problem
        hashes += ready
        root.add(ready)


@dataclass
class SignatureCheck:
    """What checking a file against its signature found; `problem` is None when it verifies."""

    path: Path
    signature: Signature
    records: int = 0
    problem: str | None = None
    by_digest: bool = False
    """The file's bytes are those signed (`vmig.signing.FILE_DIGEST`): its records were not hashed one by one."""

    @property
    def ok(self) -> bool:
        return self.problem is None


_KEPT = 1000
"""Records whose line and id are kept for the message: the first that differ (a whole other file is all)."""


@dataclass
class _Found:
    hashes: list[str | None] = field(default_factory=list)
    where: dict[int, tuple[int, Any]] = field(default_factory=dict)
    """Position -> (line, id), for the first records that are not at their signed place."""
    problems: dict[int, str] = field(default_factory=dict)


def check_file(
    path: Path,
    trusted: str | None = None,
    workers: int | None = None,
    checksum: str | None = None,
    every_record: bool = False,
) -> SignatureCheck:
    """The file against `<stem>.vmig.sig`: an IntegrityError for a damaged or untrusted signature, else a
    report whose `problem` says how the records differ from the signed ones (None when they do not).

    A file whose bytes have the digest its signer bound into the signature is checked by that digest
    (`checksum`, when the caller has it, saves the pass); otherwise, or with `every_record`, every record's
    hash is recomputed."""
    sig_path = signature_path(path)
    signature = read_signature(sig_path)
    check_signer(signature, sig_path, trusted)
    bound = None if every_record else bound_file_digest(signature)
    if bound is not None and bound == (checksum or file_checksum(path)):
        return SignatureCheck(path, signature, signature.record_count, by_digest=True)
    signed = signature.record_hashes
    found = _Found()
    for run in hashed_runs(path, workers):
        start = len(found.hashes)
        for offset, value in enumerate(run.hashes):
            position = start + offset
            if len(found.where) < _KEPT and (position >= len(signed) or value != signed[position]):
                found.where[position] = (run.lines[offset], run.ids[offset])
            if value is None and len(found.problems) < _KEPT:
                found.problems[position] = run.problems[offset]
        found.hashes += run.hashes
    report = SignatureCheck(path, signature, len(found.hashes))
    if found.hashes != signed:
        report.problem = f"{path} does not match its signature {sig_path.name}: {_difference(found, signed)}"
    return report


def _at(found: _Found, position: int) -> str:
    line, record_id = found.where.get(position, (None, None))
    if line is None:
        return f"record {position + 1}"
    return f"line {line}" + (f" (id {record_id!r})" if record_id is not None else "")


def _difference(found: _Found, signed: list[str]) -> str:
    """How the file's records differ from the signed ones, in one line."""
    hashes = found.hashes
    signed_set = set(signed)
    present = {value for value in hashes if value is not None}
    count = f"the file has {len(hashes)} records, the signature {len(signed)}; " if len(hashes) != len(signed) else ""
    if hashes and signed and not present & signed_set:
        return f"{count}none of its records is one the signature covers (a signature for another file?)"
    parts = []
    unsigned = [position for position, value in enumerate(hashes) if value is None or value not in signed_set]
    if unsigned:
        first = unsigned[0]
        why = f": {found.problems[first]}" if first in found.problems else ""
        named = ", ".join(_at(found, position) for position in unsigned[1:NAMED])
        parts.append(
            f"{len(unsigned)} record(s) changed or added, first {_at(found, first)}{why}"
            + (f" (then {named})" if named else "")
        )
    missing = [position for position, value in enumerate(signed) if value not in present]
    if missing:
        parts.append(f"{len(missing)} signed record(s) missing, first the signature's record {missing[0] + 1}")
    if not parts:
        moved = next(iter(found.where), 0)
        what = "records out of the signed order" if not count else "records repeated"
        parts.append(f"{what}, first at {_at(found, moved)}")
    return count + "; ".join(parts)


def check_before_import(path: Path, check: bool, trusted: str | None, checksum: str | None = None) -> list[str]:
    """The import's signature rule; returns warnings, raises IntegrityError where the file must not be imported.

    A signed file is imported only if every record matches the signature (and, with `--trust`, the trusted
    key made it); with `--trust` an unsigned file is refused. `--no-verify` skips it and says so. Without the
    `sign` extra a signature cannot be checked: a warning, or with `--trust` a refusal."""
    sig_path = signature_path(path)
    signed = sig_path.exists()
    if not check:
        return [f"--no-verify: the signature {sig_path.name} was not checked"] if signed or trusted else []
    if not signed:
        if trusted is not None:
            raise IntegrityError(f"{path} is not signed (no {sig_path.name}), and --trust accepts only signed files")
        return []
    try:
        blake3_module()
    except UsageError as exc:
        if trusted is not None:
            raise
        return [f"{sig_path.name} was not checked: {exc}"]
    report = check_file(path, trusted, checksum=checksum)
    if report.problem is not None:
        raise IntegrityError(f"{report.problem} (--no-verify imports it anyway)")
    return []


def signature_status(path: Path, trusted: str | None, checksum: str | None = None) -> tuple[str, str | None]:
    """`vex validate`'s line about the signature, and the problem it is when it fails (None when it does not)."""
    sig_path = signature_path(path)
    if not sig_path.exists():
        if trusted is not None:
            return "none", f"{path} is not signed (no {sig_path.name}), and --trust accepts only signed files"
        return "none", None
    try:
        report = check_file(path, trusted, checksum=checksum)
    except IntegrityError as exc:
        return "INVALID", str(exc)
    if report.problem is not None:
        return "MISMATCH", report.problem
    who = "the trusted key" if trusted is not None else f"{report.signature.public_key} (not pinned: see --trust)"
    how = "the file's bytes are those signed" if report.by_digest else "every record's hash checked"
    return f"OK, {report.records} records signed by {who} ({how})", None
