"""Versions and requirements, as cargo reads them (the node uses the same rules): ``1.2.3``
(= ``^1.2.3``), ``=1.2.3``, ``>=``, ``>``, ``<=``, ``<``, ``^``, ``~``, ``*``, several
comparators joined by ``,`` (all must hold: the ancestor silently dropped all but the first)."""

from __future__ import annotations

import re

from .errors import AtrError

_V = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
_C = re.compile(r"^\s*(>=|<=|>|<|=|\^|~)?\s*v?(\d+)(?:\.(\d+|\*|x))?(?:\.(\d+|\*|x))?(?:-([0-9A-Za-z.-]+))?\s*$")


class VersionError(AtrError, ValueError):
    code = "bad_version"


Version = tuple[int, int, int, tuple[object, ...]]


def parse(v: str) -> Version:
    """A semantic version; pre-releases sort before the release."""
    m = _V.match(v.strip())
    if not m:
        raise VersionError(f"`{v[:80]}` is not a semantic version (MAJOR.MINOR.PATCH)")
    pre = tuple((0, int(p)) if p.isdigit() else (1, p) for p in m.group(4).split(".")) if m.group(4) else ()
    return int(m.group(1)), int(m.group(2)), int(m.group(3)), pre


def _key(v: Version) -> tuple[int, int, int, int, tuple[object, ...]]:
    return v[0], v[1], v[2], 0 if v[3] else 1, v[3]


def matches(req: str, version: str) -> bool:
    """Whether ``version`` meets every comparator of ``req``."""
    v = parse(version)
    if req.strip() in ("", "*"):
        return not v[3]
    for part in req.split(","):
        if not _one(part, v):
            return False
    return True


def _one(part: str, v: Version) -> bool:
    m = _C.match(part)
    if not m:
        raise VersionError(f"`{part.strip()[:80]}` is not a version requirement")
    op, maj, mi, pa, pre = m.group(1) or "^", int(m.group(2)), m.group(3), m.group(4), m.group(5)
    wild_mi = mi in (None, "*", "x")
    wild_pa = pa in (None, "*", "x")
    lo: Version = (maj, 0 if wild_mi else int(mi), 0 if wild_pa else int(pa), tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split(".")) if pre else ())  # type: ignore[arg-type]
    if v[3] and not (lo[3] and v[:3] == lo[:3]):
        return False  # pre-releases match only a requirement naming that very version's pre-release
    k, klo = _key(v), _key(lo)
    if op == "=":
        if wild_mi:
            return v[0] == maj
        if wild_pa:
            return v[:2] == lo[:2]
        return k == klo
    if op == ">=":
        return k >= klo
    if op == ">":
        if wild_mi:
            return v[0] > maj
        if wild_pa:
            return v[:2] > lo[:2]
        return k > klo
    if op == "<":
        return k < klo
    if op == "<=":
        if wild_mi:
            return v[0] <= maj
        if wild_pa:
            return v[:2] <= lo[:2]
        return k <= klo
    if op == "~":
        if wild_mi:
            return v[0] == maj and k >= klo
        return v[:2] == lo[:2] and k >= klo
    # ^ (the default): the left-most non-zero part is fixed.
    if k < klo:
        return False
    if maj > 0 or wild_mi:
        return v[0] == maj
    if int(mi) > 0 or wild_pa:  # type: ignore[arg-type]
        return v[0] == 0 and v[1] == int(mi)  # type: ignore[arg-type]
    return v[:3] == lo[:3]


def highest(versions: list[str]) -> str:
    return max(versions, key=lambda s: _key(parse(s)))
