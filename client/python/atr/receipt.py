"""Receipt checks done in Python, independently of the node (the rules of
``atr_protocol::receipt::verify_receipt`` and ``atr_client::verify_invocation``).

An invocation answer proves itself when: the receipt envelope verifies (canonical CBOR, ed25519
by the key in its ``provider`` field); that key is the provider the answer names; the decoded
receipt equals the answer's ``receipt`` object; it names the tool that ran (the id asked for);
its input hash is blake3 of the input sent and its output hash and length those of the output
received (the exact bytes are the compact JSON serialization the provider hashed, with object
keys in the order received or sorted); its status is the answer's; and its image digest and
limits are those the tool's signed spec pins, and its ``policy_hash`` is the hash of the policy the
spec declares (:func:`policy_hash`: a provider that enforced another policy is caught)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import blake3

from . import cbor
from .errors import BadReceipt
from .keys import key_of_peer_id, peer_id
from .signed import RECEIPT, SPEC, Verified, tool_id_bytes, tool_id_text, verify_envelope


def _float_text(x: float) -> str:
    """A float as serde_json (ryu) writes it: ``1e20`` not ``1e+20``, ``1e-7`` not ``1e-07``."""
    s = repr(x)
    m = re.fullmatch(r"(-?[0-9.]+)e([+-])0*([0-9]+)", s)
    if m:
        mant, sign, exp = m.groups()
        s = f"{mant}e{'-' if sign == '-' else ''}{exp}"
    return s


def _compact(v: Any, sort: bool) -> str:
    if isinstance(v, dict):
        items = sorted(v.items()) if sort else v.items()
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _compact(x, sort) for k, x in items) + "}"
    if isinstance(v, list):
        return "[" + ",".join(_compact(x, sort) for x in v) + "]"
    if isinstance(v, float):
        return _float_text(v)
    return json.dumps(v, ensure_ascii=False)


def json_encodings(value: Any) -> list[bytes]:
    """The byte strings a JSON value may have been hashed as: compact, keys as given, then sorted."""
    out = [_compact(value, False).encode()]
    s = _compact(value, True).encode()
    if s not in out:
        out.append(s)
    return out


@dataclass(frozen=True)
class VerifiedInvocation:
    """An invocation whose receipt was checked here: the node's answer, the decoded receipt
    (``value``: CBOR body, byte fields as bytes) and its id (hex blake3 of the signed body)."""

    response: dict[str, Any]
    receipt: Verified

    @property
    def output(self) -> Any:
        return self.response.get("output")

    @property
    def status(self) -> str:
        return str(self.response.get("status"))

    @property
    def provider(self) -> str:
        return str(self.response.get("provider"))

    @property
    def receipt_id(self) -> str:
        return self.receipt.hash.hex()


def _receipt_as_json(r: dict[str, Any]) -> dict[str, Any]:
    """The decoded CBOR receipt in the API's JSON shape (ids as text, hashes hex)."""
    out: dict[str, Any] = {}
    for k, v in r.items():
        if k == "tool":
            out[k] = tool_id_text(v)
        elif k == "provider":
            out[k] = peer_id(v)
        elif isinstance(v, bytes):
            out[k] = v.hex()
        else:
            out[k] = v
    return out


POLICY_HASH_PREFIX = b"atr-policy-v1"


def policy_hash(spec: dict[str, Any]) -> bytes:
    """``atr_protocol::policy::Policy::hash`` of a decoded spec: blake3 of the prefix and the
    canonical CBOR of ``{"limits": …, "permissions": …}`` (``permissions`` is ``{}`` for a spec
    that declares none)."""
    policy = {"limits": spec.get("limits"), "permissions": spec.get("permissions", {})}
    return blake3.blake3(POLICY_HASH_PREFIX + cbor.encode(policy)).digest()


def verify_spec_envelope(envelope_hex: str, tool_id: str) -> Verified:
    """The signed spec of ``tool_id``, verified (its hash must be the id)."""
    try:
        env = bytes.fromhex(envelope_hex)
    except ValueError:
        raise BadReceipt("spec envelope is not hex") from None
    return verify_envelope(SPEC, env, tool_id_bytes(tool_id))


def verify_invocation(
    request: dict[str, Any],
    response: dict[str, Any],
    spec: Verified | None,
) -> VerifiedInvocation:
    """Checks that ``response`` (an ``/v1/invoke`` answer) is proven by its receipt; raises
    :class:`BadReceipt` naming the first failed check."""
    try:
        env = bytes.fromhex(str(response.get("receipt_hex", "")))
    except ValueError:
        raise BadReceipt("receipt_hex is not hex") from None
    signed = verify_envelope(RECEIPT, env)
    r = signed.value
    provider_text = str(response.get("provider", ""))
    try:
        provider_key = key_of_peer_id(provider_text)
    except Exception:
        raise BadReceipt(f"provider {provider_text[:80]!r} is not a peer id") from None
    if r.get("provider") != provider_key:
        raise BadReceipt(f"receipt signed by {peer_id(r['provider'])}, not the provider {provider_text}")
    if _receipt_as_json(r) != response.get("receipt"):
        raise BadReceipt("the answer's `receipt` is not the signed receipt")
    tool = str(response.get("id", ""))
    if r.get("tool") != tool_id_bytes(tool):
        raise BadReceipt(f"receipt is for tool {tool_id_text(r['tool'])}, not {tool}")
    if request.get("id") is not None and request["id"] != tool:
        raise BadReceipt(f"the node ran {tool}, not the tool asked for, {request['id']}")
    if not any(r.get("input_hash") == blake3.blake3(b).digest() for b in json_encodings(request.get("input"))):
        raise BadReceipt("receipt input hash does not match the input sent")
    outputs = [b for b in json_encodings(response.get("output")) if r.get("output_hash") == blake3.blake3(b).digest()]
    if not outputs:
        raise BadReceipt("receipt output hash does not match the output received")
    if r.get("output_bytes") != len(outputs[0]):
        raise BadReceipt(f"receipt says {r.get('output_bytes')} output bytes, the output has {len(outputs[0])}")
    if r.get("status") != response.get("status"):
        raise BadReceipt(f"receipt says {r.get('status')}, the answer {response.get('status')}")
    if spec is not None:
        if spec.hash != r.get("tool"):
            raise BadReceipt(f"spec {spec.id_text} is not tool {tool}")
        s = spec.value
        if r.get("image_digest") != s.get("runtime", {}).get("image_digest"):
            raise BadReceipt("receipt names another image than the spec pins")
        if r.get("limits") != s.get("limits"):
            raise BadReceipt("receipt limits are not the spec's limits")
        if r.get("policy_hash") is None:
            raise BadReceipt("receipt binds no policy hash")
        if r.get("policy_hash") != policy_hash(s):
            raise BadReceipt("receipt policy hash is not the spec's policy: the provider enforced a different policy")
        if request.get("id") is None and request.get("name") is not None and s.get("name") != request["name"]:
            raise BadReceipt(f"the node ran `{s.get('name')}`, not `{request['name']}`")
    return VerifiedInvocation(response, signed)
