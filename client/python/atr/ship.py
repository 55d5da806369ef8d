"""What travels into a function's tool image: its source without decorators, the sources of the
helpers and classes of its own module that it names (recursively), ``import`` lines for the
modules and importable objects it names, JSON constants, and the files of its pure-Python
third-party dependencies. Whatever cannot travel (a compiled package, an object with no source
and no import path) is an error when the image is built, not a ``NameError`` in the sandbox."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import os
import sys
import textwrap
import types
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import AtrError

MAX_LIB_BYTES = 32 * 1024 * 1024
_ATR_DECORATORS = {"register", "atr.register", "tool"}


class ShipError(AtrError):
    """A function that cannot be packed into a tool image."""

    code = "cannot_ship"


@dataclass
class Shipment:
    source: str
    lib_files: dict[str, bytes] = field(default_factory=dict)


def _names(tree: ast.AST) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            out.add(node.id)
        elif isinstance(node, ast.Attribute):
            base = node
            while isinstance(base, ast.Attribute):
                base = base.value  # type: ignore[assignment]
            if isinstance(base, ast.Name):
                out.add(base.id)
    return out


def _annotation_names(node: ast.AST) -> set[str]:
    out: set[str] = set()
    for n in ast.walk(node):
        anns: list[ast.expr | None] = []
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = n.args
            anns = [x.annotation for x in a.args + a.kwonlyargs + a.posonlyargs] + [n.returns]
        elif isinstance(n, ast.AnnAssign):
            anns = [n.annotation]
        for x in anns:
            if x is not None:
                out |= _names(x)
    return out


def _import_line(name: str, v: Any) -> str | None:
    """``from M import X as name`` when module ``M`` (the object's own) holds it under some name."""
    mod = getattr(v, "__module__", None)
    m = sys.modules.get(mod) if isinstance(mod, str) else None
    if m is None:
        return None
    for attr in (getattr(v, "__qualname__", None), getattr(v, "__name__", None), getattr(v, "_name", None), name):
        if isinstance(attr, str) and attr and "." not in attr and getattr(m, attr, None) is v:
            return f"from {mod} import {attr}" + (f" as {name}" if attr != name else "")
    return None


def _is_atr_decorator(d: ast.expr) -> bool:
    target = d.func if isinstance(d, ast.Call) else d
    return ast.unparse(target) in _ATR_DECORATORS


def _def_source(obj: Any, strip_atr: bool) -> tuple[str, ast.AST]:
    try:
        src = textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError) as e:
        raise ShipError(f"no source for {getattr(obj, '__qualname__', obj)!r}: {e}") from None
    tree = ast.parse(src)
    node = tree.body[0]
    if strip_atr and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        node.decorator_list = [d for d in node.decorator_list if not _is_atr_decorator(d)]
    return ast.unparse(node), node


def _json_constant(v: Any) -> bool:
    try:
        return json.loads(json.dumps(v, allow_nan=False)) == v and type(v) in (int, float, str, bool, list, dict, type(None))
    except (TypeError, ValueError):
        return False


def _top_package_files(mod: types.ModuleType) -> dict[str, bytes]:
    top = mod.__name__.split(".")[0]
    spec = importlib.util.find_spec(top)
    if spec is None or spec.origin in (None, "built-in", "frozen"):
        raise ShipError(f"module {top} has no files to ship")
    files: dict[str, bytes] = {}
    if spec.submodule_search_locations:
        root = list(spec.submodule_search_locations)[0]
        base = os.path.dirname(root)
        for dirpath, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for n in names:
                p = os.path.join(dirpath, n)
                if n.endswith((".so", ".pyd", ".dylib")):
                    raise ShipError(f"package {top} has compiled code ({n}); only pure-Python dependencies travel: use a base image that has it (DockerExecutor(image=...))")
                if n.endswith(".py") or n.endswith(".typed"):
                    with open(p, "rb") as f:
                        files[os.path.relpath(p, base)] = f.read()
    else:
        if not str(spec.origin).endswith(".py"):
            raise ShipError(f"module {top} is compiled ({spec.origin}); only pure-Python dependencies travel")
        with open(str(spec.origin), "rb") as f:
            files[os.path.basename(str(spec.origin))] = f.read()
    if sum(len(v) for v in files.values()) > MAX_LIB_BYTES:
        raise ShipError(f"package {top} is over {MAX_LIB_BYTES} bytes")
    return files


def ship(fn: Callable[..., Any]) -> Shipment:
    """Packs ``fn`` and what it names from its module."""
    fn = inspect.unwrap(fn)
    module_name = fn.__module__
    g = fn.__globals__
    imports: list[str] = []
    defs: list[str] = []
    consts: list[str] = []
    lib: dict[str, bytes] = {}
    done: set[str] = set()
    stdlib: frozenset[str] = getattr(sys, "stdlib_module_names", frozenset())

    def visit(obj: Any, strip: bool) -> None:
        src, node = _def_source(obj, strip)
        own = {obj.__name__}
        args = node.args if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None
        params = {a.arg for a in (args.args + args.kwonlyargs)} if args else set()
        only_ann = _annotation_names(node) - (_names(node) - _annotation_names(node))
        for name in sorted(_names(node) - own - params):
            if name in done or name not in g:
                continue
            done.add(name)
            v = g[name]
            if isinstance(v, types.ModuleType):
                top = v.__name__.split(".")[0]
                if top == "atr":
                    continue
                imports.append(f"import {v.__name__} as {name}" if v.__name__ != name else f"import {name}")
                if top not in stdlib and top not in sys.builtin_module_names:
                    lib.update(_top_package_files(v))
            elif (inspect.isfunction(v) or inspect.isclass(v)) and getattr(v, "__module__", None) == module_name:
                visit(v, True)
            elif (line := _import_line(name, v)) is not None:
                mod = v.__module__
                if mod.split(".")[0] == "atr":
                    continue
                imports.append(line)
                top = mod.split(".")[0]
                if top not in stdlib and top not in sys.builtin_module_names and top != "builtins":
                    lib.update(_top_package_files(sys.modules[mod]))
            elif _json_constant(v):
                consts.append(f"{name} = {v!r}")
            elif name in dir(__builtins__) if isinstance(__builtins__, dict) else hasattr(__builtins__, name):
                continue
            elif name in only_ann:
                continue  # annotations are never evaluated (`from __future__ import annotations`)
            else:
                raise ShipError(f"{fn.__qualname__} uses the global `{name}` ({type(v).__name__}), which cannot be shipped to the sandbox: make it a parameter, a constant or an importable object")
        defs.append(src)

    visit(fn, True)
    header = "from __future__ import annotations\n"
    body = "\n".join(sorted(set(imports))) + "\n\n" + "\n".join(consts) + "\n\n" + "\n\n\n".join(defs) + "\n"
    return Shipment(header + body, lib)
