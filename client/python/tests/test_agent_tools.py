"""run_python / run_bash: hostile agent-written scripts are contained by the sandbox, one test
per case, and no container is left behind."""

from __future__ import annotations

import time
from typing import Any

import pytest

import atr
from atr.tools import publish_agent_tools, shell_image

from conftest import Node, sandbox_containers


@pytest.fixture(scope="module")
def tools(node_a: Node, runtime_image: str) -> tuple[atr.Registry, dict[str, atr.ToolSpec]]:
    reg = atr.Registry(node_a.client())
    return reg, publish_agent_tools(reg)


def run(tools: Any, name: str, args: dict[str, Any]) -> tuple[str, Any]:
    """``("ok", output)`` or ``(status, error)`` when the sandbox ended the run itself."""
    reg, specs = tools
    ex = atr.DockerExecutor(image=shell_image(), registry=reg)
    try:
        out = ex.execute(specs[name], args)
        assert ex.last is not None and ex.last.receipt.value["status"] == "ok"
        return "ok", out
    except atr.ExecutorError as e:
        assert e.status in ("timeout", "out_of_memory", "tool_error", "output_too_large"), e
        return str(e.status), e


@pytest.fixture(autouse=True)
def no_container_left(node_a: Node):  # type: ignore[no-untyped-def]
    yield
    deadline = time.monotonic() + 30
    while sandbox_containers():
        assert time.monotonic() < deadline, f"sandbox containers left: {sandbox_containers()}"
        time.sleep(0.5)
    assert node_a.client().health()


def test_run_python_and_run_bash_work(tools: Any) -> None:
    status, out = run(tools, "run_python", {"code": "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))\nprint(open('data.txt').read())", "stdin": "1 2 3", "files": {"data.txt": "hello"}})
    assert status == "ok" and out["stdout"] == "6\nhello\n" and out["exit_code"] == 0 and not out["timed_out"]
    status, out = run(tools, "run_bash", {"code": "echo hi; seq 1 3 | wc -l; cat data.txt; exit 3", "files": {"data.txt": "x"}})
    assert status == "ok" and out["stdout"] == "hi\n3\nx" and out["exit_code"] == 3
    status, out = run(tools, "run_python", {"code": "print('x' * 200000)"})
    assert status == "ok" and out["stdout_truncated"] and len(out["stdout"]) == 64 * 1024


def test_infinite_loop_is_killed(tools: Any) -> None:
    t0 = time.monotonic()
    status, out = run(tools, "run_python", {"code": "while True:\n    pass", "timeout_s": 2})
    assert status == "ok" and out["timed_out"] and out["exit_code"] == -9
    assert time.monotonic() - t0 < 20


def test_fork_bomb_is_contained(tools: Any) -> None:
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    status, out = run(tools, "run_python", {"code": bomb, "timeout_s": 3})
    if status == "ok":
        assert out["timed_out"] or out["exit_code"] != 0
    # the node and the sandbox still work afterwards
    assert run(tools, "run_bash", {"code": ":(){ :|:& };:", "timeout_s": 2})[0] in ("ok", "timeout")
    assert run(tools, "run_python", {"code": "print(1)"})[1]["stdout"] == "1\n"


def test_network_is_unreachable(tools: Any, node_a: Node) -> None:
    code = (
        "import socket\n"
        "for host, port in (('1.1.1.1', 53), ('127.0.0.1', %d), ('172.17.0.1', %d)):\n"
        "    try:\n"
        "        socket.create_connection((host, port), timeout=2)\n"
        "        print('CONNECTED', host)\n"
        "    except OSError as e:\n"
        "        print('refused', host, e.errno)\n"
        "try:\n"
        "    socket.getaddrinfo('example.com', 80)\n"
        "    print('RESOLVED')\n"
        "except OSError:\n"
        "    print('no dns')\n"
    ) % (node_a.port, node_a.port)
    status, out = run(tools, "run_python", {"code": code})
    assert status == "ok", out
    assert "CONNECTED" not in out["stdout"] and "RESOLVED" not in out["stdout"], out
    assert out["stdout"].count("refused") == 3 and "no dns" in out["stdout"]


def test_memory_hog_is_stopped(tools: Any) -> None:
    status, out = run(tools, "run_python", {"code": "x = b'a' * (1024 * 1024 * 1024)\nprint(len(x))"})
    if status == "ok":
        assert out["exit_code"] != 0 and "1073741824" not in out["stdout"], out
    else:
        assert status in ("out_of_memory", "tool_error")


def test_cannot_write_outside_scratch_or_escalate(tools: Any) -> None:
    code = "import os\nprint(os.getuid())\nfor p in ('/app/x', '/usr/x', '/x'):\n    try:\n        open(p, 'w')\n        print('WROTE', p)\n    except OSError as e:\n        print('denied', e.errno)\n"
    status, out = run(tools, "run_python", {"code": code})
    assert status == "ok" and out["stdout"].startswith("65534\n") and "WROTE" not in out["stdout"], out
    status, out = run(tools, "run_bash", {"code": "printf '#!/bin/sh\\necho ran' > /tmp/s.sh; chmod +x /tmp/s.sh; /tmp/s.sh"})
    assert status == "ok" and "ran" not in out["stdout"] and out["exit_code"] != 0, out
