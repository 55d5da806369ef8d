"""atr's canonical CBOR (protocol/src/cbor.rs): one byte string for one value.

Rules: shortest integer/length heads, definite lengths, map keys sorted by their encoded bytes
and unique, no tags, a float with an integral value in [-2^63, 2^64) written as that integer,
any other float in the shortest of half/single/double that holds it exactly, no NaN/Infinity.

:func:`decode` is strict: ``cbor2`` decodes, then the value is re-encoded here and must give
the very same bytes (so duplicate keys, unsorted maps, long heads, indefinite lengths and tags
are all refused).
"""

from __future__ import annotations

import math
import struct
from typing import Any

import cbor2

from .errors import AtrError

MAX_DEPTH = 32


class CborError(AtrError):
    """Bytes that are not atr's canonical CBOR, or a value that has no canonical encoding."""

    code = "non_canonical"


def _head(major: int, n: int, out: bytearray) -> None:
    if n < 24:
        out.append((major << 5) | n)
    elif n < 0x100:
        out += bytes([(major << 5) | 24, n])
    elif n < 0x10000:
        out.append((major << 5) | 25)
        out += n.to_bytes(2, "big")
    elif n < 0x1_0000_0000:
        out.append((major << 5) | 26)
        out += n.to_bytes(4, "big")
    elif n < 1 << 64:
        out.append((major << 5) | 27)
        out += n.to_bytes(8, "big")
    else:
        raise CborError("integer outside the 64-bit CBOR range")


def _float(x: float, out: bytearray) -> None:
    if math.isnan(x) or math.isinf(x):
        raise CborError("a float is NaN or infinite")
    if x == math.floor(x) and -(2.0**63) <= x < 2.0**64:
        _int(int(x), out)
        return
    try:
        h = struct.pack(">e", x)
        if struct.unpack(">e", h)[0] == x:
            out.append(0xF9)
            out += h
            return
    except (OverflowError, struct.error):
        pass
    try:
        s = struct.pack(">f", x)
        if struct.unpack(">f", s)[0] == x:
            out.append(0xFA)
            out += s
            return
    except (OverflowError, struct.error):
        pass
    out.append(0xFB)
    out += struct.pack(">d", x)


def _int(i: int, out: bytearray) -> None:
    if i >= 0:
        _head(0, i, out)
    else:
        _head(1, -1 - i, out)


def _enc(v: Any, out: bytearray, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise CborError(f"nesting deeper than {MAX_DEPTH} levels")
    if v is None:
        out.append(0xF6)
    elif v is True:
        out.append(0xF5)
    elif v is False:
        out.append(0xF4)
    elif isinstance(v, int):
        _int(v, out)
    elif isinstance(v, float):
        _float(v, out)
    elif isinstance(v, (bytes, bytearray)):
        _head(2, len(v), out)
        out += v
    elif isinstance(v, str):
        b = v.encode("utf-8")
        _head(3, len(b), out)
        out += b
    elif isinstance(v, (list, tuple)):
        _head(4, len(v), out)
        for item in v:
            _enc(item, out, depth + 1)
    elif isinstance(v, dict):
        entries: list[tuple[bytes, Any]] = []
        for k, val in v.items():
            key = bytearray()
            _enc(k, key, depth + 1)
            entries.append((bytes(key), val))
        entries.sort(key=lambda e: e[0])
        for prev, nxt in zip(entries, entries[1:]):
            if prev[0] == nxt[0]:
                raise CborError("a map holds a duplicate key")
        _head(5, len(entries), out)
        for kb, val in entries:
            out += kb
            _enc(val, out, depth + 1)
    else:
        raise CborError(f"unsupported value: {type(v).__name__}")


def encode(value: Any) -> bytes:
    """The canonical encoding of a JSON-like value (plus ``bytes``)."""
    out = bytearray()
    _enc(value, out, 0)
    return bytes(out)


def decode(data: bytes, max_bytes: int) -> Any:
    """Strictly decodes ``data`` (at most ``max_bytes``): refused unless canonical."""
    if len(data) > max_bytes:
        raise CborError(f"{len(data)} bytes is over the {max_bytes}-byte limit")
    try:
        value = cbor2.loads(data)
    except Exception as e:  # cbor2 raises several types on malformed input
        raise CborError(f"not CBOR: {e}") from None
    try:
        again = encode(value)
    except CborError as e:
        raise CborError(f"not canonical: {e}") from None
    if again != data:
        raise CborError("not in canonical form")
    return value
