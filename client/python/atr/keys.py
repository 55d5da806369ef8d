"""Publisher and provider keys: ed25519 public keys, shown as libp2p peer ids (``12D3KooW…``,
base58btc of the identity multihash of the protobuf-encoded key)."""

from __future__ import annotations

from .errors import AtrError

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}
# identity multihash (0x00, len 36) of protobuf { KeyType = Ed25519 (1), Data = 32 bytes }.
_PEER_ID_HEADER = bytes([0x00, 0x24, 0x08, 0x01, 0x12, 0x20])


def _b58encode(b: bytes) -> str:
    n = int.from_bytes(b, "big")
    s = ""
    while n:
        n, r = divmod(n, 58)
        s = _ALPHABET[r] + s
    pad = len(b) - len(b.lstrip(b"\0"))
    return "1" * pad + s


def _b58decode(s: str) -> bytes:
    if len(s) > 100:
        raise AtrError("not a peer id: too long", code="bad_key")
    n = 0
    for c in s:
        if c not in _INDEX:
            raise AtrError(f"not a peer id: {c!r} is not base58", code="bad_key")
        n = n * 58 + _INDEX[c]
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    pad = len(s) - len(s.lstrip("1"))
    return b"\0" * pad + body


def peer_id(key: bytes) -> str:
    """The peer id text of a 32-byte ed25519 public key."""
    if len(key) != 32:
        raise AtrError("an ed25519 public key is 32 bytes", code="bad_key")
    return _b58encode(_PEER_ID_HEADER + key)


def key_of_peer_id(text: str) -> bytes:
    """The 32-byte ed25519 key a peer id names; :class:`AtrError` when it is not one."""
    b = _b58decode(text.strip())
    if len(b) != 38 or not b.startswith(_PEER_ID_HEADER):
        raise AtrError(f"{text[:60]!r} is not an ed25519 peer id (expected 12D3KooW…)", code="bad_key")
    return b[6:]
