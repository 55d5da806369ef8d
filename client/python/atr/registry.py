"""The registry behind the ancestor's verbs: Python functions registered in this process, and
the signed specs of the node this process talks to.

Lookups look here first, then ask the node (specs are immutable, so a spec fetched by id is
cached for good). A name resolves to the highest version registered *within one major
version*: when two majors of a name are registered, an unpinned lookup is refused
(:class:`AmbiguousVersionError`) instead of letting the newer major silently take over every
unpinned caller, which the ancestor did."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from typing import Any, Callable, Sequence, TypeVar

from . import semver
from .client import Client
from .errors import ApiError, AtrError, SchemaError, ToolAlreadyExistsError, ToolNotFoundError, Unreachable
from .schema import function_schema
from .spec import COSTS, SIDE_EFFECTS, ToolSpec

F = TypeVar("F", bound=Callable[..., Any])
_NAME_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


class AmbiguousVersionError(AtrError, LookupError):
    """Several major versions of a name are registered and the lookup named none."""

    code = "ambiguous_version"


def _check_tag(t: str) -> str:
    t = t.strip().lower()
    if not (1 <= len(t) <= 32 and (t[0].isascii() and (t[0].islower() or t[0].isdigit())) and all(c.islower() or c.isdigit() or c == "-" for c in t if c.isascii()) and t.isascii()):
        raise SchemaError(f"tag `{t[:40]}` must match ^[a-z0-9][a-z0-9-]{{0,31}}$")
    return t


class Registry:
    """Local registrations plus a node. ``client`` defaults to the node the environment names
    (``ATR_API``...), made on first need."""

    def __init__(self, client: Client | None = None) -> None:
        self._client = client
        self._lock = threading.RLock()
        self._tools: dict[str, dict[str, ToolSpec]] = {}
        self._by_id: dict[str, ToolSpec] = {}
        # name lookups resolved on the node, pinned for this process: (name, version, publisher) -> id
        self._resolved: dict[tuple[str, str | None, str | None], str] = {}

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client()
        return self._client

    @client.setter
    def client(self, c: Client) -> None:
        self._client = c

    # -- registration ------------------------------------------------------------------------

    def register(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
        version: str = "1.0.0",
        tags: Sequence[str] | None = None,
        side_effects: Sequence[str] | None = None,
        cost: str = "free",
        timeout_ms: int = 10_000,
        memory_mb: int = 128,
        examples: Sequence[dict[str, Any]] | None = None,
        replace_existing: bool = False,
        **ancestor_options: Any,
    ) -> Any:
        """Registers ``fn`` (directly or as ``@register(...)``): derives its exact schemas, keeps
        the function for local calls and returns it unwrapped. Refuses at decoration time: an
        unsupported hint, a bad name, tag, version, cost or side effect (the ancestor silently
        turned unknown costs into ``free``), and a second registration of the same name and
        version."""

        def deco(f: F) -> F:
            self._register(f, name=name, description=description, version=version, tags=tags, side_effects=side_effects, cost=cost, timeout_ms=timeout_ms, memory_mb=memory_mb, examples=examples, replace_existing=replace_existing or bool(ancestor_options.get("replace")), options=ancestor_options)
            return f

        return deco(fn) if fn is not None else deco

    def _register(self, f: Callable[..., Any], *, name: str | None, description: str | None, version: str, tags: Sequence[str] | None, side_effects: Sequence[str] | None, cost: str, timeout_ms: int, memory_mb: int, examples: Sequence[dict[str, Any]] | None, replace_existing: bool, options: dict[str, Any]) -> ToolSpec:
        n = name or f.__name__
        where = f"@atr.register on {getattr(f, '__qualname__', f)!r}"
        if not (1 <= len(n) <= 64 and set(n) <= _NAME_OK):
            raise SchemaError(f"{where}: name `{n[:80]}` must be 1-64 characters of a-z, A-Z, 0-9, `_` and `-`")
        semver.parse(version)
        if cost not in COSTS:
            raise SchemaError(f"{where}: cost `{cost}` is not one of {', '.join(COSTS)}")
        ses = []
        for s in side_effects or ["none"]:
            v = getattr(s, "value", s)
            if v not in SIDE_EFFECTS:
                raise SchemaError(f"{where}: side effect `{v}` is not one of {', '.join(sorted(set(SIDE_EFFECTS)))}")
            ses.append(SIDE_EFFECTS[v])
        if not (100 <= timeout_ms <= 120_000):
            raise SchemaError(f"{where}: timeout_ms must be 100..120000")
        for opt in ("permissions", "access_policy", "rate_limit", "retry_policy", "health_check"):
            if options.get(opt) is not None:
                raise SchemaError(f"{where}: `{opt}` is not supported: the ancestor accepted it and never enforced it; atr enforces access on the node (trusted publishers and providers)")
        fs = function_schema(f, description)
        spec = ToolSpec(
            name=n,
            version=version,
            description=fs.description,
            tags=tuple(sorted({_check_tag(t) for t in (tags or [])})),
            input_schema_json=json.dumps(fs.input_schema),
            output_schema_json=None if fs.output_schema is None else json.dumps(fs.output_schema),
            side_effects=tuple(sorted(set(ses))),
            cost=cost,
            timeout_ms=timeout_ms,
            memory_mb=memory_mb,
            examples=tuple(examples or ()),
            is_async=fs.is_async,
            plan_json=json.dumps(fs.plan),
            _fn=f,
        )
        object.__setattr__(spec, "_classes", fs.classes)
        with self._lock:
            versions = self._tools.setdefault(n, {})
            if version in versions and not replace_existing:
                raise ToolAlreadyExistsError(f"Tool '{n}' version '{version}' already exists. Give another version, or replace_existing=True.")
            versions[version] = spec
        return spec

    # -- lookups -----------------------------------------------------------------------------

    def _local(self, name: str, version: str | None) -> ToolSpec | None:
        with self._lock:
            versions = self._tools.get(name)
            if not versions:
                return None
            if version is None:
                majors = {semver.parse(v)[0] for v in versions}
                if len(majors) > 1:
                    raise AmbiguousVersionError(f"tool '{name}' is registered in major versions {sorted(majors)}: pin one (version='^{max(majors)}') so that a new major cannot take over unpinned callers")
                return versions[semver.highest(list(versions))]
            if version in versions:
                return versions[version]
            ok = [v for v in versions if semver.matches(version, v)]
            return versions[semver.highest(ok)] if ok else None

    def _remote(self, name: str, version: str | None, publisher: str | None, network: bool) -> ToolSpec | None:
        try:
            views = self.client.find(name=name, version=version, publisher=publisher, network=network)
            if not views and not network and self.client.endpoint.token:
                # Not on the node yet: ask its peers (needs the token), as `atr find --network`.
                views = self.client.find(name=name, version=version, publisher=publisher, network=True)
        except Unreachable:
            return None
        views = [v for v in views if v.get("status", {}).get("state") == "active"]
        if not views:
            return None
        pubs = {v["spec"]["publisher"] for v in views}
        if len(pubs) > 1:
            raise ApiError("ambiguous_name", f"tool '{name}' is published by {len(pubs)} publishers: name one (publisher=...)", status=409)
        best = max(views, key=lambda v: semver._key(semver.parse(v["spec"]["version"])))
        return self._cache(ToolSpec.from_view(best))

    def _cache(self, spec: ToolSpec) -> ToolSpec:
        assert spec.id is not None
        with self._lock:
            return self._by_id.setdefault(spec.id, spec)

    def get_tool(self, name: str, version: str | None = None, *, publisher: str | None = None, network: bool = False, include_deprecated: bool = False, refresh: bool = False) -> ToolSpec:
        """The tool ``name`` (a version requirement optional): registered here, else on the node
        (``network=True`` asks its peers too). A spec id (``atr_…``) is looked up by id.

        A name resolved on the node stays pinned to that spec id for the life of this registry
        (a lockfile in memory): a version published later does not silently change what this
        process runs; ``refresh=True`` resolves again."""
        if name.startswith("atr_"):
            return self.show(name)
        spec = self._local(name, version) if publisher is None else None
        if spec is None:
            key = (name, version, publisher)
            pinned = None if refresh else self._resolved.get(key)
            if pinned is not None:
                with self._lock:
                    spec = self._by_id.get(pinned)
            if spec is None:
                spec = self._remote(name, version, publisher, network)
                if spec is not None and spec.id is not None:
                    with self._lock:
                        self._resolved[key] = spec.id
        if spec is None:
            where = "" if version is None else f" matching '{version}'"
            raise ToolNotFoundError(f"Tool '{name}'{where} not found in this process or on the node at {self.client.endpoint.api}")
        return spec

    def show(self, tool_id: str) -> ToolSpec:
        """The spec ``tool_id``, cached by id (specs are immutable)."""
        with self._lock:
            s = self._by_id.get(tool_id)
        if s is not None:
            return s
        try:
            return self._cache(ToolSpec.from_view(self.client.show(tool_id)))
        except ApiError as e:
            if e.code == "not_found":
                raise ToolNotFoundError(f"no spec {tool_id} on the node") from None
            raise

    def list_tools(self, tag: str | None = None, cost: str | None = None, side_effect: str | None = None, include_all_versions: bool = False, include_deprecated: bool = False, *, remote: bool = True, limit: int | None = None) -> list[ToolSpec]:
        """Tools registered here and (``remote``) on the node, filtered by tag, highest cost and
        side effect."""
        out: list[ToolSpec] = []
        with self._lock:
            for versions in self._tools.values():
                vs = list(versions.values()) if include_all_versions else [versions[semver.highest(list(versions))]]
                out.extend(vs)
        se = SIDE_EFFECTS.get(side_effect, side_effect) if side_effect else None
        out = [s for s in out if (tag is None or tag in s.tags) and (cost is None or COSTS.index(s.cost) <= COSTS.index(cost)) and (se is None or se in s.side_effects)]
        if remote:
            try:
                views = self.client.find(tag=tag, max_cost=cost, side_effects=se, include_revoked=False, limit=limit)
            except Unreachable:
                views = []
            local_ids = {s.id for s in out if s.id}
            for v in views:
                state = v.get("status", {}).get("state")
                if v["id"] in local_ids or (state != "active" and not (include_deprecated and state == "deprecated")):
                    continue
                with self._lock:
                    s = self._by_id.get(v["id"])
                out.append(s if s is not None else self._cache(ToolSpec.from_view(v)))
        return out

    def search_tools(self, query: str, *, remote: bool = True, limit: int = 20) -> list[ToolSpec]:
        """Tools whose name, description or tags contain ``query`` (here), then the node's
        ranked full-text hits."""
        q = query.lower()
        with self._lock:
            out = [versions[semver.highest(list(versions))] for versions in self._tools.values()]
        out = [s for s in out if q in s.name.lower() or q in s.description.lower() or any(q in t for t in s.tags)]
        if remote:
            try:
                hits = self.client.search(query, limit=limit)
            except Unreachable:
                hits = []
            seen = {s.id for s in out if s.id}
            for h in hits:
                v = h["view"]
                if v["id"] in seen:
                    continue
                with self._lock:
                    s = self._by_id.get(v["id"])
                out.append(s if s is not None else self._cache(ToolSpec.from_view(v)))
        return out

    def get_callable(self, name: str, version: str | None = None) -> Callable[..., Any]:
        """The registered Python function itself (local, unsandboxed calls of trusted code)."""
        spec = self._local(name, version)
        if spec is None or spec.function is None:
            raise ToolNotFoundError(f"Tool '{name}' has no Python function in this process (run it with execute_tool(..., executor=DockerExecutor()))")
        return spec.function

    def set_published(self, spec: ToolSpec, tool_id: str, publisher: str, image: str) -> ToolSpec:
        """Records that a local tool is now the signed spec ``tool_id``."""
        new = replace(spec, id=tool_id, publisher=publisher, image=image)
        object.__setattr__(new, "_classes", getattr(spec, "_classes", {}))
        with self._lock:
            versions = self._tools.get(spec.name, {})
            if versions.get(spec.version) is spec:
                versions[spec.version] = new
            self._by_id[tool_id] = new
        return new

    def clear(self) -> None:
        """Forgets every local registration and cached spec."""
        with self._lock:
            self._tools.clear()
            self._by_id.clear()
            self._resolved.clear()
