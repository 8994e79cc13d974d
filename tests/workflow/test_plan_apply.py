"""Plan then apply for one deployment, and skip-unchanged, on the real .asl.json and the local AWS.

What is proved: a plan makes no stack change and reports AWS's Replacement and IAM flags; apply executes
exactly the planned change set; a plan is refused once stale; an unchanged re-run makes no CloudFormation
write and starts no execution.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.adapters.automation_store import NotifyingDeploymentStore
from chalicelib.adapters.cloudformation import CloudFormationGateway
from chalicelib.domain.errors import DeployerError
from chalicelib.domain.model import OperationMode, Outcome
from chalicelib.service.deployments import DeploymentChange, NewDeployment
from tests.conftest import TARGET_ACCOUNT, call, register_target, stacks_in
from tests.support.faults import refused_once
from tests.workflow.lifecycle_helpers import QUEUE, accepted, cfn, create, put, settle, with_resources

TABLE = {
    "Type": "AWS::DynamoDB::Table",
    "Properties": {
        "TableName": "orders-v1",
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    },
}
ROLE = {
    "Type": "AWS::IAM::Role",
    "Properties": {
        "AssumeRolePolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    },
}
WRITES = ("CreateStack", "UpdateStack", "DeleteStack", "ExecuteChangeSet", "CreateChangeSet")


def renamed_table(name: str) -> dict[str, Any]:
    table: dict[str, Any] = json.loads(json.dumps(TABLE))
    table["Properties"]["TableName"] = name
    return table


def test_update_plan_shows_replacement_and_iam_then_apply_executes_exactly_that_change_set(
    client, tenant, local_aws, aws_calls
):
    target = register_target(client, tenant, local_aws)
    did = accepted(create(client, tenant, target, with_resources(QUEUE, Table=TABLE)))["deployment_id"]
    active = settle(client, tenant, did)
    assert active["status"] == "ACTIVE"
    assert active["last_success_hash"] == active["config_hash"]

    aws_calls.clear()
    planned_template = with_resources(
        QUEUE,
        Table=renamed_table("orders-v2"),
        Role=ROLE,
        Q={"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": 60}},
    )
    accepted(put(client, tenant, did, template=planned_template, mode="plan"))
    planned = settle(client, tenant, did)
    assert planned["operation"]["status"] == "PLANNED", planned
    assert planned["operation"]["mode"] == "plan"
    assert planned["status"] == "ACTIVE"  # the stack did not change
    assert planned["stack_status"] == "CREATE_COMPLETE"
    changes = {c["logical_id"]: c for c in planned["changes"]}
    assert changes["Table"] == {
        "action": "Modify",
        "logical_id": "Table",
        "resource_type": "AWS::DynamoDB::Table",
        "replacement": True,
        "iam": False,
    }
    assert changes["Role"] == {
        "action": "Add",
        "logical_id": "Role",
        "resource_type": "AWS::IAM::Role",
        "replacement": False,
        "iam": True,
    }
    assert changes["Q"]["replacement"] is False  # VisibilityTimeout updates in place
    plan = planned["plan"]
    assert plan["config_hash"] == planned["config_hash"] != active["last_success_hash"]
    assert planned["last_success_hash"] == active["last_success_hash"]
    assert plan["replacements"] == 1
    assert plan["iam_changes"] == 1
    assert aws_calls.count("cloudformation", "CreateChangeSet") == 1
    assert sum(aws_calls.count("cloudformation", op) for op in WRITES if op != "CreateChangeSet") == 0
    target_dynamo = local_aws.account_session(TARGET_ACCOUNT).client("dynamodb")
    assert target_dynamo.list_tables()["TableNames"] == ["orders-v1"]

    aws_calls.clear()
    accepted(call(client, "POST", f"/deployments/{did}/apply", tenant, {"config_hash": plan["config_hash"]}))
    applied = settle(client, tenant, did)
    assert applied["status"] == "ACTIVE", applied
    assert applied["operation"]["mode"] == "apply"
    assert applied["stack_status"] == "UPDATE_COMPLETE"
    assert applied["last_success_hash"] == plan["config_hash"]
    assert applied["plan"] is None
    assert applied["changes"] == []
    assert aws_calls.count("cloudformation", "ExecuteChangeSet") == 1
    assert aws_calls.count("cloudformation", "CreateChangeSet") == 0
    executed = cfn(local_aws).describe_change_set(StackName="s", ChangeSetName=plan["change_set_name"])
    assert executed["ExecutionStatus"] == "EXECUTE_COMPLETE"
    assert {
        r["ResourceType"] for r in cfn(local_aws).describe_stack_resources(StackName="s")["StackResources"]
    } >= {"AWS::IAM::Role"}


def test_create_plan_leaves_the_stack_in_review_then_apply_creates_it(client, tenant, local_aws, aws_calls):
    target = register_target(client, tenant, local_aws)
    did = accepted(create(client, tenant, target, with_resources(QUEUE, Role=ROLE), mode="plan"))[
        "deployment_id"
    ]
    planned = settle(client, tenant, did)
    assert planned["operation"]["status"] == "PLANNED", planned
    assert planned["status"] == "PLANNED"
    assert planned["stack_status"] == "REVIEW_IN_PROGRESS"
    assert sorted((c["action"], c["logical_id"], c["iam"]) for c in planned["changes"]) == [
        ("Add", "Q", False),
        ("Add", "Role", True),
    ]
    assert aws_calls.count("cloudformation", "CreateStack") == 0
    accepted(call(client, "POST", f"/deployments/{did}/apply", tenant))
    done = settle(client, tenant, did)
    assert done["status"] == "ACTIVE", done
    assert done["stack_status"] == "CREATE_COMPLETE"
    assert done["last_success_hash"] == planned["config_hash"]
    assert [s["StackName"] for s in stacks_in(local_aws, TARGET_ACCOUNT)] == ["s"]


def test_apply_is_refused_without_a_plan_and_once_the_plan_is_stale(client, tenant, local_aws, aws_calls):
    target = register_target(client, tenant, local_aws)
    did = accepted(create(client, tenant, target, QUEUE))["deployment_id"]
    assert settle(client, tenant, did)["status"] == "ACTIVE"
    none = call(client, "POST", f"/deployments/{did}/apply", tenant)
    assert none.status_code == 409
    assert json.loads(none.body)["error"]["code"] == "NO_PLAN"

    accepted(put(client, tenant, did, template=with_resources(QUEUE, Role=ROLE), mode="plan"))
    planned = settle(client, tenant, did)
    assert planned["operation"]["status"] == "PLANNED"
    wrong = call(client, "POST", f"/deployments/{did}/apply", tenant, {"config_hash": "0" * 64})
    assert wrong.status_code == 409
    assert json.loads(wrong.body)["error"]["code"] == "PLAN_STALE"

    # The template changes after the plan (a deploy of something else): the plan no longer applies.
    accepted(put(client, tenant, did, template=with_resources(QUEUE, Other={"Type": "AWS::SQS::Queue"})))
    assert settle(client, tenant, did)["status"] == "ACTIVE"
    aws_calls.clear()
    stale = call(client, "POST", f"/deployments/{did}/apply", tenant, {"config_hash": planned["config_hash"]})
    assert stale.status_code == 409, stale.body
    error = json.loads(stale.body)["error"]
    assert error["code"] == "PLAN_STALE"
    assert error["details"]["plan_config_hash"] == planned["config_hash"]
    assert aws_calls.count("cloudformation") == 0
    assert aws_calls.count("stepfunctions") == 0


def test_unchanged_rerun_is_skipped_with_no_cloudformation_write_and_no_execution(
    client, tenant, local_aws, services, aws_calls
):
    target = register_target(client, tenant, local_aws)
    first = create(client, tenant, target, QUEUE, parameters={}, tags={"team": "a"})
    did = accepted(first)["deployment_id"]
    assert settle(client, tenant, did)["status"] == "ACTIVE"

    aws_calls.clear()
    same = json.dumps(QUEUE, indent=2)  # formatting does not change the fingerprint
    skipped = accepted(
        call(client, "PUT", f"/deployments/{did}", tenant, {"template_body": same, "skip_unchanged": True}),
        200,
    )
    assert skipped["outcome"] == "SKIPPED"
    assert skipped["operation"] == settle(client, tenant, did)["operation"]
    again = accepted(create(client, tenant, target, QUEUE, tags={"team": "a"}, skip_unchanged=True), 200)
    assert again["outcome"] == "SKIPPED"
    assert again["deployment_id"] == did
    # The service call the fleet rollouts use says the same.
    result = services.deployments.update(
        tenant.tenant_id, did, DeploymentChange(same, None, None), skip_unchanged=True
    )
    assert result.outcome is Outcome.SKIPPED
    assert aws_calls.count("cloudformation") == 0
    assert aws_calls.count("sts") == 0
    assert aws_calls.count("stepfunctions", "StartExecution") == 0

    # A real change is not skipped; nor is an unchanged re-run without skip_unchanged.
    changed = accepted(put(client, tenant, did, tags={"team": "b"}, skip_unchanged=True))
    assert changed["outcome"] == "STARTED"
    assert settle(client, tenant, did)["status"] == "ACTIVE"
    plain = services.deployments.create(
        tenant.tenant_id,
        NewDeployment(target["target_id"], "us-east-1", "other", json.dumps(QUEUE), {}, {}),
        mode=OperationMode.DEPLOY,
    )
    assert plain.outcome is Outcome.STARTED
    assert settle(client, tenant, plain.deployment_id)["status"] == "ACTIVE"


def test_deploying_instead_of_applying_a_create_plan_creates_the_stack_from_review(client, tenant, local_aws):
    target = register_target(client, tenant, local_aws)
    did = accepted(create(client, tenant, target, QUEUE, mode="plan"))["deployment_id"]
    assert settle(client, tenant, did)["stack_status"] == "REVIEW_IN_PROGRESS"
    accepted(put(client, tenant, did, template=with_resources(QUEUE, Role=ROLE)))
    done = settle(client, tenant, did)
    assert done["status"] == "ACTIVE", (done["error"], done["stack_status"])
    assert done["stack_status"] == "CREATE_COMPLETE"
    assert [s["StackName"] for s in stacks_in(local_aws, TARGET_ACCOUNT)] == ["s"]
    stale = call(client, "POST", f"/deployments/{did}/apply", tenant)
    assert stale.status_code == 409
    assert json.loads(stale.body)["error"]["code"] == "PLAN_STALE"


def test_an_update_without_changes_whose_end_aws_throttled_ends_succeeded_on_the_retry(
    client, tenant, local_aws, monkeypatch: pytest.MonkeyPatch
):
    """The change set found no changes: PollStack writes the end, then deletes the change set. Its end
    throttled, the step's Retry still finds the change set and ends the update SUCCEEDED (deleted first,
    the retry read a change set that was gone: ChangeSetNotFound, and the update was recorded FAILED)."""
    # The write of the end (its record with its final event) is the deployments store's save_deployment,
    # which NotifyingDeploymentStore, the store the service runs with, overrides.
    save, refused = refused_once(
        NotifyingDeploymentStore.save_deployment,
        lambda store, deployment, final_event=None: (
            deployment.deployment_id
            if final_event is not None and final_event.message == "no changes to apply"
            else None
        ),
    )
    monkeypatch.setattr(NotifyingDeploymentStore, "save_deployment", save)
    target = register_target(client, tenant, local_aws)
    did = accepted(create(client, tenant, target, QUEUE))["deployment_id"]
    assert settle(client, tenant, did)["status"] == "ACTIVE"
    accepted(put(client, tenant, did, template=QUEUE))  # the same template: a change set without changes
    done = settle(client, tenant, did)
    assert refused == [did]
    assert done["operation"]["status"] == "SUCCEEDED", done
    change_sets = cfn(local_aws).list_change_sets(StackName=done["stack_id"])["Summaries"]
    assert change_sets == []  # deleted once the end was written


def test_a_change_set_already_gone_is_deleted_without_error() -> None:
    """A cancel deletes the change set, then writes its end; a throttle between them has the step's retry
    delete it again. Should CloudFormation answer ChangeSetNotFound (it is reported to answer 200, as the
    local AWS does), the adapter takes it as deleted."""
    client = boto3.client(
        "cloudformation", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    with Stubber(client) as stub:
        stub.add_client_error(
            "delete_change_set", service_error_code="ChangeSetNotFound", http_status_code=404
        )
        stub.add_client_error(
            "delete_change_set", service_error_code="InvalidChangeSetStatus", http_status_code=400
        )
        CloudFormationGateway(client).delete_change_set("cs", "nexus-op-1")
        with pytest.raises(DeployerError):
            CloudFormationGateway(client).delete_change_set("cs", "nexus-op-1")
