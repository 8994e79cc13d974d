"""Where the CLI finds the API: ``nexus configure``'s file, overridden by the environment.

The file is JSON, ``{"api_url": ..., "token": ...}``, at ``$NEXUS_CONFIG_FILE`` or
``$XDG_CONFIG_HOME/nexus/config.json`` (``~/.config/nexus/config.json``). It holds a bearer token, so it
is created with mode 0600 (its folder 0700) and rewritten with that mode whatever it had before.
``NEXUS_API_URL`` and ``NEXUS_API_TOKEN`` override the file, value by value; without either, the URL is
local mode's, ``http://127.0.0.1:$NEXUS_PORT`` (8000: what ``make run`` serves), and a missing token
is a usage error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

FILE_MODE = 0o600


class ConfigProblem(ValueError):
    """The configuration cannot be used (a usage error: exit code 2)."""


@dataclass(frozen=True)
class Connection:
    api_url: str
    token: str
    api_url_from: str  # "env", "file" or "default"
    token_from: str  # "env", "file" or "" (none)
    path: Path

    def public(self) -> dict[str, Any]:
        """What ``nexus configure --show`` prints: never the token itself."""
        return {
            "config_file": str(self.path),
            "api_url": self.api_url,
            "api_url_from": self.api_url_from,
            "token": mask(self.token) if self.token else None,
            "token_from": self.token_from or None,
        }


def default_api_url(environ: Mapping[str, str]) -> str:
    """Local mode's API: ``make run`` serves it on ``$NEXUS_PORT`` (8000)."""
    return f"http://127.0.0.1:{environ.get('NEXUS_PORT') or 8000}"


def mask(token: str) -> str:
    return "****" + token[-4:] if len(token) > 12 else "****"


def config_path(environ: Mapping[str, str]) -> Path:
    if environ.get("NEXUS_CONFIG_FILE"):
        return Path(environ["NEXUS_CONFIG_FILE"]).expanduser()
    base = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME", "~")) / ".config")
    return Path(base).expanduser() / "nexus" / "config.json"


def read_file(path: Path) -> dict[str, str]:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise ConfigProblem(
            f"{path} is not a nexus configuration file ({error}); run nexus configure"
        ) from None
    if not isinstance(document, dict):
        raise ConfigProblem(f"{path} is not a nexus configuration file; run nexus configure")
    return {k: str(v) for k, v in document.items() if k in ("api_url", "token") and v}


def check_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigProblem(f"the API URL must be http(s)://host[:port], got {url!r}")
    return url.rstrip("/")


def resolve(environ: Mapping[str, str]) -> Connection:
    """The connection in force, token or not (``configure --show`` shows it as it is)."""
    path = config_path(environ)
    stored = read_file(path)
    if environ.get("NEXUS_API_URL"):
        url, url_from = environ["NEXUS_API_URL"], "env"
    elif stored.get("api_url"):
        url, url_from = stored["api_url"], "file"
    else:
        url, url_from = default_api_url(environ), "default"
    if environ.get("NEXUS_API_TOKEN"):
        token, token_from = environ["NEXUS_API_TOKEN"], "env"
    elif stored.get("token"):
        token, token_from = stored["token"], "file"
    else:
        token, token_from = "", ""
    return Connection(check_url(url), token, url_from, token_from, path)


def load(environ: Mapping[str, str]) -> Connection:
    """The connection a command needs: a usage error when there is no token."""
    connection = resolve(environ)
    if not connection.token:
        raise ConfigProblem(
            "no API token: run `nexus configure` or set NEXUS_API_TOKEN "
            "(make run prints one; on AWS, nexus tokens create)"
        )
    return connection


def save(path: Path, api_url: str, token: str) -> None:
    """Write the file with mode 0600, never readable by others even for an instant."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    body = json.dumps({"api_url": check_url(api_url), "token": token}, indent=2) + "\n"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(descriptor, FILE_MODE)  # an older file keeps its mode through O_CREAT: set it
        os.write(descriptor, body.encode())
    finally:
        os.close(descriptor)
