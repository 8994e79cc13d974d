"""Getting out of a failed state through the API alone: re-post a create once the role exists, forget
a deployment whose stack is gone, update after a failed delete, and see which answers are replays."""

from __future__ import annotations

import json

import pytest

from chalicelib.adapters.dynamodb import DynamoDeploymentStore
from chalicelib.domain.errors import TransientAwsError
from chalicelib.domain.model import Deployment
from tests.conftest import (
    TARGET_ACCOUNT,
    call,
    create_target_role,
    register_target,
    remove_target_role,
    stacks_in,
    wait_for,
)

TEMPLATE = json.dumps(
    {
        "Parameters": {"Env": {"Type": "String"}},
        "Resources": {
            "Q": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"Tags": [{"Key": "env", "Value": {"Ref": "Env"}}]},
            }
        },
    }
)


def body_for(target, **overrides):
    return {
        "target_id": target["target_id"],
        "region": "us-east-1",
        "stack_name": "app",
        "template_body": TEMPLATE,
        "parameters": {"Env": "dev"},
        **overrides,
    }


def post(client, tenant, body, **headers):
    response = call(client, "POST", "/deployments", tenant, body, **headers)
    assert response.status_code == 202, response.body
    return json.loads(response.body)


def code_of(response):
    return json.loads(response.body)["error"]["code"]


def test_reposting_a_create_that_failed_before_any_stack_runs_it_again_on_the_same_deployment(
    client, tenant, local_aws
):
    target = register_target(client, tenant, local_aws, with_role=False)
    failed = wait_for(client, tenant, post(client, tenant, body_for(target))["deployment_id"])
    assert failed["status"] == "FAILED"
    assert failed["error"]["code"] == "ACCESS_DENIED"
    assert failed["stack_id"] is None
    create_target_role(local_aws, target["trust_policy"])  # the admin fixes the role

    again = post(client, tenant, body_for(target, parameters={"Env": "prod"}))
    assert again["deployment_id"] == failed["deployment_id"]
    assert again["operation"]["operation_id"] != failed["operation"]["operation_id"]
    assert again["operation"]["action"] == "create"
    done = wait_for(client, tenant, again["deployment_id"])
    assert done["status"] == "ACTIVE", done
    assert done["parameters"] == {"Env": "prod"}
    assert [s["StackName"] for s in stacks_in(local_aws, TARGET_ACCOUNT)] == ["app"]
    # Once a stack exists, a third POST is the usual conflict that points at PUT.
    third = call(client, "POST", "/deployments", tenant, body_for(target))
    assert third.status_code == 409
    assert code_of(third) == "STACK_ALREADY_DEPLOYED"


def test_idempotency_replays_are_marked(client, tenant, local_aws, aws_calls):
    target = register_target(client, tenant, local_aws)
    first = call(client, "POST", "/deployments", tenant, body_for(target), Idempotency_Key="r-1")
    second = call(client, "POST", "/deployments", tenant, body_for(target), Idempotency_Key="r-1")
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"
    assert json.loads(second.body) == json.loads(first.body)
    assert aws_calls.count("stepfunctions", "StartExecution") == 1
    fresh = call(client, "GET", f"/deployments/{json.loads(first.body)['deployment_id']}", tenant)
    assert "Idempotent-Replayed" not in fresh.headers


def test_an_update_after_a_failed_delete_reuses_the_template(client, tenant, local_aws):
    target = register_target(client, tenant, local_aws)
    created = wait_for(client, tenant, post(client, tenant, body_for(target))["deployment_id"])
    assert created["status"] == "ACTIVE"
    did = created["deployment_id"]
    remove_target_role(local_aws)  # the delete cannot reach the account
    deleting = call(client, "DELETE", f"/deployments/{did}", tenant)
    assert deleting.status_code == 202
    failed = wait_for(client, tenant, did)
    assert failed["status"] == "FAILED"
    assert failed["error"]["code"] == "ACCESS_DENIED"
    create_target_role(local_aws, target["trust_policy"], forward=False)

    update = call(client, "PUT", f"/deployments/{did}", tenant, {"parameters": {"Env": "prod"}})
    assert update.status_code == 202, update.body
    done = wait_for(client, tenant, did)
    assert done["status"] == "ACTIVE", done
    assert done["parameters"] == {"Env": "prod"}


def test_forget_a_deployment_that_never_made_a_stack_frees_its_target(client, tenant, local_aws):
    target = register_target(client, tenant, local_aws, with_role=False)
    failed = wait_for(client, tenant, post(client, tenant, body_for(target))["deployment_id"])
    assert failed["status"] == "FAILED"
    assert call(client, "DELETE", f"/targets/{target['target_id']}", tenant).status_code == 409

    forgotten = call(client, "POST", f"/deployments/{failed['deployment_id']}/forget", tenant)
    assert forgotten.status_code == 200, forgotten.body
    record = json.loads(forgotten.body)
    assert record["status"] == "DELETED"
    assert record["operation"]["action"] == "forget"
    events = json.loads(call(client, "GET", f"/deployments/{failed['deployment_id']}/events", tenant).body)
    assert events["items"][-1]["status"] == "FORGOTTEN"
    assert "ACCESS_DENIED" in events["items"][-1]["message"]  # the role could not look, and why
    again = call(client, "POST", f"/deployments/{failed['deployment_id']}/forget", tenant)
    assert again.status_code == 409
    assert code_of(again) == "DEPLOYMENT_DELETED"
    assert call(client, "DELETE", f"/targets/{target['target_id']}", tenant).status_code == 204


def test_forget_frees_the_stack_name_in_the_same_write_as_the_record(
    client, tenant, local_aws, monkeypatch: pytest.MonkeyPatch
):
    """The DELETED record and the freed stack name are one transaction: a throttle can no longer fall
    between them and leave the name claimed by a DELETED deployment (every later create of it 409, the
    forget itself 409 DEPLOYMENT_DELETED). The store's separate release is refused here to show it."""
    target = register_target(client, tenant, local_aws, with_role=False)
    failed = wait_for(client, tenant, post(client, tenant, body_for(target))["deployment_id"])
    release = DynamoDeploymentStore.release_stack_name

    def throttled(store: DynamoDeploymentStore, deployment: Deployment) -> None:
        if deployment.deployment_id == failed["deployment_id"]:  # every release of this one's name
            raise TransientAwsError("DeleteItem failed: ThrottlingException: Rate exceeded")
        release(store, deployment)

    monkeypatch.setattr(DynamoDeploymentStore, "release_stack_name", throttled)
    forgotten = call(client, "POST", f"/deployments/{failed['deployment_id']}/forget", tenant)
    assert forgotten.status_code == 200, forgotten.body
    again = call(client, "POST", "/deployments", tenant, body_for(target))  # the same stack name
    assert again.status_code == 202, again.body
    assert json.loads(again.body)["deployment_id"] != failed["deployment_id"]


def test_forget_leaves_a_stack_name_another_deployment_holds_now(client, tenant, local_aws):
    """The name was freed and taken by another deployment since (its claim names that one): forget drops
    this record and leaves that claim alone, rather than refusing every time (409)."""
    target = register_target(client, tenant, local_aws, with_role=False)
    failed = wait_for(client, tenant, post(client, tenant, body_for(target))["deployment_id"])
    table = local_aws.central_session().resource("dynamodb").Table(local_aws.central.table_name)
    (claim,) = [i for i in table.scan()["Items"] if str(i["pk"]).startswith("CLAIM#")]
    table.put_item(Item={**claim, "deployment_id": "dep-another"})
    forgotten = call(client, "POST", f"/deployments/{failed['deployment_id']}/forget", tenant)
    assert forgotten.status_code == 200, forgotten.body
    assert json.loads(forgotten.body)["status"] == "DELETED"
    assert (
        table.get_item(Key={"pk": claim["pk"], "sk": claim["sk"]})["Item"]["deployment_id"] == "dep-another"
    )


def test_forget_is_refused_while_the_stack_exists_and_allowed_once_it_is_gone(
    client, tenant, local_aws, aws_calls
):
    target = register_target(client, tenant, local_aws)
    done = wait_for(client, tenant, post(client, tenant, body_for(target))["deployment_id"])
    assert done["status"] == "ACTIVE"
    path = f"/deployments/{done['deployment_id']}/forget"
    aws_calls.clear()
    refused = call(client, "POST", path, tenant)
    assert refused.status_code == 409
    error = json.loads(refused.body)["error"]
    assert error["code"] == "STACK_STILL_EXISTS"
    assert error["details"]["stack_status"] == "CREATE_COMPLETE"
    assert "DELETE /deployments/{id}" in error["hint"]
    assert aws_calls.count("cloudformation", "DescribeStacks") == 1  # looked, through the role
    assert aws_calls.count("sts", "AssumeRole") == 1
    assert (
        json.loads(call(client, "GET", f"/deployments/{done['deployment_id']}", tenant).body)["status"]
        == "ACTIVE"
    )

    # Someone deletes the stack by hand: DELETE_COMPLETE counts as gone.
    cfn = local_aws.account_session(TARGET_ACCOUNT).client("cloudformation", region_name="us-east-1")
    cfn.delete_stack(StackName=done["stack_id"])
    assert stacks_in(local_aws, TARGET_ACCOUNT) == []
    forgotten = call(client, "POST", path, tenant)
    assert forgotten.status_code == 200, forgotten.body
    assert json.loads(forgotten.body)["status"] == "DELETED"
    # The stack name is free again.
    assert post(client, tenant, body_for(target))["deployment_id"] != done["deployment_id"]


def test_forget_of_a_deployment_whose_stack_was_made_needs_the_role_to_look(client, tenant, local_aws):
    target = register_target(client, tenant, local_aws)
    done = wait_for(client, tenant, post(client, tenant, body_for(target))["deployment_id"])
    remove_target_role(local_aws)
    refused = call(client, "POST", f"/deployments/{done['deployment_id']}/forget", tenant)
    assert refused.status_code == 502
    assert code_of(refused) == "ACCESS_DENIED"
    assert (
        json.loads(call(client, "GET", f"/deployments/{done['deployment_id']}", tenant).body)["status"]
        == "ACTIVE"
    )
