"""The local AWS's CloudFormation updates and deletes stacks as AWS does (plain boto3 calls): calls
retried with the same ClientRequestToken are accepted once, an update or change set without changes is
refused in AWS's words, change sets execute with events and new outputs, and outputs, exports and
deleted stacks behave as on AWS.

The ``cfn`` fixture and the helpers shared with the other ``test_cloudformation_*`` modules are in this
package's ``conftest``.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.localaws.conftest import QUEUE_AND_TOPIC, REGION, body, stack_of, statuses
from tests.localaws.conftest import events as events_oldest_first

# ------------------------------------------------------------------------------ 5. ClientRequestToken


def test_create_retried_with_the_same_token_returns_the_same_stack(cfn: Any) -> None:
    first = cfn.create_stack(StackName="idem", TemplateBody=body(QUEUE_AND_TOPIC), ClientRequestToken="op-7")
    again = cfn.create_stack(StackName="idem", TemplateBody=body(QUEUE_AND_TOPIC), ClientRequestToken="op-7")
    assert again["StackId"] == first["StackId"]
    assert len(boto3.client("sqs", region_name=REGION).list_queues()["QueueUrls"]) == 1
    for token in ({"ClientRequestToken": "op-8"}, {}):
        with pytest.raises(ClientError) as error:
            cfn.create_stack(StackName="idem", TemplateBody=body(QUEUE_AND_TOPIC), **token)
        assert error.value.response["Error"]["Code"] == "AlreadyExistsException"


def test_update_and_delete_retried_with_the_same_token_are_accepted_once(cfn: Any) -> None:
    stack_id = cfn.create_stack(StackName="idem", TemplateBody=body(QUEUE_AND_TOPIC))["StackId"]
    changed = json.loads(body(QUEUE_AND_TOPIC))
    changed["Resources"]["Second"] = {"Type": "AWS::SQS::Queue"}
    assert (
        cfn.update_stack(StackName="idem", TemplateBody=body(changed), ClientRequestToken="u-1")["StackId"]
        == stack_id
    )
    assert (
        cfn.update_stack(StackName="idem", TemplateBody=body(changed), ClientRequestToken="u-1")["StackId"]
        == stack_id
    )
    assert statuses(events_oldest_first(cfn, "idem"), "idem").count("UPDATE_COMPLETE") == 1
    with pytest.raises(ClientError, match="No updates are to be performed"):
        cfn.update_stack(StackName="idem", TemplateBody=body(changed), ClientRequestToken="u-2")

    cfn.delete_stack(StackName="idem", ClientRequestToken="d-1")
    cfn.delete_stack(StackName="idem", ClientRequestToken="d-1")
    cfn.delete_stack(StackName=stack_id, ClientRequestToken="d-1")
    events = events_oldest_first(cfn, stack_id)
    assert statuses(events, "idem").count("DELETE_COMPLETE") == 1
    assert stack_of(cfn, stack_id)["StackStatus"] == "DELETE_COMPLETE"


def test_execute_change_set_retried_with_the_same_token_is_accepted_once(cfn: Any) -> None:
    cfn.create_change_set(
        StackName="cs", ChangeSetName="first", ChangeSetType="CREATE", TemplateBody=body(QUEUE_AND_TOPIC)
    )
    assert stack_of(cfn, "cs")["StackStatus"] == "REVIEW_IN_PROGRESS"
    cfn.execute_change_set(StackName="cs", ChangeSetName="first", ClientRequestToken="x-1")
    cfn.execute_change_set(StackName="cs", ChangeSetName="first", ClientRequestToken="x-1")
    stack = stack_of(cfn, "cs")
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert {o["OutputKey"] for o in stack["Outputs"]} == {"QueueUrl", "TopicArn"}
    events = events_oldest_first(cfn, "cs")
    assert statuses(events, "Queue") == ["CREATE_IN_PROGRESS", "CREATE_COMPLETE"]
    assert {e["ClientRequestToken"] for e in events if e["ResourceStatus"].startswith("CREATE")} == {"x-1"}
    with pytest.raises(ClientError) as error:
        cfn.execute_change_set(StackName="cs", ChangeSetName="first", ClientRequestToken="x-2")
    assert error.value.response["Error"]["Code"] == "InvalidChangeSetStatus"


# --------------------------------------------------------------------------------------- 6. no-op updates


def test_identical_update_is_rejected_like_aws(cfn: Any) -> None:
    template = {
        "Parameters": {"Size": {"Type": "Number", "Default": 30}},
        "Resources": {
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": {"Ref": "Size"}}}
        },
    }
    cfn.create_stack(StackName="same", TemplateBody=body(template))
    for parameters in (
        [],
        [{"ParameterKey": "Size", "ParameterValue": "30"}],
        [{"ParameterKey": "Size", "UsePreviousValue": True}],
    ):
        with pytest.raises(ClientError) as error:
            cfn.update_stack(StackName="same", TemplateBody=body(template), Parameters=parameters)
        assert error.value.response["Error"]["Code"] == "ValidationError"
        assert error.value.response["Error"]["Message"] == "No updates are to be performed."
    cfn.update_stack(
        StackName="same",
        TemplateBody=body(template),
        Parameters=[{"ParameterKey": "Size", "ParameterValue": "40"}],
    )
    events = events_oldest_first(cfn, "same")
    assert statuses(events, "Queue")[-2:] == ["UPDATE_IN_PROGRESS", "UPDATE_COMPLETE"]
    assert stack_of(cfn, "same")["Parameters"] == [{"ParameterKey": "Size", "ParameterValue": "40"}]


def test_change_set_without_changes_fails_with_aws_text(cfn: Any) -> None:
    cfn.create_stack(StackName="nochange", TemplateBody=body(QUEUE_AND_TOPIC))
    cfn.create_change_set(
        StackName="nochange", ChangeSetName="same", ChangeSetType="UPDATE", TemplateBody=body(QUEUE_AND_TOPIC)
    )
    described = cfn.describe_change_set(StackName="nochange", ChangeSetName="same")
    assert described["Status"] == "FAILED"
    assert described["StatusReason"] == (
        "The submitted information didn't contain changes. Submit different information to create a change set."
    )
    assert described["ExecutionStatus"] == "UNAVAILABLE"


def test_a_change_set_that_does_not_exist_is_not_found_and_deleted_already(cfn: Any) -> None:
    """CloudFormation answers ChangeSetNotFound ("ChangeSet [name] does not exist") to a describe of one it
    does not know, and 200 to its delete; moto answered a ValidationError and a 500 (UnboundLocalError)."""
    cfn.create_stack(StackName="gone", TemplateBody=body(QUEUE_AND_TOPIC))
    cfn.create_change_set(
        StackName="gone", ChangeSetName="same", ChangeSetType="UPDATE", TemplateBody=body(QUEUE_AND_TOPIC)
    )
    cfn.delete_change_set(StackName="gone", ChangeSetName="same")
    with pytest.raises(ClientError) as error:
        cfn.describe_change_set(StackName="gone", ChangeSetName="same")
    assert error.value.response["Error"]["Code"] == "ChangeSetNotFound"
    assert error.value.response["Error"]["Message"] == "ChangeSet [same] does not exist"
    assert (
        cfn.delete_change_set(StackName="gone", ChangeSetName="same")["ResponseMetadata"]["HTTPStatusCode"]
        == 200
    )


def test_update_change_set_executes_with_events_and_new_outputs(cfn: Any) -> None:
    cfn.create_stack(StackName="csu", TemplateBody=body(QUEUE_AND_TOPIC))
    changed = json.loads(body(QUEUE_AND_TOPIC))
    changed["Resources"]["Other"] = {"Type": "AWS::SNS::Topic"}
    changed["Outputs"]["OtherArn"] = {"Value": {"Ref": "Other"}}
    cfn.create_change_set(
        StackName="csu", ChangeSetName="add", ChangeSetType="UPDATE", TemplateBody=body(changed)
    )
    changes = cfn.describe_change_set(StackName="csu", ChangeSetName="add")["Changes"]
    assert [c["ResourceChange"]["LogicalResourceId"] for c in changes] == ["Other"]
    cfn.execute_change_set(StackName="csu", ChangeSetName="add")
    stack = stack_of(cfn, "csu")
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    assert {o["OutputKey"] for o in stack["Outputs"]} == {"QueueUrl", "TopicArn", "OtherArn"}
    assert (
        cfn.describe_change_set(StackName="csu", ChangeSetName="add")["ExecutionStatus"] == "EXECUTE_COMPLETE"
    )


# ------------------------------------------------------------------------------- 7. outputs and deletion


def test_outputs_exports_and_deleted_stacks_behave_like_aws(cfn: Any) -> None:
    stack_id = cfn.create_stack(StackName="out", TemplateBody=body(QUEUE_AND_TOPIC))["StackId"]
    outputs = {o["OutputKey"]: o for o in stack_of(cfn, "out")["Outputs"]}
    assert outputs["QueueUrl"]["ExportName"] == "app-queue-url"
    assert "ExportName" not in outputs["TopicArn"]
    assert [e["Name"] for e in cfn.list_exports()["Exports"]] == ["app-queue-url"]
    queues_before = boto3.client("sqs", region_name=REGION).list_queues()["QueueUrls"]
    assert queues_before == [outputs["QueueUrl"]["OutputValue"]]

    cfn.delete_stack(StackName="out")
    deleted = stack_of(cfn, stack_id)
    assert deleted["StackStatus"] == "DELETE_COMPLETE"
    assert "Outputs" not in deleted
    with pytest.raises(ClientError) as error:
        cfn.describe_stacks(StackName="out")
    assert error.value.response["Error"]["Code"] == "ValidationError"
    assert error.value.response["Error"]["Message"] == "Stack with id out does not exist"
    assert cfn.list_exports()["Exports"] == []
    # reading the deleted stack must not bring its resources back (moto re-resolves outputs lazily)
    assert boto3.client("sqs", region_name=REGION).list_queues().get("QueueUrls", []) == []
    assert [s["StackName"] for s in cfn.describe_stacks()["Stacks"]] == []
    # the name is free again
    cfn.create_stack(StackName="out", TemplateBody=body(QUEUE_AND_TOPIC))
    assert stack_of(cfn, "out")["StackId"] != stack_id


def test_renamed_export_then_delete_does_not_crash(cfn: Any) -> None:
    cfn.create_stack(StackName="exp", TemplateBody=body(QUEUE_AND_TOPIC))
    renamed = json.loads(body(QUEUE_AND_TOPIC))
    renamed["Outputs"]["QueueUrl"]["Export"]["Name"] = "renamed-queue-url"
    cfn.update_stack(StackName="exp", TemplateBody=body(renamed))
    assert [e["Name"] for e in cfn.list_exports()["Exports"]] == ["renamed-queue-url"]
    cfn.delete_stack(StackName="exp")
    assert cfn.list_stacks()["StackSummaries"][0]["StackStatus"] == "DELETE_COMPLETE"
