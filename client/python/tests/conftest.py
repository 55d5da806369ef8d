"""Fixtures: real ``atrd`` processes on loopback with temporary data dirs, and the real Docker
Engine. The ``atrd`` binary is ``$ATR_ATRD``, else ``$CARGO_TARGET_DIR/debug/atrd``, else the
repository's ``target/debug/atrd`` (build it with ``cargo build -p atrd``). Under ``CI=true`` a
missing binary or Docker Engine fails the tests instead of skipping them."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[3]


def atrd_bin() -> Path:
    for cand in (os.environ.get("ATR_ATRD"), os.environ.get("CARGO_TARGET_DIR") and os.path.join(os.environ["CARGO_TARGET_DIR"], "debug/atrd"), str(REPO / "target/debug/atrd")):
        if cand and Path(cand).is_file():
            return Path(cand)
    msg = "no atrd binary: run `cargo build -p atrd` or set ATR_ATRD"
    if os.environ.get("CI") == "true":
        pytest.fail(msg)
    pytest.skip(msg)


def require_docker() -> None:
    try:
        ok = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail("Docker Engine not reachable")
        pytest.skip("Docker Engine not reachable")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Node:
    """One ``atrd`` process (sandbox on) with its own data dir and API port."""

    def __init__(self, bootstrap: str | None = None, extra_config: str = "") -> None:
        self.dir = tempfile.mkdtemp(prefix="atr-py-node-")
        Path(self.dir, "atrd.toml").write_text(f"{extra_config}\n[sandbox]\nenabled = true\n")
        self.port = free_port()
        args = [str(atrd_bin()), "--data-dir", self.dir, "--api", f"127.0.0.1:{self.port}", "--listen", "/ip4/127.0.0.1/tcp/0"]
        if bootstrap:
            args += ["--bootstrap", bootstrap]
        env = {k: v for k, v in os.environ.items() if not k.startswith("ATR_")}
        env["RUST_LOG"] = "warn"
        self.log = open(Path(self.dir, "atrd.log"), "wb")
        self.proc = subprocess.Popen(args, env=env, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"atrd exited during start: {Path(self.dir, 'atrd.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.api}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("atrd not healthy after 60 s")
            time.sleep(0.1)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return Path(self.dir, "api.token").read_text().strip()

    def client(self):  # type: ignore[no-untyped-def]
        import atr

        return atr.Client(api=self.api, data_dir=self.dir)

    def bootstrap_addr(self) -> str:
        s = self.client().status()
        return f"{s['listen_addrs'][0]}/p2p/{s['peer_id']}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def docker() -> None:
    require_docker()


@pytest.fixture(scope="session")
def runtime_image(docker: None) -> str:
    from atr.image import python_runtime_image

    return python_runtime_image()


@pytest.fixture(scope="session")
def node_a(docker: None) -> Iterator[Node]:
    n = Node()
    yield n
    n.stop()


@pytest.fixture(scope="session")
def node_b(node_a: Node) -> Iterator[Node]:
    n = Node(bootstrap=node_a.bootstrap_addr())
    c = n.client()
    deadline = time.monotonic() + 30
    while not c.status()["connected_peers"]:
        if time.monotonic() > deadline:
            raise RuntimeError("node B did not connect to node A")
        time.sleep(0.2)
    yield n
    n.stop()


@pytest.fixture()
def registry_a(node_a: Node):  # type: ignore[no-untyped-def]
    import atr

    return atr.Registry(node_a.client())


def sandbox_containers() -> list[str]:
    out = subprocess.run(["docker", "ps", "-aq", "--filter", "label=dev.atr.sandbox"], capture_output=True, text=True, timeout=30).stdout
    return out.split()


def vectors() -> list[dict[str, object]]:
    return json.loads((REPO / "protocol/tests/vectors.json").read_text())
