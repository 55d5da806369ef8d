"""``atr.Client``: the node's local HTTP API (``/v1``) from Python, and ``AsyncClient``, its
asyncio twin. Standard library HTTP (``http.client``, one kept-alive connection per thread);
answers are capped in size; every call has a timeout; every error answer is an
:class:`~atr.errors.ApiError` with the API's code. Verified signed specs are cached by id
(immutable); views, which carry a status, are not."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import threading
import time
import urllib.parse
from typing import Any

from .endpoint import Endpoint
from .errors import ApiError, BadResponse, Unreachable
from .receipt import VerifiedInvocation, verify_invocation, verify_spec_envelope
from .signed import Verified

#: Largest answer read, bytes (a find of many specs can be large).
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
#: Timeout of ordinary calls, seconds.
REQUEST_TIMEOUT = 30.0
#: Timeout of an invocation: the longest tool time limit (120 s) plus container start and transfer.
INVOKE_TIMEOUT = 160.0
#: A kept-alive connection idle longer than this is not reused for a POST.
IDLE_REUSE_SECS = 2.0
#: Specs kept in the by-id cache.
SPEC_CACHE = 4096


class Client:
    """A connection to one node's API. ``api``/``token``/``data_dir`` default to what the
    ``atr`` CLI uses (``ATR_API``, ``ATR_TOKEN``, ``ATR_DATA_DIR``, the default data dir)."""

    def __init__(self, api: str | None = None, token: str | None = None, data_dir: str | os.PathLike[str] | None = None, timeout: float = REQUEST_TIMEOUT) -> None:
        self.endpoint = Endpoint.from_env(api, token, data_dir)
        parsed = urllib.parse.urlsplit(self.endpoint.api)
        self._host = parsed.hostname or "127.0.0.1"
        self._port = parsed.port or 80
        self._base = parsed.path.rstrip("/")
        self.timeout = timeout
        self._local = threading.local()
        self._verified: dict[str, Verified] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Client({self.endpoint!r})"

    # -- transport -------------------------------------------------------------------------

    def _conn(self, timeout: float, fresh: bool = False) -> http.client.HTTPConnection:
        c = getattr(self._local, "conn", None)
        if c is not None and fresh and time.monotonic() - getattr(self._local, "used", 0.0) > IDLE_REUSE_SECS:
            c.close()
            c = None
        if c is None:
            c = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
            self._local.conn = c
        self._local.used = time.monotonic()
        c.timeout = timeout
        if c.sock is not None:
            c.sock.settimeout(timeout)
        return c

    def request(self, method: str, path: str, *, query: dict[str, Any] | None = None, body: Any = None, auth: bool = False, timeout: float | None = None) -> Any:
        """One API call; returns the decoded JSON answer or raises :class:`ApiError`."""
        t = timeout or self.timeout
        url = self._base + path
        if query:
            q = {k: ("true" if v is True else "false" if v is False else str(v)) for k, v in query.items() if v is not None}
            if q:
                url += "?" + urllib.parse.urlencode(q)
        headers = {"Accept": "application/json", "Host": f"{self._host}:{self._port}"}
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        if auth:
            if not self.endpoint.token:
                raise ApiError("unauthorized", f"this call needs the node's API token; token: {self.endpoint.token_source}", status=401)
            headers["Authorization"] = f"Bearer {self.endpoint.token}"
        # Only requests that change nothing are sent twice (a kept-alive connection the node
        # closed); a POST gets a fresh connection after an idle spell instead, so a tool is
        # never invoked twice by a retry.
        idempotent = method in ("GET", "HEAD", "DELETE")
        for attempt in (0, 1):
            conn = self._conn(t, fresh=not idempotent)
            try:
                conn.request(method, url, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read(MAX_RESPONSE_BYTES + 1)
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                conn.close()
                self._local.conn = None
                if attempt == 1 or not idempotent:
                    raise Unreachable(f"node at {self.endpoint.api}: {e}") from None
            except TimeoutError:
                conn.close()
                self._local.conn = None
                raise Unreachable(f"node at {self.endpoint.api} did not answer within {t} s") from None
            except OSError as e:
                conn.close()
                self._local.conn = None
                raise Unreachable(f"node at {self.endpoint.api} not reachable ({e}); is atrd running? set ATR_API") from None
        if len(raw) > MAX_RESPONSE_BYTES:
            conn.close()
            self._local.conn = None
            raise BadResponse(f"answer over {MAX_RESPONSE_BYTES} bytes")
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = None
            if resp.status < 400:
                raise BadResponse(f"{method} {path}: answer is not JSON") from None
        if resp.status >= 400:
            if isinstance(doc, dict) and isinstance(doc.get("code"), str):
                msg = str(doc.get("message", ""))
                if doc["code"] == "unauthorized":
                    msg += f" (token: {self.endpoint.token_source})"
                raise ApiError(doc["code"], msg, status=resp.status, field=doc.get("field"), details=doc.get("details"))
            raise ApiError("internal", f"HTTP {resp.status} without an error body", status=resp.status)
        return doc

    def close(self) -> None:
        c = getattr(self._local, "conn", None)
        if c is not None:
            c.close()
            self._local.conn = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the API ---------------------------------------------------------------------------

    def health(self) -> bool:
        """Whether the node answers ``/health``."""
        try:
            conn = self._conn(5.0)
            conn.request("GET", self._base + "/health", headers={"Host": f"{self._host}:{self._port}"})
            r = conn.getresponse()
            r.read(64)
            return r.status == 200
        except OSError:
            self._local.conn = None
            return False

    def status(self) -> dict[str, Any]:
        """``GET /v1/status`` (token): peer id, version, listen addresses, peers, store counts."""
        return self.request("GET", "/v1/status", auth=True)

    def publish(self, manifest: dict[str, Any], file: str | None = None) -> dict[str, Any]:
        """``POST /v1/publish`` (token): a manifest (schemas inline) becomes a signed spec;
        returns ``{id, created, spec}``."""
        body: dict[str, Any] = {"manifest": manifest}
        if file:
            body["file"] = file
        return self.request("POST", "/v1/publish", body=body, auth=True, timeout=120.0)

    def show(self, tool_id: str) -> dict[str, Any]:
        """``GET /v1/specs/{id}``: one spec view with its envelope and current status."""
        return self.request("GET", f"/v1/specs/{urllib.parse.quote(tool_id, safe='')}")

    def signed_spec(self, tool_id: str) -> Verified:
        """The spec ``tool_id`` verified here: signature, canonical form, and id = blake3(body);
        cached by id (a signed spec never changes)."""
        v = self._verified.get(tool_id)
        if v is None:
            view = self.show(tool_id)
            env = view.get("envelope_hex")
            if not isinstance(env, str):
                from .errors import BadReceipt

                raise BadReceipt(f"the node sent spec {tool_id} without its envelope")
            v = verify_spec_envelope(env, tool_id)
            with self._lock:
                self._verified[tool_id] = v
                while len(self._verified) > SPEC_CACHE:
                    self._verified.pop(next(iter(self._verified)))
        return v

    def find(self, *, tag: str | None = None, name: str | None = None, version: str | None = None, publisher: str | None = None, side_effects: str | None = None, max_cost: str | None = None, include_revoked: bool = False, network: bool = False, limit: int | None = None) -> list[dict[str, Any]]:
        """``GET /v1/find``: spec views matching every filter given (``network=True`` asks peers
        first and needs the token)."""
        q = {"tag": tag, "name": name, "version": version, "publisher": publisher, "side_effects": side_effects, "max_cost": max_cost, "include_revoked": include_revoked or None, "network": network or None, "limit": limit}
        doc = self.request("GET", "/v1/find", query=q, auth=network, timeout=60.0 if network else None)
        return list(doc.get("results", []))

    def search(self, q: str, limit: int | None = None) -> list[dict[str, Any]]:
        """``GET /v1/search``: ranked hits ``{score, view}``, best first."""
        return list(self.request("GET", "/v1/search", query={"q": q, "limit": limit}).get("hits", []))

    def invoke(self, *, id: str | None = None, name: str | None = None, version: str | None = None, publisher: str | None = None, input: Any = None, verify: bool = True) -> VerifiedInvocation:
        """``POST /v1/invoke`` (token): runs a tool by id (or name + version + publisher) and
        returns the answer with its receipt verified here (see :mod:`atr.receipt`)."""
        req: dict[str, Any] = {"input": {} if input is None else input}
        for k, v in (("id", id), ("name", name), ("version", version), ("publisher", publisher)):
            if v is not None:
                req[k] = v
        resp = self.request("POST", "/v1/invoke", body=req, auth=True, timeout=INVOKE_TIMEOUT)
        if not isinstance(resp, dict):
            raise BadResponse("invoke answer is not an object")
        spec = self.signed_spec(str(resp.get("id"))) if verify else None
        return verify_invocation(req, resp, spec)

    def revoke(self, *, id: str | None = None, name: str | None = None, reason: str = "", kind: str | None = None, successor: str | None = None) -> dict[str, Any]:
        """``POST /v1/revoke`` (token): revoke (or ``kind="deprecate"``) one id or every version of a name."""
        body: dict[str, Any] = {"reason": reason}
        for k, v in (("id", id), ("name", name), ("kind", kind), ("successor", successor)):
            if v is not None:
                body[k] = v
        return self.request("POST", "/v1/revoke", body=body, auth=True)

    def receipts(self, limit: int | None = None) -> list[dict[str, Any]]:
        """``GET /v1/receipts`` (token): receipts this node issued or received, newest first."""
        return list(self.request("GET", "/v1/receipts", query={"limit": limit}, auth=True).get("receipts", []))

    def trust(self) -> dict[str, Any]:
        """``GET /v1/trust``: this node's key and the publishers it trusts."""
        return self.request("GET", "/v1/trust")

    def trust_add(self, publisher: str, label: str | None = None) -> dict[str, Any]:
        """``POST /v1/trust`` (token): trust a publisher."""
        body: dict[str, Any] = {"publisher": publisher}
        if label:
            body["label"] = label
        return self.request("POST", "/v1/trust", body=body, auth=True)

    def trust_remove(self, publisher: str) -> dict[str, Any]:
        """``DELETE /v1/trust/{publisher}`` (token)."""
        return self.request("DELETE", f"/v1/trust/{urllib.parse.quote(publisher, safe='')}", auth=True)

    def peers(self) -> list[dict[str, Any]]:
        """``GET /v1/peers`` (token)."""
        return list(self.request("GET", "/v1/peers", auth=True).get("peers", []))


class AsyncClient:
    """The asyncio twin of :class:`Client`: the same methods, as coroutines (each runs the
    blocking call in a worker thread, so an event loop is never blocked)."""

    def __init__(self, api: str | None = None, token: str | None = None, data_dir: str | os.PathLike[str] | None = None, timeout: float = REQUEST_TIMEOUT) -> None:
        self.sync = Client(api, token, data_dir, timeout)

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self.sync, name)
        if not callable(fn):
            return fn

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(fn, *args, **kwargs)

        call.__name__ = name
        call.__doc__ = fn.__doc__
        return call

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.sync.close()
