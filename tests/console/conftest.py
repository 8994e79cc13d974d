"""The web console in a real browser: Debian's Chromium driven by Playwright, against real local mode.

Each test module starts its own ``python -m localaws.run`` on free ports (shared by the module's
tests); each pytest worker launches one Chromium. Every test gets a fresh browser context (so a fresh
``sessionStorage``) whose page records what must never happen: a page error, a console error other
than a failed HTTP status (a CSP violation is one: "Refused to ..."), a dialog, or the ``window.__xss``
sentinel being set. Any of them fails the test at teardown.

``ConsolePage.check()`` runs axe-core (pinned in package.json, injected through the DevTools protocol,
which the page's CSP does not govern) and fails on any serious or critical violation, then saves a
full-page screenshot under ``build/console/``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Dialog, Page, Playwright, Route, expect, sync_playwright

from localaws.demo import AccountAdmin, Api, stop_service, wait_until_healthy
from localaws.server import free_port

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "console"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "nxs_console_test_token"
ADFS_PASSWORD = "local-adfs-pass-7319"  # local mode's ADFS user alice (localaws/local_adfs.py)
# How long an action or an expect() waits for the page: the local AWS answers in milliseconds when the
# machine is idle, but a change set or a stack may take seconds while other test workers load its CPUs.
PAGE_TIMEOUT_MS = 20_000
# An HTTP error status is the API answering as designed (a wrong token is a 401); Chromium logs it.
EXPECTED_CONSOLE_ERROR = re.compile(r"^Failed to load resource: the server responded with a status of 4\d\d")


@dataclass
class Server:
    url: str
    aws_url: str
    token: str
    api: Api
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def console_url(self) -> str:
        return f"{self.url}/console"

    def admin(self, account_id: str) -> AccountAdmin:
        return AccountAdmin(self.aws_url, account_id)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(tmp: Path, **extra: str) -> Server:
    api_port, aws_port = free_port(), free_port()
    log = tmp / "local-mode.log"
    env = {
        **os.environ,
        "NEXUS_PORT": str(api_port),
        "NEXUS_AWS_PORT": str(aws_port),
        "NEXUS_API_TOKEN": TOKEN,
        "NEXUS_LOCAL_STACK_SECONDS": "1",
        "NEXUS_LOCAL_ADFS_PASSWORD": ADFS_PASSWORD,
        **extra,
    }
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        env.pop(name, None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "localaws.run"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{api_port}"
    try:
        wait_until_healthy(url, process)
    except Exception:
        stop_service(process)
        raise
    return Server(url, f"http://127.0.0.1:{aws_port}", TOKEN, Api(url, TOKEN), process, log)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("console"))
    try:
        yield running
    finally:
        stop_service(running.process)


@pytest.fixture(scope="session", autouse=True)
def _patient_expect() -> None:
    expect.set_options(timeout=PAGE_TIMEOUT_MS)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
    try:
        yield launched
    finally:
        launched.close()


@dataclass
class ConsolePage:
    page: Page
    server: Server
    name: str
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    shots: int = 0

    def open(self, route: str = "") -> Page:
        self.page.goto(self.server.console_url + route)
        return self.page

    def sign_in(self) -> None:
        self.open("#/signin")
        self.page.get_by_label("API token", exact=True).fill(self.server.token)
        self.page.get_by_role("button", name="Sign in", exact=True).click()
        self.page.get_by_role("heading", level=1, name="Deployments").wait_for()

    def check(self, label: str) -> None:
        """axe-core on the page as it is now (no serious or critical violation), then a screenshot."""
        self.page.wait_for_load_state("networkidle")
        if not self.page.evaluate("typeof window.axe !== 'undefined'"):
            self.page.evaluate(AXE.read_text())
        result: list[dict[str, Any]] = self.page.evaluate(
            "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
            " return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
            " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)})); }"
        )
        serious = [v for v in result if v["impact"] in ("serious", "critical")]
        self.screenshot(label)
        assert not serious, f"axe-core on {label}: {serious}"

    def screenshot(self, label: str) -> Path:
        self.shots += 1
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{self.name}-{self.shots:02d}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def filter_while_the_first_load_waits(
        self, path: str, open_list: Callable[[], object], change_filter: Callable[[], object]
    ) -> None:
        """Open a list (``open_list``) whose first, unfiltered ``GET {path}?...`` is held unanswered, then
        change a filter (``change_filter``): the page must give up that first request, or its late
        answer would be drawn over the filtered one (it was, when the two raced on a busy machine)."""
        page = self.page

        def unfiltered(url: str) -> bool:
            return f"{path}?" in url and "status=" not in url

        held: list[Route] = []

        def hold(route: Route) -> None:
            held.append(route)  # never answered: the page itself must give it up

        page.route(unfiltered, hold)
        with page.expect_request(lambda request: unfiltered(request.url)) as first:
            open_list()
        with page.expect_event("requestfailed", lambda request: request == first.value):
            change_filter()
        page.unroute_all(behavior="ignoreErrors")

    def assert_clean(self) -> None:
        sentinel = self.page.evaluate("window.__xss")
        assert sentinel is None, f"a script injected through data ran: window.__xss = {sentinel!r}"
        assert not self.dialogs, f"a dialog opened: {self.dialogs}"
        assert not self.errors, f"the page logged errors: {self.errors}"


@pytest.fixture
def console(browser: Browser, server: Server, request: pytest.FixtureRequest) -> Iterator[ConsolePage]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    page = context.new_page()
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    wrapper = ConsolePage(page, server, name)

    def on_console(message: Any) -> None:
        if message.type == "error" and not EXPECTED_CONSOLE_ERROR.match(message.text):
            wrapper.errors.append(message.text)

    def on_dialog(dialog: Dialog) -> None:
        wrapper.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("console", on_console)
    page.on("pageerror", lambda error: wrapper.errors.append(f"pageerror: {error}"))
    page.on("dialog", on_dialog)
    try:
        yield wrapper
        wrapper.assert_clean()
    finally:
        context.close()
