"""Where the node is and how to authenticate to it: the rule the ``atr`` CLI applies.

The API address is ``ATR_API`` (default ``http://127.0.0.1:7878``); the token is ``ATR_TOKEN``,
else the file ``api.token`` in the node's data directory (``ATR_DATA_DIR``, else
``$XDG_DATA_HOME/atr``, else ``~/.local/share/atr``, else ``./atr-data``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import AtrError

DEFAULT_API_URL = "http://127.0.0.1:7878"
ENV_API = "ATR_API"
ENV_TOKEN = "ATR_TOKEN"
ENV_DATA_DIR = "ATR_DATA_DIR"
TOKEN_FILE = "api.token"
MAX_TOKEN_FILE_BYTES = 4096


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/atr``, else ``$HOME/.local/share/atr``, else ``./atr-data`` (as ``atrd``)."""
    xdg = os.environ.get("XDG_DATA_HOME")
    if xdg:
        return Path(xdg) / "atr"
    home = os.environ.get("HOME")
    if home:
        return Path(home) / ".local/share/atr"
    return Path("atr-data")


def normalize_url(url: str) -> str:
    """``host:port`` gets ``http://``; a trailing ``/`` is cut; only plain http is spoken."""
    raw = url.strip()
    with_scheme = raw if "://" in raw else f"http://{raw}"
    if not with_scheme.startswith("http://"):
        raise AtrError(f"{raw[:200]!r}: only http:// is supported (the local API is plain HTTP on loopback)", code="invalid_url")
    authority = with_scheme[len("http://") :].split("/")[0]
    if not authority or any(c.isspace() for c in authority):
        raise AtrError(f"{raw[:200]!r}: expected http://HOST:PORT", code="invalid_url")
    return with_scheme.rstrip("/")


@dataclass(frozen=True)
class Endpoint:
    """A node's API base URL and token (``None`` when none was found; ``token_source`` says where)."""

    api: str
    token: str | None
    token_source: str

    def __repr__(self) -> str:
        return f"Endpoint(api={self.api!r}, token={'..' if self.token else None}, token_source={self.token_source!r})"

    @classmethod
    def from_env(cls, api: str | None = None, token: str | None = None, data_dir: str | os.PathLike[str] | None = None) -> "Endpoint":
        """The endpoint the arguments, else the environment, describe."""
        url = normalize_url(api or os.environ.get(ENV_API, "").strip() or DEFAULT_API_URL)
        if token:
            return cls(url, token.strip(), "given")
        env_token = os.environ.get(ENV_TOKEN, "").strip()
        if env_token:
            return cls(url, env_token, f"${ENV_TOKEN}")
        d = Path(data_dir) if data_dir else (Path(os.environ[ENV_DATA_DIR]) if os.environ.get(ENV_DATA_DIR) else default_data_dir())
        path = d / TOKEN_FILE
        try:
            if path.stat().st_size > MAX_TOKEN_FILE_BYTES:
                return cls(url, None, f"none ({path} is too large for a token file)")
            text = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return cls(url, None, f"none ({path} not found)")
        except OSError as e:
            return cls(url, None, f"none ({path} unreadable: {e})")
        if not text:
            return cls(url, None, f"none ({path} is empty)")
        return cls(url, text, str(path))
