"""atr from Python: ``atr.Client`` for the node's API, and the ancestor's verbs
(``@atr.register``, ``get_tool``, ``list_tools``, ``search_tools``, ``get_callable``,
``execute_tool`` with ``LocalExecutor``/``DockerExecutor``) over signed, sandboxed network tools.
See docs/python.md."""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from .client import AsyncClient, Client
from .endpoint import Endpoint
from .errors import (
    ApiError,
    AtrError,
    BadReceipt,
    BadResponse,
    ExecutionTimeoutError,
    ExecutorError,
    ImageError,
    SchemaError,
    ToolAlreadyExistsError,
    ToolNotFoundError,
    Unreachable,
    ValidationError,
)
from .executor import DockerExecutor, LocalExecutor
from .receipt import VerifiedInvocation
from .registry import AmbiguousVersionError, Registry
from .spec import ToolSpec

__version__ = "0.1.0"

__all__ = [
    "AmbiguousVersionError", "ApiError", "AsyncClient", "AtrError", "BadReceipt", "BadResponse", "Client",
    "DockerExecutor", "Endpoint", "ExecutionTimeoutError", "ExecutorError", "ImageError", "LocalExecutor",
    "Registry", "SchemaError", "ToolAlreadyExistsError", "ToolNotFoundError", "ToolSpec", "Unreachable",
    "ValidationError", "VerifiedInvocation", "configure", "default_registry", "execute_tool", "get_callable",
    "get_registry", "get_tool", "list_tools", "publish", "register", "search_tools",
]

_default: Registry | None = None


def default_registry() -> Registry:
    """The process-wide registry the module-level verbs use."""
    global _default
    if _default is None:
        _default = Registry()
    return _default


get_registry = default_registry


def configure(api: str | None = None, token: str | None = None, data_dir: str | os.PathLike[str] | None = None) -> Registry:
    """Points the module-level verbs at a node (default: what ``ATR_API``/``ATR_TOKEN``/
    ``ATR_DATA_DIR`` say, as for the ``atr`` CLI)."""
    reg = default_registry()
    reg.client = Client(api, token, data_dir)
    return reg


def register(fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """``@atr.register(name=..., tags=[...], version=..., ...)``: see :meth:`Registry.register`."""
    return default_registry().register(fn, **options)


def get_tool(name: str, version: str | None = None, **kw: Any) -> ToolSpec:
    """The tool ``name``: registered here, else on the node."""
    return default_registry().get_tool(name, version, **kw)


def list_tools(tag: str | None = None, cost: str | None = None, side_effect: str | None = None, include_all_versions: bool = False, include_deprecated: bool = False, **kw: Any) -> list[ToolSpec]:
    """Tools registered here and on the node, filtered."""
    return default_registry().list_tools(tag, cost, side_effect, include_all_versions, include_deprecated, **kw)


def search_tools(query: str, **kw: Any) -> list[ToolSpec]:
    """Tools matching ``query``: substring here, ranked full-text on the node."""
    return default_registry().search_tools(query, **kw)


def get_callable(name: str, version: str | None = None) -> Callable[..., Any]:
    """The registered Python function (local, trusted calls)."""
    return default_registry().get_callable(name, version)


def publish(name: str, version: str | None = None, executor: DockerExecutor | None = None) -> ToolSpec:
    """Publishes a registered function through the node as a signed, sandboxed tool; returns its spec (with ``id``)."""
    spec = default_registry().get_tool(name, version)
    return (executor or DockerExecutor()).publish(spec)


def execute_tool(name: str, args: dict[str, Any], executor: Any = None, timeout: float | None = None, *, version: str | None = None) -> Any:
    """Runs tool ``name`` with ``args`` (validated against its schema first) on ``executor``
    (default :class:`LocalExecutor`; :class:`DockerExecutor` for the sandbox)."""
    spec = default_registry().get_tool(name, version)
    ex = executor if executor is not None else LocalExecutor()
    return ex.execute(spec, args, timeout)
