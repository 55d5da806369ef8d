"""Signed objects (protocol/src/signed.rs) checked in Python: the envelope is canonical CBOR
``[body: bytes, signature: bytes(64)]``; the signature is ed25519 over ``PREFIX || body`` by the
body's own signer key; the object's hash (a spec's id) is blake3 of ``body``."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import blake3
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from . import cbor
from .errors import BadReceipt

MAX_SPEC_BYTES = 64 * 1024
MAX_ENVELOPE_BYTES = MAX_SPEC_BYTES + 256
MAX_RECEIPT_BYTES = 2 * 1024
MAX_REVOCATION_BYTES = 2 * 1024


@dataclass(frozen=True)
class Kind:
    """One kind of signed object: its name, signing prefix, body cap, format and signer field."""

    name: str
    prefix: bytes
    max_body: int
    fmt: int
    signer_field: str


SPEC = Kind("spec", b"atr-spec-v1", MAX_SPEC_BYTES, 1, "publisher")
RECEIPT = Kind("receipt", b"atr-receipt-v1", MAX_RECEIPT_BYTES, 1, "provider")
REVOCATION = Kind("revocation", b"atr-revocation-v1", MAX_REVOCATION_BYTES, 1, "publisher")


class VerifyError(BadReceipt):
    """Bytes that are not a valid signed object; ``reason`` names the failed check
    (``EnvelopeTooLarge``, ``Envelope``, ``BodyTooLarge``, ``Decode``, ``UnknownVersion``,
    ``NonCanonical``, ``Truncated``, ``BadSignature``, ``IdMismatch``), as the Rust ``VerifyError``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass(frozen=True)
class Verified:
    """A verified signed object: its decoded body, exact body bytes, signature and hash."""

    value: dict[str, Any]
    body: bytes
    signature: bytes
    hash: bytes

    @property
    def id_text(self) -> str:
        """The hash as a tool id (``atr_`` + lowercase base32, no padding)."""
        return tool_id_text(self.hash)


def tool_id_text(h: bytes) -> str:
    """``atr_`` + lowercase unpadded base32 of a 32-byte hash."""
    return "atr_" + base64.b32encode(h).decode().rstrip("=").lower()


def tool_id_bytes(text: str) -> bytes:
    """The 32 bytes of a tool id text; :class:`BadReceipt` if it is not one."""
    if not text.startswith("atr_") or len(text) != 56:
        raise BadReceipt(f"{text[:80]!r} is not a tool id")
    try:
        b = base64.b32decode(text[4:].upper() + "====")
    except Exception:
        raise BadReceipt(f"{text[:80]!r} is not a tool id") from None
    if len(b) != 32:
        raise BadReceipt(f"{text[:80]!r} is not a tool id")
    return b


def _split(envelope: bytes) -> tuple[bytes, bytes]:
    if len(envelope) > MAX_ENVELOPE_BYTES:
        raise VerifyError("EnvelopeTooLarge", f"envelope is {len(envelope)} bytes, over the {MAX_ENVELOPE_BYTES}-byte limit")
    try:
        v = cbor.decode(envelope, MAX_ENVELOPE_BYTES)
    except cbor.CborError as e:
        raise VerifyError("Envelope", str(e)) from None
    if not (isinstance(v, list) and len(v) == 2 and isinstance(v[0], bytes) and isinstance(v[1], bytes)):
        raise VerifyError("Envelope", "expected an array [body, signature]")
    if len(v[1]) != 64:
        raise VerifyError("Envelope", f"signature is {len(v[1])} bytes, expected 64")
    return v[0], v[1]


def verify_parts(kind: Kind, body: bytes, signature: bytes) -> Verified:
    """Checks a body and signature, cheapest first: size, strict canonical decoding, format
    version, then the signature under the body's signer key."""
    if len(body) > kind.max_body:
        raise VerifyError("BodyTooLarge", f"{kind.name} body is {len(body)} bytes, over the {kind.max_body}-byte limit")
    try:
        value = cbor.cbor2.loads(body)
    except Exception as e:
        raise VerifyError("Truncated" if "premature" in str(e).lower() or "end of" in str(e).lower() else "Decode", f"{kind.name} body: {e}") from None
    if not isinstance(value, dict) or not isinstance(value.get("v"), int):
        raise VerifyError("Decode", f"{kind.name} body has no format version field `v`")
    if value["v"] != kind.fmt:
        raise VerifyError("UnknownVersion", f"{kind.name} format version {value['v']} is not supported (this client reads {kind.fmt})")
    try:
        again = cbor.encode(value)
    except cbor.CborError as e:
        raise VerifyError("NonCanonical", f"{kind.name} body: {e}") from None
    if again != body:
        raise VerifyError("NonCanonical", f"{kind.name} body is not in canonical form")
    signer = value.get(kind.signer_field)
    if not isinstance(signer, bytes) or len(signer) != 32:
        raise VerifyError("Decode", f"{kind.name} body has no 32-byte `{kind.signer_field}` key")
    try:
        Ed25519PublicKey.from_public_bytes(signer).verify(signature, kind.prefix + body)
    except (InvalidSignature, ValueError):
        raise VerifyError("BadSignature", f"{kind.name} signature does not verify for its signer") from None
    return Verified(value, body, signature, blake3.blake3(body).digest())


def verify_envelope(kind: Kind, envelope: bytes, expected_id: bytes | None = None) -> Verified:
    """Decodes and fully verifies an envelope received from anyone; with ``expected_id``, the
    object's hash must be it (``IdMismatch``)."""
    body, sig = _split(envelope)
    v = verify_parts(kind, body, sig)
    if expected_id is not None and v.hash != expected_id:
        raise VerifyError("IdMismatch", f"expected id {tool_id_text(expected_id)}, got {v.id_text}")
    return v
