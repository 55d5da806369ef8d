"""The tool runtime of a Python function, in the sandbox and in-process.

In a tool image this file is ``/app/_runner.py``, run as ``python3 -I -S -B /app/_runner.py``:
it reads one JSON value (at most 1 MiB) from stdin, loads ``/app/tool.json`` (the function's
name and argument plan) and ``/app/tool_src.py`` (its shipped source), converts the arguments
(dataclasses, enums, tuples, sets), calls the function (awaiting a coroutine) and writes its
result as one JSON value and a newline on stdout. Failures write ``{"error": {"code",
"message"}}`` on stderr: exit 2 for the input's fault, exit 1 for the tool's. It depends on the
standard library only (the image holds no atr package).
"""

import asyncio
import dataclasses
import enum
import json
import sys
import traceback

MAX_INPUT_BYTES = 1024 * 1024


class InputFault(Exception):
    """The arguments cannot be converted to the function's parameter types."""


def coerce(value, plan, ns):
    """Turns a JSON value into the annotated Python value ``plan`` describes."""
    if not plan or value is None:
        return value
    if plan == "int":
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value
    if "opt" in plan:
        return coerce(value, plan["opt"], ns)
    if "union" in plan:
        return value
    if "list" in plan:
        return [coerce(v, plan["list"], ns) for v in value]
    if "set" in plan:
        return set(coerce(v, plan["set"], ns) for v in value)
    if "tuple" in plan:
        items = plan.get("items")
        if items is not None:
            return tuple(coerce(v, p, ns) for v, p in zip(value, items))
        return tuple(coerce(v, plan["tuple"], ns) for v in value)
    if "dict" in plan:
        return {k: coerce(v, plan["dict"], ns) for k, v in value.items()}
    if "enum" in plan:
        try:
            return ns[plan["enum"]](value)
        except (KeyError, ValueError) as e:
            raise InputFault(f"{value!r} is not a {plan['enum']}: {e}") from None
    if "fields" in plan:
        conv = {k: coerce(v, plan["fields"].get(k), ns) for k, v in value.items()}
        if "dataclass" in plan:
            try:
                return ns[plan["dataclass"]](**conv)
            except TypeError as e:
                raise InputFault(f"{plan['dataclass']}: {e}") from None
        return conv
    return value


def to_json(value):
    """A result as plain JSON: dataclasses as objects, enums as values, tuples and sets as arrays."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((to_json(v) for v in value), key=repr)
    return value


def call(fn, args, plan, ns):
    """Converts ``args`` by ``plan`` and calls ``fn`` (running a coroutine to completion)."""
    kwargs = {k: coerce(v, plan.get(k), ns) for k, v in args.items()}
    out = fn(**kwargs)
    if asyncio.iscoroutine(out):
        out = asyncio.run(out)
    return to_json(out)


def _fail(code, message, exit_code):
    sys.stderr.write(json.dumps({"error": {"code": code, "message": message[:4000]}}) + "\n")
    sys.stderr.flush()
    sys.exit(exit_code)


def main():
    raw = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
    if len(raw) > MAX_INPUT_BYTES:
        _fail("input_too_large", f"input over {MAX_INPUT_BYTES} bytes", 2)
    try:
        args = json.loads(raw)
    except ValueError as e:
        _fail("invalid_json", str(e), 2)
    if not isinstance(args, dict):
        _fail("invalid_input", "the input must be a JSON object", 2)
    with open("/app/tool.json", encoding="utf-8") as f:
        meta = json.load(f)
    sys.path.insert(0, "/app/lib")
    import types

    module = types.ModuleType("__atr_tool__")
    module.__file__ = "/app/tool_src.py"
    sys.modules["__atr_tool__"] = module  # dataclasses and typing look their module up there
    ns = module.__dict__
    with open("/app/tool_src.py", encoding="utf-8") as f:
        src = f.read()
    exec(compile(src, "/app/tool_src.py", "exec"), ns)
    fn = ns[meta["function"]]
    try:
        result = call(fn, args, meta.get("plan") or {}, ns)
    except InputFault as e:
        _fail("invalid_input", str(e), 2)
    except Exception as e:  # the tool's own failure
        tb = traceback.format_exception_only(type(e), e)
        _fail("tool_error", "".join(tb).strip(), 1)
    try:
        text = json.dumps(result, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        _fail("invalid_output", f"the result is not JSON: {e}", 1)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
