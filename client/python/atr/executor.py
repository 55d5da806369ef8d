"""Executors: how ``execute_tool`` runs a tool.

- :class:`LocalExecutor`: in this process (trusted code only). Unlike the ancestor's, it
  validates the arguments against the schema first, honours ``timeout`` (the call runs in a
  worker thread; a late call is abandoned, not killed: use :class:`DockerExecutor` for code you
  do not trust) and awaits coroutines.
- :class:`DockerExecutor`: through the node, in atr's hardened sandbox (no network, read-only
  root, user 65534, no capabilities, memory/CPU/pids/output caps, fresh container per call),
  locally or on a remote provider, with the provider's signed receipt verified here. A function
  registered in this process is first published: its source goes into a tool image ``FROM`` the
  Python runtime image, and the node signs a spec pinning that image by digest.
"""

from __future__ import annotations

import concurrent.futures
import inspect
import json
import threading
from typing import Any, Callable

from .errors import ApiError, ExecutionTimeoutError, ExecutorError, ToolAlreadyExistsError, ValidationError
from .receipt import VerifiedInvocation
from .schema import function_schema
from .ship import ship
from .spec import ToolSpec
from .validate import violations


def check_args(spec: ToolSpec, args: Any) -> None:
    """Raises :class:`ValidationError` when ``args`` break ``spec``'s input schema."""
    if not isinstance(args, dict):
        raise ValidationError(f"{spec.name}: arguments must be a dict, got {type(args).__name__}", [("/", "expected object")])
    v = violations(spec.input_schema, args)
    if v:
        raise ValidationError(f"{spec.name}: invalid arguments: " + "; ".join(f"{p}: {r}" for p, r in v), v)


class LocalExecutor:
    """Runs the registered function in this process, after validating its arguments."""

    def execute(self, tool: ToolSpec | Callable[..., Any], args: dict[str, Any], timeout: float | None = None) -> Any:
        from ._runner import InputFault, call

        if isinstance(tool, ToolSpec):
            spec = tool
            fn = spec.function
            if fn is None:
                raise ExecutorError(f"{spec.name} is a network tool with no function in this process: run it with DockerExecutor()")
            check_args(spec, args)
            plan = json.loads(spec.plan_json)
            ns = getattr(spec, "_classes", {})
        else:
            fn = tool
            fs = function_schema(fn)
            v = violations(fs.input_schema, args)
            if v:
                raise ValidationError("invalid arguments: " + "; ".join(f"{p}: {r}" for p, r in v), v)
            plan, ns = fs.plan, fs.classes

        def run() -> Any:
            try:
                return call(fn, args, plan, ns)
            except InputFault as e:
                raise ValidationError(str(e)) from None

        if timeout is None:
            return run()
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="atr-local")
        fut = pool.submit(run)
        try:
            return fut.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            raise ExecutionTimeoutError(f"Execution exceeded timeout of {timeout} seconds (the call was abandoned in its thread; use DockerExecutor to have it killed)") from None
        finally:
            pool.shutdown(wait=False)


class DockerExecutor:
    """Runs tools in atr's hardened sandbox through the node, with verified receipts.

    ``image`` is the *base* image of Python tool images: default the runtime image
    :func:`atr.image.python_runtime_image` builds (no registry needed); any local image with
    ``/usr/bin/python3`` may be named instead (e.g. ``python:3.12-slim`` already on the machine;
    nothing is ever pulled). ``interpreter`` is the Python path inside that image."""

    def __init__(self, image: str | None = None, *, registry: Any = None, interpreter: str = "/usr/bin/python3", auto_pull: bool = False) -> None:
        if auto_pull:
            raise ExecutorError("auto_pull is not supported: images are never pulled (there may be no registry); build the base image locally")
        self.image = image
        self.interpreter = interpreter
        self._registry = registry
        self.last: VerifiedInvocation | None = None
        self._lock = threading.Lock()

    @property
    def registry(self) -> Any:
        if self._registry is None:
            from . import default_registry

            return default_registry()
        return self._registry

    def base_image(self) -> str:
        from . import image as _image

        if self.image is not None:
            if _image.docker.image_id(self.image) is None:
                raise ExecutorError(f"base image {self.image} is not on this machine (images are never pulled: build or load it first)")
            return self.image
        return _image.python_runtime_image(self.interpreter)

    def publish(self, spec: ToolSpec) -> ToolSpec:
        """Publishes a locally registered function through the node (once per process)."""
        if spec.id is not None:
            return spec
        fn = spec.function
        if fn is None:
            raise ExecutorError(f"{spec.name} has neither an id nor a function")
        from . import image as _image

        with self._lock:
            reg = self.registry
            shipment = ship(fn)
            meta = {"function": fn.__name__, "plan": json.loads(spec.plan_json)}
            tag = _image.tool_image(spec.name, shipment.source, meta, shipment.lib_files, self.base_image())
            manifest: dict[str, Any] = {
                "name": spec.name,
                "version": spec.version,
                "description": spec.description,
                "tags": list(spec.tags),
                "input_schema": spec.input_schema,
                "runtime": {"image": tag, "digest": _image.docker.image_id(tag), "command": _image.runner_command(self.interpreter)},
                "limits": {"timeout_ms": spec.timeout_ms, "memory_mb": spec.memory_mb, "pids": 32},
                "side_effects": list(spec.side_effects),
                "cost": spec.cost,
            }
            if spec.output_schema_json is not None:
                manifest["output_schema"] = spec.output_schema
            if spec.examples:
                manifest["examples"] = list(spec.examples)
            client = reg.client
            try:
                res = client.publish(manifest, file=f"{spec.name}.py")
                tool_id, publisher = res["id"], res["spec"]["publisher"]
            except ApiError as e:
                if e.code != "version_exists":
                    raise
                tool_id, publisher = self._same_published(client, spec, manifest)
            return reg.set_published(spec, tool_id, publisher, tag)

    @staticmethod
    def _same_published(client: Any, spec: ToolSpec, manifest: dict[str, Any]) -> tuple[str, str]:
        """After ``version_exists``: this node's own spec of that name and version, if it is the
        same tool (same image, schemas, limits); otherwise the version must be bumped."""
        me = client.status()["peer_id"]
        from .image import docker

        digest = docker.image_id(manifest["runtime"]["image"])
        for v in client.find(name=spec.name, version=f"={spec.version}", publisher=me, include_revoked=True):
            s = v["spec"]
            same = s["runtime"]["image_digest"] == digest and s["input_schema"] == manifest["input_schema"] and s.get("output_schema") == manifest.get("output_schema") and s["description"] == manifest["description"]
            if same and v.get("status", {}).get("state") == "active":
                return v["id"], me
        raise ToolAlreadyExistsError(f"this node already published {spec.name} {spec.version} with other content: give the changed function a new version")

    def execute(self, tool: ToolSpec | Callable[..., Any], args: dict[str, Any], timeout: float | None = None) -> Any:
        """Runs ``tool`` in the sandbox; returns its output. The verified invocation (output,
        status, provider, receipt) is kept in :attr:`last`."""
        inv = self.invoke(tool, args, timeout)
        return inv.output

    def invoke(self, tool: ToolSpec | Callable[..., Any], args: dict[str, Any], timeout: float | None = None) -> VerifiedInvocation:
        """Like :meth:`execute`, returning the :class:`~atr.receipt.VerifiedInvocation`."""
        if not isinstance(tool, ToolSpec):
            fn = tool
            spec = self.registry._register(fn, name=None, description=None, version="1.0.0", tags=None, side_effects=None, cost="free", timeout_ms=int(min(max((timeout or 10) * 1000, 100), 120_000)), memory_mb=128, examples=None, replace_existing=True, options={})
        else:
            spec = tool
        check_args(spec, args)
        if spec.id is None:
            spec = self.publish(spec)
        assert spec.id is not None
        client = self.registry.client
        try:
            inv = client.invoke(id=spec.id, input=args)
        except ApiError as e:
            err = ExecutorError(f"{spec.name}: {e}")
            err.code = e.code  # the API's code (no_provider, revoked, invalid_input, ...)
            raise err from e
        self.last = inv
        status = inv.status
        if status == "ok":
            return inv
        out = inv.output
        msg = out.get("error", out) if isinstance(out, dict) else out
        if status == "timeout":
            raise ExecutionTimeoutError(f"{spec.name}: execution exceeded its time limit of {spec.timeout_ms} ms (container killed)", status=status, output=out, receipt=inv)
        raise ExecutorError(f"{spec.name}: {status}: {json.dumps(msg)[:2000]}", status=status, output=out, receipt=inv)


def is_coroutine_function(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn)
