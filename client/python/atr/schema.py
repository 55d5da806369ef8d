"""Exact JSON Schemas from Python type hints, for ``@atr.register``.

| hint | schema | required |
|---|---|---|
| ``str`` / ``int`` / ``float`` / ``bool`` | ``string`` / ``integer`` / ``number`` / ``boolean`` | yes |
| ``list[X]``, ``List[X]``, ``Sequence[X]`` | ``array`` with ``items`` | yes |
| ``set[X]``, ``frozenset[X]`` | ``array`` with ``items`` and ``uniqueItems`` | yes |
| ``tuple[X, Y]`` / ``tuple[X, ...]`` | ``array`` with ``prefixItems`` and fixed length / ``items`` | yes |
| bare ``list`` / ``dict`` | ``array`` / ``object`` of anything | yes |
| ``dict[str, X]`` | ``object`` with ``additionalProperties: X`` | yes |
| ``Optional[X]``, ``X | None`` with default ``None`` | ``X``'s schema | **no** |
| ``Optional[X]`` without a default, or nested | ``anyOf: [X, {"type": "null"}]`` | yes |
| ``Union[A, B]`` | ``anyOf`` | yes |
| ``Literal["a", "b"]`` | ``enum`` with its ``type`` | yes |
| ``enum.Enum`` subclass | ``enum`` of the values | yes |
| ``TypedDict`` / ``@dataclass`` | nested ``object`` with ``properties``, ``required``, ``additionalProperties: false`` | yes |
| ``Any`` | ``{}`` | yes |
| any hint with a default | its schema plus ``default`` | **no** |

A parameter's description comes from the docstring's Google-style ``Args:`` section; the tool's
description is the docstring's first paragraph. Anything else (``bytes``, ``datetime``, other
classes, ``Callable``, ``*args``/``**kwargs``, a missing hint, a default that is not JSON, a
documented name that is not a parameter) raises :class:`~atr.errors.SchemaError` when the
function is decorated, never later.

Each schema comes with a *plan*: how to turn the JSON arguments back into the annotated Python
values (dataclass instances, enum members, tuples, sets) before the call.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import re
import sys
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, Literal, Union, get_args, get_origin

from .errors import SchemaError

try:  # typing_extensions TypedDicts are TypedDicts too
    from typing import is_typeddict
except ImportError:  # pragma: no cover - Python < 3.10 is not supported
    is_typeddict = None  # type: ignore[assignment]

_NONE = type(None)
Plan = Any  # a JSON-able description of the conversions (see atr/_runner.py)


class _Ctx:
    def __init__(self, where: str) -> None:
        self.where = where
        self.classes: dict[str, type] = {}
        self.stack: list[type] = []


def _err(ctx: _Ctx, path: str, msg: str) -> SchemaError:
    return SchemaError(f"{ctx.where}: {path}: {msg}")


def _json_default(ctx: _Ctx, path: str, value: Any) -> Any:
    if isinstance(value, enum.Enum):
        value = value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, (tuple, set, frozenset)):
        value = list(value)
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise _err(ctx, path, f"default {value!r} is not a JSON value") from None
    return json.loads(text)


def hint_schema(hint: Any, ctx: _Ctx, path: str) -> tuple[dict[str, Any], Plan]:
    """The schema and conversion plan of one hint."""
    if hint is Any:
        return {}, None
    if hint is str:
        return {"type": "string"}, None
    if hint is bool:
        return {"type": "boolean"}, None
    if hint is int:
        return {"type": "integer"}, "int"
    if hint is float:
        return {"type": "number"}, None
    if hint is _NONE or hint is None:
        return {"type": "null"}, None
    if hint is list or hint is typing.List:
        return {"type": "array"}, None
    if hint is dict or hint is typing.Dict:
        return {"type": "object"}, None
    origin = get_origin(hint)
    args = get_args(hint)
    if origin is typing.Annotated:
        return hint_schema(args[0], ctx, path)
    if origin is Union or (sys.version_info >= (3, 10) and origin is types.UnionType):
        members = [a for a in args if a is not _NONE]
        nullable = len(members) < len(args)
        parts = [hint_schema(m, ctx, path) for m in members]
        if len(parts) == 1:
            s, plan = parts[0]
        else:
            s, plan = {"anyOf": [p[0] for p in parts]}, ({"union": [p[1] for p in parts]} if any(p[1] for p in parts) else None)
        if nullable:
            s = {"anyOf": [s, {"type": "null"}]}
            plan = {"opt": plan} if plan else None
        return s, plan
    if origin is Literal:
        values = list(args)
        for v in values:
            if not isinstance(v, (str, int, bool)) and v is not None:
                raise _err(ctx, path, f"Literal value {v!r} is not a JSON string, integer, boolean or None")
        return _enum_schema(values), None
    if origin in (list, typing.List, Sequence, typing.Sequence) or origin is getattr(__import__("collections.abc").abc, "Sequence"):
        if len(args) != 1:
            raise _err(ctx, path, f"{hint!r}: give one item type")
        item, plan = hint_schema(args[0], ctx, path + "[]")
        return {"type": "array", "items": item}, ({"list": plan} if plan else None)
    if origin in (set, frozenset):
        item, plan = hint_schema(args[0], ctx, path + "[]")
        return {"type": "array", "items": item, "uniqueItems": True}, {"set": plan}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item, plan = hint_schema(args[0], ctx, path + "[]")
            return {"type": "array", "items": item}, {"tuple": plan}
        if not args or args == ((),):
            return {"type": "array", "maxItems": 0}, {"tuple": None}
        parts = [hint_schema(a, ctx, f"{path}[{i}]") for i, a in enumerate(args)]
        return (
            {"type": "array", "prefixItems": [p[0] for p in parts], "items": False, "minItems": len(parts), "maxItems": len(parts)},
            {"tuple": None, "items": [p[1] for p in parts]},
        )
    if origin in (dict, typing.Dict):
        if len(args) != 2:
            raise _err(ctx, path, f"{hint!r}: give key and value types")
        if args[0] is not str:
            raise _err(ctx, path, f"{hint!r}: JSON object keys are strings, so the key type must be str")
        val, plan = hint_schema(args[1], ctx, path + "{}")
        return {"type": "object", "additionalProperties": val}, ({"dict": plan} if plan else None)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        values = [m.value for m in hint]
        for v in values:
            if not isinstance(v, (str, int)):
                raise _err(ctx, path, f"enum {hint.__name__} has a value {v!r} that is not a string or integer")
        s = _enum_schema(values)
        if hint.__doc__ and hint.__doc__ != enum.Enum.__doc__ and not hint.__doc__.startswith("An enumeration"):
            s["description"] = inspect.cleandoc(hint.__doc__).split("\n\n")[0]
        ctx.classes[hint.__name__] = hint
        return s, {"enum": hint.__name__}
    if isinstance(hint, type) and is_typeddict is not None and is_typeddict(hint):
        return _object_schema(hint, ctx, path, typed_dict=True)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _object_schema(hint, ctx, path, typed_dict=False)
    if isinstance(hint, str) or isinstance(hint, typing.ForwardRef):
        raise _err(ctx, path, f"unresolved forward reference {hint!r}")
    name = getattr(hint, "__name__", None) or repr(hint)
    raise _err(
        ctx,
        path,
        f"type `{name}` has no exact JSON Schema (supported: str, int, float, bool, list[X], dict[str, X], tuple, set, Optional, Union, Literal, Enum, TypedDict, dataclass, Any)",
    )


def _enum_schema(values: list[Any]) -> dict[str, Any]:
    names = {bool: "boolean", int: "integer", str: "string", _NONE: "null"}
    types_ = sorted({names[type(v)] for v in values})
    s: dict[str, Any] = {"type": types_[0] if len(types_) == 1 else types_, "enum": values}
    return s


def _object_schema(cls: type, ctx: _Ctx, path: str, typed_dict: bool) -> tuple[dict[str, Any], Plan]:
    if cls in ctx.stack:
        raise _err(ctx, path, f"{cls.__name__} is recursive, which this decorator does not support")
    ctx.stack.append(cls)
    try:
        try:
            hints = typing.get_type_hints(cls, include_extras=True)
        except Exception as e:
            raise _err(ctx, path, f"cannot read the type hints of {cls.__name__}: {e}") from None
        docs = parse_args_doc(cls.__doc__ or "", cls.__name__) if cls.__doc__ else {}
        props: dict[str, Any] = {}
        plans: dict[str, Any] = {}
        required: list[str] = []
        if typed_dict:
            req_keys = set(getattr(cls, "__required_keys__", hints.keys()))
            for f, h in hints.items():
                s, p = hint_schema(h, ctx, f"{path}.{f}")
                if f in docs:
                    s = {**s, "description": docs[f]}
                props[f] = s
                if p:
                    plans[f] = p
                if f in req_keys:
                    required.append(f)
        else:
            for fld in dataclasses.fields(cls):  # type: ignore[arg-type]
                if not fld.init:
                    continue
                h = hints.get(fld.name, Any)
                s, p = hint_schema(h, ctx, f"{path}.{fld.name}")
                if fld.name in docs:
                    s = {**s, "description": docs[fld.name]}
                if fld.default is not dataclasses.MISSING:
                    if fld.default is not None:
                        s = {**s, "default": _json_default(ctx, f"{path}.{fld.name}", fld.default)}
                elif fld.default_factory is not dataclasses.MISSING:
                    s = {**s, "default": _json_default(ctx, f"{path}.{fld.name}", fld.default_factory())}
                else:
                    required.append(fld.name)
                props[fld.name] = s
                if p:
                    plans[fld.name] = p
        schema: dict[str, Any] = {"type": "object", "properties": props, "required": required, "additionalProperties": False}
        summary = _summary(cls.__doc__) if cls.__doc__ and not cls.__doc__.startswith(cls.__name__ + "(") else ""
        if summary:
            schema["description"] = summary
        if typed_dict:
            return schema, ({"fields": plans} if plans else None)
        ctx.classes[cls.__name__] = cls
        return schema, {"dataclass": cls.__name__, "fields": plans}
    finally:
        ctx.stack.pop()


_ARGS_HEAD = re.compile(r"^\s*(Args|Arguments|Parameters|Params)\s*:\s*$")
_SECTION = re.compile(r"^\s*[A-Z][A-Za-z ]*:\s*$")
_ITEM = re.compile(r"^(\s*)(\*{0,2}[A-Za-z_][A-Za-z0-9_]*)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")


def _summary(doc: str | None) -> str:
    if not doc:
        return ""
    return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())


def parse_args_doc(doc: str, where: str) -> dict[str, str]:
    """The Google-style ``Args:`` (or ``Attributes:``) section: ``{name: description}``."""
    lines = inspect.cleandoc(doc).splitlines()
    out: dict[str, str] = {}
    in_args = False
    indent: int | None = None
    cur: str | None = None
    for line in lines:
        if _ARGS_HEAD.match(line) or line.strip() in ("Attributes:",):
            in_args, indent, cur = True, None, None
            continue
        if not in_args:
            continue
        if not line.strip():
            continue
        lead = len(line) - len(line.lstrip())
        if lead == 0 and _SECTION.match(line):
            in_args = False
            continue
        m = _ITEM.match(line)
        if m and (indent is None or len(m.group(1)) == indent):
            indent = len(m.group(1))
            cur = m.group(2).lstrip("*")
            out[cur] = m.group(4).strip()
        elif cur is not None:
            out[cur] = (out[cur] + " " + line.strip()).strip()
    return out


@dataclasses.dataclass(frozen=True)
class FunctionSchema:
    """What the decorator derives from one function."""

    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    plan: dict[str, Any]
    classes: dict[str, type]
    is_async: bool


def function_schema(fn: Callable[..., Any], description: str | None = None) -> FunctionSchema:
    """Derives the input schema (root object, closed), plan and output schema of ``fn``."""
    where = f"@atr.register on {getattr(fn, '__qualname__', fn)!r}"
    ctx = _Ctx(where)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as e:
        raise SchemaError(f"{where}: cannot resolve the type hints: {e}") from None
    sig = inspect.signature(fn)
    docs = parse_args_doc(fn.__doc__ or "", where) if fn.__doc__ else {}
    props: dict[str, Any] = {}
    required: list[str] = []
    plan: dict[str, Any] = {}
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise SchemaError(f"{where}: parameter `{p.name}`: *args and **kwargs have no JSON Schema; name each parameter")
        if p.kind is p.POSITIONAL_ONLY:
            raise SchemaError(f"{where}: parameter `{p.name}` is positional-only; tools are called with named arguments")
        if p.name not in hints:
            raise SchemaError(f"{where}: parameter `{p.name}` has no type hint (every parameter needs one: its JSON Schema comes from it)")
        hint = hints[p.name]
        has_default = p.default is not inspect.Parameter.empty
        # Optional[X] = None: X's schema, not required (absent is None).
        if has_default and p.default is None and get_origin(hint) in (Union, getattr(types, "UnionType", Union)) and _NONE in get_args(hint):
            members = [a for a in get_args(hint) if a is not _NONE]
            inner = members[0] if len(members) == 1 else Union[tuple(members)]  # type: ignore[valid-type]
            s, pl = hint_schema(inner, ctx, p.name)
        else:
            s, pl = hint_schema(hint, ctx, p.name)
            if has_default:
                if p.default is None:
                    raise SchemaError(f"{where}: parameter `{p.name}` defaults to None but its hint does not allow None (use Optional[...])")
                s = {**s, "default": _json_default(ctx, p.name, p.default)}
        if not has_default:
            required.append(p.name)
        if p.name in docs:
            s = {**s, "description": docs[p.name]}
        props[p.name] = s
        if pl:
            plan[p.name] = pl
    unknown = sorted(set(docs) - set(props))
    if unknown:
        raise SchemaError(f"{where}: the docstring's Args: section documents {', '.join(unknown)}, which is not a parameter")
    input_schema = {"type": "object", "properties": props, "required": required, "additionalProperties": False}
    output_schema = None
    ret = hints.get("return", inspect.Signature.empty)
    if ret is not inspect.Signature.empty and ret is not _NONE and ret is not None:
        try:
            output_schema, _ = hint_schema(ret, _Ctx(where), "return")
        except SchemaError:
            output_schema = None  # an unsupported return type means "no output schema", not an error
        if output_schema == {}:
            output_schema = None
    desc = description if description is not None else _summary(fn.__doc__)
    if not desc:
        desc = fn.__name__.replace("_", " ")
    return FunctionSchema(desc, input_schema, output_schema, plan, ctx.classes, inspect.iscoroutinefunction(fn))
