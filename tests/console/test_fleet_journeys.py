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
REGIONS = ["us-east-1", "eu-west-1", "us-west-2"]  # one wave each, after the canary


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
    expect(paused.get_by_role("link", name="fleet-canary")).to_be_visible()
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


def test_pause_between_waves_then_resume_and_cancel_another_rollout(console: ConsolePage) -> None:
    server, page = console.server, console.page
    for n in (1, 2):
        region_target(server, f"waves-{n}", f"23100000000{n}", REGIONS)
    console.sign_in()
    # Waves: the canary (waves-1 in us-east-1), then us-east-1, eu-west-1 and us-west-2.
    start_rollout(console, "waves-app", ["waves-1 (", "waves-2 ("])
    status = page.get_by_role("region", name="Status")
    actions = page.get_by_role("region", name="Actions")
    grid = page.get_by_role("table", name="Items by target and region")
    actions.get_by_role("button", name="Pause").click()
    # The running wave finishes, no other starts: eu-west-1 and us-west-2 wait, us-east-1 may have run.
    expect(status.get_by_text("PAUSED", exact=True)).to_be_visible(timeout=60_000)
    expect(actions.get_by_role("button", name="Resume")).to_be_visible()
    expect(actions.get_by_role("button", name="Pause")).to_have_count(0)
    paused = columns(grid)
    assert paused["eu-west-1"] == paused["us-west-2"] == ["PENDING", "PENDING"], paused
    assert paused["us-east-1"] in (["SUCCEEDED", "PENDING"], ["SUCCEEDED", "SUCCEEDED"]), paused
    waiting = sum(column.count("PENDING") for column in paused.values())
    expect(status).to_contain_text(f"PENDING: {waiting}")
    console.check("rollout-paused-by-user")

    actions.get_by_role("button", name="Resume").click()
    expect(status.get_by_text("SUCCEEDED", exact=True)).to_be_visible(timeout=60_000)
    assert columns(grid) == {region: ["SUCCEEDED", "SUCCEEDED"] for region in REGIONS}
    expect(status).to_contain_text("SUCCEEDED: 6")
    expect(actions).to_have_count(0)  # an ended rollout offers nothing to do

    # Cancelled while its canary runs: the canary finishes, the items that never started are CANCELLED.
    start_rollout(console, "waves-cancel", ["waves-1 (", "waves-2 ("])
    actions.get_by_role("button", name="Cancel rollout").click()
    expect(status.get_by_text("CANCELLED", exact=True)).to_be_visible(timeout=60_000)
    cancelled = columns(grid)
    assert cancelled["eu-west-1"] == cancelled["us-west-2"] == ["CANCELLED", "CANCELLED"], cancelled
    assert cancelled["us-east-1"] in (["SUCCEEDED", "CANCELLED"], ["SUCCEEDED", "SUCCEEDED"]), cancelled
    expect(actions).to_have_count(0)
    console.check("rollout-cancelled-by-user")
