#!/usr/bin/env python3
"""Runs a command against a fresh local atrd (sandbox on, loopback, temporary data dir).

    python3 client/python/scripts/with_node.py ATRD_BINARY -- python3 script.py

The command gets ATR_API and ATR_DATA_DIR (as the `atr` CLI reads them); the node is stopped and
its data dir removed afterwards; the command's exit code is returned."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def main() -> int:
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    atrd, cmd = sys.argv[1], sys.argv[3:]
    d = tempfile.mkdtemp(prefix="atr-node-")
    Path(d, "atrd.toml").write_text("[sandbox]\nenabled = true\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATR_")}
    log = open(Path(d, "atrd.log"), "wb")
    node = subprocess.Popen([atrd, "--data-dir", d, "--api", f"127.0.0.1:{port}", "--listen", "/ip4/127.0.0.1/tcp/0"], env={**env, "RUST_LOG": "warn"}, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if node.poll() is not None:
                print(Path(d, "atrd.log").read_text()[-3000:], file=sys.stderr)
                return 1
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                print("atrd not healthy after 60 s", file=sys.stderr)
                return 1
            time.sleep(0.1)
        return subprocess.run(cmd, env={**env, "ATR_API": f"http://127.0.0.1:{port}", "ATR_DATA_DIR": d}, timeout=1800).returncode
    finally:
        node.terminate()
        try:
            node.wait(timeout=20)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait()
        log.close()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
