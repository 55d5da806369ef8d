"""``ToolSpec``: a tool as this package shows it, registered here or fetched from a node."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from . import exports

#: Ancestor spellings of side effects mapped to atr's.
SIDE_EFFECTS = {"none": "none", "read": "reads", "reads": "reads", "write": "writes", "writes": "writes", "delete": "deletes", "deletes": "deletes", "network": "network", "filesystem": "filesystem"}
COSTS = ("free", "low", "medium", "high")


@dataclass(frozen=True)
class ToolSpec:
    """One tool: name, version, description, tags, exact input/output JSON Schemas, side
    effects, cost and limits; ``id``/``publisher`` once it is a signed spec on a node.

    Frozen: ``get_tool`` hands out a spec that cannot be edited in place (the ancestor returned
    the registry's live object); the schema properties return fresh copies. ``status`` is the
    node's answer when the spec was fetched (a revocation is enforced by the node at invoke;
    ``Client.show`` gives the current one)."""

    name: str
    version: str
    description: str
    tags: tuple[str, ...]
    input_schema_json: str
    output_schema_json: str | None = None
    side_effects: tuple[str, ...] = ("none",)
    cost: str = "free"
    timeout_ms: int = 10_000
    memory_mb: int = 128
    examples: tuple[Any, ...] = ()
    id: str | None = None
    publisher: str | None = None
    image: str | None = None
    status: str = "active"
    is_async: bool = False
    plan_json: str = "{}"
    _fn: Callable[..., Any] | None = field(default=None, repr=False, compare=False)

    @property
    def input_schema(self) -> dict[str, Any]:
        """The exact input JSON Schema (a fresh copy)."""
        return json.loads(self.input_schema_json)

    @property
    def output_schema(self) -> dict[str, Any] | None:
        """The output JSON Schema, when the return type has one (a fresh copy)."""
        return None if self.output_schema_json is None else json.loads(self.output_schema_json)

    @property
    def parameters(self) -> dict[str, Any]:
        """The ancestor's name for the input schema."""
        return self.input_schema

    @property
    def function(self) -> Callable[..., Any] | None:
        """The registered Python function (``None`` for a spec fetched from a node)."""
        return self._fn

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "version": self.version, "description": self.description, "tags": list(self.tags), "input_schema": self.input_schema, "side_effects": list(self.side_effects), "cost": self.cost}
        if self.output_schema_json is not None:
            d["output_schema"] = self.output_schema
        if self.examples:
            d["examples"] = list(self.examples)
        if self.id:
            d["id"] = self.id
        if self.publisher:
            d["publisher"] = self.publisher
        return d

    def export(self, fmt: str, name: str | None = None) -> dict[str, Any]:
        """This tool in an agent format: ``openai``, ``openai-responses``, ``anthropic``, ``mcp``, ``gemini``."""
        return exports.export(self.to_json(), fmt, name, fresh=True)

    def to_openai_function_schema(self) -> dict[str, Any]:
        """The ancestor's shape, ``{name, description, parameters}`` (the ``function`` of an
        OpenAI Chat tool), now with the exact schema. ``export("openai")`` gives the whole tool."""
        return self.export("openai")["function"]

    def to_anthropic_tool_schema(self) -> dict[str, Any]:
        """``{name, description, input_schema}`` for the Anthropic Messages API, exact schema."""
        return self.export("anthropic")

    @classmethod
    def from_view(cls, view: dict[str, Any]) -> "ToolSpec":
        """A spec from a node's spec view (``GET /v1/find`` / ``/v1/specs/{id}``)."""
        s = view["spec"]
        lim = s.get("limits", {})
        status = view.get("status", {})
        return cls(
            name=s["name"],
            version=s["version"],
            description=s.get("description", ""),
            tags=tuple(s.get("tags", [])),
            input_schema_json=json.dumps(s.get("input_schema", {})),
            output_schema_json=None if s.get("output_schema") is None else json.dumps(s["output_schema"]),
            side_effects=tuple(s.get("side_effects", ["none"])),
            cost=s.get("cost", "free"),
            timeout_ms=int(lim.get("timeout_ms", 10_000)),
            memory_mb=int(lim.get("memory_bytes", 128 << 20)) >> 20,
            examples=tuple(s.get("examples", [])),
            id=view["id"],
            publisher=s.get("publisher"),
            image=s.get("runtime", {}).get("image"),
            status=status.get("state", "active") if isinstance(status, dict) else str(status),
        )
