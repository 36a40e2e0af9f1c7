"""Signed files: canonical JSON and hashes byte-for-byte the JavaScript vex's, keys, the `.vmig.sig` file."""

from __future__ import annotations

import json
import math
import os
import re
import stat
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest

from tests.jsvex import JsVex, install
from vmig.canonical import Canonicaliser, canonical_record, js_number, js_number_rows
from vmig.errors import IntegrityError, UsageError
from vmig.signing import (
    Signature,
    check_signer,
    create_key,
    load_key,
    make_signature,
    public_path,
    read_signature,
    record_hash,
    root_hash,
    signature_path,
    signature_valid,
    trusted_key,
    write_signature,
)


@pytest.fixture(scope="session")
def js_vex(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JsVex]:
    found = install(tmp_path_factory.mktemp("js-vex"))
    if isinstance(found, str):
        pytest.skip(found)
    yield found


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.1, "0.1"),
        (1.0, "1"),
        (-0.0, "0"),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (1.5e-7, "1.5e-7"),
        (1e-6, "0.000001"),
        (5e-324, "5e-324"),
        (123456789012345680000.0, "123456789012345680000"),
        (1e20, "100000000000000000000"),
        (-2.5e22, "-2.5e+22"),
        (0.30000000000000004, "0.30000000000000004"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (12345678901234567890, "12345678901234567000"),
        (2**53, "9007199254740992"),
        (2**53 + 1, "9007199254740992"),
        (10**400, "null"),
        (math.inf, "null"),
        (math.nan, "null"),
        (-7, "-7"),
        (100.0, "100"),
    ],
)
def test_numbers_print_as_javascript_prints_them(value: float, text: str) -> None:
    assert js_number(value) == text


def _random_doubles(count: int, seed: int) -> np.ndarray:
    """Doubles from every binade: random bit patterns (finite ones), float32 values, whole numbers, zeros."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2**63, size=count, dtype=np.uint64) | (rng.integers(0, 2, size=count, dtype=np.uint64) << 63)
    values = bits.view(np.float64)
    values = values[np.isfinite(values)]
    small = rng.standard_normal(count).astype(np.float32).astype(np.float64) * 10.0 ** rng.integers(-12, 25, count)
    whole = np.round(rng.standard_normal(count) * 1000)
    return np.concatenate([values, small, whole, [0.0, -0.0, 1e-4, 9.999999999999999e-5, 1e15, 999999999999999.9]])


def test_a_vector_printed_in_bulk_matches_number_by_number() -> None:
    values = _random_doubles(3000, seed=3)
    rows = values[: len(values) // 8 * 8].reshape(-1, 8)
    for row, text in zip(rows, js_number_rows(rows), strict=True):
        assert text == ("[" + ",".join(js_number(float(v)) for v in row) + "]").encode()


def test_canonical_key_order_extras_and_javascript_corners() -> None:
    record = orjson.loads(
        b'{"score":0.5,"vector":[1.0,2.5],"id":"a","metadata":{"b":1.0,"10":2,"2":"x"},"toString":1,'
        b'"__proto__":{"x":1},"zeta":null,"7":true,"text":"t\\u00e9\\u0001"}'
    )
    assert canonical_record(record) == (
        b'{"7":true,"id":"a","text":"t\xc3\xa9\\u0001","vector":[1,2.5],"metadata":{"2":"x","10":2,"b":1},'
        b'"score":0.5,"zeta":null}'
    )


def test_lines_as_the_javascript_reads_them() -> None:
    canonical = Canonicaliser()
    lines = [b"  \r\n", b'\xef\xbb\xbf{"id":"bom"}\r\n', b'\xc2\xa0{"id":"x","vector":[ 1e-07 , -0.0 ]}\n']
    found = canonical.lines(lines)
    assert [(line.position, line.text, line.id) for line in found] == [
        (1, b'{"id":"bom"}', "bom"),
        (2, b'{"id":"x","vector":[1e-7,0]}', "x"),
    ]
    bad = canonical.lines([b'{"id": 1,}', b"[1, 2]"])
    assert [line.text for line in bad] == [None, None]
    assert "not valid JSON" in (bad[0].problem or "") and "not an object" in (bad[1].problem or "")


def test_hashes_root_and_signature(tmp_path: Path) -> None:
    key = create_key(tmp_path / "keys" / "me.key")
    assert stat.S_IMODE(os.stat(key.path).st_mode) == 0o600
    assert key.path.read_text().startswith("hex:") and len(key.path.read_text().strip()) == 4 + 64
    assert public_path(key.path).read_text().strip() == key.public_key
    assert "hex:" not in repr(key) and key.path.read_text().strip()[4:] not in repr(key)
    assert load_key(key.path).public_key == key.public_key

    hashes = [record_hash(b'{"id":"a"}'), record_hash(b'{"id":"b"}')]
    assert hashes[0].startswith("blake3:") and len(hashes[0]) == 7 + 64
    assert root_hash(hashes) == record_hash(orjson.dumps(hashes))
    signed = make_signature(key, hashes)
    assert signature_valid(signed.public_key, signed.root_hash, signed.signature)
    assert not signature_valid(signed.public_key, root_hash(hashes[::-1]), signed.signature)

    data = tmp_path / "m.vmig.jsonl"
    written = write_signature(data, signed)
    assert written == signature_path(data) == tmp_path / "m.vmig.sig"
    back = read_signature(written)
    assert back.record_hashes == hashes and back.public_key == key.public_key
    check_signer(back, written, trusted=None)
    check_signer(back, written, trusted=trusted_key(str(public_path(key.path))))
    other = create_key(tmp_path / "other.key")
    with pytest.raises(IntegrityError, match="not by the trusted key"):
        check_signer(back, written, trusted=other.public_key)


def test_damaged_signature_files_fail_clearly(tmp_path: Path) -> None:
    key = create_key(tmp_path / "k.key")
    path = write_signature(tmp_path / "m.vmig.jsonl", make_signature(key, [record_hash(b"{}")]))
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(IntegrityError, match="damaged: not valid JSON"):
        read_signature(path)
    payload = orjson.loads(whole)
    payload["record_hashes"] = ["md5:abc"]
    path.write_bytes(orjson.dumps(payload))
    with pytest.raises(IntegrityError, match="record_hashes is not a list of blake3 hashes"):
        read_signature(path)
    payload = orjson.loads(whole)
    payload["record_hashes"].append(record_hash(b"[]"))
    path.write_bytes(orjson.dumps(payload))
    with pytest.raises(IntegrityError, match="record_count 1 but 2 record hashes"):
        check_signer(read_signature(path), path, None)
    payload["record_count"] = 2
    path.write_bytes(orjson.dumps(payload))
    with pytest.raises(IntegrityError, match="root hash is not the hash of its record hashes"):
        check_signer(read_signature(path), path, None)
    payload = orjson.loads(whole)
    payload["signature"] = payload["signature"][:-4] + "AAA="
    path.write_bytes(orjson.dumps(payload))
    with pytest.raises(IntegrityError, match="Ed25519 signature of its root hash is invalid"):
        check_signer(read_signature(path), path, None)


def test_key_files_and_trust_arguments(tmp_path: Path) -> None:
    seed = bytes(range(32))
    (tmp_path / "a.key").write_text("hex:" + seed.hex())
    (tmp_path / "b.key").write_text(seed.hex() + "\n")
    import base64

    (tmp_path / "c.key").write_text("base64:" + base64.b64encode(seed).decode())
    keys = {load_key(tmp_path / name).public_key for name in ("a.key", "b.key", "c.key")}
    assert len(keys) == 1
    (tmp_path / "bad.key").write_text("hex:1234")
    with pytest.raises(UsageError, match="does not hold an Ed25519 private key"):
        load_key(tmp_path / "bad.key")
    with pytest.raises(UsageError, match="is a private key"):
        trusted_key(str(tmp_path / "a.key"))
    with pytest.raises(UsageError, match="neither"):
        trusted_key("no-such-file")
    with pytest.raises(UsageError, match="not an Ed25519 public key"):
        trusted_key("ed25519:AAAA")
    with pytest.raises(UsageError, match="appeared"):
        create_key(tmp_path / "a.key")  # never replaces a key


_EDGE_LINES = [
    b'{"id":"n1","text":"plain","vector":[0.1,1.0,-0.0,1e-07,1e21,5e-324,123456789012345680000,1E+2],"dims":8}',
    b'{"id":"n2","vector":[0.10000000149011612,-0.043,3e-8],"metadata":{"importance":1.0,"big":12345678901234567890},'
    b'"score":null,"vex_version":"1.0.0","modality":"text","created_at":"2025-01-15T10:23:00.000Z"}',
    b'{"metadata":{"b":2,"a":1,"3":"three","1":"one"},"id":"n3","toString":"x","9":[1.50,{"2":0.000001}]}',
    b'{"id":"n4","text":"\\u00e9\\ud83d\\ude00\\u2028 \\ud800 lone","vector":[]}',
    b'  {"id":"n5","dup":1,"dup":2.0}  \r',
    b"",
    b'{"id":"n6","vector":[1e400],"x":-1e-400}',
    b'{"id":7,"vector":[9007199254740993,18446744073709551616]}',
]


def _signed_by_js(js_vex: JsVex, tmp_path: Path, lines: list[bytes]) -> tuple[Path, dict[str, object]]:
    data = tmp_path / "edge.vmig.jsonl"
    data.write_bytes(b"\n".join(lines) + b"\n")
    return data, js_vex.sign(data)


def test_record_hashes_match_the_javascript_vex(js_vex: JsVex, tmp_path: Path) -> None:
    """Hashes the JavaScript vex computes for lines full of corner cases, recomputed here."""
    rng = np.random.default_rng(5)
    vectors = [_random_doubles(40, seed) for seed in range(20)]
    lines = list(_EDGE_LINES)
    for index, values in enumerate(vectors):
        values = values[rng.permutation(len(values))[:64]]
        tokens = [repr(float(v)) if index % 2 else js_number(float(v)) for v in values]
        lines.append(b'{"id":"r%d","vector":[%s],"metadata":{"w":%s}}' % (index, ",".join(tokens).encode(), b"0.25"))
    data, signed = _signed_by_js(js_vex, tmp_path, lines)
    found = [line for line in Canonicaliser().lines(lines) if line.text is not None]
    ours = [record_hash(line.text) for line in found if line.text is not None]
    assert ours == signed["record_hashes"]
    assert root_hash(ours) == signed["root_hash"]
    assert signature_valid(str(signed["public_key"]), str(signed["root_hash"]), str(signed["signature"]))
    sig = read_signature(signature_path(data))
    check_signer(sig, signature_path(data), trusted=str(signed["public_key"]))


def test_float_bits_round_trip_through_both() -> None:
    """The double behind each printed number is the one JavaScript would read back (no digits lost)."""
    values = _random_doubles(500, seed=9)
    for value in values:
        text = js_number(float(value))
        assert struct.pack("<d", float(text)) == struct.pack("<d", float(value) if value != 0 else 0.0)


def test_signature_repr_keeps_the_layout() -> None:
    sig = Signature(1, "blake3:" + "0" * 64, ["blake3:" + "1" * 64], "ed25519:" + "A" * 43 + "=", "c2ln")
    assert list(orjson.loads(sig.as_json())) == [
        "vex_version",
        "signed_at",
        "record_count",
        "root_hash",
        "record_hashes",
        "public_key",
        "signature",
    ]


# ── the command line ─────────────────────────────────────────────────────────


@pytest.fixture
def signed_file(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """A 40-record file (no sidecar: the signature alone guards it), signed with a key made by `vex sign`."""
    from tests.conftest import run_vex
    from tests.records import sample_records, to_batch
    from vmig.writer import VmigWriter

    data = tmp_path / "mem.vmig.jsonl"
    with VmigWriter(data, workers=0) as writer:
        writer.write_batch(to_batch(sample_records(40, odd_ones=False)))
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "VEX_SIGNING_KEY": ""}
    done = run_vex("sign", str(data), env=env)
    assert done.returncode == 0, done.stderr
    key = tmp_path / "config" / "vex" / "signing.key"
    assert f"new signing key written to {key}" in done.stderr
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert key.read_text().strip()[4:] not in done.stdout + done.stderr  # the private key is never printed
    assert "signed 40 records" in done.stdout and (tmp_path / "mem.vmig.sig").exists()
    again = run_vex("sign", str(data), env=env)  # the same key the second time, nothing new said
    assert again.returncode == 0 and "new signing key" not in again.stderr
    return data, key, env


def _validate(data: Path, *flags: str) -> tuple[int, str]:
    """Exit code and the one problem line of `vex validate`."""
    from tests.conftest import run_vex

    done = run_vex("validate", str(data), *flags)
    problems = [line for line in done.stderr.splitlines() if line.startswith("problem: ")]
    return done.returncode, "\n".join(problems)


def _import(data: Path, tmp_path: Path, *flags: str) -> tuple[int, str]:
    from tests.conftest import run_vex

    done = run_vex("import", "--from", str(data), "--to", "vektor", "--db", str(tmp_path / "t.db"), *flags)
    errors = [line for line in done.stderr.splitlines() if line.startswith("vex: error:")]
    return done.returncode, "\n".join(errors)


def _lines(data: Path) -> list[bytes]:
    return data.read_bytes().splitlines(keepends=True)


def test_a_signed_file_validates_and_imports(signed_file: tuple[Path, Path, dict[str, str]], tmp_path: Path) -> None:
    data, key, _ = signed_file
    from tests.conftest import run_vex

    done = run_vex("validate", str(data), "--trust", str(public_path(key)))
    assert done.returncode == 0, done.stderr
    assert "signature: OK, 40 records signed by the trusted key (the file's bytes are those signed)" in done.stdout
    done = run_vex("import", "--from", str(data), "--to", "vektor", "--db", str(tmp_path / "t.db"), "--trust",
                   public_path(key).read_text().strip(), "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout)["upserted"] == 40


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("byte", r"1 record\(s\) changed or added, first line 3 \(id 'mem-0002'\)"),
        ("removed", r"the file has 39 records, the signature 40; 1 signed record\(s\) missing, first the signature's "
                    r"record 5"),
        ("reordered", r"records out of the signed order, first at line 2 \(id 'mem-0002'\)"),
        ("added", r"the file has 41 records, the signature 40; 1 record\(s\) changed or added, first line 41"),
    ],
)  # fmt: skip
def test_changed_records_fail_naming_them(
    signed_file: tuple[Path, Path, dict[str, str]], tmp_path: Path, damage: str, message: str
) -> None:
    data, key, _ = signed_file
    lines = _lines(data)
    if damage == "byte":
        at = lines[2].index(b'"vector":[') + 11
        digit = lines[2][at : at + 1]
        lines[2] = lines[2][:at] + (b"7" if digit != b"7" else b"8") + lines[2][at + 1 :]
    elif damage == "removed":
        del lines[4]
    elif damage == "reordered":
        lines[1], lines[2] = lines[2], lines[1]
    else:
        lines.append(lines[0].replace(b'"mem-0000"', b'"mem-new"'))
    data.write_bytes(b"".join(lines))
    code, problem = _validate(data)
    assert code == 3 and problem.count("\n") == 0
    assert re.search(message, problem), problem
    code, error = _import(data, tmp_path, "--trust", str(public_path(key)))
    assert code == 3 and error.count("\n") == 0 and re.search(message, error), error
    assert "--no-verify imports it anyway" in error
    assert not (tmp_path / "t.db").exists()  # refused before anything was written


def test_a_file_re_signed_by_another_key_fails_under_trust(
    signed_file: tuple[Path, Path, dict[str, str]], tmp_path: Path
) -> None:
    from tests.conftest import run_vex

    data, key, _ = signed_file
    lines = _lines(data)
    data.write_bytes(b"".join(lines[:-1]))  # someone edits the file and signs it again with a key of their own
    done = run_vex("sign", str(data), "--key", str(tmp_path / "mallory.key"))
    assert done.returncode == 0 and f"new signing key written to {tmp_path / 'mallory.key'}" in done.stderr
    assert _validate(data)[0] == 0  # the signature itself is valid: without a pinned key it passes
    code, problem = _validate(data, "--trust", str(public_path(key)))
    assert code == 3 and "not by the trusted key" in problem and problem.count("\n") == 0
    code, error = _import(data, tmp_path, "--trust", str(public_path(key)))
    assert code == 3 and "not by the trusted key" in error


def test_a_damaged_or_foreign_signature_fails(signed_file: tuple[Path, Path, dict[str, str]], tmp_path: Path) -> None:
    from tests.conftest import run_vex
    from tests.records import sample_records, to_batch
    from vmig.writer import VmigWriter

    data, key, env = signed_file
    sig = signature_path(data)
    whole = sig.read_bytes()
    sig.write_bytes(whole[: len(whole) - 40])
    code, problem = _validate(data)
    assert code == 3 and "is damaged: not valid JSON" in problem
    code, error = _import(data, tmp_path)
    assert code == 3 and "is damaged: not valid JSON" in error

    other = tmp_path / "other.vmig.jsonl"
    with VmigWriter(other, workers=0) as writer:
        writer.write_batch(to_batch(sample_records(40, odd_ones=False, seed=99)))
    assert run_vex("sign", str(other), env=env).returncode == 0
    signature_path(other).replace(sig)  # the other file's signature next to this one
    code, problem = _validate(data, "--trust", str(public_path(key)))
    assert code == 3 and "a signature for another file?" in problem
    code, error = _import(data, tmp_path)
    assert code == 3 and "a signature for another file?" in error


def test_trust_refuses_an_unsigned_file_and_no_verify_says_so(
    signed_file: tuple[Path, Path, dict[str, str]], tmp_path: Path
) -> None:
    data, key, _ = signed_file
    lines = _lines(data)
    data.write_bytes(b"".join(lines[:-1]))
    from tests.conftest import run_vex

    done = run_vex("import", "--from", str(data), "--to", "vektor", "--db", str(tmp_path / "u.db"), "--no-verify")
    assert done.returncode == 0 and "--no-verify: the signature mem.vmig.sig was not checked" in done.stderr
    signature_path(data).unlink()
    code, error = _import(data, tmp_path, "--trust", str(public_path(key)))
    assert code == 3 and "is not signed (no mem.vmig.sig), and --trust accepts only signed files" in error
    code, problem = _validate(data, "--trust", str(public_path(key)))
    assert code == 3 and "is not signed" in problem
    assert _validate(data)[0] == 0  # unsigned without --trust: nothing to check


# ── signing while writing ────────────────────────────────────────────────────


@pytest.mark.parametrize("workers", [0, 2])
def test_the_writer_hashes_records_as_a_later_check_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """The hashes made while writing (here and in the formatting workers) are those a check of the file makes."""
    from tests.records import sample_records, to_batch
    from vmig import writer as writer_module
    from vmig.recordhash import hashed_runs
    from vmig.writer import VmigWriter

    monkeypatch.setattr(writer_module, "WARM_FROM_ROWS", 0)  # the workers from the first record on
    monkeypatch.setattr(writer_module, "SPOOL_FROM_ROWS", 0)
    records = sample_records(2500, dims=16)
    data = tmp_path / "w.vmig.jsonl"
    writer = VmigWriter(data, default_source="t", workers=workers, sign=True).open()
    for start in range(0, len(records), 1000):
        writer.write_batch(to_batch(records[start : start + 1000]))
    writer.write_batch(_odd_numbers_batch())
    writer.commit()
    assert writer._spool is None  # the spool was used and closed (workers=2) or never made (workers=0)
    rechecked = [value for run in hashed_runs(data, workers=0) for value in run.hashes]
    assert writer.record_hashes == rechecked and len(rechecked) == len(records) + 3


def _odd_numbers_batch() -> object:
    """Records whose numbers print differently in Python, orjson and JavaScript: whole numbers, -0, exponents
    on both sides of JavaScript's range, a sparse vector, extra keys (one an array index), a big integer."""
    from vmig.batch import build_batch

    odd = np.array([0.0, -0.0, 1.0, 1e-7, 3e-5, 1e10, -2.5e12, 0.1, 1e21, 123456.0, 5e-40, 7.0], dtype=np.float32)
    return build_batch(
        ["odd-1", "odd-2", "odd-3"],
        vectors=[odd, odd[::-1].copy(), odd * 3],
        metadata=['{"w": 1.0, "big": 1e16, "tiny": 1e-7, "2": "x"}', None, '{"n": -0.0}'],
        score=[1.0, None, 1e-9],
        sparse_vector=[{"indices": [3, 1], "values": [1.0, 2.5e-8]}, None, {"indices": [0], "values": [-0.0]}],
        extra=['{"modality": "text", "7": 1.0, "toString": 2}', '{"huge": 12345678901234567890}', None],
    )


def test_export_sign_writes_a_signature_that_verifies(tmp_path: Path) -> None:
    from tests.conftest import run_vex
    from tests.records import sample_records, write_vmig

    source = write_vmig(tmp_path / "src.vmig.jsonl", sample_records(30))
    out = tmp_path / "out.vmig.jsonl"
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "VEX_SIGNING_KEY": ""}
    done = run_vex("export", "--from", "jsonl", "--path", str(source), "--output", str(out), "--sign", env=env)
    assert done.returncode == 0, done.stderr
    assert "new signing key written to" in done.stderr and signature_path(out).exists()
    key = tmp_path / "config" / "vex" / "signing.key"
    code, problem = _validate(out, "--trust", str(public_path(key)))
    assert code == 0, problem
    sig = read_signature(signature_path(out))
    assert sig.record_count == 32

    # exported again without --sign: the old signature would not match the new file, so it goes
    done = run_vex("export", "--from", "jsonl", "--path", str(source), "--output", str(out), "--limit", "5")
    assert done.returncode == 0, done.stderr
    assert not signature_path(out).exists()
    done = run_vex("export", "--from", "jsonl", "--path", str(source), "--output", str(out), "--key", "k.key")
    assert done.returncode == 2 and "--key goes with --sign" in done.stderr


# ── both ways with the JavaScript vex ────────────────────────────────────────


def test_files_signed_by_the_javascript_vex_verify_here(js_vex: JsVex, tmp_path: Path) -> None:
    from tests.records import sample_records, write_vmig

    data = write_vmig(tmp_path / "js.vmig.jsonl", sample_records(40))
    key = tmp_path / "js.key"
    key.write_text("hex:" + bytes(range(1, 33)).hex())
    signed = js_vex.sign(data, key)
    assert signed["public_key"] == load_key(key).public_key  # the same key file, read the same way
    code, problem = _validate(data, "--trust", str(signed["public_key"]))
    assert code == 0, problem
    lines = _lines(data)
    data.write_bytes(b"".join([*lines[:3], lines[3].replace(b'"mem-0003"', b'"mem-0333"'), *lines[4:]]))
    code, problem = _validate(data, "--trust", str(signed["public_key"]))
    assert code == 3 and "first line 4 (id 'mem-0333')" in problem


def test_files_signed_here_verify_with_the_javascript_vex(js_vex: JsVex, tmp_path: Path) -> None:
    from tests.conftest import run_vex
    from tests.records import sample_records, write_vmig

    source = write_vmig(tmp_path / "src.vmig.jsonl", sample_records(40))
    out = tmp_path / "ours.vmig.jsonl"
    key = tmp_path / "ours.key"
    done = run_vex("export", "--from", "jsonl", "--path", str(source), "--output", str(out), "--sign", "--key",
                   str(key))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert js_vex.verify(out) == {"valid": True, "errors": []}
    edge = tmp_path / "edge.vmig.jsonl"
    edge.write_bytes(b"\n".join(_EDGE_LINES) + b"\n")
    assert run_vex("sign", str(edge), "--key", str(key)).returncode == 0
    assert js_vex.verify(edge) == {"valid": True, "errors": []}
    lines = _lines(out)
    out.write_bytes(b"".join(lines[:1] + lines[2:]))  # and a change is caught there too
    assert js_vex.verify(out)["valid"] is False

    from vmig.writer import VmigWriter

    odd = tmp_path / "odd.vmig.jsonl"  # hashes made while writing numbers that print differently in each language
    writer = VmigWriter(odd, workers=0, sign=True).open()
    writer.write_batch(_odd_numbers_batch())
    writer.commit()
    assert writer.record_hashes is not None
    write_signature(odd, make_signature(load_key(key), writer.record_hashes))
    assert js_vex.verify(odd) == {"valid": True, "errors": []}


def test_the_bound_file_digest_shortcut_and_its_limits(signed_file: tuple[Path, Path, dict[str, str]]) -> None:
    """Unchanged bytes are checked by their digest; the same records written differently are checked one by one;
    a digest swapped for a changed file's, without the signer's key, does not pass."""
    from tests.conftest import run_vex
    from vmig.sidecar import file_checksum
    from vmig.sigcheck import check_file
    from vmig.signing import FILE_DIGEST

    data, _key, _ = signed_file
    assert check_file(data).by_digest and check_file(data).ok
    full = check_file(data, every_record=True)
    assert full.ok and not full.by_digest and full.records == 40

    spaced_lines = [json.dumps(json.loads(line), separators=(", ", " : ")).encode() + b"\n" for line in _lines(data)]
    data.write_bytes(b"".join(spaced_lines))  # the same JSON values, written otherwise
    spaced = check_file(data)
    assert spaced.ok and not spaced.by_digest
    assert "every record's hash checked" in run_vex("validate", str(data)).stdout

    lines = _lines(data)
    data.write_bytes(b"".join(lines[:-1]))
    sig = signature_path(data)
    payload = orjson.loads(sig.read_bytes())
    payload[FILE_DIGEST] = file_checksum(data)  # claims the changed file, but the statement is not re-signed
    sig.write_bytes(orjson.dumps(payload))
    forged = check_file(data)
    assert not forged.by_digest and forged.problem is not None and "1 signed record(s) missing" in forged.problem


def test_compressed_files_are_signed_by_their_records_and_damaged_lines_are_not_signed(tmp_path: Path) -> None:
    from tests.conftest import run_vex
    from tests.records import sample_records, to_batch
    from vmig.sigcheck import check_file
    from vmig.writer import VmigWriter

    key = str(tmp_path / "k.key")
    for name in ("c.vmig.jsonl.gz", "c.vmig.jsonl.zst"):
        data = tmp_path / name
        with VmigWriter(data, workers=0) as writer:
            writer.write_batch(to_batch(sample_records(30)))
        done = run_vex("sign", str(data), "--key", key, "--json")
        assert done.returncode == 0, done.stderr
        assert orjson.loads(done.stdout)["records"] == 32
        assert signature_path(data) == tmp_path / "c.vmig.sig"
        assert check_file(data, every_record=True).ok
    damaged = tmp_path / "d.vmig.jsonl"
    damaged.write_bytes(b'{"id":"a"}\n\n{"id": "b",\n{"id":"c"}\n')
    done = run_vex("sign", str(damaged), "--key", key)
    assert done.returncode == 3 and not signature_path(damaged).exists()
    assert "line 3 is not valid JSON" in done.stderr and "cannot be signed" in done.stderr


def test_an_export_job_signs_with_the_default_key_and_stops_without_one(tmp_path: Path) -> None:
    """The job itself (as a Prefect flow runs it): `sign` without a key path uses the user's key; no key at all
    stops it before anything is read or written."""
    from engine.jobs import export_job
    from engine.local import LocalRunner
    from engine.params import ExportParams, StoreSpec
    from tests.records import sample_records, write_vmig

    source = write_vmig(tmp_path / "src.vmig.jsonl", sample_records(5, odd_ones=False))
    out = tmp_path / "out.vmig.jsonl"
    params = ExportParams(source=StoreSpec(store="jsonl", options={"path": source}), output=out, sign=True)
    key = tmp_path / "default.key"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VEX_SIGNING_KEY", str(key))
        with pytest.raises(UsageError, match="cannot read the key file"):
            export_job(params, LocalRunner())
        assert not out.exists()
        create_key(key)
        export_job(params, LocalRunner())
    assert read_signature(signature_path(out)).public_key == load_key(key).public_key
