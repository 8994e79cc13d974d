"""The console's files through Chalice's test client: content types, the CSP on every answer, no escape
from the console directory, and the size budget (200 KB gzipped for all assets together)."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.api.console_routes import CONSOLE_DIR

REQUIRED_CSP = ["default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "object-src 'none'"]


@pytest.fixture(scope="module")
def http() -> Iterator[Client]:
    with Client(app_module.app) as client:
        yield client


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def assert_strict_csp(raw: dict[str, str]) -> None:
    headers = lower(raw)
    csp = headers["content-security-policy"]
    for directive in REQUIRED_CSP:
        assert directive in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert headers["x-content-type-options"] == "nosniff"


def test_the_page_and_every_asset_answer_with_their_type_and_the_csp(http) -> None:
    page = http.http.get("/console")
    assert page.status_code == 200
    assert lower(page.headers)["content-type"] == "text/html; charset=utf-8"
    assert_strict_csp(page.headers)
    html = page.body.decode()
    assert '<script type="module" src="console/app.js"></script>' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "no inline script"
    assert " on" not in re.sub(r"\s+", " ", html).replace(" one", ""), "no inline event handlers"
    assets = sorted(p.name for p in CONSOLE_DIR.iterdir() if p.name != "index.html")
    assert "app.js" in assets
    assert "console.css" in assets
    for name in assets:
        answer = http.http.get(f"/console/{name}")
        assert answer.status_code == 200, name
        assert_strict_csp(answer.headers)
        expected = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}[
            name.rsplit(".", 1)[1]
        ]
        assert lower(answer.headers)["content-type"].startswith(expected)


def test_no_markup_sinks_in_the_scripts() -> None:
    for script in CONSOLE_DIR.glob("*.js"):
        text = script.read_text()
        for sink in (
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
        ):
            assert sink not in text, f"{script.name} uses {sink}"


@pytest.mark.parametrize(
    "name", ["missing.js", "..%2Fapp.py", ".hidden.js", "APP.JS", "app.py", "index.html.bak"]
)
def test_anything_else_is_404_with_the_csp(http, name) -> None:
    answer = http.http.get(f"/console/{name}")
    assert answer.status_code == 404
    assert_strict_csp(answer.headers)


def test_assets_stay_under_200_kb_gzipped() -> None:
    total = sum(len(gzip.compress(p.read_bytes(), 9)) for p in CONSOLE_DIR.iterdir())
    assert total < 200_000, total
