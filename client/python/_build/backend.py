"""An in-tree PEP 517 build backend with no requirements, so ``pip install ./client/python``
works without a network (the runtime dependencies cryptography, blake3 and cbor2 must then be
installed already, or come from a wheel cache). It packs ``atr/`` into a pure-Python wheel from
the ``[project]`` table of ``pyproject.toml``."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "atr"


def _project() -> dict[str, object]:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    try:
        import tomllib

        return dict(tomllib.loads(text)["project"])
    except ImportError:  # Python 3.10: the few keys this backend reads, from our own file
        block = text.split("[project]", 1)[1].split("\n[", 1)[0]

        def one(key: str) -> str:
            m = re.search(rf'^{key}\s*=\s*"([^"]*)"', block, re.M)
            return m.group(1) if m else ""

        def many(key: str) -> list[str]:
            m = re.search(rf"^{key}\s*=\s*\[(.*?)\]", block, re.M | re.S)
            return re.findall(r'"([^"]*)"', m.group(1)) if m else []

        return {"name": one("name"), "version": one("version"), "description": one("description"), "requires-python": one("requires-python"), "dependencies": many("dependencies"), "classifiers": many("classifiers"), "optional-dependencies": {"test": ["pytest>=7"]}}


def _dist(p: dict[str, object]) -> str:
    return re.sub(r"[-_.]+", "_", str(p["name"])).lower()


def _metadata(p: dict[str, object]) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {p['name']}", f"Version: {p['version']}", f"Summary: {p.get('description', '')}", f"Requires-Python: {p.get('requires-python', '')}"]
    lines += [f"Classifier: {c}" for c in p.get("classifiers", [])]  # type: ignore[union-attr]
    lines += [f"Requires-Dist: {d}" for d in p.get("dependencies", [])]  # type: ignore[union-attr]
    for extra, deps in dict(p.get("optional-dependencies", {})).items():  # type: ignore[arg-type]
        lines.append(f"Provides-Extra: {extra}")
        lines += [f'Requires-Dist: {d}; extra == "{extra}"' for d in deps]
    readme = ROOT / "README.md"
    body = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    return "\n".join(lines) + "\nDescription-Content-Type: text/markdown\n\n" + body


def _files() -> list[Path]:
    out = []
    for dirpath, dirs, names in os.walk(ROOT / PACKAGE):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        out += [Path(dirpath) / n for n in sorted(names) if n.endswith((".py", ".typed"))]
    return out


def _write_wheel(directory: str, entries: list[tuple[str, bytes]]) -> str:
    p = _project()
    dist, ver = _dist(p), str(p["version"])
    info = f"{dist}-{ver}.dist-info"
    entries = entries + [
        (f"{info}/METADATA", _metadata(p).encode()),
        (f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: atr-in-tree-backend\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
        (f"{info}/top_level.txt", f"{PACKAGE}\n".encode()),
    ]
    record = []
    for name, data in entries:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    entries.append((f"{info}/RECORD", ("\n".join(record) + "\n").encode()))
    wheel = f"{dist}-{ver}-py3-none-any.whl"
    with zipfile.ZipFile(Path(directory) / wheel, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
    return wheel


def get_requires_for_build_wheel(config_settings: object = None) -> list[str]:
    return []


get_requires_for_build_sdist = get_requires_for_build_wheel
get_requires_for_build_editable = get_requires_for_build_wheel


def build_wheel(wheel_directory: str, config_settings: object = None, metadata_directory: object = None) -> str:
    return _write_wheel(wheel_directory, [(str(f.relative_to(ROOT)).replace(os.sep, "/"), f.read_bytes()) for f in _files()])


def build_editable(wheel_directory: str, config_settings: object = None, metadata_directory: object = None) -> str:
    return _write_wheel(wheel_directory, [("atr_client_editable.pth", (str(ROOT) + "\n").encode())])


def build_sdist(sdist_directory: str, config_settings: object = None) -> str:
    p = _project()
    base = f"{_dist(p)}-{p['version']}"
    name = f"{base}.tar.gz"
    with tarfile.open(Path(sdist_directory) / name, "w:gz") as t:
        for rel in ["pyproject.toml", "README.md", "_build/backend.py"] + [str(f.relative_to(ROOT)) for f in _files()]:
            t.add(ROOT / rel, arcname=f"{base}/{rel}")
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        data = _metadata(p).encode()
        info.size = len(data)
        import io

        t.addfile(info, io.BytesIO(data))
    return name
