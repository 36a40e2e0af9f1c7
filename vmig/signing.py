"""Signatures of data files in the JavaScript vex's `.vmig.sig` layout: BLAKE3 per record, a root hash, Ed25519.

The layout is the JavaScript vex's (`core/sign.js` of npm `@vektormemory/vex`), so a file signed by one
tool verifies with the other:

- each record's hash is `blake3:` + the hex BLAKE3 of its canonical JSON (`vmig.canonical`);
- the root hash is `blake3:` + the hex BLAKE3 of `JSON.stringify` of the list of record hashes;
- the signature is Ed25519 over the root hash's text (`blake3:...` as UTF-8), base64;
- the public key is `ed25519:` + the base64 of its 32 bytes; a private key file holds `hex:` + the hex of
  the 32-byte seed (the JavaScript reads the same file with `--key`).

The JavaScript verifier trusts whatever public key the `.sig` carries; vex adds the pinned key
(`--trust`), checked here by `check_signer`.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from vmig.errors import IntegrityError, UsageError
from vmig.paths import stem_of, temporary_path
from vmig.timefmt import now_iso

HASH_PREFIX = "blake3:"
KEY_PREFIX = "ed25519:"
SIG_VEX_VERSION = "1.0.0"
"""What vex writes in the `.sig`'s `vex_version` (the JavaScript writes its own version; neither reads it)."""
_HEX_DIGITS = frozenset("0123456789abcdef")


def blake3_module() -> Any:
    """The blake3 package, or a UsageError saying how to install it."""
    try:
        import blake3
    except ImportError:
        raise UsageError("signing needs the 'blake3' package: pip install 'vex-migrate[sign]'") from None
    return blake3


def _ed25519() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise UsageError("signing needs the 'cryptography' package: pip install 'vex-migrate[sign]'") from None
    return ed25519


def record_hash(canonical: bytes) -> str:
    """`blake3:<hex>` of one record's canonical JSON."""
    return HASH_PREFIX + blake3_module().blake3(canonical).hexdigest()  # type: ignore[no-any-return]


class RootHasher:
    """The root hash built as record hashes arrive: BLAKE3 of `["h1","h2",...]` without holding the list."""

    def __init__(self) -> None:
        self._digest = blake3_module().blake3(b"[")
        self.count = 0

    def add(self, hashes: Iterable[str]) -> None:
        for item in hashes:
            self._digest.update(b'"' + item.encode() + b'"' if not self.count else b',"' + item.encode() + b'"')
            self.count += 1

    def hexdigest(self) -> str:
        final = self._digest.copy()
        final.update(b"]")
        return HASH_PREFIX + final.hexdigest()  # type: ignore[no-any-return]


def root_hash(hashes: Iterable[str]) -> str:
    """`blake3:<hex>` of `JSON.stringify(hashes)`."""
    hasher = RootHasher()
    hasher.add(hashes)
    return hasher.hexdigest()


def signature_path(data_path: Path) -> Path:
    """`memories.vmig.jsonl` -> `memories.vmig.sig`, where the JavaScript vex puts it."""
    return data_path.with_name(f"{stem_of(data_path)}.vmig.sig")


# ── keys ─────────────────────────────────────────────────────────────────────


def default_key_path() -> Path:
    """Where `vex sign` keeps the user's key when `--key` is not given: VEX_SIGNING_KEY, else the user's config
    directory. One key for every file a person signs is what lets others pin it with `--trust`."""
    given = os.environ.get("VEX_SIGNING_KEY")
    if given:
        return Path(given)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(base) / "vex" / "signing.key"


@dataclass(frozen=True)
class SigningKey:
    """A private key and where it came from; its repr never shows the key."""

    path: Path
    _seed: bytes = field(repr=False)

    @property
    def public_key(self) -> str:
        return public_key_text(self._private().public_key().public_bytes_raw())

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self._private().sign(message)).decode()

    def _private(self) -> Any:
        return _ed25519().Ed25519PrivateKey.from_private_bytes(self._seed)


def public_key_text(raw: bytes) -> str:
    return KEY_PREFIX + base64.b64encode(raw).decode()


def load_key(path: Path) -> SigningKey:
    """A key file as the JavaScript vex reads it: `hex:<64 hex>`, `base64:<...>` or bare hex, 32 bytes."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the key file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        if text.startswith("base64:"):
            seed = base64.b64decode(text[len("base64:") :], validate=True)
        else:
            seed = bytes.fromhex(text.removeprefix("hex:"))
    except (ValueError, binascii.Error):
        seed = b""
    if len(seed) != 32:
        raise UsageError(f"the key file {path} does not hold an Ed25519 private key (hex:<64 hex digits>)")
    return SigningKey(path, seed)


def create_key(path: Path) -> SigningKey:
    """A new key written to `path` with permissions 0600 (never replacing a file), and its public key beside it
    in `<path>.pub`, to hand to whoever checks the files with `--trust`."""
    seed = _ed25519().Ed25519PrivateKey.generate().private_bytes_raw()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"the key file {path} appeared while vex was creating it; run again to use it") from None
    except OSError as exc:
        raise UsageError(f"cannot create the key file {path}: {exc.strerror or exc}") from None
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write("hex:" + seed.hex() + "\n")
    key = SigningKey(path, seed)
    public_path(path).write_text(key.public_key + "\n", encoding="utf-8")
    return key


def public_path(key_path: Path) -> Path:
    return key_path.with_name(key_path.name + ".pub")


def trusted_key(value: str) -> str:
    """`--trust`'s public key: `ed25519:<base64>` as given, or read from a file holding one (a `.pub` file, or
    a `.vmig.sig` whose signer is trusted)."""
    text = value.strip()
    if not text.startswith(KEY_PREFIX):
        path = Path(value)
        if not path.is_file():
            raise UsageError(f"--trust takes a public key (ed25519:<base64>) or a file holding one; {value} is neither")
        try:
            content = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
        if content.startswith("{"):
            content = str(_json_object(content.encode(), path).get("public_key", ""))
        if content.startswith(("hex:", "base64:")):
            raise UsageError(f"{path} is a private key; --trust takes the public key ({public_path(path).name})")
        text = content
    if _public_key_bytes(text) is None:
        raise UsageError(f"--trust: {text[:80]!r} is not an Ed25519 public key (ed25519:<base64 of 32 bytes>)")
    return text


def _public_key_bytes(text: str) -> bytes | None:
    try:
        raw = base64.b64decode(text.removeprefix(KEY_PREFIX), validate=True)
    except (ValueError, binascii.Error):
        return None
    return raw if len(raw) == 32 else None


def signature_valid(public_key: str, message: str, signature: str) -> bool:
    """Whether `signature` (base64) is the Ed25519 signature of `message` by `public_key` (`ed25519:<base64>`)."""
    from cryptography.exceptions import InvalidSignature

    raw = _public_key_bytes(public_key)
    try:
        signed = base64.b64decode(signature, validate=True)
    except (ValueError, binascii.Error):
        return False
    if raw is None or len(signed) != 64:
        return False
    try:
        _ed25519().Ed25519PublicKey.from_public_bytes(raw).verify(signed, message.encode())
    except (InvalidSignature, ValueError):
        return False
    return True


# ── the .vmig.sig file ───────────────────────────────────────────────────────


@dataclass
class Signature:
    """A `.vmig.sig` file: the JavaScript vex's keys, in its order; keys vex does not know are kept."""

    record_count: int
    root_hash: str
    record_hashes: list[str]
    public_key: str
    signature: str
    signed_at: str = ""
    vex_version: str = SIG_VEX_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> bytes:
        payload = {
            "vex_version": self.vex_version,
            "signed_at": self.signed_at,
            "record_count": self.record_count,
            "root_hash": self.root_hash,
            "record_hashes": self.record_hashes,
            "public_key": self.public_key,
            "signature": self.signature,
            **self.extra,
        }
        return orjson.dumps(payload, option=orjson.OPT_INDENT_2)


FILE_DIGEST = "vex_file_sha256"
FILE_SIGNATURE = "vex_file_signature"
"""vex's own keys in a `.sig` (the JavaScript ignores them): the SHA-256 of the data file's exact bytes when it was
signed, and the Ed25519 signature, by the same key, of `<root_hash>\n<sha256>`. A file whose bytes still have
that digest holds exactly the records that were signed, so a check needs one pass over its bytes (which an
import makes anyway for the sidecar) instead of recomputing every record's hash; any other file has every
record hash recomputed."""


def file_statement(root: str, file_digest: str) -> bytes:
    return f"{root}\n{file_digest}".encode()


def make_signature(
    key: SigningKey, record_hashes: list[str], root: str | None = None, file_digest: str | None = None
) -> Signature:
    """Sign a file's record hashes (`root`, when the caller built it as the hashes came, saves a pass) and, given
    the file's `sha256:` digest, bind that digest too (`FILE_DIGEST`)."""
    root = root or root_hash(record_hashes)
    extra = {}
    if file_digest is not None:
        extra = {FILE_DIGEST: file_digest, FILE_SIGNATURE: key.sign(file_statement(root, file_digest))}
    return Signature(
        record_count=len(record_hashes),
        root_hash=root,
        record_hashes=record_hashes,
        public_key=key.public_key,
        signature=key.sign(root.encode()),
        signed_at=now_iso(),
        extra=extra,
    )


def bound_file_digest(signature: Signature) -> str | None:
    """The file digest the signer bound into the signature (`FILE_DIGEST`), None when there is none or its
    signature by the signer's key does not verify (then the records are checked one by one)."""
    digest, signed = signature.extra.get(FILE_DIGEST), signature.extra.get(FILE_SIGNATURE)
    if not isinstance(digest, str) or not isinstance(signed, str):
        return None
    statement = file_statement(signature.root_hash, digest).decode()
    return digest if signature_valid(signature.public_key, statement, signed) else None


def write_signature(data_path: Path, signature: Signature) -> Path:
    """Write `<stem>.vmig.sig` atomically: a reader never sees half a signature."""
    target = signature_path(data_path)
    temp = temporary_path(target)
    try:
        temp.write_bytes(signature.as_json())
        os.replace(temp, target)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise UsageError(f"cannot write the signature {target}: {exc.strerror or exc}") from None
    return target


def _json_object(payload: bytes, path: Path) -> dict[str, Any]:
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise IntegrityError(f"signature {path} is damaged: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise IntegrityError(f"signature {path} is damaged: not a JSON object")
    return value


def read_signature(path: Path) -> Signature:
    """A `.vmig.sig` file, checked for shape (not yet against the data): damage is one clear IntegrityError."""
    try:
        payload = path.read_bytes()
    except OSError as exc:
        raise IntegrityError(f"signature {path} cannot be read: {exc.strerror or exc}") from None
    value = _json_object(payload, path)
    problems: list[str] = []
    count = value.get("record_count")
    if type(count) is not int or count < 0:
        problems.append("record_count is not a whole number")
    hashes = value.get("record_hashes")
    if not isinstance(hashes, list) or not all(isinstance(item, str) and _is_hash(item) for item in hashes):
        problems.append("record_hashes is not a list of blake3 hashes")
    root = value.get("root_hash")
    if not isinstance(root, str) or not _is_hash(root):
        problems.append("root_hash is not a blake3 hash")
    public_key = value.get("public_key")
    if not isinstance(public_key, str) or _public_key_bytes(public_key) is None:
        problems.append("public_key is not an Ed25519 public key")
    signed = value.get("signature")
    if not isinstance(signed, str):
        problems.append("signature is missing")
    if problems:
        raise IntegrityError(f"signature {path} is damaged: {'; '.join(problems)}")
    known = ("vex_version", "signed_at", "record_count", "root_hash", "record_hashes", "public_key", "signature")
    return Signature(
        record_count=value["record_count"],
        root_hash=value["root_hash"],
        record_hashes=value["record_hashes"],
        public_key=value["public_key"],
        signature=value["signature"],
        signed_at=str(value.get("signed_at") or ""),
        vex_version=str(value.get("vex_version") or ""),
        extra={key: item for key, item in value.items() if key not in known},
    )


def _is_hash(text: str) -> bool:
    digest = text.removeprefix(HASH_PREFIX)
    return len(text) == len(HASH_PREFIX) + 64 and len(digest) == 64 and set(digest) <= _HEX_DIGITS


def check_signer(signature: Signature, path: Path, trusted: str | None) -> None:
    """The signature's own consistency (root hash of its list, Ed25519 over the root) and, with `--trust`, who
    signed it. A file re-signed with another key passes the JavaScript's check and fails here."""
    if signature.record_count != len(signature.record_hashes):
        raise IntegrityError(
            f"signature {path} is damaged: record_count {signature.record_count} but "
            f"{len(signature.record_hashes)} record hashes"
        )
    if root_hash(signature.record_hashes) != signature.root_hash:
        raise IntegrityError(f"signature {path} is damaged: its root hash is not the hash of its record hashes")
    if not signature_valid(signature.public_key, signature.root_hash, signature.signature):
        raise IntegrityError(f"signature {path} does not verify: the Ed25519 signature of its root hash is invalid")
    if trusted is not None and _public_key_bytes(signature.public_key) != _public_key_bytes(trusted):
        raise IntegrityError(
            f"{path} is signed by {signature.public_key}, not by the trusted key {trusted} "
            "(a valid signature by another key)"
        )
