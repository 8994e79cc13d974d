"""Connecting AWS accounts through the console in Chromium, against real local mode.

Access keys of a local target account (an IAM user with every action), access keys of a user whose
policy denies everything without MFA (a wrong MFA code, no MFA, then the right code), a role missing
exactly three actions, a role that wants another external ID, ADFS through local mode's own HTTPS test
IdP, and a target name made of markup. After the keys journey the secret key is looked for, and must be absent,
in local mode's whole output, in every item of the service's DynamoDB table, in every execution's
history and in every answer the browser received.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from playwright.sync_api import Locator, expect

from chalicelib.domain.bootstrap import quick_create_link
from chalicelib.domain.model import Target
from chalicelib.domain.permissions import load_profile
from localaws.demo import target_body
from localaws.environment import CENTRAL_ACCOUNT
from localaws.sts import TOTP_STEP, enable_virtual_mfa, totp_code
from tests.api.test_onboarding import EVERYTHING, FORCE_MFA
from tests.console.conftest import ADFS_PASSWORD, ConsolePage, Server

QUICK_CREATE = "Launch the bootstrap stack in the AWS console"
# The checklist of typed access keys, in the order the console shows it.
KEY_CHECKS = (
    "AWS account access",
    "STS identity verification",
    "Account ID confirmation",
    "Permission to create the bootstrap stack",
)
XSS_NAME = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


def register(server: Server, name: str, account: str) -> dict[str, Any]:
    target: dict[str, Any] = server.api.ok("POST", "/targets", target_body(name, account), status=201)
    return target


def create_role(server: Server, account: str, trust: dict[str, Any], policy: dict[str, Any]) -> None:
    iam = server.admin(account).client("iam")
    iam.create_role(RoleName="NexusDeploymentRole", AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(
        RoleName="NexusDeploymentRole", PolicyName="deploy", PolicyDocument=json.dumps(policy)
    )


def user_key(server: Server, account: str, user: str, policy: dict[str, Any]) -> dict[str, Any]:
    """An access key of a new IAM user of ``account`` with ``policy``, made by the account's admin."""
    iam = server.admin(account).client("iam")
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="keys", PolicyDocument=json.dumps(policy))
    key: dict[str, Any] = iam.create_access_key(UserName=user)["AccessKey"]
    return key


def open_target(console: ConsolePage, target: dict[str, Any]) -> None:
    console.sign_in()
    console.open(f"#/targets/{target['target_id']}")
    expect(console.page.get_by_role("heading", level=1)).to_contain_text("Account")


def role_checklist(console: ConsolePage) -> Locator:
    region = console.page.get_by_role("region", name="Test the deployment role")
    region.get_by_role("button", name="Test Credentials", exact=True).click()
    checklist = region.get_by_role("list", name="Test Credentials checklist")
    expect(checklist).to_be_visible()
    return region


def marks(scope: Locator) -> dict[str, str]:
    found = {}
    for item in scope.get_by_role("list", name="Test Credentials checklist").locator(":scope > li").all():
        label = item.locator("strong").inner_text()
        found[label] = item.locator(".mark").get_attribute("aria-label") or ""
    return found


def test_connect_with_access_keys_then_every_check_passes_and_the_secret_is_nowhere(
    console: ConsolePage,
) -> None:
    server, page = console.server, console.page
    account = "220000000001"
    key = user_key(server, account, "admin", EVERYTHING)
    answers: list[str] = []
    page.on("response", lambda r: answers.append(r.text()) if "/console" not in r.url else None)

    console.sign_in()
    page.get_by_role("link", name="Accounts").click()
    page.get_by_role("link", name="Connect an AWS account").click()
    page.get_by_label("Target name").fill("keys-team")
    page.get_by_label("Account ID").fill(account)
    page.get_by_label("Regions").fill("us-east-1, eu-west-1")
    expect(page.get_by_label("Role ARN", exact=True)).to_have_value(
        f"arn:aws:iam::{account}:role/NexusDeploymentRole"
    )
    console.check("connect-register")
    page.get_by_role("button", name="Register target").click()
    expect(page.get_by_role("heading", level=1, name="Account keys-team")).to_be_visible()
    # Local mode deploys the template's BootstrapTemplatesBucket: the quick-create link names the
    # template the API wrote there, and the nexus targets bootstrap command is offered beside it.
    role_panel = page.get_by_role("tabpanel", name="IAM Role ARN (recommended)")
    link = role_panel.get_by_role("link", name=QUICK_CREATE)
    expect(link).to_have_attribute(
        "href", re.compile(r"templateURL=https%3A%2F%2Fnexus-deployer-local-bootstraptemplatesbucket\.s3\.")
    )
    target_id = page.url.rsplit("/", 1)[1]
    expect(role_panel.get_by_text(f"nexus targets bootstrap {target_id} --profile")).to_be_visible()
    console.check("connect-role-arn-method")

    page.get_by_role("tab", name="Access keys").click()
    panel = page.get_by_role("tabpanel", name="Access keys")
    # The guide's optional MFA for access keys (GetSessionToken): a field named exactly "MFA code".
    expect(panel.get_by_role("textbox", name="MFA code", exact=True)).to_be_editable()
    panel.get_by_label("Access Key ID", exact=True).fill(key["AccessKeyId"])
    panel.get_by_label("Secret Access Key", exact=True).fill(key["SecretAccessKey"])
    panel.get_by_role("button", name="Test Credentials", exact=True).click()
    expect(panel.get_by_text("✓ All checks passed.")).to_be_visible()
    assert marks(panel) == dict(zip(KEY_CHECKS, ["passed", "passed", "passed", "passed"], strict=True))
    console.check("connect-keys-tested")

    panel.get_by_role("button", name="Bootstrap with these keys").click()
    stacks = panel.get_by_role("table", name="Bootstrap stacks")
    expect(panel.get_by_text("Bootstrapped: the deployment role exists.")).to_be_visible(timeout=60_000)
    expect(stacks.get_by_text("CREATE_COMPLETE")).to_have_count(2)  # us-east-1 and the eu-west-1 forwarding
    region = role_checklist(console)
    expect(region.get_by_text("✓ All checks passed.")).to_be_visible()
    assert set(marks(region).values()) == {"passed"}
    assert len(marks(region)) == 5
    console.check("connect-keys-bootstrapped")

    secret = key["SecretAccessKey"]
    assert answers, "the browser received answers"
    assert not [a for a in answers if secret in a], "an answer carried the secret"
    assert secret not in server.output()
    central = server.admin(CENTRAL_ACCOUNT)
    dynamodb = central.client("dynamodb")
    for table in dynamodb.list_tables()["TableNames"]:
        assert secret not in json.dumps(dynamodb.scan(TableName=table)["Items"]), table
    sfn = central.client("stepfunctions")
    for machine in sfn.list_state_machines()["stateMachines"]:
        for execution in sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]:
            history = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
            assert secret not in json.dumps(history, default=str)


def wrong_code(seed: str) -> str:
    """Six digits that are none of the codes STS accepts now (it allows one step of clock skew)."""
    now = time.time()
    accepted = {totp_code(seed, now + step * TOTP_STEP) for step in (-2, -1, 0, 1, 2)}
    return next(c for c in (f"{(314_159 + 7_919 * n) % 10**6:06d}" for n in range(9)) if c not in accepted)


def test_access_keys_of_a_user_that_must_use_mfa_wrong_code_no_code_then_the_right_code(
    console: ConsolePage,
) -> None:
    server, page = console.server, console.page
    account = "220000000006"
    key = user_key(server, account, "deployer", FORCE_MFA)
    serial, seed = enable_virtual_mfa(server.admin(account).client("iam"), "deployer", "deployer-phone")
    target = register(server, "mfa-team", account)
    sent: list[str] = []
    answers: list[str] = []
    typed = re.compile(r"/credentials/test$|/bootstrap$")  # the requests that carry the typed keys
    page.on(
        "request",
        lambda r: sent.append(r.post_data or "") if r.method == "POST" and typed.search(r.url) else None,
    )
    page.on("response", lambda r: answers.append(r.text()) if "/console" not in r.url else None)

    open_target(console, target)
    page.get_by_role("tab", name="Access keys").click()
    panel = page.get_by_role("tabpanel", name="Access keys")
    panel.get_by_label("Access Key ID", exact=True).fill(key["AccessKeyId"])
    panel.get_by_label("Secret Access Key", exact=True).fill(key["SecretAccessKey"])
    panel.get_by_label("MFA device serial or ARN (optional)", exact=True).fill(serial)
    wrong = wrong_code(seed)
    panel.get_by_label("MFA code", exact=True).fill(wrong)
    panel.get_by_role("button", name="Test Credentials", exact=True).click()
    # STS refuses the session: the first check fails with the guide's "MFA Required" steps, the rest wait.
    expect(panel.get_by_text("✗ Some checks failed.")).to_be_visible()
    assert marks(panel) == dict(zip(KEY_CHECKS, ["failed", "skipped", "skipped", "skipped"], strict=True))
    checklist = panel.get_by_role("list", name="Test Credentials checklist")
    expect(checklist).to_contain_text("invalid MFA one time pass code")
    expect(checklist.get_by_text("MFA_REQUIRED", exact=True)).to_be_visible()
    expect(checklist.get_by_text('What to do ("MFA Required" errors):')).to_be_visible()
    expect(checklist.get_by_text("Use session token with MFA code")).to_be_visible()
    console.check("connect-keys-wrong-mfa-code")

    # Without MFA the keys sign in, but the policy denies them everything else, the simulation too, in
    # words that never name MFA: the refusal keeps its code, and its hint names the user's device.
    panel.get_by_label("MFA device serial or ARN (optional)", exact=True).fill("")
    panel.get_by_label("MFA code", exact=True).fill("")
    panel.get_by_role("button", name="Test Credentials", exact=True).click()
    expect(checklist.locator("li", has_text="STS identity verification").locator(".mark")).to_have_attribute(
        "aria-label", "passed"
    )
    assert marks(panel) == dict(zip(KEY_CHECKS, ["passed", "passed", "passed", "failed"], strict=True))
    refused = checklist.locator("li", has_text="Permission to create the bootstrap stack")
    expect(refused).to_contain_text("with an explicit deny in an identity-based policy")
    expect(refused.get_by_text("ACCESS_DENIED", exact=True)).to_be_visible()
    expect(refused).to_contain_text(f"Enter the MFA device {serial} and its current 6-digit code")
    console.check("connect-keys-without-mfa")

    right = totp_code(seed)
    panel.get_by_label("MFA device serial or ARN (optional)", exact=True).fill(serial)
    panel.get_by_label("MFA code", exact=True).fill(right)
    panel.get_by_role("button", name="Test Credentials", exact=True).click()
    expect(panel.get_by_text("✓ All checks passed.")).to_be_visible()
    assert marks(panel) == dict(zip(KEY_CHECKS, ["passed", "passed", "passed", "passed"], strict=True))
    expect(checklist).to_contain_text("MFA session from GetSessionToken")
    console.check("connect-keys-with-mfa")
    # AWS accepts each code once (the local STS too): the check spent it, so the field asks for the next.
    code_field = panel.get_by_label("MFA code", exact=True)
    expect(code_field).to_have_value("")
    expect(panel.get_by_role("status").filter(has_text="AWS accepts each MFA code once")).to_be_visible()
    panel.get_by_role("button", name="Bootstrap with these keys").click()
    expect(panel.get_by_text("Enter the code your MFA device shows now")).to_be_visible()
    expect(code_field).to_be_focused()
    # Typed again, the spent code is refused by STS, and the answer says why.
    code_field.fill(right)
    panel.get_by_role("button", name="Bootstrap with these keys").click()
    refusal = panel.get_by_role("alert")
    expect(refusal).to_contain_text("invalid MFA one time pass code")
    expect(refusal).to_contain_text("AWS accepts each code once")
    # The device's next code (STS accepts one step ahead, for clock skew) deploys the bootstrap stack.
    following = totp_code(seed, time.time() + TOTP_STEP)
    code_field.fill(following)
    panel.get_by_role("button", name="Bootstrap with these keys").click()
    expect(panel.get_by_text("Bootstrapped: the deployment role exists.")).to_be_visible(timeout=60_000)
    expect(panel.get_by_role("table", name="Bootstrap stacks").get_by_text("CREATE_COMPLETE")).to_have_count(
        1
    )

    # The browser sent each code once it was typed; nothing the service answered or logged holds one.
    assert [wrong in body for body in sent] == [True, False, False, False, False]
    assert [right in body for body in sent] == [False, False, True, True, False]
    assert [following in body for body in sent] == [False, False, False, False, True]
    secret = key["SecretAccessKey"]
    for hidden in (secret, wrong, right, following):
        pattern = re.compile(rf"(?<![0-9A-Za-z]){re.escape(hidden)}(?![0-9A-Za-z])")
        assert not [a for a in answers if pattern.search(a)], f"an answer carried {hidden!r}"
        assert not pattern.search(server.output()), f"local mode's output carried {hidden!r}"


def test_a_role_missing_three_actions_shows_them_by_service(console: ConsolePage) -> None:
    server = console.server
    account = "220000000002"
    target = register(server, "partial-team", account)
    # The account's admin deploys the served bootstrap template with three actions taken out of it.
    missing = {"ecs:CreateCluster", "ecs:DeleteCluster", "s3:PutBucketCORS"}
    template = server.api.ok("GET", f"/targets/{target['target_id']}/bootstrap-template", status=200)
    trimmed = 0
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                kept = [a for a in statement["Action"] if a not in missing]
                trimmed += len(statement["Action"]) - len(kept)
                statement["Action"] = kept
    assert trimmed == len(missing)
    server.admin(account).deploy_bootstrap(template)
    open_target(console, target)
    region = role_checklist(console)
    assert marks(region)["Required IAM permissions"] == "failed"
    assert marks(region)["AWS account access"] == "passed"
    by_service = region.get_by_role("table", name="Missing actions by service")
    rows = [r.inner_text().split("\t") for r in by_service.locator("tbody tr").all()]
    assert sorted((s, sorted(a.split(", "))) for s, a in rows) == [
        ("ecs", ["ecs:CreateCluster", "ecs:DeleteCluster"]),
        ("s3", ["s3:PutBucketCORS"]),
    ]
    console.check("connect-missing-actions")


def test_a_wrong_external_id_shows_access_denied_with_the_guides_fix(console: ConsolePage) -> None:
    server = console.server
    account = "220000000003"
    target = register(server, "wrong-id-team", account)
    trust = json.loads(json.dumps(target["trust_policy"]))
    trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"] = "someone-elses-external-id"
    create_role(server, account, trust, load_profile().policy())
    open_target(console, target)
    region = role_checklist(console)
    assert marks(region)["AWS account access"] == "failed"
    expect(region.get_by_text("ACCESS_DENIED", exact=True)).to_be_visible()
    expect(region.get_by_text('What to do ("Access Denied" errors):')).to_be_visible()
    expect(region.get_by_text("Verify credentials are correct")).to_be_visible()
    expect(region.get_by_text("Check for explicit denies in SCPs or permission boundaries")).to_be_visible()
    console.check("connect-wrong-external-id")


def test_adfs_fetch_roles_pick_bootstrap_then_test(console: ConsolePage) -> None:
    server, page = console.server, console.page
    adfs_url = re.search(r"Local ADFS:\s+(\S+)", server.output())
    assert adfs_url, server.output()
    target = register(server, "adfs-team", "111111111111")
    open_target(console, target)
    page.get_by_role("tab", name="ADFS/SAML").click()
    panel = page.get_by_role("tabpanel", name="ADFS/SAML")
    panel.get_by_label("ADFS URL", exact=True).fill(adfs_url.group(1))
    panel.get_by_label("Username", exact=True).fill("alice")
    panel.get_by_label("Password", exact=True).fill("not the password")
    panel.get_by_role("button", name="Fetch Roles", exact=True).click()
    expect(panel.get_by_role("alert")).to_contain_text("Incorrect user ID or password")
    panel.get_by_label("Password", exact=True).fill(ADFS_PASSWORD)
    panel.get_by_role("button", name="Fetch Roles", exact=True).click()
    admin_role = panel.get_by_label("arn:aws:iam::111111111111:role/AdfsAdmin")
    expect(admin_role).to_be_visible()
    expect(panel.get_by_label("arn:aws:iam::111111111111:role/AdfsReadOnly")).to_be_visible()
    console.check("connect-adfs-roles")
    admin_role.check()
    panel.get_by_role("button", name="Test Credentials", exact=True).click()
    expect(panel.get_by_text("✓ All checks passed.")).to_be_visible()
    panel.get_by_role("button", name="Bootstrap with this role").click()
    expect(panel.get_by_text("Bootstrapped: the deployment role exists.")).to_be_visible(timeout=60_000)
    region = role_checklist(console)
    expect(region.get_by_text("✓ All checks passed.")).to_be_visible()
    console.check("connect-adfs-bootstrapped")
    assert ADFS_PASSWORD not in json.dumps(
        server.api.ok("GET", f"/targets/{target['target_id']}", status=200)
    )


def test_on_aws_the_role_method_links_to_quick_create_and_only_to_the_aws_console(
    console: ConsolePage,
) -> None:
    """The service's answer on AWS is fed to the page (local mode's link names its embedded bucket): the link the domain
    builds (chalicelib/domain/bootstrap.py) for this very target; the API side is tests/api/test_quick_create.py."""
    server, page = console.server, console.page
    registered = register(server, "quick-team", "220000000005")
    fields = {
        name: registered[name] for name in ("target_id", "name", "account_id", "role_arn", "external_id")
    }
    target = Target(
        tenant_id="console",
        regions=tuple(registered["regions"]),
        trust_policy=registered["trust_policy"],
        created_at=registered["created_at"],
        **fields,
    )
    answer = quick_create_link(
        target, "https://templates.s3.us-east-1.amazonaws.com/bootstrap/0123.json"
    ).public()
    path = f"**/targets/{target.target_id}/quick-create-link"
    page.route(path, lambda route: route.fulfill(status=200, json=answer))
    open_target(console, registered)
    link = page.get_by_role("tabpanel", name="IAM Role ARN (recommended)").get_by_role(
        "link", name=QUICK_CREATE
    )
    expect(link).to_have_attribute("href", answer["url"])
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    console.check("connect-quick-create-link")

    page.unroute(path)
    page.route(
        path, lambda route: route.fulfill(status=200, json={**answer, "url": "javascript:window.__xss=3"})
    )
    page.reload()
    panel = page.get_by_role("tabpanel", name="IAM Role ARN (recommended)")
    expect(panel.get_by_role("alert")).to_contain_text("not the AWS console")
    expect(panel.get_by_role("link", name=QUICK_CREATE)).to_have_count(0)

    # A service without a template bucket answers 409 QUICK_CREATE_NOT_AVAILABLE: the command instead.
    refused = {
        "error": {
            "code": "QUICK_CREATE_NOT_AVAILABLE",
            "message": "This service has no bucket for bootstrap templates.",
            "hint": f"Run `nexus targets bootstrap {target.target_id} --profile NAME`.",
            "details": {},
        }
    }
    page.unroute(path)
    page.route(path, lambda route: route.fulfill(status=409, json=refused))
    page.reload()
    panel = page.get_by_role("tabpanel", name="IAM Role ARN (recommended)")
    expect(panel.get_by_text("No quick-create link here")).to_be_visible()
    expect(panel.get_by_role("link", name=QUICK_CREATE)).to_have_count(0)
    expect(panel.get_by_text(f"nexus targets bootstrap {target.target_id} --profile")).to_be_visible()


def test_a_target_name_made_of_markup_is_shown_as_text(console: ConsolePage) -> None:
    server, page = console.server, console.page
    target = register(server, XSS_NAME, "220000000004")
    console.sign_in()
    page.get_by_role("link", name="Accounts").click()
    expect(page.get_by_role("link", name=XSS_NAME)).to_be_visible()
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("main script").count() == 0
    console.check("accounts-list")
    page.get_by_role("link", name=XSS_NAME).click()
    expect(page.get_by_role("heading", level=1, name=f"Account {XSS_NAME}")).to_be_visible()
    assert page.locator("img[src='x']").count() == 0
    console.check("xss-target-name")
    assert target["name"] == XSS_NAME


def test_edit_a_target_renames_it_adds_a_region_and_shows_a_refusal(console: ConsolePage) -> None:
    server, page = console.server, console.page
    target = register(server, "team-edit", "220000000005")
    console.sign_in()
    page.goto(f"{server.console_url}#/targets/{target['target_id']}")
    page.get_by_text("Edit target", exact=True).click()
    form = page.get_by_role("form", name="Edit target")
    form.get_by_label("Target name").fill("team-edited")
    form.get_by_label("Regions").fill("us-east-1, eu-west-1")
    form.get_by_role("button", name="Save changes").click()
    expect(form.get_by_role("status")).to_have_text("Saved.")
    expect(page.get_by_role("heading", level=1, name="Account team-edited")).to_be_visible()
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("us-east-1, eu-west-1")
    stored = server.api.ok("GET", f"/targets/{target['target_id']}", status=200)
    assert stored["name"] == "team-edited"
    assert stored["regions"] == ["us-east-1", "eu-west-1"]
    assert stored["external_id"] == target["external_id"]  # the account, role and external ID stay
    console.check("target-edited")

    # A region outside the role's partition: the API's 422 is shown with its code and hint; nothing changes.
    form.get_by_label("Regions").fill("us-east-1, cn-north-1")
    form.get_by_role("button", name="Save changes").click()
    alert = form.get_by_role("alert")
    expect(alert).to_contain_text("The target was not changed")
    expect(alert).to_contain_text("REGION_NOT_IN_PARTITION")
    assert server.api.ok("GET", f"/targets/{target['target_id']}", status=200)["regions"] == [
        "us-east-1",
        "eu-west-1",
    ]
    expect(facts).to_contain_text("us-east-1, eu-west-1")
    console.check("target-edit-refused")
