"""Images without a registry.

- :func:`python_runtime_image` builds (once per machine, cached by tag) a minimal Python runtime
  image ``FROM scratch``: a host interpreter (default ``/usr/bin/python3``, Debian's), its
  standard library without tests, IDLE, tkinter, ensurepip and site-packages, and exactly the
  shared libraries ``ldd`` names for the interpreter and its extension modules, imported with
  ``docker import`` (user 65534:65534). Command: ``python3 -m atr.image``.
- :func:`tool_image` builds a function's tool image ``FROM`` that runtime image (or any local
  base image the user names, e.g. ``python:3.12-slim`` already on the machine): ``/app`` holds
  the runner, the function's shipped source, its argument plan and its pure-Python
  dependencies; the tag is content-addressed, so an unchanged function is not rebuilt.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from . import docker
from .errors import ImageError

#: Tag of the runtime image this package builds.
RUNTIME_REPO = "atr-python"
#: Where the interpreter lives in the image (its real path on the host).
DEFAULT_INTERPRETER = "/usr/bin/python3"
#: Standard library parts left out (tests, GUIs, installers, third-party packages).
EXCLUDED = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "site-packages", "dist-packages", "pydoc_data", "venv", "unittest/test"}
#: The command a tool image runs: isolated mode (no environment, no user site, no cwd on the
#: path), no site module, no bytecode writes (the root is read-only).
def runner_command(interpreter: str) -> list[str]:
    return [interpreter, "-I", "-S", "-B", "/app/_runner.py"]


def _probe(interpreter: str) -> dict[str, str]:
    code = (
        "import sys,sysconfig,os,json;"
        "print(json.dumps({'exe':os.path.realpath(sys.executable),'stdlib':sysconfig.get_path('stdlib'),"
        "'dynload':os.path.join(sysconfig.get_path('platstdlib'),'lib-dynload'),'version':'%d.%d.%d'%sys.version_info[:3]}))"
    )
    try:
        out = subprocess.run([interpreter, "-I", "-c", code], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise ImageError(f"cannot run the interpreter {interpreter}: {e}") from None
    return json.loads(out)


def _ldd(paths: list[str]) -> set[str]:
    libs: set[str] = set()
    for chunk in range(0, len(paths), 64):
        try:
            out = subprocess.run(["ldd", *paths[chunk : chunk + 64]], capture_output=True, text=True, timeout=60).stdout
        except (OSError, subprocess.SubprocessError) as e:
            raise ImageError(f"ldd failed: {e}") from None
        for line in out.splitlines():
            parts = line.split()
            for p in parts:
                if p.startswith("/") and os.path.exists(p):
                    libs.add(p)
    return libs


def _add_dirs(tar: tarfile.TarFile, path: str, seen: set[str]) -> None:
    parts = Path(path).parent.parts
    cur = ""
    for p in parts[1:]:
        cur += "/" + p
        if cur not in seen:
            seen.add(cur)
            ti = tarfile.TarInfo(cur.lstrip("/"))
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o755
            tar.addfile(ti)


def _add_file(tar: tarfile.TarFile, host: str, seen: set[str], arcname: str | None = None) -> None:
    name = arcname or host
    _add_dirs(tar, name, seen)
    real = os.path.realpath(host)
    ti = tarfile.TarInfo(name.lstrip("/"))
    st = os.stat(real)
    ti.size = st.st_size
    ti.mode = 0o755 if st.st_mode & 0o111 else 0o644
    ti.mtime = 0
    with open(real, "rb") as f:
        tar.addfile(ti, f)
    seen.add(name)


def runtime_rootfs(interpreter: str = DEFAULT_INTERPRETER, extra: list[str] | None = None) -> tuple[bytes, str]:
    """The runtime image's root filesystem as a tarball, and the interpreter's version;
    ``extra`` host binaries (e.g. a shell) are added with their libraries."""
    extra = [e for e in (extra or []) if os.path.exists(e)]
    info = _probe(interpreter)
    exe, stdlib, dynload = info["exe"], info["stdlib"], info["dynload"]
    files: list[str] = []
    for root, dirs, names in os.walk(stdlib):
        rel = os.path.relpath(root, stdlib)
        dirs[:] = sorted(d for d in dirs if os.path.normpath(os.path.join(rel, d)).lstrip("./") not in EXCLUDED and not d.startswith("config-"))
        for n in sorted(names):
            files.append(os.path.join(root, n))
    elves = [exe] + [os.path.realpath(e) for e in extra] + [f for f in files if f.endswith(".so")]
    if os.path.isdir(dynload) and not dynload.startswith(stdlib + os.sep):
        for n in sorted(os.listdir(dynload)):
            p = os.path.join(dynload, n)
            files.append(p)
            if n.endswith(".so"):
                elves.append(p)
    libs = _ldd(elves)
    buf = io.BytesIO()
    seen: set[str] = set()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("tmp", "app"):
            ti = tarfile.TarInfo(d)
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o1777 if d == "tmp" else 0o755
            tar.addfile(ti)
            seen.add("/" + d)
        _add_file(tar, exe, seen)
        if interpreter != exe:
            _add_file(tar, exe, seen, arcname=interpreter)
        for lib in sorted(libs):
            _add_file(tar, lib, seen)
            real = os.path.realpath(lib)
            if real != lib:
                _add_file(tar, real, seen)
        for e in extra:
            _add_file(tar, e, seen)
        for f in files:
            if os.path.isfile(f) and not os.path.islink(f) and ".opt-" not in os.path.basename(f):
                _add_file(tar, f, seen)
    return buf.getvalue(), info["version"]


def runtime_tag(interpreter: str = DEFAULT_INTERPRETER, extra: list[str] | None = None) -> str:
    """``atr-python:<version>-<hash of the interpreter binary and the extra binaries>``: one tag
    per interpreter build (``atr-python-shell`` with extra binaries)."""
    info = _probe(interpreter)
    h = hashlib.sha256()
    for p in [info["exe"], *[e for e in (extra or []) if os.path.exists(e)]]:
        with open(os.path.realpath(p), "rb") as f:
            h.update(f.read())
    repo = RUNTIME_REPO + ("-shell" if extra else "")
    return f"{repo}:{info['version']}-{h.hexdigest()[:12]}"


def python_runtime_image(interpreter: str = DEFAULT_INTERPRETER, force: bool = False, extra: list[str] | None = None) -> str:
    """The runtime image's tag, built first unless an image of that tag is already here."""
    tag = runtime_tag(interpreter, extra)
    if not force and docker.image_id(tag) is not None:
        return tag
    tar, _ = runtime_rootfs(interpreter, extra)
    repo, t = tag.split(":", 1)
    docker.import_rootfs(
        tar,
        repo,
        t,
        ["USER 65534:65534", f'ENTRYPOINT ["{interpreter}", "-I", "-S", "-B"]', "LABEL dev.atr.python-runtime=1", "WORKDIR /app"],
    )
    return tag


def _ctx_add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = mode
    ti.mtime = 0
    tar.addfile(ti, io.BytesIO(data))


def tool_image(name: str, source: str, meta: dict[str, object], lib_files: dict[str, bytes], base: str) -> str:
    """Builds (unless present) the tool image of one function ``FROM`` local image ``base``;
    returns its content-addressed tag ``atr-py-<name>:<hash>``."""
    runner = (Path(__file__).parent / "_runner.py").read_bytes()
    files: dict[str, bytes] = {"app/_runner.py": runner, "app/tool_src.py": source.encode(), "app/tool.json": json.dumps(meta, sort_keys=True).encode()}
    for rel, data in lib_files.items():
        files[f"app/lib/{rel}"] = data
    h = hashlib.sha256(base.encode())
    for k in sorted(files):
        h.update(k.encode() + b"\0" + hashlib.sha256(files[k]).digest())
    tag = f"atr-py-{name.lower().replace('_', '-')[:40]}:{h.hexdigest()[:16]}"
    if docker.image_id(tag) is not None:
        return tag
    dockerfile = f"FROM {base}\nCOPY app/ /app/\nUSER 65534:65534\nLABEL dev.atr.python-tool={name}\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        _ctx_add(tar, "Dockerfile", dockerfile.encode())
        for k in sorted(files):
            _ctx_add(tar, k, files[k])
    docker.build(buf.getvalue(), tag)
    return tag


def main(argv: list[str] | None = None) -> int:
    """``python -m atr.image [--interpreter PATH] [--force]``: builds the runtime image once."""
    ap = argparse.ArgumentParser(prog="atr-python-image", description="Build atr's minimal Python runtime image (FROM scratch, no registry).")
    ap.add_argument("--interpreter", default=DEFAULT_INTERPRETER, help="host interpreter to pack (default: %(default)s)")
    ap.add_argument("--force", action="store_true", help="rebuild even when the tag exists")
    a = ap.parse_args(argv)
    t0 = time.monotonic()
    tag = runtime_tag(a.interpreter)
    existed = docker.image_id(tag) is not None
    tag = python_runtime_image(a.interpreter, a.force)
    iid = docker.image_id(tag)
    what = "present" if existed and not a.force else "built"
    print(f"{tag} {iid} ({what} in {time.monotonic() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
