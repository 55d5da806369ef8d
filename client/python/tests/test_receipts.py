"""Signed-object checks in Python against protocol/tests/vectors.json (written by the Rust
crate): every valid vector verifies with the same id, every invalid one is refused for the
same reason; canonical CBOR round-trips; a tampered receipt is refused."""

from __future__ import annotations

import pytest

from atr import cbor
from atr.keys import key_of_peer_id, peer_id
from atr.signed import RECEIPT, REVOCATION, SPEC, VerifyError, tool_id_text, verify_envelope, verify_parts

from conftest import vectors

KINDS = {"spec": SPEC, "receipt": RECEIPT, "revocation": REVOCATION}
VALID = [v for v in vectors() if not v.get("invalid")]
INVALID = [v for v in vectors() if v.get("invalid")]


@pytest.mark.parametrize("v", VALID, ids=[str(v["description"]) for v in VALID])
def test_valid_vector_verifies_with_its_id(v: dict) -> None:
    env = bytes.fromhex(v["envelope_hex"])
    got = verify_envelope(KINDS[v["kind"]], env)
    assert got.hash.hex() == v["id_hex"]
    assert got.id_text == v["id_text"] == tool_id_text(bytes.fromhex(v["id_hex"]))
    assert got.body.hex() == v["spec_cbor_hex"]
    assert got.signature.hex() == v["signature_hex"]
    assert cbor.encode(got.value) == got.body
    assert peer_id(bytes.fromhex(v["public_key_hex"])) == v["peer_id"]
    assert key_of_peer_id(v["peer_id"]).hex() == v["public_key_hex"]


@pytest.mark.parametrize("v", INVALID, ids=[str(v["description"]) for v in INVALID])
def test_invalid_vector_is_refused_for_its_reason(v: dict) -> None:
    body = bytes.fromhex(v["spec_cbor_hex"])
    sig = bytes.fromhex(v["signature_hex"])
    kind = KINDS[v["kind"]]
    with pytest.raises(VerifyError) as e:
        if v["expected_error"] == "IdMismatch":
            from atr.signed import Verified  # noqa: F401

            got = verify_parts(kind, body, sig)
            expected = bytes.fromhex(v["id_hex"])
            if got.hash != expected:
                raise VerifyError("IdMismatch", "id")
        else:
            verify_parts(kind, body, sig)
    want = {"Truncated": ("Truncated", "Decode")}.get(v["expected_error"], (v["expected_error"],))
    assert e.value.reason in want, e.value


def test_receipt_envelope_bit_flips_are_refused() -> None:
    v = next(x for x in VALID if x["kind"] == "receipt")
    env = bytearray(bytes.fromhex(v["envelope_hex"]))
    verify_envelope(RECEIPT, bytes(env))
    for i in (10, len(env) // 2, len(env) - 1):
        bad = bytearray(env)
        bad[i] ^= 0x01
        with pytest.raises(VerifyError):
            verify_envelope(RECEIPT, bytes(bad))


@pytest.mark.parametrize(
    "value,hexbytes",
    [(0, "00"), (23, "17"), (24, "1818"), (-1, "20"), (1.0, "01"), (1.5, "f93e00"), (0.1, "fb3fb999999999999a"), (100000.5, "fa47c35040"), ({"b": 1, "a": 2}, "a2616102616201"), ({"aa": 1, "b": 2}, "a261620262616101")],
)
def test_canonical_cbor_encoding(value: object, hexbytes: str) -> None:
    assert cbor.encode(value).hex() == hexbytes


def test_non_canonical_cbor_is_refused() -> None:
    for bad in ("1801", "a2616201616102", "9f01ff", "c11a5f5e1000", "f97e00"):
        with pytest.raises(cbor.CborError):
            cbor.decode(bytes.fromhex(bad), 1024)


def test_policy_hash_matches_the_rust_vector() -> None:
    """The receipt vector binds the Rust-computed policy hash of the minimal spec vector."""
    from atr.receipt import policy_hash

    spec = next(x for x in VALID if x["kind"] == "spec")
    receipt = next(x for x in VALID if x["kind"] == "receipt")
    s = verify_envelope(SPEC, bytes.fromhex(spec["envelope_hex"])).value
    r = verify_envelope(RECEIPT, bytes.fromhex(receipt["envelope_hex"])).value
    assert r["tool"] == bytes.fromhex(spec["id_hex"])
    assert r["policy_hash"] == policy_hash(s)
    assert r["usage"]["wall_ms"] == 40
    looser = {**s, "permissions": {"egress": [{"host": "exfil.example", "port": 443}]}}
    assert policy_hash(looser) != policy_hash(s)
    # a spec with permissions round-trips through the Python canonical encoder
    permitted = next(x for x in VALID if "permissions" in x["description"])
    p = verify_envelope(SPEC, bytes.fromhex(permitted["envelope_hex"])).value
    assert p["permissions"]["secrets"] == ["API_TOKEN"]
    assert policy_hash(p) != policy_hash(s)
