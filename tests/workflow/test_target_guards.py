"""The service's own identity is guarded: the central account is no target, and a role that can be
assumed without its external ID (the confused deputy) takes no deployment until its trust policy is fixed."""

from __future__ import annotations

import json

import pytest

from localaws.environment import CENTRAL_ACCOUNT
from tests.conftest import (
    TARGET_ACCOUNT,
    TARGET_ROLE,
    call,
    create_target_role,
    register_target,
    stacks_in,
    wait_for,
    wired,
)

QUEUE = json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})


def central_target(role: str) -> dict[str, object]:
    return {
        "name": "central",
        "account_id": CENTRAL_ACCOUNT,
        "role_arn": f"arn:aws:iam::{CENTRAL_ACCOUNT}:role/{role}",
        "regions": ["us-east-1"],
    }


def test_the_central_account_is_refused_before_any_write(client, tenant, local_aws, aws_calls):
    aws_calls.clear()
    response = call(client, "POST", "/targets", tenant, central_target(TARGET_ROLE))
    assert response.status_code == 422, response.body
    error = json.loads(response.body)["error"]
    assert error["code"] == "CENTRAL_ACCOUNT_NOT_ALLOWED"
    assert CENTRAL_ACCOUNT in error["message"]
    assert f"NEXUS_ALLOW_CENTRAL_ACCOUNT_TARGET={CENTRAL_ACCOUNT}" in error["hint"]
    assert aws_calls.count("dynamodb", "PutItem") == 0
    assert json.loads(call(client, "GET", "/targets", tenant).body)["items"] == []


def test_named_central_account_takes_a_role_of_its_own_never_the_services(local_aws):
    from chalice.test import Client

    import app as app_module

    with (
        wired(local_aws, NEXUS_ALLOW_CENTRAL_ACCOUNT_TARGET=CENTRAL_ACCOUNT) as services,
        Client(app_module.app) as client,
    ):
        headers = {"Authorization": f"Bearer {services.auth.issue('t', 'tests')}"}
        service_role = local_aws.central.service_role_arn.split(":role/", 1)[1]
        refused = client.http.post("/targets", headers=headers, body=json.dumps(central_target(service_role)))
        assert refused.status_code == 422, refused.body
        assert json.loads(refused.body)["error"]["code"] == "SERVICE_ROLE_NOT_ALLOWED"
        own = client.http.post(
            "/targets", headers=headers, body=json.dumps(central_target("NexusDeploymentRole-central"))
        )
        assert own.status_code == 201, own.body


def test_settings_refuse_naming_another_account_as_central(local_aws):
    from chalicelib.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="NEXUS_ALLOW_CENTRAL_ACCOUNT_TARGET names 111111111111"):
        Settings.from_env(
            {
                **local_aws.host.environment(local_aws.host.api_function),
                "NEXUS_ALLOW_CENTRAL_ACCOUNT_TARGET": TARGET_ACCOUNT,
            }
        )


def deploy(client, tenant, target, stack_name="s"):
    body = {
        "target_id": target["target_id"],
        "region": "us-east-1",
        "stack_name": stack_name,
        "template_body": QUEUE,
    }
    return call(client, "POST", "/deployments", tenant, body)


def test_a_role_assumable_without_its_external_id_blocks_deployments_until_fixed(
    client, tenant, local_aws, aws_calls
):
    target = register_target(client, tenant, local_aws, with_role=False)
    loose = json.loads(json.dumps(target["trust_policy"]))
    del loose["Statement"][0]["Condition"]
    create_target_role(local_aws, loose)

    first = deploy(client, tenant, target)
    assert first.status_code == 202, first.body
    done = wait_for(client, tenant, json.loads(first.body)["deployment_id"])
    assert done["status"] == "FAILED"
    assert done["error"]["code"] == "EXTERNAL_ID_NOT_ENFORCED"
    assert "sts:ExternalId" in done["error"]["hint"]
    assert stacks_in(local_aws, TARGET_ACCOUNT) == []  # refused before any stack call
    shown = json.loads(call(client, "GET", f"/targets/{target['target_id']}", tenant).body)
    assert shown["external_id_enforced"] is False

    # From now on refused up front: no execution starts.
    aws_calls.clear()
    again = deploy(client, tenant, target, "t")
    assert again.status_code == 409, again.body
    assert json.loads(again.body)["error"]["code"] == "EXTERNAL_ID_NOT_ENFORCED"
    assert aws_calls.count("stepfunctions") == 0

    # The account's admin fixes the trust policy; Test Credentials records it; deployments run.
    iam = local_aws.account_session(TARGET_ACCOUNT).client("iam")
    iam.update_assume_role_policy(RoleName=TARGET_ROLE, PolicyDocument=json.dumps(target["trust_policy"]))
    report = json.loads(call(client, "POST", f"/targets/{target['target_id']}/validate", tenant).body)
    assert [c["ok"] for c in report["checks"] if c["name"] == "external_id_enforced"] == [True]
    fixed = deploy(client, tenant, target, "t")
    assert fixed.status_code == 202, fixed.body
    assert wait_for(client, tenant, json.loads(fixed.body)["deployment_id"])["status"] == "ACTIVE"


def test_the_setting_lets_an_unenforced_role_deploy(local_aws):
    from chalice.test import Client

    import app as app_module
    from tests.conftest import Tenant

    with (
        wired(local_aws, NEXUS_ALLOW_UNENFORCED_EXTERNAL_ID="1") as services,
        Client(app_module.app) as client,
    ):
        tenant = Tenant("t", services.auth.issue("t", "tests"))
        target = register_target(client, tenant, local_aws, with_role=False)
        loose = json.loads(json.dumps(target["trust_policy"]))
        del loose["Statement"][0]["Condition"]
        create_target_role(local_aws, loose)
        response = deploy(client, tenant, target)
        assert response.status_code == 202, response.body
        done = wait_for(client, tenant, json.loads(response.body)["deployment_id"])
        assert done["status"] == "ACTIVE", done
        shown = json.loads(call(client, "GET", f"/targets/{target['target_id']}", tenant).body)
        assert shown["external_id_enforced"] is False  # still reported
