"""The demo (``make demo``, or ``python -m localaws.demo``): local mode doing a real job, end to end.

It starts local mode (``python -m localaws.run``) as a child process on free ports, waits for
``/health``, and then does what a portal and a target account's administrator do, through the
public HTTP API only:

1. register a target in account 111111111111 (the service runs in 123456789012);
2. deploy the target's bootstrap template there (GET /targets/{id}/bootstrap-template: the
   deployment role with the trust policy the API returned and the guide's permissions), as that
   account's admin would (CloudFormation against the embedded AWS, acting in that account); then
   the guide's "Test Credentials": POST /targets/{id}/validate, printed as a checklist;
3. deploy ``examples/app-stack.json`` (bucket, queue, table, parameters, outputs) and
4. follow its events live with a progress bar; 5. print its outputs;
6. change a parameter (PUT) and show the changed output;
7. deploy ``examples/broken-stack.json`` and show FAILED with the error's reason and hint;
8. register a second target whose role trusts a wrong external ID: validate fails at assume_role
   with the fix, and a deployment is FAILED with the same ACCESS_DENIED and no stack in that account;
9. delete the first stack and show DELETED;
10. a fleet of three accounts: 111111111111 already runs ``demo-fleet`` with exactly the rollout's
    configuration, 333333333333 (registered and bootstrapped like the first target) runs an older
    one, 444444444444 none;
11. POST /rollouts with ``"mode": "plan"`` and a canary of 1: each item's change set (Add, Modify,
    Remove, replacements, IAM) and the fleet summary; nothing is applied yet;
12. POST /rollouts/{id}/apply: the waves as they run (the canary alone, then the rest), then each
    item: 111111111111 SKIPPED (its plan had no changes: CloudFormation itself found the stack already
    at that configuration), the others SUCCEEDED, and DescribeStacks in each account;
13. stop the service (SIGINT, which must exit 0).

Why it checks as it goes: a demo that prints green while the stacks are not where it says proves
nothing, so it asks CloudFormation in the target account (DescribeStacks against the embedded AWS)
that the stack exists after the create and is gone after the delete (and, for the rollout, that the
skipped stack was never updated and the others are at the new configuration), checks that no later
wave started before the canary ended, and exits 0 only when every step behaved as expected.
``NEXUS_LOCAL_STACK_SECONDS`` (default 3) sets how long each stack operation takes; the wall time
is printed at the end.

The target account's admin reaches the embedded AWS with the ``x-moto-account-id`` header (added
by a botocore ``before-sign`` hook): moto picks the account from it, and no STS call is involved.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
HOST = "127.0.0.1"
REGION = "us-east-1"
TARGET_ACCOUNT = "111111111111"
MISCONFIGURED_ACCOUNT = "222222222222"
UPDATED_ACCOUNT = "333333333333"  # fleet: runs an older demo-fleet, so the rollout updates it (the canary)
NEW_ACCOUNT = "444444444444"  # fleet: no demo-fleet yet, so the rollout creates it
ROLE_NAME = "NexusDeploymentRole"
SETTLED = ("SUCCEEDED", "FAILED")
FLEET_STACK = "demo-fleet"
ITEM_ENDED = ("PLANNED", "SUCCEEDED", "FAILED", "SKIPPED", "CANCELLED")
ROLLOUT_ENDED = ("PLANNED", "PAUSED", "SUCCEEDED", "FAILED", "CANCELLED")
STOP_STEP = 13


class DemoFailed(Exception):
    """A step did not behave as the demo promises."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise DemoFailed(message)


# -- the public HTTP API, as a portal calls it ------------------------------------------------------


@dataclass(frozen=True)
class Api:
    base_url: str
    token: str

    def call(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        if method == "POST":
            headers["Idempotency-Key"] = str(uuid.uuid4())  # what a portal sends, so a retry is safe
        data = json.dumps(body).encode() if body is not None else None
        url = self.base_url + path
        request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our own http:// URL
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        return status, json.loads(raw) if raw else None

    def ok(self, method: str, path: str, body: Any = None, *, status: int) -> Any:
        got, answer = self.call(method, path, body)
        expect(got == status, f"{method} {path} answered {got}, expected {status}: {answer}")
        return answer


# -- a target account's administrator ---------------------------------------------------------------


@dataclass(frozen=True)
class AccountAdmin:
    """Acts in one account of the embedded AWS, as that account's administrator."""

    aws_url: str
    account_id: str

    def client(self, service: str) -> Any:
        import boto3

        client = boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.aws_url,
            region_name=REGION,
            aws_access_key_id="local-admin",
            aws_secret_access_key="local-admin",  # the embedded AWS checks no signature
        )

        def pick_account(request: Any, **kwargs: Any) -> None:
            request.headers["x-moto-account-id"] = self.account_id

        client.meta.events.register("before-sign.*.*", pick_account)
        return client

    def create_role(self, trust_policy: Mapping[str, Any]) -> str:
        iam = self.client("iam")
        arn: str = iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust_policy))[
            "Role"
        ]["Arn"]
        return arn

    def deploy_bootstrap(self, template: Mapping[str, Any], timeout: float = 60.0) -> dict[str, str]:
        """Create the bootstrap stack, wait for CREATE_COMPLETE, return its outputs."""
        self.start_bootstrap(template)
        return self.wait_bootstrap(timeout)

    def start_bootstrap(self, template: Mapping[str, Any]) -> None:
        self.client("cloudformation").create_stack(
            StackName="nexus-bootstrap",
            TemplateBody=json.dumps(template),
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )

    def wait_bootstrap(self, timeout: float = 60.0) -> dict[str, str]:
        cfn = self.client("cloudformation")
        deadline = time.monotonic() + timeout
        while True:
            stack = cfn.describe_stacks(StackName="nexus-bootstrap")["Stacks"][0]
            if stack["StackStatus"] != "CREATE_IN_PROGRESS":
                break
            expect(time.monotonic() < deadline, f"the bootstrap stack is still {stack['StackStatus']}")
            time.sleep(0.25)
        expect(stack["StackStatus"] == "CREATE_COMPLETE", f"the bootstrap stack ended {stack['StackStatus']}")
        return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

    def stack(self, name: str) -> tuple[str, dict[str, str]]:
        """One stack's status and outputs (DescribeStacks); ("", {}) when the account has none of that name."""
        found = [
            s for s in self.client("cloudformation").describe_stacks()["Stacks"] if s["StackName"] == name
        ]
        live = [s for s in found if s["StackStatus"] != "DELETE_COMPLETE"]
        if not live:
            return "", {}
        return live[0]["StackStatus"], {o["OutputKey"]: o["OutputValue"] for o in live[0].get("Outputs", [])}

    def stacks(self) -> dict[str, str]:
        """Live stacks in the account's demo region, name -> status."""
        described = self.client("cloudformation").describe_stacks()["Stacks"]
        return {s["StackName"]: s["StackStatus"] for s in described if s["StackStatus"] != "DELETE_COMPLETE"}


# -- following a deployment -------------------------------------------------------------------------


@dataclass
class Follower:
    """Prints a deployment's new events as they arrive, with a progress bar, until it settles."""

    api: Api
    console: Console
    seen: set[tuple[str, ...]] = field(default_factory=set)

    def new_events(self, deployment_id: str) -> list[dict[str, str]]:
        events: list[dict[str, str]] = []
        token: str | None = None
        while True:
            query = "?limit=100" + (f"&next_token={urllib.parse.quote(token)}" if token else "")
            page = self.api.ok("GET", f"/deployments/{deployment_id}/events{query}", status=200)
            events.extend(page["items"])
            token = page["next_token"]
            if not token:
                break
        fresh = []
        for event in events:
            key = tuple(str(event[k]) for k in ("timestamp", "source", "status", "resource", "message"))
            if key not in self.seen:
                self.seen.add(key)
                fresh.append(event)
        return fresh

    def follow(self, deployment_id: str, label: str, steps: int, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        done: set[str] = set()
        columns = (SpinnerColumn(), TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=self.console) as progress:
            bar = progress.add_task(label, total=steps)
            while True:
                deployment = self.api.ok("GET", f"/deployments/{deployment_id}", status=200)
                for event in self.new_events(deployment_id):
                    progress.console.print(format_event(event), no_wrap=True, overflow="ellipsis")
                    if event["source"] == "stack" and event["status"].endswith(("_COMPLETE", "_FAILED")):
                        done.add(event["resource"])
                settled = deployment["operation"]["status"] in SETTLED
                progress.update(bar, completed=steps if settled else min(len(done), steps - 1))
                if settled:
                    return dict(deployment)
                expect(time.monotonic() < deadline, f"{label}: no result after {timeout:.0f} s")
                time.sleep(0.25)


def format_event(event: Mapping[str, str]) -> str:
    clock = event["timestamp"][11:19]
    status = event["status"]
    colour = (
        "red" if "FAILED" in status or "ROLLBACK" in status else "green" if "COMPLETE" in status else "cyan"
    )
    message = f"  [dim]{event['message']}[/dim]" if event["message"] else ""
    return (
        f"    {clock}  {event['source']:<12} {event['resource']:<16} [{colour}]{status}[/{colour}]{message}"
    )


# -- the story ----------------------------------------------------------------------------------------


def resource_count(template: str) -> int:
    resources: dict[str, Any] = json.loads(template)["Resources"]
    return len(resources) + 1  # and the stack itself


def run_story(console: Console, api: Api, aws_url: str) -> None:
    follower = Follower(api, console)
    admin = AccountAdmin(aws_url, TARGET_ACCOUNT)
    app_template = (EXAMPLES / "app-stack.json").read_text()
    broken_template = (EXAMPLES / "broken-stack.json").read_text()

    def step(number: int, title: str) -> None:
        console.rule(f"[bold]{number}. {title}")

    step(1, f"Register a target: account {TARGET_ACCOUNT}")
    status, _ = api.call("GET", "/targets", auth=False)
    expect(status == 401, f"GET /targets without a token answered {status}, expected 401")
    target = api.ok("POST", "/targets", target_body("team-a", TARGET_ACCOUNT), status=201)
    console.print(f"  target_id {target['target_id']}, external_id generated by the service")
    console.print_json(data=target["trust_policy"])

    step(2, "The target account's admin deploys the bootstrap template, then Test Credentials")
    template = api.ok("GET", f"/targets/{target['target_id']}/bootstrap-template", status=200)
    outputs = admin.deploy_bootstrap(template)
    expect(outputs.get("DeploymentRoleArn") == target["role_arn"], f"bootstrap outputs: {outputs}")
    console.print(f"  stack nexus-bootstrap created {outputs['DeploymentRoleArn']}")
    report = api.ok("POST", f"/targets/{target['target_id']}/validate", status=200)
    print_report(console, report)
    expect(report["ok"], f"validate failed for a bootstrapped role: {report}")

    step(3, "Deploy examples/app-stack.json (S3 bucket, SQS queue, DynamoDB table)")
    created = api.ok(
        "POST",
        "/deployments",
        {
            "target_id": target["target_id"],
            "region": REGION,
            "stack_name": "demo-app",
            "template_body": app_template,
            "parameters": {"Environment": "dev"},
            "tags": {"team": "a"},
        },
        status=202,
    )
    deployment_id = created["deployment_id"]
    console.print(f"  {deployment_id}: {created['status']}")

    step(4, "Live progress: the stack's events as they arrive")
    steps = resource_count(app_template)
    done = follower.follow(deployment_id, "create demo-app", steps)
    expect(done["status"] == "ACTIVE", f"the create ended {done['status']}: {done['error']}")
    stacks = admin.stacks()
    expect(
        stacks.get("demo-app") == "CREATE_COMPLETE",
        f"account {TARGET_ACCOUNT} has {stacks}, expected demo-app CREATE_COMPLETE",
    )
    console.print(f"  ACTIVE; DescribeStacks in {TARGET_ACCOUNT}: demo-app {stacks['demo-app']}")

    step(5, "Outputs")
    print_outputs(console, done["outputs"])
    expect(done["outputs"].get("Environment") == "dev", f"outputs: {done['outputs']}")

    step(6, "Update a parameter: Environment dev -> prod")
    api.ok("PUT", f"/deployments/{deployment_id}", {"parameters": {"Environment": "prod"}}, status=202)
    done = follower.follow(deployment_id, "update demo-app", steps)
    expect(done["status"] == "ACTIVE", f"the update ended {done['status']}: {done['error']}")
    expect(done["outputs"].get("Environment") == "prod", f"outputs after the update: {done['outputs']}")
    console.print("  output Environment: dev -> [bold]prod[/bold]")

    step(7, "Deploy a broken template: a subnet in a VPC that does not exist")
    broken = api.ok(
        "POST",
        "/deployments",
        {
            "target_id": target["target_id"],
            "region": REGION,
            "stack_name": "demo-broken",
            "template_body": broken_template,
        },
        status=202,
    )
    failed = follower.follow(broken["deployment_id"], "create demo-broken", resource_count(broken_template))
    expect(failed["status"] == "FAILED" and failed["error"], f"the broken stack ended {failed['status']}")
    print_error(console, failed)

    step(8, f"A second target (account {MISCONFIGURED_ACCOUNT}) whose role trusts a wrong external ID")
    other = api.ok("POST", "/targets", target_body("team-b", MISCONFIGURED_ACCOUNT), status=201)
    wrong_trust = json.loads(
        json.dumps(other["trust_policy"]).replace(other["external_id"], "not-the-external-id")
    )
    other_admin = AccountAdmin(aws_url, MISCONFIGURED_ACCOUNT)
    other_admin.create_role(wrong_trust)
    console.print("  role created, trusting external ID 'not-the-external-id'")
    report = api.ok("POST", f"/targets/{other['target_id']}/validate", status=200)
    print_report(console, report)
    assume = report["checks"][0]
    expect(not report["ok"] and assume["code"] == "ACCESS_DENIED", f"validate: {report}")
    denied = api.ok(
        "POST",
        "/deployments",
        {
            "target_id": other["target_id"],
            "region": REGION,
            "stack_name": "demo-app",
            "template_body": app_template,
        },
        status=202,
    )
    denied = follower.follow(denied["deployment_id"], "create in the misconfigured account", steps)
    expect(denied["status"] == "FAILED", f"the misconfigured target's deployment ended {denied['status']}")
    expect((denied["error"] or {}).get("code") == "ACCESS_DENIED", f"error: {denied['error']}")
    expect(other_admin.stacks() == {}, f"account {MISCONFIGURED_ACCOUNT} has stacks: {other_admin.stacks()}")
    print_error(console, denied)
    console.print(f"  DescribeStacks in {MISCONFIGURED_ACCOUNT}: no stacks")

    step(9, "Delete demo-app")
    api.ok("DELETE", f"/deployments/{deployment_id}", status=202)
    done = follower.follow(deployment_id, "delete demo-app", steps)
    expect(done["status"] == "DELETED", f"the delete ended {done['status']}: {done['error']}")
    stacks = admin.stacks()
    expect("demo-app" not in stacks, f"demo-app is still in account {TARGET_ACCOUNT}: {stacks}")
    console.print(f"  DELETED; DescribeStacks in {TARGET_ACCOUNT}: demo-app is gone")

    run_fleet_story(console, api, aws_url, target, step)


def run_fleet_story(
    console: Console, api: Api, aws_url: str, team_a: Mapping[str, Any], step: Callable[[int, str], None]
) -> None:
    """Steps 10-12: a rollout of demo-fleet to 3 accounts: plan, review, apply, canary first."""
    app_template = (EXAMPLES / "app-stack.json").read_text()
    config = {
        "template_body": app_template,
        "parameters": {"Environment": "prod"},
        "tags": {"app": FLEET_STACK},
    }
    targets = {TARGET_ACCOUNT: dict(team_a)}
    admins = {a: AccountAdmin(aws_url, a) for a in (TARGET_ACCOUNT, UPDATED_ACCOUNT, NEW_ACCOUNT)}

    step(10, f"A fleet: {FLEET_STACK} runs in {TARGET_ACCOUNT}; {UPDATED_ACCOUNT} and {NEW_ACCOUNT} join")
    existing: dict[str, str] = {}  # account -> the deployment_id of its demo-fleet before the rollout

    def deploy_before(account: str, environment: str, note: str) -> None:
        body = {
            "target_id": targets[account]["target_id"],
            "region": REGION,
            "stack_name": FLEET_STACK,
            **config,
            "parameters": {"Environment": environment},
        }
        existing[account] = api.ok("POST", "/deployments", body, status=202)["deployment_id"]
        console.print(f"  {account}: POST /deployments {FLEET_STACK} Environment={environment} ({note})")

    deploy_before(TARGET_ACCOUNT, "prod", "exactly what the rollout will deploy")
    for name, account in (("team-c", UPDATED_ACCOUNT), ("team-d", NEW_ACCOUNT)):
        targets[account] = api.ok("POST", "/targets", target_body(name, account), status=201)
        template = api.ok("GET", f"/targets/{targets[account]['target_id']}/bootstrap-template", status=200)
        admins[account].start_bootstrap(template)  # both admins at once
    for account in (UPDATED_ACCOUNT, NEW_ACCOUNT):
        target = targets[account]
        outputs = admins[account].wait_bootstrap()
        expect(
            outputs.get("DeploymentRoleArn") == target["role_arn"], f"{account} bootstrap outputs: {outputs}"
        )
        console.print(f"  {account}: registered as {target['name']}, its admin deployed nexus-bootstrap")
        if account == UPDATED_ACCOUNT:  # start it now: Test Credentials below run while it deploys
            deploy_before(UPDATED_ACCOUNT, "dev", "an older configuration")
    for account in (UPDATED_ACCOUNT, NEW_ACCOUNT):
        report = api.ok("POST", f"/targets/{targets[account]['target_id']}/validate", status=200)
        expect(report["ok"], f"validate failed for {account}: {report}")
        console.print(f"  {account}: Test Credentials: [green]all checks passed[/green]")
    for account, deployment_id in existing.items():
        done = wait_deployment(api, deployment_id)
        expect(
            done["status"] == "ACTIVE", f"{FLEET_STACK} in {account} ended {done['status']}: {done['error']}"
        )
        console.print(f"  {account}: {FLEET_STACK} ACTIVE, Environment={done['outputs'].get('Environment')}")
    console.print(f"  {NEW_ACCOUNT}: no {FLEET_STACK}")

    step(11, f"Plan a rollout of {FLEET_STACK} (Environment=prod) to the 3 accounts, canary first")
    order = (UPDATED_ACCOUNT, TARGET_ACCOUNT, NEW_ACCOUNT)  # the first one is the canary
    body = {
        "stack_name": FLEET_STACK,
        **config,
        "targets": [{"target_id": targets[a]["target_id"], "regions": [REGION]} for a in order],
        "strategy": {"canary": 1, "max_concurrent": 2, "failure_tolerance": 0},
        "mode": "plan",
    }
    rollout = api.ok("POST", "/rollouts", body, status=202)
    rollout_id = rollout["rollout_id"]
    waves = [(w["name"], w["items"]) for w in rollout["waves"]]
    expect(waves == [("canary", 1), ("all", 2)], f"waves: {waves}")
    console.print(
        f"  {rollout_id}: waves " + ", then ".join(f"{n} ({k} item{'s' * (k > 1)})" for n, k in waves)
    )
    planned = wait_rollout(api, rollout_id)
    expect(planned["status"] == "PLANNED", f"the plan ended {planned['status']}: {planned['summary']}")
    print_plan(console, planned)
    console.print(f"  fleet: [bold]{planned['summary']}[/bold]")
    changes = {
        i["account_id"]: sorted((c["action"], c["logical_id"]) for c in i["changes"] or [])
        for i in planned["items"]
    }
    added = sorted(("Add", name) for name in json.loads(app_template)["Resources"])
    expected = {TARGET_ACCOUNT: [], UPDATED_ACCOUNT: [("Modify", "WorkQueue")], NEW_ACCOUNT: added}
    expect(changes == expected, f"plan changes: {changes}, expected {expected}")
    expect("2 with changes" in planned["summary"] and "1 no-ops" in planned["summary"], planned["summary"])
    status, outputs = admins[UPDATED_ACCOUNT].stack(FLEET_STACK)
    expect(
        status == "CREATE_COMPLETE" and outputs.get("Environment") == "dev",
        f"the plan changed {status} {outputs}",
    )
    status, _ = admins[NEW_ACCOUNT].stack(FLEET_STACK)
    expect(status in ("", "REVIEW_IN_PROGRESS"), f"the plan left {FLEET_STACK} {status} in {NEW_ACCOUNT}")
    console.print(f"  nothing applied yet: {UPDATED_ACCOUNT} is still dev, {NEW_ACCOUNT} has no resources")

    step(12, "Apply the plan: the canary wave, then the rest")
    applying = api.ok("POST", f"/rollouts/{rollout_id}/apply", status=202)
    done = watch_rollout(console, api, applying)
    expect(done["status"] == "SUCCEEDED", f"the rollout ended {done['status']}: {done['summary']}")
    for item in done["items"]:
        colour = (
            "yellow" if item["status"] == "SKIPPED" else "green" if item["status"] == "SUCCEEDED" else "red"
        )
        why = "  [dim](its plan had no changes: nothing ran)[/dim]" if item["status"] == "SKIPPED" else ""
        console.print(
            f"  {item['account_id']}/{item['region']}  [{colour}]{item['status']:<9}[/{colour}] "
            f"{item['deployment_id']}{why}"
        )
    console.print(f"  fleet: [bold]{done['summary']}[/bold]")
    got = {i["account_id"]: i["status"] for i in done["items"]}
    want = {UPDATED_ACCOUNT: "SUCCEEDED", TARGET_ACCOUNT: "SKIPPED", NEW_ACCOUNT: "SUCCEEDED"}
    expect(got == want, f"item statuses {got}, expected {want}")
    skipped = next(i for i in done["items"] if i["status"] == "SKIPPED")
    expect(
        skipped["deployment_id"] == existing[TARGET_ACCOUNT],
        f"the skipped item names {skipped['deployment_id']}, not {existing[TARGET_ACCOUNT]}",
    )
    # The skipped stack was never updated (still CREATE_COMPLETE); the others are at prod.
    for account, wanted in (
        (UPDATED_ACCOUNT, "UPDATE_COMPLETE"),
        (TARGET_ACCOUNT, "CREATE_COMPLETE"),
        (NEW_ACCOUNT, "CREATE_COMPLETE"),
    ):
        status, outputs = admins[account].stack(FLEET_STACK)
        expect(
            status == wanted and outputs.get("Environment") == "prod",
            f"{FLEET_STACK} in {account} is {status or 'missing'} {outputs}, expected {wanted} at prod",
        )
        console.print(
            f"  DescribeStacks in {account}: {FLEET_STACK} {status}, Environment={outputs['Environment']}"
        )


def wait_deployment(api: Api, deployment_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        deployment: dict[str, Any] = api.ok("GET", f"/deployments/{deployment_id}", status=200)
        if deployment["operation"]["status"] in SETTLED:
            return deployment
        expect(time.monotonic() < deadline, f"{deployment_id}: no result after {timeout:.0f} s")
        time.sleep(0.25)


def wait_rollout(api: Api, rollout_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        rollout: dict[str, Any] = api.ok("GET", f"/rollouts/{rollout_id}", status=200)
        if rollout["status"] in ROLLOUT_ENDED:
            return rollout
        expect(time.monotonic() < deadline, f"{rollout_id}: still {rollout['status']} after {timeout:.0f} s")
        time.sleep(0.25)


def print_plan(console: Console, rollout: Mapping[str, Any]) -> None:
    """Each item's change set: what it adds, modifies or removes, what it replaces, what touches IAM."""
    names = {w["index"]: w["name"] for w in rollout["waves"]}
    for item in rollout["items"]:
        changes = item["changes"] or []
        replacements = sum(1 for c in changes if c["replacement"] is not False)
        iam = sum(1 for c in changes if c["iam"])
        where = f"{item['account_id']}/{item['region']} ({names[item['wave']]})"
        if not changes:
            console.print(
                f"  {where}: [yellow]no changes[/yellow] (the stack already has this configuration)"
            )
            continue
        console.print(f"  {where}: {len(changes)} change(s), {replacements} replacement(s), {iam} IAM")
        for change in changes:
            colour = {"Add": "green", "Modify": "yellow", "Remove": "red"}.get(change["action"], "white")
            extra = f"  replacement: {change['replacement']}" if change["action"] == "Modify" else ""
            extra += "  [bold]IAM[/bold]" if change["iam"] else ""
            console.print(
                f"      [{colour}]{change['action']:<6}[/{colour}] {change['logical_id']:<16} "
                f"{change['resource_type']:<22}{extra}".rstrip()
            )


def watch_rollout(
    console: Console, api: Api, rollout: Mapping[str, Any], timeout: float = 90.0
) -> dict[str, Any]:
    """Print each wave's and item's status as it changes, until the rollout ends.

    Checks the canary as it goes: no item of a later wave may leave PENDING before the canary ended.
    """
    started = time.monotonic()
    deadline = started + timeout
    seen: dict[str, str] = {}
    current: dict[str, Any] = dict(rollout)
    while True:
        clock = f"{time.monotonic() - started:5.1f} s"
        for wave in current["waves"]:
            key, status = f"wave {wave['index']}", wave["status"]
            items = [i for i in current["items"] if i["wave"] == wave["index"]]
            moved = [i for i in items if seen.get(f"item {i['item_id']}", "PENDING") != i["status"]]
            if key not in seen and (status != "PENDING" or moved):
                console.print(f"  {clock}  wave {wave['name']:<6} started")
                seen[key] = "IN_PROGRESS"
            for item in moved:
                seen[f"item {item['item_id']}"] = item["status"]
                console.print(f"  {clock}    {item['account_id']}/{item['region']}  {item['status']}")
            if status not in ("PENDING", "IN_PROGRESS") and seen.get(key) != status:
                console.print(f"  {clock}  wave {wave['name']:<6} {status}")
                seen[key] = status
        canary = [i for i in current["items"] if i["wave"] == 0]
        later = [i for i in current["items"] if i["wave"] > 0]
        expect(
            all(i["status"] in ITEM_ENDED for i in canary) or all(i["status"] == "PENDING" for i in later),
            f"a later wave started before the canary ended: {current['items']}",
        )
        if current["status"] in ROLLOUT_ENDED:
            console.print(f"  {clock}  rollout {current['status']}")
            return current
        expect(time.monotonic() < deadline, f"the rollout is still {current['status']} after {timeout:.0f} s")
        time.sleep(0.25)
        current = api.ok("GET", f"/rollouts/{rollout['rollout_id']}", status=200)


def target_body(name: str, account: str) -> dict[str, Any]:
    return {
        "name": name,
        "account_id": account,
        "role_arn": f"arn:aws:iam::{account}:role/{ROLE_NAME}",
        "regions": [REGION],
    }


def print_outputs(console: Console, outputs: Mapping[str, str]) -> None:
    width = max(map(len, outputs), default=0)
    for name, value in sorted(outputs.items()):
        console.print(f"  {name:<{width}}  {value}")


def print_report(console: Console, report: Mapping[str, Any]) -> None:
    """The validate report as the guide's Test Credentials checklist; a failure shows its fix."""
    verdict = "[green]all checks passed[/green]" if report["ok"] else "[red]credentials need fixing[/red]"
    console.print(f"  Test Credentials ({report['permission_profile']} profile): {verdict}")
    for check in report["checks"]:
        mark = "[green]\u2714[/green]" if check["ok"] else "[red]\u2718[/red]"
        console.print(f"    {mark} {check['name']:<21} {escape(check['detail'])}", soft_wrap=True)
    failed = next((c for c in report["checks"] if not c["ok"]), None)
    if failed is not None:
        console.print(f"  fix ({failed['code']}): {escape(failed['hint'] or '')}")
    for group in report["missing_actions"]:
        console.print(f"    missing {group['service']}: {', '.join(group['actions'])}")


def print_error(console: Console, deployment: Mapping[str, Any]) -> None:
    error = deployment["error"]
    console.print(f"  [red]{deployment['status']}[/red]  code {error['code']}")
    console.print(f"  reason: {error['message']}")
    console.print(f"  hint:   {error['hint']}")


# -- the service, as a child process ----------------------------------------------------------------


def start_service(env: Mapping[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "localaws.run"]
    return subprocess.Popen(command, cwd=ROOT, env=dict(env), stdout=log, stderr=subprocess.STDOUT)  # noqa: S603


def wait_until_healthy(url: str, service: subprocess.Popen[Any], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        expect(service.poll() is None, f"local mode exited with code {service.returncode} while starting")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise DemoFailed(f"local mode was not healthy after {timeout:.0f} s")


def stop_service(service: subprocess.Popen[bytes]) -> int:
    if service.poll() is None:
        service.send_signal(signal.SIGINT)
        try:
            return service.wait(timeout=15)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
            return -9
    return service.returncode


def main(environ: Mapping[str, str] | None = None) -> int:
    from localaws.server import free_port

    started = time.monotonic()
    console = Console(highlight=False, width=shutil.get_terminal_size((120, 24)).columns)
    environ = os.environ if environ is None else environ
    api_port, aws_port = free_port(), free_port()
    token = "nxs_demo_" + secrets.token_urlsafe(24)
    env = {
        **environ,
        "NEXUS_PORT": str(api_port),
        "NEXUS_AWS_PORT": str(aws_port),
        "NEXUS_API_TOKEN": token,
        "NEXUS_LOCAL_STACK_SECONDS": environ.get("NEXUS_LOCAL_STACK_SECONDS", "3"),
    }
    api, aws_url = Api(f"http://{HOST}:{api_port}", token), f"http://{HOST}:{aws_port}"
    failure: str | None = None
    with tempfile.TemporaryFile() as log:
        console.rule("[bold]NexusAI Deployer demo")
        console.print(f"  starting local mode: API {api.base_url}, embedded AWS {aws_url}")
        console.print(
            f"  stack operations take {env['NEXUS_LOCAL_STACK_SECONDS']} s (NEXUS_LOCAL_STACK_SECONDS)"
        )
        service = start_service(env, log)
        try:
            wait_until_healthy(api.base_url, service)
            console.print(f"  healthy after {time.monotonic() - started:.1f} s")
            run_story(console, api, aws_url)
        except (DemoFailed, OSError, ValueError, KeyError) as error:
            failure = f"{type(error).__name__}: {error}"
        finally:
            console.rule(f"[bold]{STOP_STEP}. Stop the service")
            code = stop_service(service)
        console.print(f"  local mode exited with code {code}")
        if code != 0 and failure is None:
            failure = f"local mode exited with code {code}, expected 0"
        if failure is not None:
            log.seek(0)
            tail = log.read().decode(errors="replace").splitlines()[-25:]
            console.print("\n".join(f"  | {line}" for line in tail), markup=False, style="dim")
    elapsed = time.monotonic() - started
    if failure is not None:
        console.print(f"[bold red]DEMO FAILED[/bold red] after {elapsed:.1f} s: {escape(failure)}")
        return 1
    console.print(
        f"[bold green]Demo passed[/bold green]: every step behaved as expected. Wall time {elapsed:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
