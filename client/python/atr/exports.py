"""Agent formats of a spec, as ``atr_protocol::export`` writes them (non-strict): ``openai``
(Chat Completions tool), ``openai-responses``, ``anthropic``, ``mcp`` and ``gemini``. The input
schema goes out exactly as the spec holds it (no lossy rewrite). For OpenAI strict mode use
``atr export --strict`` (the Rust exporter), which this module does not re-implement."""

from __future__ import annotations

import copy
import re
from typing import Any

from .errors import AtrError

FORMATS = ("openai", "openai-responses", "anthropic", "mcp", "gemini")
_RULES = {
    "openai": r"^[a-zA-Z0-9_-]{1,64}$",
    "openai-responses": r"^[a-zA-Z0-9_-]{1,64}$",
    "anthropic": r"^[a-zA-Z0-9_-]{1,64}$",
    "mcp": r"^[A-Za-z0-9._-]{1,128}$",
    "gemini": r"^[a-zA-Z_][a-zA-Z0-9_.:-]{0,127}$",
}


class ExportError(AtrError):
    """A spec that the format cannot carry."""

    code = "export_error"


def export(spec: dict[str, Any], fmt: str, name: str | None = None, fresh: bool = False) -> dict[str, Any]:
    """``spec`` (a ToolSpec as JSON: name, description, input_schema, output_schema?,
    side_effects, examples?) in format ``fmt``. ``fresh``: the schemas in ``spec`` are the
    caller's own copies and may be handed out as they are."""
    dc = (lambda x: x) if fresh else copy.deepcopy
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    n = name or spec["name"]
    if not re.fullmatch(_RULES[fmt], n):
        raise ExportError(f"tool name `{n[:140]}` is not valid for {fmt}: it must match {_RULES[fmt]}")
    params = dc(spec["input_schema"])
    if params.get("type") != "object":
        raise ExportError('the input schema must have `"type": "object"` at its root (every agent format requires it)')
    desc = spec["description"]
    out_schema = spec.get("output_schema")
    if fmt == "openai":
        return {"type": "function", "function": {"name": n, "description": desc, "parameters": params}}
    if fmt == "openai-responses":
        t: dict[str, Any] = {"type": "function", "name": n, "description": desc, "parameters": params, "strict": False}
        if out_schema is not None:
            t["output_schema"] = dc(out_schema)
        return t
    if fmt == "anthropic":
        for k in ("oneOf", "allOf", "anyOf"):
            if k in params:
                raise ExportError(f"the input schema has `{k}` at its root, which anthropic does not accept")
        t = {"name": n, "description": desc}
        ex = spec.get("examples") or []
        if ex and all(isinstance(e.get("input"), dict) for e in ex):
            from .validate import violations

            if all(not violations(params, e["input"]) for e in ex):
                t["input_examples"] = [dc(e["input"]) for e in ex]
        t["input_schema"] = params
        return t
    if fmt == "mcp":
        t = {"name": n, "description": desc, "inputSchema": params}
        if isinstance(out_schema, dict) and out_schema.get("type") == "object":
            t["outputSchema"] = dc(out_schema)
        se = set(spec.get("side_effects") or ["none"])
        read_only = se <= {"none", "reads"}
        t["annotations"] = {
            "readOnlyHint": read_only,
            "destructiveHint": (not read_only) and "deletes" in se,
            "idempotentHint": read_only,
            "openWorldHint": "network" in se,
        }
        return t
    d: dict[str, Any] = {"name": n, "description": desc, "parametersJsonSchema": params}
    if out_schema is not None:
        d["responseJsonSchema"] = dc(out_schema)
    return d
