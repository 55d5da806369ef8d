"""``pip install ./client/python`` works offline (in-tree build backend, no build requirements)
and installs a typed package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import REPO


def test_offline_install_is_typed_and_complete(tmp_path: Path) -> None:
    target = tmp_path / "site"
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index", "--no-deps", "--target", str(target), str(REPO / "client/python")],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    for f in ("atr/__init__.py", "atr/py.typed", "atr/_runner.py", "atr/tools/__init__.py"):
        assert (target / f).is_file(), f
    meta = next(target.glob("atr_client-*.dist-info")) / "METADATA"
    text = meta.read_text()
    assert "Requires-Python: >=3.10" in text and "Requires-Dist: cryptography" in text and "Requires-Dist: blake3" in text and "Requires-Dist: cbor2" in text
    out = subprocess.run([sys.executable, "-c", "import atr, sys; print(atr.__file__)"], env={"PYTHONPATH": str(target)}, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith(str(target)), out.stderr
