"""A fleet rollout through the console in Chromium: three targets with a canary, the rollouts list
(GET /rollouts, filtered by status), then a failing canary that pauses the rollout until Resume."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from tests.console.conftest import ConsolePage
from tests.console.test_deploy_journeys import ready_target, register_only

QUEUE = json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}})


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
