"""The few Docker Engine API calls this package makes, over the Engine's unix socket with the
standard library (no Docker SDK, nothing pulled): inspect an image, ``import`` a root
filesystem tarball, build from a tar context (``FROM`` a local image only), list and remove
containers by label. Every call has a timeout; answers are size-capped."""

from __future__ import annotations

import http.client
import json
import os
import socket
import urllib.parse
from typing import Any

from .errors import ImageError

DEFAULT_SOCKET = "/var/run/docker.sock"
CALL_TIMEOUT = 30.0
BUILD_TIMEOUT = 300.0
MAX_ANSWER_BYTES = 16 * 1024 * 1024


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


def _socket_path() -> str:
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        return host[len("unix://") :]
    if host:
        raise ImageError(f"DOCKER_HOST={host!r}: only unix:// sockets are supported here")
    return DEFAULT_SOCKET


def call(method: str, path: str, *, query: dict[str, Any] | None = None, body: bytes | None = None, content_type: str | None = None, timeout: float = CALL_TIMEOUT) -> tuple[int, bytes]:
    """One Engine API call: ``(status, body)``."""
    url = path + ("?" + urllib.parse.urlencode(query) if query else "")
    conn = _UnixConnection(_socket_path(), timeout)
    try:
        headers = {"Content-Type": content_type} if content_type else {}
        conn.request(method, url, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read(MAX_ANSWER_BYTES)
        return r.status, data
    except OSError as e:
        raise ImageError(f"Docker Engine not reachable at {_socket_path()}: {e}") from None
    finally:
        conn.close()


def image_id(ref: str) -> str | None:
    """The id (``sha256:…``) of local image ``ref``, or ``None`` when it is not here."""
    status, data = call("GET", f"/images/{urllib.parse.quote(ref, safe='')}/json")
    if status == 404:
        return None
    if status != 200:
        raise ImageError(f"docker image inspect {ref}: HTTP {status}: {data[:300]!r}")
    return str(json.loads(data)["Id"])


def _stream_errors(data: bytes) -> str | None:
    for line in data.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if isinstance(msg, dict) and msg.get("error"):
            return str(msg["error"])
    return None


def import_rootfs(tar: bytes, repo: str, tag: str, changes: list[str]) -> str:
    """``docker import``: a root filesystem tarball becomes image ``repo:tag``; returns its id."""
    q: list[tuple[str, str]] = [("fromSrc", "-"), ("repo", repo), ("tag", tag)] + [("changes", c) for c in changes]
    url = "/images/create?" + urllib.parse.urlencode(q)
    status, data = call("POST", url, body=tar, content_type="application/x-tar", timeout=BUILD_TIMEOUT)
    err = _stream_errors(data)
    if status != 200 or err:
        raise ImageError(f"docker import {repo}:{tag}: {err or data[:300]!r}")
    iid = image_id(f"{repo}:{tag}")
    if iid is None:
        raise ImageError(f"docker import {repo}:{tag}: the image is not there afterwards")
    return iid


def build(context_tar: bytes, tag: str) -> str:
    """Builds ``tag`` from a tar context with the classic builder, never pulling; returns its id."""
    q = {"t": tag, "pull": "0", "rm": "1", "forcerm": "1", "nocache": "0", "version": "1"}
    status, data = call("POST", "/build", query=q, body=context_tar, content_type="application/x-tar", timeout=BUILD_TIMEOUT)
    err = _stream_errors(data)
    if status != 200 or err:
        raise ImageError(f"docker build {tag}: {err or data[:300]!r}")
    iid = image_id(tag)
    if iid is None:
        raise ImageError(f"docker build {tag}: the image is not there afterwards")
    return iid


def containers(label: str) -> list[dict[str, Any]]:
    """Containers (running or not) carrying ``label``."""
    status, data = call("GET", "/containers/json", query={"all": "1", "filters": json.dumps({"label": [label]})})
    if status != 200:
        raise ImageError(f"docker ps: HTTP {status}")
    return list(json.loads(data))
