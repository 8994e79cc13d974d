"""A fleet rollout through the console in Chromium: three targets with a canary, the rollouts list
(GET /rollouts, filtered by status), then a failing canary that pauses the rollout until Resume; and a
rollout over three regions that the user pauses between waves, resumes, and another one they cancel."""

from __future__ import annotations

import json
from typing import Any

from playwright.sync_api import Locator, expect

from localaws.demo import target_body
from tests.console.conftest import ConsolePage, Server
from tests.console.test_deploy_journeys import ready_target, register_only

QUEUE = json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}})
# One wave each, after the canary: waves enough that a Pause or Cancel clicked late on a busy machine
# still lands before the last one.
REGIONS = ["us-east-1", "eu-west-1", "us-west-2", "eu-central-1", "ap-southeast-2"]


def start_rollout(console: ConsolePage, stack: str, names: list[str]) -> None:
    page = console.page
    console.open("#/rollouts/new")
    expect(page.get_by_role("heading", level=1, name="New rollout")).to_be_visible()  # not the page before
    page.get_by_label("Stack name").fill(stack)
    page.get_by_label("Template body").fill(QUEUE)
    for name in names:
        page.get_by_label(name, exact=False).check()
    page.get_by_label("Canary items").fill("1")
    console.check(f"rollout-new-{stack}")
    page.get_by_role("button", name="Start rollout").click()
    expect(page.get_by_role("heading", level=1, name=f"Rollout {stack}")).to_be_visible()


def test_three_targets_with_a_canary_then_a_failing_canary_pauses_until_resume(console: ConsolePage) -> None:
    server, page = console.server, console.page
    for n in (1, 2, 3):
        ready_target(server, f"fleet-{n}", f"23000000000{n}")
    console.sign_in()
    start_rollout(console, "fleet-app", ["fleet-1 (", "fleet-2 (", "fleet-3 ("])
    status = page.get_by_role("region", name="Status")
    expect(status.get_by_text("SUCCEEDED", exact=True)).to_be_visible(timeout=60_000)
    grid = page.get_by_role("table", name="Items by target and region")
    expect(grid.locator("td.cell.SUCCEEDED")).to_have_count(3)
    console.check("rollout-succeeded")

    # The rollouts list (GET /rollouts): the rollout, its status and its three items.
    page.get_by_role("link", name="Fleet").click()
    listed = page.get_by_role("table", name="1 rollout")
    expect(listed.get_by_role("row")).to_have_count(2)  # header + fleet-app
    (cells,) = [r.locator("td").all_inner_texts() for r in listed.locator("tbody tr").all()]
    assert cells[:5] == ["fleet-app", "SUCCEEDED", "apply", "3", "0 (tolerated 0)"]
    console.check("rollouts-list")

    register_only(server, "fleet-broken", "230000000009")  # no role: its item fails
    start_rollout(console, "fleet-canary", ["fleet-broken (", "fleet-2 (", "fleet-3 ("])
    expect(status.get_by_text("PAUSED", exact=True)).to_be_visible(timeout=60_000)
    expect(grid.get_by_role("link", name="FAILED")).to_have_count(1)  # the canary, linked to its deployment
    console.check("rollout-paused")

    # Filtered on the server by status: only the paused rollout; its link leads back to it. The list's
    # own filter (the rollout page it leaves also has a region named Status).
    filters = page.get_by_role("search", name="Filter rollouts")
    console.filter_while_the_first_load_waits(
        "/rollouts",
        lambda: page.get_by_role("link", name="Fleet").click(),
        lambda: filters.get_by_label("Status").select_option("PAUSED"),
    )
    paused = page.get_by_role("table", name="1 rollout")
    expect(paused.get_by_role("link", name="fleet-canary")).to_be_visible(timeout=60_000)
    expect(paused.get_by_role("link", name="fleet-app")).to_have_count(0)
    paused.get_by_role("link", name="fleet-canary").click()
    expect(status.get_by_text("PAUSED", exact=True)).to_be_visible()
    page.get_by_role("button", name="Resume").click()
    expect(grid.locator("td.cell.SUCCEEDED")).to_have_count(2, timeout=60_000)


def region_target(server: Server, name: str, account: str, regions: list[str]) -> dict[str, Any]:
    """A target in several regions whose account has the bootstrap stack (the deployment role)."""
    body = {**target_body(name, account), "regions": regions}
    target: dict[str, Any] = server.api.ok("POST", "/targets", body, status=201)
    template = server.api.ok("GET", f"/targets/{target['target_id']}/bootstrap-template", status=200)
    server.admin(account).deploy_bootstrap(template)
    return target


def columns(grid: Locator) -> dict[str, list[str]]:
    """The grid as the user reads it: each region's column, one status per target row."""
    regions = grid.locator("thead th").all_inner_texts()[1:]
    rows = [r.locator("td").all_inner_texts() for r in grid.locator("tbody tr").all()]
    return {region: [cells[n] for cells in rows] for n, region in enumerate(regions)}


def waves(grid: Locator) -> list[str]:
    """Each wave's one status, in the order the waves run: the canary (the first target in us-east-1),
    the rest of us-east-1, then one region after another."""
    by_region = columns(grid)
    first = by_region[REGIONS[0]]
    found = [{first[0]}, set(first[1:])] + [set(by_region[region]) for region in REGIONS[1:]]
    assert all(len(statuses) == 1 for statuses in found), by_region  # a wave's items end alike
    return [statuses.pop() for statuses in found]


def stopped_between_waves(statuses: list[str], waiting: str) -> bool:
    """The waves that ran SUCCEEDED, then every later wave ``waiting``, the last one at least (a click
    that lands before the canary starts leaves none run)."""
    ran = statuses.index(waiting) if waiting in statuses else len(statuses)
    return ran < len(statuses) and statuses == ["SUCCEEDED"] * ran + [waiting] * (len(statuses) - ran)


def test_pause_between_waves_then_resume_and_cancel_another_rollout(console: ConsolePage) -> None:
    server, page = console.server, console.page
    for n in (1, 2):
        region_target(server, f"waves-{n}", f"23100000000{n}", REGIONS)
    console.sign_in()
    # Waves: the canary (waves-1 in us-east-1), then the rest of us-east-1, then one region at a time.
    start_rollout(console, "waves-app", ["waves-1 (", "waves-2 ("])
    status = page.get_by_role("region", name="Status")
    actions = page.get_by_role("region", name="Actions")
    grid = page.get_by_role("table", name="Items by target and region")
    actions.get_by_role("button", name="Pause").click()
    # The running wave finishes, no other starts: the later waves wait, PENDING.
    expect(status.get_by_text("PAUSED", exact=True)).to_be_visible(timeout=60_000)
    expect(actions.get_by_role("button", name="Resume")).to_be_visible()
    expect(actions.get_by_role("button", name="Pause")).to_have_count(0)
    paused = waves(grid)
    assert stopped_between_waves(paused, "PENDING"), paused
    waiting = sum(column.count("PENDING") for column in columns(grid).values())
    expect(status).to_contain_text(f"PENDING: {waiting}")
    console.check("rollout-paused-by-user")

    actions.get_by_role("button", name="Resume").click()
    expect(status.get_by_text("SUCCEEDED", exact=True)).to_be_visible(timeout=60_000)
    assert columns(grid) == {region: ["SUCCEEDED", "SUCCEEDED"] for region in REGIONS}
    expect(status).to_contain_text(f"SUCCEEDED: {2 * len(REGIONS)}")
    expect(actions).to_have_count(0)  # an ended rollout offers nothing to do

    # Cancelled while its canary runs: the canary finishes, the items that never started are CANCELLED.
    start_rollout(console, "waves-cancel", ["waves-1 (", "waves-2 ("])
    actions.get_by_role("button", name="Cancel rollout").click()
    expect(status.get_by_text("CANCELLED", exact=True)).to_be_visible(timeout=60_000)
    cancelled = waves(grid)
    assert stopped_between_waves(cancelled, "CANCELLED"), cancelled
    expect(actions).to_have_count(0)
    console.check("rollout-cancelled-by-user")
