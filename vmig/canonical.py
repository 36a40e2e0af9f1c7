"""A record line's canonical JSON exactly as the JavaScript vex builds it before hashing (its `core/sign.js`).

The JavaScript vex parses each line with `JSON.parse`, copies the record into a new object with its
own key order (`id, text, vector, model, dims, namespace, agent_id, metadata, created_at, source_store,
vex_version`, then every other key in the order `Object.keys` gives) and hashes `JSON.stringify` of it.
A signature made by one tool verifies with the other only if both produce the same bytes, so this
module reproduces what that pipeline does, including its corners:

- every number is a double: `1.0` prints as `1`, `1e-07` as `1e-7`, `1e21` as `1e+21`, an integer
  beyond 2^53 as the nearest double (`12345678901234567890` → `12345678901234567000`), `-0` as `0`,
  a number too large for a double (`1e400`) as `null`;
- object keys that are array indices (`"0"`, `"42"`) come first, in ascending order, in every object;
- an extra top-level key named like a property of `Object.prototype` (`toString`, `__proto__`, ...) is
  left out (the JavaScript tests `k in obj`, which sees inherited names);
- strings are escaped as `JSON.stringify` escapes them (controls as `\\u00xx`, lone surrogates kept as
  escapes, everything else as UTF-8);
- lines are trimmed as JavaScript's `String.prototype.trim` trims them, and bytes that are not UTF-8
  become U+FFFD, as Node's decoder makes them.

Vectors are most of a record, so the common line takes a fast path: the vector's array is cut out of the
line and read by simdjson into float64 (as `vmig.parse.FastParser` does), printed by orjson in C, and the
few tokens where orjson's notation differs from JavaScript's are rewritten.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NamedTuple

import numpy as np
import orjson

RECORD_KEYS = (
    "id",
    "text",
    "vector",
    "model",
    "dims",
    "namespace",
    "agent_id",
    "metadata",
    "created_at",
    "source_store",
    "vex_version",
)
"""The JavaScript vex's canonical key order; other keys follow in file order."""
_RECORD_KEY_SET = frozenset(RECORD_KEYS)

PROTOTYPE_NAMES = frozenset(
    (
        "constructor",
        "__defineGetter__",
        "__defineSetter__",
        "hasOwnProperty",
        "__lookupGetter__",
        "__lookupSetter__",
        "isPrototypeOf",
        "propertyIsEnumerable",
        "toString",
        "valueOf",
        "__proto__",
        "toLocaleString",
    )
)
"""`Object.getOwnPropertyNames(Object.prototype)` in Node 18-22: extra keys with these names are not hashed."""

_JS_WHITESPACE = (
    "\t\n\x0b\x0c\r \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
"""What `String.prototype.trim` removes (WhiteSpace and LineTerminator of ECMA-262)."""
_ASCII_WHITESPACE = b"\t\n\x0b\x0c\r "
_BOM = b"\xef\xbb\xbf"
_MAX_EXACT_INT = 1 << 53
_MAX_INDEX = (1 << 32) - 2
"""The largest array index: keys up to this are ordered first, numerically."""


class NotARecord(ValueError):
    """A line the JavaScript vex could not hash either (not JSON, or not a JSON object)."""


def js_number(value: float | int) -> str:
    """`JSON.stringify` of a number: Number::toString of the double, `null` when it is not finite."""
    if isinstance(value, int):
        if -_MAX_EXACT_INT <= value <= _MAX_EXACT_INT:
            return str(value)
        try:
            value = float(value)
        except OverflowError:
            return "null"
    if not math.isfinite(value):
        return "null"
    if value == 0:
        return "0"
    text = repr(value)  # the shortest digits that read back as the same double, as JavaScript chooses them
    if "e" not in text:  # Python's plain notation (1e-4 to 1e16) is JavaScript's, less the ".0" of whole numbers
        return text[:-2] if text.endswith(".0") else text
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + (int(exponent) if exponent else 0)
    significant = digits.lstrip("0")
    point -= len(digits) - len(significant)
    significant = significant.rstrip("0")
    count = len(significant)
    if count <= point <= 21:
        body = significant + "0" * (point - count)
    elif 0 < point <= 21:
        body = f"{significant[:point]}.{significant[point:]}"
    elif -6 < point <= 0:
        body = "0." + "0" * -point + significant
    else:
        power = point - 1
        head = significant[0] + (f".{significant[1:]}" if count > 1 else "")
        body = f"{head}e{'+' if power >= 0 else '-'}{abs(power)}"
    return sign + body


_DIGITS = frozenset("0123456789")


def _is_index(key: str) -> bool:
    return key.isascii() and key.isdigit() and (key == "0" or key[0] != "0") and int(key) <= _MAX_INDEX


def js_key_order(keys: list[str]) -> list[str]:
    """Own-property order of a JavaScript object: array indices ascending, then the rest as inserted."""
    indices = [key for key in keys if key[:1] in _DIGITS and _is_index(key)]
    if not indices:
        return keys
    indices.sort(key=int)
    chosen = set(indices)
    return indices + [key for key in keys if key not in chosen]


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _js_string(value: str) -> bytes:
    try:
        return orjson.dumps(value)  # the same escapes as JSON.stringify for any string without lone surrogates
    except TypeError:
        text = json.dumps(value, ensure_ascii=False)
        return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode()


def encode(value: Any, out: list[bytes]) -> None:
    """Append `JSON.stringify` of a parsed JSON value to `out`."""
    kind = type(value)
    if kind is str:
        out.append(_js_string(value))
    elif value is None:
        out.append(b"null")
    elif kind is bool:
        out.append(b"true" if value else b"false")
    elif kind is int or kind is float:
        out.append(js_number(value).encode())
    elif kind is dict:
        _encode_object(value, js_key_order(list(value)), out)
    elif kind is list:
        out.append(b"[")
        for position, item in enumerate(value):
            if position:
                out.append(b",")
            encode(item, out)
        out.append(b"]")
    elif kind is Encoded:
        out.append(value.text)
    else:  # pragma: no cover - parsers give only the types above
        raise TypeError(f"cannot canonicalise {kind.__name__}")


def _encode_object(value: dict[str, Any], keys: list[str], out: list[bytes]) -> None:
    out.append(b"{")
    for position, key in enumerate(keys):
        if position:
            out.append(b",")
        out.append(_js_string(key))
        out.append(b":")
        encode(value[key], out)
    out.append(b"}")


_KEY_ORDERS: dict[tuple[str, ...], list[str]] = {}
"""Canonical key order by a record's own key order: the lines of a file mostly share one."""


def _record_keys(record: dict[str, Any]) -> list[str]:
    own = tuple(record)
    known = _KEY_ORDERS.get(own)
    if known is None:
        keys = [key for key in RECORD_KEYS if key in record]
        keys += [key for key in record if key not in _RECORD_KEY_SET and key not in PROTOTYPE_NAMES]
        known = js_key_order(keys)
        if len(_KEY_ORDERS) < 1024:
            _KEY_ORDERS[own] = known
    return known


_PLAIN = frozenset((str, type(None), bool))


def canonical_record(record: dict[str, Any]) -> bytes:
    """`JSON.stringify(canonicalRecord(record))` of the JavaScript vex, as UTF-8.

    orjson prints it in C once the numbers are in JavaScript's form (`_prepared`), with strings escaped
    as `JSON.stringify` escapes them; a string orjson refuses (a lone surrogate) takes `encode`."""
    keys = _record_keys(record)
    ready = {}
    for key in keys:
        value = record[key]
        ready[key] = value if type(value) in _PLAIN else _prepared(value)
    try:
        return orjson.dumps(ready)
    except TypeError:
        out: list[bytes] = []
        _encode_object(record, keys, out)
        return b"".join(out)


def _prepared(value: Any) -> Any:
    """The value with each number as JavaScript prints it (an orjson Fragment) and each object's keys in
    JavaScript's order; strings, booleans and null as they are."""
    kind = type(value)
    if kind is float:
        return orjson.Fragment(js_number(value))
    if kind is int:
        return value if -_MAX_EXACT_INT <= value <= _MAX_EXACT_INT else orjson.Fragment(js_number(value))
    if kind is dict:
        return {key: _prepared(value[key]) for key in js_key_order(list(value))}
    if kind is list:
        return [_prepared(item) for item in value]
    if kind is Encoded:
        return orjson.Fragment(value.text)
    if kind is np.ndarray:
        return js_numpy(value)
    return value


_NEGATIVE_ZERO = re.compile(rb"(?<=[\[,])-0(?=[,\]])")


class Encoded:
    """JSON text already in canonical form, put in place of a value (a vector printed in bulk)."""

    __slots__ = ("text",)

    def __init__(self, text: bytes) -> None:
        self.text = text


def _fix_exponents(text: bytes) -> bytes:
    """Rewrite each token with an exponent as JavaScript prints its number (`1e-6` → `0.000001`)."""
    pieces: list[bytes] = []
    done = 0
    mark = text.find(b"e")
    while mark >= 0:
        start = max(text.rfind(b",", done, mark), text.rfind(b"[", done, mark)) + 1
        end = mark + 1
        while end < len(text) and text[end] not in b",]":
            end += 1
        pieces += (text[done:start], js_number(float(text[start:end])).encode())
        done = end
        mark = text.find(b"e", done)
    pieces.append(text[done:])
    return b"".join(pieces)


def js_array_text(text: bytes, whole: bool) -> bytes:
    """orjson's text of a flat array of numbers in JavaScript's notation.

    orjson prints the shortest round-trip digits (JavaScript's digits, for float32 and float64 alike); its
    notation differs only for whole numbers (`1.0`, `-0.0`: `whole` says the array holds one) and exponents."""
    if whole:
        text = text.replace(b".0,", b",").replace(b".0]", b"]")
        if b"-0," in text or b"-0]" in text:
            text = _NEGATIVE_ZERO.sub(b"0", text)
    if b"e" in text:  # exponents in JavaScript's range stay, as "1e-7", "1e+21"; the rest become plain
        text = _fix_exponents(text)
    return text


def whole_rows(rows: np.ndarray) -> np.ndarray:
    """For each row of a 2-D array of floats: whether it holds a whole number (its text has a `.0` to drop)."""
    with np.errstate(invalid="ignore"):
        return (rows == np.trunc(rows)).any(axis=1)  # type: ignore[no-any-return]


def js_number_rows(rows: np.ndarray) -> list[bytes]:
    """`JSON.stringify` of each row of a 2-D float64 array, printed by orjson in C (`js_array_text`)."""
    rows = np.ascontiguousarray(rows, dtype=np.float64)
    if not rows.shape[1]:
        return [b"[]"] * rows.shape[0]
    whole = whole_rows(rows)
    return [
        js_array_text(orjson.dumps(rows[index], option=orjson.OPT_SERIALIZE_NUMPY), bool(whole[index]))
        for index in range(rows.shape[0])
    ]


def js_numpy(values: np.ndarray) -> orjson.Fragment:
    """A flat numpy array of numbers (a sparse vector's float32 values) as `JSON.stringify` prints it after
    `JSON.parse` of orjson's text of it."""
    text = orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)
    whole = values.dtype.kind == "f" and bool(whole_rows(values.reshape(1, -1))[0]) if values.size else False
    return orjson.Fragment(js_array_text(text, whole) if values.dtype.kind == "f" else text)


def js_number_array(values: np.ndarray) -> bytes:
    """`JSON.stringify` of a flat float64 array."""
    return js_number_rows(np.asarray(values, dtype=np.float64).reshape(1, -1))[0]


_VECTOR_KEY = b'"vector"'
_PLACEHOLDER = b'"\\u0000vex:sign-vector"'
_PLACEHOLDER_VALUE = orjson.loads(_PLACEHOLDER)


class CanonicalLine(NamedTuple):
    """One non-blank line: its position among the lines given, its canonical JSON and record id, or why it has none."""

    position: int
    text: bytes | None
    id: Any
    problem: str | None


class Canonicaliser:
    """Turns raw lines into canonical record JSON; holds one simdjson parser for the fast path."""

    def __init__(self) -> None:
        try:
            import simdjson
        except ImportError:  # pragma: no cover - a dependency; without it every line takes the orjson path
            self._parser: Any = None
        else:
            self._parser = simdjson.Parser()

    def lines(self, raws: list[bytes]) -> list[CanonicalLine]:
        """The canonical JSON of each line the JavaScript vex hashes (blank lines are skipped).

        Vectors of the same length are printed together (`js_number_rows`)."""
        found: list[tuple[int, dict[str, Any] | None, str | None]] = []
        vectors: dict[int, list[tuple[int, np.ndarray]]] = {}
        for index, raw in enumerate(raws):
            line = trim(raw)
            if not line:
                continue
            try:
                record = self._fast(line) if self._parser is not None else None
                if record is None:
                    record = _parse(line)
                else:
                    vectors.setdefault(len(record["vector"]), []).append((len(found), record["vector"]))
            except NotARecord as exc:
                found.append((index, None, str(exc)))
            else:
                found.append((index, record, None))
        for group in vectors.values():
            texts = js_number_rows(np.stack([vector for _, vector in group]))
            for (position, _), text in zip(group, texts, strict=True):
                record = found[position][1]
                assert record is not None
                record["vector"] = Encoded(text)
        return [
            CanonicalLine(index, None if record is None else canonical_record(record),
                          None if record is None else record.get("id"), problem)
            for index, record, problem in found
        ]  # fmt: skip

    def canonical(self, line: bytes) -> bytes | None:
        """The canonical JSON of one line, None for a blank one; `NotARecord` for a line that is not an object."""
        result = self.lines([line])
        if not result:
            return None
        if result[0].text is None:
            raise NotARecord(result[0].problem)
        return result[0].text

    def _fast(self, line: bytes) -> dict[str, Any] | None:
        """The record with its vector as float64, when the vector is a flat array of numbers (most lines)."""
        key = line.find(_VECTOR_KEY)
        start = line.find(b"[", key + len(_VECTOR_KEY)) if key >= 0 else -1
        if start < 0 or line[key + len(_VECTOR_KEY) : start].strip() != b":":
            return None
        end = line.find(b"]", start)
        if end < 0 or line.find(b"[", start + 1, end) >= 0:
            return None  # unterminated, or a nested array (simdjson would flatten it; it refuses other values)
        try:
            record = orjson.loads(b"".join((line[:start], _PLACEHOLDER, line[end + 1 :])))
        except orjson.JSONDecodeError:
            return None
        if not isinstance(record, dict) or record.get("vector") != _PLACEHOLDER_VALUE:
            return None  # the cut was not the record's own vector (a nested key, or the first of two)
        values = self._numbers(line[start : end + 1])
        if values is None:
            return None
        record["vector"] = values
        return record

    def _numbers(self, array: bytes) -> np.ndarray | None:
        """A flat JSON array of numbers as float64, or None where simdjson refuses it."""
        proxy = None
        try:
            proxy = self._parser.parse(array)
            return np.frombuffer(proxy.as_buffer(of_type="d"), dtype=np.float64)
        except (ValueError, TypeError, AttributeError, RuntimeError):
            import simdjson

            self._parser = simdjson.Parser()  # a failed parse may leave the parser unusable
            return None
        finally:
            del proxy


def trim(line: bytes) -> bytes:
    """`line.trim()` of the JavaScript, on the UTF-8 bytes (a BOM is whitespace there).

    A line as vex writes it (`{...}` and its newline) is only cut short, without scanning it."""
    if line[:1] == b"{" and line[-2:] == b"}\n":
        return line[:-1]
    line = line.strip(_ASCII_WHITESPACE)
    if line.startswith(_BOM):
        line = line[len(_BOM) :].strip(_ASCII_WHITESPACE)
    if line and (line[0] >= 0x80 or line[-1] >= 0x80):
        text = line.decode("utf-8", "replace").strip(_JS_WHITESPACE)
        line = text.encode("utf-8", "surrogatepass")
    return line


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse(line: bytes) -> dict[str, Any]:
    """`JSON.parse` of a trimmed line: orjson, else Python's parser for what orjson refuses and JavaScript takes
    (lone surrogates, integers beyond 64 bits, bytes that are not UTF-8)."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        try:
            record = json.loads(line.decode("utf-8", "replace"), parse_constant=_reject_constant)
        except ValueError as exc:
            raise NotARecord(f"not valid JSON ({exc})") from None
    if not isinstance(record, dict):
        raise NotARecord(f"a JSON {type(record).__name__}, not an object")
    return record
