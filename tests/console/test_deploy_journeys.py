"""Journeys through the console in Chromium: sign in, the Deployment Wizard, Managing Deployments.

One local-mode server for the module (stack operations take 1 s); each test registers its own target
account and installs the bootstrap stack there as the account's administrator would.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from localaws.demo import target_body, wait_deployment
from tests.console.conftest import ConsolePage, Server

TEMPLATES = Path(__file__).parent / "templates"
WIZARD_APP = (TEMPLATES / "wizard-app.yaml").read_text()
BROKEN = (Path(__file__).parents[2] / "examples" / "broken-stack.json").read_text()
SECRET = "s3cr3t-Value-4711"


def ready_target(server: Server, name: str, account: str) -> dict[str, Any]:
    """A registered target whose account has the bootstrap stack (the deployment role)."""
    target: dict[str, Any] = server.api.ok("POST", "/targets", target_body(name, account), status=201)
    template = server.api.ok("GET", f"/targets/{target['target_id']}/bootstrap-template", status=200)
    server.admin(account).deploy_bootstrap(template)
    return target


def test_sign_in_wrong_token_then_right_one_and_sign_out(console: ConsolePage) -> None:
    page = console.page
    response = page.goto(console.server.console_url + "#/signin")
    assert response is not None
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp

    page.get_by_label("API token", exact=True).fill("nxs_not_the_token")
    page.get_by_role("button", name="Sign in", exact=True).click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The token was not accepted")
    expect(alert).to_contain_text("copy it again")
    assert page.evaluate("sessionStorage.getItem('nexus.token')") is None
    console.check("sign-in-refused")

    page.get_by_label("API token", exact=True).fill(console.server.token)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", level=1, name="Deployments")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('nexus.token')") == console.server.token
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []
    console.check("deployments-empty")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('nexus.token')") is None
    page.goto(console.server.console_url + "#/deployments")
    expect(page.get_by_label("API token", exact=True)).to_be_visible()  # signed out: back to the sign-in page


def wizard_to_parameters(
    console: ConsolePage, target: dict[str, Any], stack: str, template: str, *, check: bool = False
) -> None:
    """Steps 1 and 2 of the wizard (axe-core on each when ``check``)."""
    page = console.page
    page.get_by_role("link", name="New deployment").first.click()
    expect(page.get_by_role("heading", level=1, name="New deployment")).to_be_visible()
    page.get_by_label("Target account").select_option(target["target_id"])
    page.get_by_label("Region", exact=True).select_option("us-east-1")
    page.get_by_label("Stack name").fill(stack)
    if check:
        console.check("wizard-target")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Template body").fill(template)
    if check:
        console.check("wizard-template")
    page.get_by_role("button", name="Next").click()


def wait_for_status(console: ConsolePage, status: str, timeout: float = 30.0) -> None:
    expect(
        console.page.get_by_role("region", name="Status").get_by_text(status, exact=True).first
    ).to_be_visible(timeout=timeout * 1000)


def test_wizard_deploys_with_a_generated_form(console: ConsolePage) -> None:
    server = console.server
    target = ready_target(server, "wizard-team", "210000000001")
    console.sign_in()
    page = console.page
    wizard_to_parameters(console, target, "wizard-app", WIZARD_APP, check=True)

    # The form: labels and groups from the Interface, a select for AllowedValues, a password for NoEcho.
    expect(page.get_by_role("group", name="Application")).to_be_visible()
    environment = page.get_by_label("Deployment environment")
    assert environment.evaluate("e => e.tagName") == "SELECT"
    assert environment.locator("option").all_inner_texts() == ["dev", "staging", "prod"]
    assert page.get_by_label("API secret").get_attribute("type") == "password"
    expect(page.get_by_label("Application name")).to_have_value("orders")  # the Default
    expect(page.get_by_text("Lower-case name used in resource names.")).to_be_visible()
    console.check("wizard-parameters")

    page.get_by_label("Application name").fill("Not Valid!")
    page.get_by_label("API secret").fill(SECRET)
    page.get_by_role("button", name="Next").click()
    expect(
        page.get_by_text("3 to 20 lower-case letters, digits or hyphens, starting with a letter.").first
    ).to_be_visible()
    expect(page.get_by_label("Application name")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("heading", name=re.compile("Step 3 of 5"))).to_be_visible()  # blocked
    console.check("wizard-invalid-value")

    page.get_by_label("Application name").fill("shop")
    environment.select_option("staging")
    page.get_by_role("button", name="Add tag").click()
    page.get_by_label("Tag key").fill("team")
    page.get_by_label("Tag value").fill("payments")
    page.get_by_role("button", name="Next").click()

    plan = page.get_by_role("table", name="Planned changes")
    expect(plan).to_contain_text("AWS::SQS::Queue")
    expect(plan).to_contain_text("AWS::S3::Bucket")
    expect(plan.get_by_role("row")).to_have_count(3)  # header + 2 resources
    console.check("wizard-plan")

    page.get_by_role("button", name="Deploy", exact=True).click()
    expect(page.get_by_role("heading", level=1, name="Deployment wizard-app")).to_be_visible()
    wait_for_status(console, "ACTIVE")
    outputs = page.get_by_role("table", name="Outputs")
    expect(outputs).to_contain_text("QueueUrl")
    expect(outputs).to_contain_text("BucketName")
    expect(page.get_by_role("table", name="Tags")).to_contain_text("payments")
    events = page.get_by_role("table", name="Events, oldest first")
    expect(events).to_contain_text("CREATE_COMPLETE")
    console.check("deployment-active")
    assert SECRET not in page.content()
    assert SECRET not in page.inner_text("body")


def test_broken_template_shows_the_failing_resource_and_reason(console: ConsolePage) -> None:
    target = ready_target(console.server, "broken-team", "210000000002")
    console.sign_in()
    page = console.page
    wizard_to_parameters(console, target, "broken", BROKEN)
    page.get_by_role("button", name="Next").click()  # no parameters
    expect(page.get_by_role("table", name="Planned changes")).to_contain_text("AWS::EC2::Subnet")
    page.get_by_role("button", name="Deploy", exact=True).click()
    wait_for_status(console, "FAILED")
    alert = page.get_by_role("region", name="Status").get_by_role("alert")
    expect(alert).to_contain_text("Subnet")
    expect(alert).to_contain_text("vpc-0123456789abcdef0")
    console.check("deployment-failed")


def deploy_through_api(
    server: Server, target: dict[str, Any], stack: str, template: str, **fields: Any
) -> dict[str, Any]:
    """POST /deployments in us-east-1, as a portal would (202): the deployment."""
    body = {
        "target_id": target["target_id"],
        "region": "us-east-1",
        "stack_name": stack,
        "template_body": template,
    }
    created: dict[str, Any] = server.api.ok("POST", "/deployments", {**body, **fields}, status=202)
    return created


def test_update_through_plan_and_apply_then_delete(console: ConsolePage) -> None:
    server = console.server
    target = ready_target(server, "update-team", "210000000003")
    created = deploy_through_api(server, target, "update-me", WIZARD_APP, parameters={"ApiSecret": SECRET})
    assert wait_deployment(server.api, created["deployment_id"], timeout=30)["status"] == "ACTIVE"
    console.sign_in()
    page = console.page
    expect(page.get_by_role("link", name="update-me")).to_be_visible()
    console.check("deployments-list")
    page.get_by_role("link", name="update-me").click()
    wait_for_status(console, "ACTIVE")
    page.get_by_role("button", name="Edit parameters").click()
    expect(page.get_by_label("Application name")).to_have_value("orders")
    expect(page.get_by_label("API secret")).to_have_value("")  # a secret is never filled in
    page.get_by_label("Deployment environment").select_option("prod")
    page.get_by_role("button", name="Plan update").click()
    plan = page.get_by_role("table", name="Planned changes")
    expect(plan).to_contain_text("Modify")
    console.check("update-planned")
    page.get_by_role("button", name="Apply plan").click()
    expect(page.get_by_role("region", name="Status")).to_contain_text("update SUCCEEDED", timeout=30_000)
    wait_for_status(console, "ACTIVE")
    expect(page.get_by_role("table", name=re.compile("Parameters"))).to_contain_text("prod")
    assert SECRET not in page.content()

    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.get_by_text("Type update-me exactly to confirm.")).to_be_visible()
    page.get_by_label(re.compile("Type the stack name")).fill("update-me")
    page.get_by_role("button", name="Delete", exact=True).click()
    wait_for_status(console, "DELETED")
    console.check("deleted")

    # The list filtered to DELETED on the server (its first, unfiltered load given up when the filter
    # changed): the deleted stack, no ACTIVE one.
    console.filter_while_the_first_load_waits(
        "/deployments",
        lambda: page.get_by_role("link", name="Deployments", exact=True).click(),
        lambda: page.get_by_role("search").get_by_label("Status").select_option("DELETED"),
    )
    deleted = page.get_by_role("table", name=re.compile(r"^\d+ deployments?$"))
    expect(deleted.get_by_role("link", name="update-me")).to_be_visible()
    expect(deleted.get_by_text("ACTIVE", exact=True)).to_have_count(0)


XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


def test_a_tag_value_and_a_stack_event_message_made_of_markup_are_shown_as_text(console: ConsolePage) -> None:
    server = console.server
    target = ready_target(server, "xss-team", "210000000004")
    broken = BROKEN.replace("vpc-0123456789abcdef0", f"vpc-{XSS}".replace('"', '\\"'))
    created = deploy_through_api(server, target, "markup", broken, tags={"note": XSS})
    console.sign_in()
    page = console.page
    console.open(f"#/deployments/{created['deployment_id']}")
    wait_for_status(console, "FAILED")
    expect(page.get_by_role("table", name="Tags").get_by_role("cell", name=XSS)).to_be_visible()
    events = page.get_by_role("table", name="Events, oldest first")
    expect(events).to_contain_text(XSS)  # the stack event's reason quotes the VpcId as text
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("main script").count() == 0
    console.check("xss-tag-and-event")


def register_only(server: Server, name: str, account: str) -> dict[str, Any]:
    """A registered target whose account has no deployment role: everything there fails to assume it."""
    target: dict[str, Any] = server.api.ok("POST", "/targets", target_body(name, account), status=201)
    return target
