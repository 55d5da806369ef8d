"""Argument validation against a tool's input schema before any call (the ancestor had none):
the JSON Schema keywords the decorator emits (``type``, ``enum``, ``properties``, ``required``,
``additionalProperties``, ``items``, ``prefixItems``, ``minItems``, ``maxItems``,
``uniqueItems``, ``anyOf``, ``const``). Keywords it does not know are not checked here; the node
checks every input against the full schema again before it runs a tool."""

from __future__ import annotations

import json
from typing import Any

MAX_VIOLATIONS = 32


def _is_type(v: Any, t: str) -> bool:
    if t == "null":
        return v is None
    if t == "boolean":
        return isinstance(v, bool)
    if t == "integer":
        return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if t == "string":
        return isinstance(v, str)
    if t == "array":
        return isinstance(v, list)
    if t == "object":
        return isinstance(v, dict)
    return True


def _tname(v: Any) -> str:
    return {type(None): "null", bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}.get(type(v), type(v).__name__)


def violations(schema: Any, value: Any, path: str = "") -> list[tuple[str, str]]:
    """``(JSON pointer, rule)`` for each violation found (at most :data:`MAX_VIOLATIONS`)."""
    out: list[tuple[str, str]] = []
    _check(schema, value, path, out)
    return out[:MAX_VIOLATIONS]


def _check(s: Any, v: Any, path: str, out: list[tuple[str, str]]) -> None:
    if len(out) >= MAX_VIOLATIONS:
        return
    if s is True or s == {}:
        return
    if s is False:
        out.append((path or "/", "no value is allowed here"))
        return
    if not isinstance(s, dict):
        return
    if not isinstance(v, (type(None), bool, int, float, str, list, dict)):
        out.append((path or "/", f"{type(v).__name__} is not a JSON value"))
        return
    t = s.get("type")
    if t is not None:
        ts = t if isinstance(t, list) else [t]
        if not any(_is_type(v, x) for x in ts):
            out.append((path or "/", f"expected {' or '.join(ts)}, got {_tname(v)}"))
            return
    if "enum" in s and not any(_eq(v, e) for e in s["enum"]):
        out.append((path or "/", f"{json.dumps(v)[:80]} is not one of {json.dumps(s['enum'])[:200]}"))
    if "const" in s and not _eq(v, s["const"]):
        out.append((path or "/", f"must be {json.dumps(s['const'])[:80]}"))
    if "anyOf" in s:
        if not any(not violations(sub, v, path) for sub in s["anyOf"]):
            out.append((path or "/", "matches none of the allowed shapes (anyOf)"))
    if isinstance(v, dict):
        props = s.get("properties", {})
        for r in s.get("required", []):
            if r not in v:
                out.append((f"{path}/{r}", "is required"))
        for k, x in v.items():
            if k in props:
                _check(props[k], x, f"{path}/{k}", out)
            elif "additionalProperties" in s:
                ap = s["additionalProperties"]
                if ap is False:
                    out.append((f"{path}/{k}", "is not a known property"))
                else:
                    _check(ap, x, f"{path}/{k}", out)
    if isinstance(v, list):
        prefix = s.get("prefixItems", [])
        for i, x in enumerate(v):
            if i < len(prefix):
                _check(prefix[i], x, f"{path}/{i}", out)
            elif "items" in s:
                _check(s["items"], x, f"{path}/{i}", out)
        if "minItems" in s and len(v) < s["minItems"]:
            out.append((path or "/", f"needs at least {s['minItems']} items"))
        if "maxItems" in s and len(v) > s["maxItems"]:
            out.append((path or "/", f"allows at most {s['maxItems']} items"))
        if s.get("uniqueItems"):
            seen = [json.dumps(x, sort_keys=True) for x in v]
            if len(set(seen)) != len(seen):
                out.append((path or "/", "items must be unique"))


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b
