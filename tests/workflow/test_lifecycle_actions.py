"""One test per stack status that needs an action: each drives the API and the real .asl.json on the
local AWS, and checks what happened in the target account, not just what the API said."""

from __future__ import annotations

import json
from dataclasses import replace

from localaws.cloudformation import StackSimulation, install
from tests.conftest import TARGET_ACCOUNT, call, execution_history, register_target, stacks_in
from tests.support.polling import until
from tests.workflow.lifecycle_helpers import (
    FAILING_SUBNET,
    PROTECTED_TABLE,
    QUEUE,
    accepted,
    cfn,
    create,
    put,
    rewrite,
    rollback_failed,
    settle,
    stack_events,
    store,
    with_resources,
)

BROKEN = with_resources(QUEUE, Subnet={**FAILING_SUBNET, "DependsOn": "Q"})


def test_rollback_complete_after_first_create_is_deleted_and_created_again_in_one_operation(
    client, tenant, local_aws, aws_calls
):
    target = register_target(client, tenant, local_aws)
    did = accepted(create(client, tenant, target, BROKEN))["deployment_id"]
    failed = settle(client, tenant, did)
    assert failed["status"] == "FAILED"
    assert failed["stack_status"] == "ROLLBACK_COMPLETE"
    assert "PUT /deployments/{id}" in failed["error"]["hint"]
    first_stack = failed["stack_id"]

    aws_calls.clear()
    accepted(put(client, tenant, did, template=QUEUE))
    done = settle(client, tenant, did)
    assert done["status"] == "ACTIVE", done
    assert done["stack_status"] == "CREATE_COMPLETE"
    assert done["operation"]["action"] == "update"
    assert done["stack_id"] != first_stack  # a new stack, in the same operation
    assert aws_calls.count("cloudformation", "DeleteStack") == 1
    assert aws_calls.count("cloudformation", "CreateStack") == 1
    assert aws_calls.count("stepfunctions", "StartExecution") == 1
    assert [s["StackName"] for s in stacks_in(local_aws, TARGET_ACCOUNT)] == ["s"]
    old = cfn(local_aws).describe_stacks(StackName=first_stack)["Stacks"][0]
    assert old["StackStatus"] == "DELETE_COMPLETE"
    history = execution_history(local_aws, done["operation"]["operation_id"])
    assert history[-1]["type"] == "ExecutionSucceeded"
    messages = [
        e["message"]
        for e in json.loads(call(client, "GET", f"/deployments/{did}/events", tenant).body)["items"]
    ]
    assert any("ROLLBACK_COMPLETE" in m and "then CreateStack" in m for m in messages)


def test_rollback_complete_stack_of_a_once_active_deployment_is_never_deleted(
    client, tenant, local_aws, aws_calls
):
    target = register_target(client, tenant, local_aws)
    did = accepted(create(client, tenant, target, QUEUE))["deployment_id"]
    assert settle(client, tenant, did)["status"] == "ACTIVE"
    # Someone replaced the stack in the target account with one that failed to create (carrying our tag).
    target_cfn = cfn(local_aws)
    target_cfn.delete_stack(StackName="s")
    replaced = target_cfn.create_stack(
        StackName="s", TemplateBody=json.dumps(BROKEN), Tags=[{"Key": "nexus:deployment-id", "Value": did}]
    )["StackId"]
    assert target_cfn.describe_stacks(StackName=replaced)["Stacks"][0]["StackStatus"] == "ROLLBACK_COMPLETE"
    records = store(local_aws)
    record = records.get_deployment(tenant.tenant_id, did)
    assert record is not None
    rewrite(local_aws, replace(record, stack_id=replaced))

    aws_calls.clear()
    accepted(put(client, tenant, did, template=QUEUE))
    done = settle(client, tenant, did)
    assert done["status"] == "FAILED"
    assert done["error"]["code"] == "STACK_NOT_UPDATABLE"
    assert "once succeeded" in done["error"]["message"]
    assert aws_calls.count("cloudformation", "DeleteStack") == 0
    assert target_cfn.describe_stacks(StackName=replaced)["Stacks"][0]["StackStatus"] == "ROLLBACK_COMPLETE"

    # Now the record knows: the next PUT is refused before any AWS call.
    aws_calls.clear()
    refused = put(client, tenant, did, template=QUEUE)
    assert refused.status_code == 409, refused.body
    assert json.loads(refused.body)["error"]["code"] == "STACK_NOT_UPDATABLE"
    assert aws_calls.count("cloudformation") == 0
    assert aws_calls.count("sts") == 0


def test_update_rollback_failed_then_continue_rollback_skipping_the_blocking_resource(
    client, tenant, local_aws, aws_calls
):
    # The update creates a deletion-protected table, then fails: the rollback cannot delete the table.
    did, failed = rollback_failed(client, tenant, local_aws)
    assert failed["status"] == "FAILED"
    assert failed["error"]["code"] == "STACK_UPDATE_FAILED"
    assert "Tab" in failed["error"]["message"]
    assert "continue-rollback" in failed["error"]["hint"]
    assert '["Tab"]' in failed["error"]["hint"]

    refused = put(client, tenant, did, template=QUEUE)
    assert refused.status_code == 409
    assert json.loads(refused.body)["error"]["code"] == "ROLLBACK_REQUIRED"

    # Without skipping, the rollback is blocked again, and says by what.
    accepted(call(client, "POST", f"/deployments/{did}/continue-rollback", tenant))
    again = settle(client, tenant, did)
    assert again["error"]["code"] == "STACK_ROLLBACK_FAILED"
    assert "Tab" in again["error"]["message"]

    aws_calls.clear()
    accepted(
        call(client, "POST", f"/deployments/{did}/continue-rollback", tenant, {"resources_to_skip": ["Tab"]})
    )
    done = settle(client, tenant, did)
    assert done["operation"]["action"] == "continue_rollback"
    assert done["operation"]["status"] == "SUCCEEDED", done
    assert done["operation"]["resources"] == ["Tab"]
    assert done["status"] == "ACTIVE"
    assert done["stack_status"] == "UPDATE_ROLLBACK_COMPLETE"
    assert aws_calls.count("cloudformation", "ContinueUpdateRollback") == 1
    token = f"nexus-{done['operation']['operation_id']}"
    events = stack_events(local_aws, "s")
    assert any(e.get("ClientRequestToken") == token and e["LogicalResourceId"] == "Tab" for e in events)
    # The stack is usable again: an update goes through.
    accepted(put(client, tenant, did, template=with_resources(QUEUE, Q2={"Type": "AWS::SQS::Queue"})))
    assert settle(client, tenant, did)["status"] == "ACTIVE"


def test_delete_failed_names_the_blocking_resources_and_retain_finishes_the_delete(
    client, tenant, local_aws, aws_calls
):
    target = register_target(client, tenant, local_aws)
    did = accepted(create(client, tenant, target, with_resources(QUEUE, Tab=PROTECTED_TABLE)))[
        "deployment_id"
    ]
    assert settle(client, tenant, did)["status"] == "ACTIVE"
    early = call(client, "DELETE", f"/deployments/{did}?retain=Tab", tenant)
    assert early.status_code == 409, early.body
    assert json.loads(early.body)["error"]["code"] == "RETAIN_NOT_ALLOWED"
    invalid = call(client, "DELETE", f"/deployments/{did}?retain=Not-A-Logical-Id", tenant)
    assert invalid.status_code == 422, invalid.body

    accepted(call(client, "DELETE", f"/deployments/{did}", tenant))
    failed = settle(client, tenant, did)
    assert failed["status"] == "FAILED"
    assert failed["stack_status"] == "DELETE_FAILED"
    assert failed["error"]["code"] == "STACK_DELETE_FAILED"
    assert "Tab (" in failed["error"]["message"]
    assert "retain=Tab" in failed["error"]["hint"]
    assert "Q" not in failed["error"]["hint"].split("retain=")[1]

    aws_calls.clear()
    accepted(call(client, "DELETE", f"/deployments/{did}?retain=Tab", tenant))
    done = settle(client, tenant, did)
    assert done["status"] == "DELETED", done
    assert done["operation"]["resources"] == ["Tab"]
    assert aws_calls.count("cloudformation", "DeleteStack") == 1
    assert stacks_in(local_aws, TARGET_ACCOUNT) == []
    tables = local_aws.account_session(TARGET_ACCOUNT).client("dynamodb").list_tables()["TableNames"]
    assert tables == ["protected-orders"]  # retained, as asked


def test_foreign_stack_is_refused_left_alone_and_adopted_only_when_asked(
    client, tenant, local_aws, aws_calls
):
    target = register_target(client, tenant, local_aws)
    target_cfn = cfn(local_aws)
    legacy = target_cfn.create_stack(StackName="legacy", TemplateBody=json.dumps(QUEUE))["StackId"]

    did = accepted(create(client, tenant, target, QUEUE, stack_name="legacy"))["deployment_id"]
    refused = settle(client, tenant, did)
    assert refused["status"] == "FAILED"
    assert refused["error"]["code"] == "STACK_EXISTS"
    assert '"adopt": true' in refused["error"]["hint"]
    # Deleting the refused deployment never deletes a stack it did not make.
    accepted(call(client, "DELETE", f"/deployments/{did}", tenant))
    assert settle(client, tenant, did)["status"] == "DELETED"
    assert target_cfn.describe_stacks(StackName="legacy")["Stacks"][0]["StackId"] == legacy

    aws_calls.clear()
    changed = with_resources(QUEUE, Extra={"Type": "AWS::SQS::Queue"})
    adopted_id = accepted(create(client, tenant, target, changed, stack_name="legacy", adopt=True))[
        "deployment_id"
    ]
    adopted = settle(client, tenant, adopted_id)
    assert adopted["status"] == "ACTIVE", adopted
    assert adopted["stack_id"] == legacy  # taken over, not recreated
    assert adopted["operation"]["adopt"] is True
    assert aws_calls.count("cloudformation", "CreateStack") == 0
    assert aws_calls.count("cloudformation", "CreateChangeSet") == 1
    tags = {t["Key"]: t["Value"] for t in target_cfn.describe_stacks(StackName="legacy")["Stacks"][0]["Tags"]}
    assert tags["nexus:deployment-id"] == adopted_id
    # From then on it is ours: updates go through change sets.
    accepted(put(client, tenant, adopted_id, template=QUEUE))
    assert settle(client, tenant, adopted_id)["status"] == "ACTIVE"


def settle_status(client, tenant, did):
    return json.loads(call(client, "GET", f"/deployments/{did}", tenant).body)["stack_status"]


def test_cancel_rolls_the_running_update_back_and_records_cancelled(client, tenant, local_aws, aws_calls):
    target = register_target(client, tenant, local_aws)
    did = accepted(create(client, tenant, target, QUEUE))["deployment_id"]
    before = settle(client, tenant, did)
    assert before["status"] == "ACTIVE"
    refused = call(client, "POST", f"/deployments/{did}/cancel", tenant)
    assert refused.status_code == 409
    assert json.loads(refused.body)["error"]["code"] == "NOT_CANCELLABLE"

    slower = with_resources(QUEUE, Q={"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": 99}})
    install(StackSimulation(stack_seconds=4))  # the update stays UPDATE_IN_PROGRESS for a while
    try:
        accepted(put(client, tenant, did, template=slower))
        until(  # cancel while CloudFormation is executing the update
            lambda: settle_status(client, tenant, did) == "UPDATE_IN_PROGRESS",
            timeout=10,
            interval=0.02,
            what="UPDATE_IN_PROGRESS",
        )
        accepted(call(client, "POST", f"/deployments/{did}/cancel", tenant))
        done = settle(client, tenant, did, timeout=30)
    finally:
        install(StackSimulation(stack_seconds=0))
    assert done["operation"]["status"] == "CANCELLED", done
    assert done["status"] == "ACTIVE"
    assert done["stack_status"] == "UPDATE_ROLLBACK_COMPLETE"
    assert done["error"] is None
    assert done["last_success_hash"] == before["last_success_hash"]
    assert aws_calls.count("cloudformation", "CancelUpdateStack") == 1
    # The API recorded the request; the workflow's next poll sent CancelUpdateStack.
    events = json.loads(call(client, "GET", f"/deployments/{did}/events?limit=100", tenant).body)["items"]
    statuses = [e["status"] for e in events if e["source"] == "orchestrator"]
    assert statuses.index("CANCEL_REQUESTED") < statuses.index("CANCELLING") < statuses.index("CANCELLED")
    sqs = local_aws.account_session(TARGET_ACCOUNT).client("sqs", region_name="us-east-1")
    url = sqs.list_queues()["QueueUrls"][0]
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"] == {
        "VisibilityTimeout": "30"
    }
    history = execution_history(local_aws, done["operation"]["operation_id"])
    assert history[-1]["type"] == "ExecutionSucceeded"


def test_events_of_a_stack_with_long_history_are_read_without_paging_through_it(
    client, tenant, local_aws, aws_calls
):
    target = register_target(client, tenant, local_aws)
    did = accepted(create(client, tenant, target, QUEUE))["deployment_id"]
    assert settle(client, tenant, did)["status"] == "ACTIVE"
    target_cfn = cfn(local_aws)
    for n in range(40):  # history from earlier operations (other tokens): 40 x 5 events, 3 pages of 100
        template = with_resources(
            QUEUE, Q={"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": n}}
        )
        target_cfn.update_stack(
            StackName="s", TemplateBody=json.dumps(template), ClientRequestToken=f"other-{n}"
        )
    assert len(stack_events(local_aws, "s")) > 200

    aws_calls.clear()
    accepted(put(client, tenant, did, template=QUEUE))
    done = settle(client, tenant, did)
    assert done["status"] == "ACTIVE"
    assert aws_calls.count("cloudformation", "DescribeStackEvents") == 1  # one page, of this operation only
    token = f"nexus-{done['operation']['operation_id']}"
    ours = [e for e in stack_events(local_aws, "s") if e.get("ClientRequestToken") == token]
    page = json.loads(call(client, "GET", f"/deployments/{did}/events?limit=100", tenant).body)["items"]
    recorded = [e for e in page if e["source"] == "stack"]
    assert len(recorded) == 4 + len(ours)  # the create's 4 events and this update's: no history
    assert {e["status"] for e in recorded} >= {"UPDATE_IN_PROGRESS", "UPDATE_COMPLETE"}
