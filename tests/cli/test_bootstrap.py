"""``nexus targets bootstrap`` end to end: the API over real HTTP, the local AWS in-process.

The Chalice app is served by its local dev server (``localaws.server.ApiServer``) on a free port; the
CLI fetches the target's bootstrap template from it, deploys it into account 111111111111 with the
account administrator's keys, then asks the API to validate the target, whose service role must now be
able to assume the new role with the external ID.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

import app as app_module
from chalicelib.composition import Services
from localaws.environment import LocalAws
from localaws.server import ApiServer, free_port
from localaws.sts import account_credentials
from tests.cli.conftest import TARGET, assert_no_secrets, report_of, run
from tests.conftest import execution_history, state_names
from tests.support.polling import until


@pytest.fixture
def api(services: Services) -> Iterator[tuple[str, str]]:
    server = ApiServer(app_module.app, "127.0.0.1", free_port())
    server.start()
    try:
        yield server.url, services.auth.issue("tenant-a", "tests")
    finally:
        server.stop()


def register(url: str, token: str, regions: list[str]) -> str:
    created = requests.post(
        f"{url}/targets",
        json={
            "name": "team-a",
            "account_id": TARGET,
            "role_arn": f"arn:aws:iam::{TARGET}:role/NexusDeploymentRole",
            "regions": regions,
        },
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    return str(created.json()["target_id"])


def bootstrap(url: str, token: str, target_id: str) -> tuple[Any, str]:
    """``nexus targets bootstrap`` with the account administrator's keys; (result, their secret)."""
    key, secret = account_credentials(TARGET)
    env = {"AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": None, "NEXUS_API_TOKEN": token}
    args = ["targets", "bootstrap", target_id, "--access-key-id", key, "--api-url", url, "--json"]
    result = run(args, env=env)
    assert result.exit_code == 0, result.output
    return result, secret


def test_bootstrap_deploys_the_role_and_the_target_validates(
    local_aws: LocalAws, api: tuple[str, str]
) -> None:
    url, token = api
    target_id = register(url, token, ["us-east-1"])
    result, secret = bootstrap(url, token, target_id)
    document = report_of(result)
    assert document["stack_status"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    assert document["validation"]["ok"] is True, document["validation"]
    assert document["validation"]["account_id"] == TARGET
    assert_no_secrets(result, secret, token)
    roles = local_aws.account_session(TARGET).client("iam").list_roles()["Roles"]
    assert "NexusDeploymentRole" in {r["RoleName"] for r in roles}


def test_bootstrap_forwards_stack_events_from_every_region_of_the_target(
    local_aws: LocalAws, api: tuple[str, str]
) -> None:
    """The bootstrap stack forwards its own region's events; `<stack>-events` does each other region's.

    Then a deployment in the second region ends by its stack event, not by the event wait's timeout.
    """
    url, token = api
    headers = {"Authorization": f"Bearer {token}"}
    target_id = register(url, token, ["us-east-1", "eu-west-1"])
    document = report_of(bootstrap(url, token, target_id)[0])
    assert document["forwarding_stacks"] == {"eu-west-1": "CREATE_COMPLETE"}, document
    assert document["validation"]["ok"] is True, document["validation"]

    session = local_aws.account_session(TARGET)
    forwarder = session.client("cloudformation").describe_stacks(StackName="nexus-deployer-bootstrap")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in forwarder["Stacks"][0]["Outputs"]}
    for region in ("us-east-1", "eu-west-1"):
        (target,) = session.client("events", region_name=region).list_targets_by_rule(
            Rule=_rule_name(session, region)
        )["Targets"]
        assert target["Arn"] == local_aws.event_bus_arn
        assert target["RoleArn"] == outputs["StackEventsForwarderRoleArn"]

    body = {
        "target_id": target_id,
        "region": "eu-west-1",
        "stack_name": "in-eu",
        "template_body": json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}),
    }
    started = requests.post(f"{url}/deployments", json=body, headers=headers, timeout=30)
    assert started.status_code == 202, started.text
    deployment = _settled(url, headers, started.json()["deployment_id"])
    assert deployment["status"] == "ACTIVE", deployment
    history = execution_history(local_aws, deployment["operation"]["operation_id"])
    entered = state_names(history)
    assert "WaitForStackEvent" in entered, entered
    assert not [e for e in history if e["type"] == "TaskTimedOut"]  # released by the forwarded event


def _rule_name(session: Any, region: str) -> str:
    rules = session.client("events", region_name=region).list_rules()["Rules"]
    (rule,) = [r["Name"] for r in rules if "StackStatusForwarding" in r["Name"]]
    return str(rule)


def _settled(url: str, headers: dict[str, str], deployment_id: str) -> dict[str, Any]:
    def shown() -> dict[str, Any]:
        body: dict[str, Any] = requests.get(
            f"{url}/deployments/{deployment_id}", headers=headers, timeout=30
        ).json()
        return body

    return until(
        shown,
        ready=lambda body: body["operation"]["status"] not in ("PENDING", "IN_PROGRESS"),
        timeout=30,
        interval=0.1,
        what=f"deployment {deployment_id} to settle",
    )
