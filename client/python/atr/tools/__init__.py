"""Example tools for agent-generated code: ``run_python`` and ``run_bash`` run an untrusted
script in atr's hardened sandbox (the ancestor's stated reason for its DockerExecutor).

Input: ``code``, optional ``stdin`` and ``files`` (name → text, written to ``/tmp/work``, the
container's only writable, ``noexec`` scratch space). Output: ``stdout``, ``stderr`` (each capped
at :data:`MAX_STREAM_BYTES`, with ``*_truncated`` flags), ``exit_code`` and ``timed_out``.
Inside the container the script runs as a child in its own process group, killed at
``timeout_s``; around it the sandbox holds: no network, user 65534, read-only root, all
capabilities dropped, a memory cap without swap, 32 processes, CPU quota, and the spec's wall
clock, after which the node kills the container. Publish with :func:`publish_agent_tools`.
"""

from __future__ import annotations

from typing import Any, Optional, TypedDict

#: Most bytes of stdout and of stderr returned.
MAX_STREAM_BYTES = 64 * 1024
#: Most files and total bytes a call may write.
MAX_FILES = 16
MAX_FILES_BYTES = 1024 * 1024
#: The spec's wall-clock limit; the script's own limit stays below it.
TOOL_TIMEOUT_MS = 20_000
#: Tag of the image with a shell and core utilities for ``run_bash``.
SHELL_TOOLS = ["/bin/bash", "/bin/sh", "/usr/bin/env", "/bin/ls", "/bin/cat", "/usr/bin/head", "/usr/bin/tail", "/usr/bin/wc", "/usr/bin/sort", "/usr/bin/uniq", "/usr/bin/tr", "/usr/bin/cut", "/bin/grep", "/bin/sed", "/usr/bin/mawk", "/bin/sleep", "/bin/echo", "/usr/bin/seq", "/bin/mkdir", "/bin/rm", "/bin/cp", "/bin/mv"]


class RunResult(TypedDict):
    """What a script run returns."""

    stdout: str
    stderr: str
    exit_code: int
    timed_out: bool
    stdout_truncated: bool
    stderr_truncated: bool


def _run_script(argv: list[str], stdin: str, files: dict[str, str], timeout_s: float) -> dict[str, Any]:
    import os
    import signal
    import subprocess
    import tempfile

    cap = 64 * 1024
    if len(files) > 16 or sum(len(v) for v in files.values()) > 1024 * 1024:
        raise ValueError("at most 16 files and 1 MiB in all")
    work = tempfile.mkdtemp(prefix="work-", dir="/tmp" if os.path.isdir("/tmp") else None)
    for name, text in files.items():
        if "/" in name or name in ("", ".", "..") or len(name) > 128:
            raise ValueError(f"file name {name[:40]!r} must be a plain name")
        with open(os.path.join(work, name), "w", encoding="utf-8") as f:
            f.write(text)
    out_path, err_path = os.path.join(work, ".stdout"), os.path.join(work, ".stderr")
    timed_out = False
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        try:
            p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=out, stderr=err, cwd=work, start_new_session=True, env={"PATH": "/usr/bin:/bin", "HOME": work, "LANG": "C.UTF-8"})
        except OSError as e:
            return {"stdout": "", "stderr": f"cannot start: {e}", "exit_code": 126, "timed_out": False, "stdout_truncated": False, "stderr_truncated": False}
        try:
            p.communicate(stdin.encode(), timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        except (BrokenPipeError, OSError):
            pass
        finally:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                p.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
    def read(path: str) -> tuple[str, bool]:
        with open(path, "rb") as f:
            data = f.read(cap + 1)
        return data[:cap].decode("utf-8", "replace"), len(data) > cap
    so, st = read(out_path)
    se, et = read(err_path)
    code = p.returncode if p.returncode is not None else -9
    return {"stdout": so, "stderr": se, "exit_code": code, "timed_out": timed_out, "stdout_truncated": st, "stderr_truncated": et}


def run_python(code: str, stdin: str = "", files: Optional[dict[str, str]] = None, timeout_s: float = 15.0) -> RunResult:
    """Run an untrusted Python script in the sandbox.

    Args:
        code: The Python source to run.
        stdin: Text given on the script's standard input.
        files: Files written next to the script (name to text).
        timeout_s: Seconds before the script is killed (at most 15).
    """
    import sys

    t = max(0.1, min(float(timeout_s), 15.0))
    return _run_script([sys.executable, "-I", "-S", "-B", "-c", code], stdin, files or {}, t)  # type: ignore[return-value]


def run_bash(code: str, stdin: str = "", files: Optional[dict[str, str]] = None, timeout_s: float = 15.0) -> RunResult:
    """Run an untrusted bash script in the sandbox.

    Args:
        code: The bash script to run.
        stdin: Text given on the script's standard input.
        files: Files written next to the script (name to text).
        timeout_s: Seconds before the script is killed (at most 15).
    """
    t = max(0.1, min(float(timeout_s), 15.0))
    return _run_script(["/bin/bash", "--noprofile", "--norc", "-c", code], stdin, files or {}, t)  # type: ignore[return-value]


def shell_image() -> str:
    """The runtime image plus bash and core utilities (built once, cached by tag)."""
    from .. import image

    return image.python_runtime_image(extra=SHELL_TOOLS)


def publish_agent_tools(registry: Any = None, version: str = "1.0.0") -> dict[str, Any]:
    """Registers and publishes ``run_python`` and ``run_bash`` through the node; returns their specs."""
    from .. import DockerExecutor, default_registry

    reg = registry or default_registry()
    out = {}
    for fn in (run_python, run_bash):
        try:
            spec = reg.get_tool(fn.__name__, version) if fn.__name__ in reg._tools else None
        except Exception:
            spec = None
        if spec is None:
            reg.register(fn, name=fn.__name__, version=version, tags=["code", "sandbox"], timeout_ms=TOOL_TIMEOUT_MS, memory_mb=256)
            spec = reg._local(fn.__name__, version)
        assert spec is not None
        out[fn.__name__] = DockerExecutor(image=shell_image(), registry=reg).publish(spec)
    return out
