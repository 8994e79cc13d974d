"""The web console's files: ``GET /console`` (the page) and ``GET /console/{asset}`` (its scripts and style).

The console is a client of the public API, served from the same origin so that its strict
Content-Security-Policy can say ``'self'`` for everything: no inline script, no ``eval``, no framing.
Its files are plain ES modules in ``chalicelib/console/`` (Chalice packages ``chalicelib/`` whole, so
``make package`` ships them in the deployment zip); nothing builds them. The page refers to its assets
relatively (``console/app.js``), so it works under any base path, such as an API Gateway stage.

Assets are read from disk at their first request and kept in memory. Only names in that directory
that match ``ASSET_NAME`` are served: no path separators, no dot files, no Python.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

from chalice.app import Blueprint, Response

CONSOLE_DIR = Path(__file__).resolve().parents[1] / "console"
INDEX = "index.html"
ASSET_NAME = re.compile(r"^[a-z][a-z0-9-]{0,63}\.(js|css|svg)$")
CONTENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "svg": "image/svg+xml",
}
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class ConsoleFiles:
    """The console's files by name, read once each."""

    def __init__(self, directory: Path = CONSOLE_DIR) -> None:
        self._directory = directory
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    def read(self, name: str) -> str | None:
        if name != INDEX and not ASSET_NAME.match(name):
            return None
        with self._lock:
            if name not in self._cache:
                path = self._directory / name
                if not path.is_file():
                    return None
                self._cache[name] = path.read_text(encoding="utf-8")
            return self._cache[name]


def console_response(files: ConsoleFiles, name: str) -> Response:
    body = files.read(name)
    if body is None:
        error = {
            "code": "NOT_FOUND",
            "message": "The console has no such file.",
            "hint": "Open /console.",
            "details": {},
        }
        return Response(
            body=json.dumps({"error": error}),
            status_code=404,
            headers={**SECURITY_HEADERS, "Content-Type": "application/json"},
        )
    kind = name.rsplit(".", 1)[1]
    return Response(
        body=body, status_code=200, headers={**SECURITY_HEADERS, "Content-Type": CONTENT_TYPES[kind]}
    )


def console_blueprint(files: ConsoleFiles | None = None) -> Blueprint:
    bp = Blueprint(__name__)
    served = files or ConsoleFiles()

    @bp.route("/console", methods=["GET"])
    def console_page() -> Response:
        return console_response(served, INDEX)

    @bp.route("/console/{asset}", methods=["GET"])
    def console_asset(asset: str) -> Response:
        return console_response(served, asset)

    return bp
