"""The decorator's schema table: each supported hint gives an exact schema; each unsupported one
is an error at decoration time."""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Literal, Optional, Tuple, TypedDict, Union

import pytest

import atr
from atr.schema import function_schema


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Point(TypedDict):
    x: int
    y: int


@dataclass
class Box:
    """A box.

    Attributes:
        w: Width.
        tags: Labels.
    """

    w: float
    tags: list[str] = field(default_factory=list)


SUPPORTED: list[tuple[str, Any, dict[str, Any]]] = [
    ("str", str, {"type": "string"}),
    ("int", int, {"type": "integer"}),
    ("float", float, {"type": "number"}),
    ("bool", bool, {"type": "boolean"}),
    ("Any", Any, {}),
    ("bare list", list, {"type": "array"}),
    ("bare dict", dict, {"type": "object"}),
    ("list[str]", list[str], {"type": "array", "items": {"type": "string"}}),
    ("List[int]", List[int], {"type": "array", "items": {"type": "integer"}}),
    ("dict[str, int]", dict[str, int], {"type": "object", "additionalProperties": {"type": "integer"}}),
    ("Dict[str, list[str]]", Dict[str, list[str]], {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}),
    ("set[int]", set[int], {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}),
    ("tuple[int, str]", Tuple[int, str], {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": False, "minItems": 2, "maxItems": 2}),
    ("tuple[float, ...]", tuple[float, ...], {"type": "array", "items": {"type": "number"}}),
    ("Optional[int] (no default)", Optional[int], {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
    ("int | None (no default)", int | None, {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
    ("Union[int, str]", Union[int, str], {"anyOf": [{"type": "integer"}, {"type": "string"}]}),
    ("Literal['x', 'y']", Literal["x", "y"], {"type": "string", "enum": ["x", "y"]}),
    ("Literal[1, 2]", Literal[1, 2], {"type": "integer", "enum": [1, 2]}),
    ("Enum", Color, {"type": "string", "enum": ["red", "blue"]}),
    ("list[Optional[str]]", list[Optional[str]], {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "null"}]}}),
    ("TypedDict", Point, {"type": "object", "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}}, "required": ["x", "y"], "additionalProperties": False}),
    (
        "dataclass",
        Box,
        {
            "type": "object",
            "properties": {"w": {"type": "number", "description": "Width."}, "tags": {"type": "array", "items": {"type": "string"}, "default": [], "description": "Labels."}},
            "required": ["w"],
            "additionalProperties": False,
            "description": "A box.",
        },
    ),
]


def _fn_with(hint: Any) -> Callable[..., Any]:
    def f(p):  # type: ignore[no-untyped-def]
        """Doc."""
        return p

    f.__annotations__ = {"p": hint}
    return f


@pytest.mark.parametrize("label,hint,expected", SUPPORTED, ids=[s[0] for s in SUPPORTED])
def test_supported_hint_gives_exact_schema(label: str, hint: Any, expected: dict[str, Any]) -> None:
    fs = function_schema(_fn_with(hint))
    assert fs.input_schema == {"type": "object", "properties": {"p": expected}, "required": ["p"], "additionalProperties": False}


UNSUPPORTED: list[tuple[str, Any, str]] = [
    ("bytes", bytes, "bytes"),
    ("datetime", datetime.datetime, "datetime"),
    ("a plain class", type("Thing", (), {}), "Thing"),
    ("Callable", Callable[[int], int], "JSON Schema"),
    ("dict[int, str]", dict[int, str], "key type must be str"),
    ("Literal[1.5]", Literal[1.5], "Literal value"),
]


@pytest.mark.parametrize("label,hint,needle", UNSUPPORTED, ids=[u[0] for u in UNSUPPORTED])
def test_unsupported_hint_is_an_error_at_decoration(label: str, hint: Any, needle: str) -> None:
    reg = atr.Registry()
    with pytest.raises(atr.SchemaError) as e:
        reg.register(_fn_with(hint), name="t")
    assert needle in str(e.value)
    assert "parameter" not in str(e.value) or "p" in str(e.value)


def test_defaults_optional_docstring_and_ancestor_sample() -> None:
    reg = atr.Registry()

    @reg.register(name="sample_tool", tags=["demo"], version="1.2.3", cost="low")
    def sample_tool(a: int, b: float = 1.0, tags: list[str] | None = None, mode: Literal["x", "y"] = "x") -> dict:
        """Combine a and b under a mode.

        Args:
            a: The integer input.
            b: A float multiplier.
            tags: Optional list of tags.
            mode: Either 'x' or 'y'.

        Returns:
            A dict with the result.
        """
        return {}

    spec = reg.get_tool("sample_tool")
    assert spec.to_openai_function_schema() == {
        "name": "sample_tool",
        "description": "Combine a and b under a mode.",
        "parameters": {
            "type": "object",
            "properties": {
                "a": {"type": "integer", "description": "The integer input."},
                "b": {"type": "number", "default": 1.0, "description": "A float multiplier."},
                "tags": {"type": "array", "items": {"type": "string"}, "description": "Optional list of tags."},
                "mode": {"type": "string", "enum": ["x", "y"], "default": "x", "description": "Either 'x' or 'y'."},
            },
            "required": ["a"],
            "additionalProperties": False,
        },
    }
    assert spec.to_anthropic_tool_schema()["input_schema"] == spec.input_schema
    assert spec.output_schema == {"type": "object"}


@pytest.mark.parametrize(
    "fn_src,needle",
    [
        ("def f(a):\n    return a\n", "has no type hint"),
        ("def f(*args: int):\n    return 1\n", "*args"),
        ("def f(**kw: int):\n    return 1\n", "*args and **kwargs"),
        ("def f(a: int = None):\n    return a\n", "defaults to None"),
        ("def f(a: object = object()):\n    return a\n", "object"),
        ('def f(a: int):\n    """X.\n\n    Args:\n        b: not a parameter.\n    """\n    return a\n', "documents b"),
    ],
)
def test_other_decoration_errors(fn_src: str, needle: str) -> None:
    ns: dict[str, Any] = {}
    exec(fn_src, ns)
    with pytest.raises(atr.SchemaError) as e:
        atr.Registry().register(ns["f"], name="f")
    assert needle in str(e.value)


@pytest.mark.parametrize("opts,needle", [({"cost": "astronomical"}, "cost"), ({"side_effects": ["nuke"]}, "side effect"), ({"name": "my tool; DROP"}, "name"), ({"version": "1.0"}, "semantic version"), ({"permissions": ["x"]}, "never enforced")])
def test_metadata_is_checked_not_silently_defaulted(opts: dict[str, Any], needle: str) -> None:
    def f(a: int) -> int:
        return a

    with pytest.raises(atr.AtrError) as e:
        atr.Registry().register(f, **opts)
    assert needle in str(e.value)


def test_local_execution_validates_converts_and_times_out() -> None:
    reg = atr.Registry()

    @reg.register(name="area")
    def area(box: Box, color: Color = Color.RED) -> float:
        assert isinstance(box, Box) and isinstance(color, Color)
        return box.w * 2

    spec = reg.get_tool("area")
    ex = atr.LocalExecutor()
    assert ex.execute(spec, {"box": {"w": 2.5}, "color": "blue"}) == 5.0
    with pytest.raises(atr.ValidationError) as e:
        ex.execute(spec, {"box": {"w": "wide"}})
    assert e.value.violations == [("/box/w", "expected number, got string")]
    with pytest.raises(atr.ValidationError):
        ex.execute(spec, {"box": {"w": 1}, "extra": 1})

    @reg.register(name="slow")
    def slow(s: float) -> str:
        import time

        time.sleep(s)
        return "done"

    with pytest.raises(atr.ExecutionTimeoutError):
        ex.execute(reg.get_tool("slow"), {"s": 2.0}, timeout=0.2)

    @reg.register(name="coro")
    async def coro(x: int) -> int:
        return x + 1

    assert ex.execute(reg.get_tool("coro"), {"x": 1}) == 2


def test_a_new_major_version_does_not_capture_unpinned_callers() -> None:
    reg = atr.Registry()

    @reg.register(name="add", version="1.0.0")
    def add(a: int, b: int) -> int:
        return a + b

    @reg.register(name="add", version="1.1.0")
    def add11(a: int, b: int) -> int:
        return a + b + 0

    assert reg.get_tool("add").version == "1.1.0"

    @reg.register(name="add", version="2.0.0")
    def add_v2(a: int, b: int) -> int:
        return a + b + 1000

    with pytest.raises(atr.AmbiguousVersionError):
        reg.get_tool("add")
    assert reg.get_tool("add", "^1").version == "1.1.0"
    assert reg.get_tool("add", ">=1.0.0, <2.0.0").version == "1.1.0"
    assert reg.get_callable("add", "^2")(a=1, b=2) == 1003
    with pytest.raises(atr.ToolAlreadyExistsError):
        reg.register(add, name="add", version="1.0.0")
