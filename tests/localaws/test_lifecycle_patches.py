"""Canaries for the stack-lifecycle patches in localaws/cloudformation.py (plain boto3 against moto).

Each one pins an AWS behaviour the deployer relies on and moto 5.2.5 lacks: Replacement in change sets,
CancelUpdateStack, ContinueUpdateRollback with ResourcesToSkip, RetainResources on DeleteStack, and
DescribeStackEvents pages of 100.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from localaws.cloudformation import StackSimulation, install

TABLE: dict[str, Any] = {
    "Type": "AWS::DynamoDB::Table",
    "Properties": {
        "TableName": "t1",
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    },
}
PROTECTED = {**TABLE, "Properties": {**TABLE["Properties"], "DeletionProtectionEnabled": True}}
SUBNET = {
    "Type": "AWS::EC2::Subnet",
    "DependsOn": "Tab",
    "Properties": {"VpcId": "vpc-00000000deadbeef0", "CidrBlock": "10.0.0.0/24"},
}


@pytest.fixture
def cfn() -> Iterator[Any]:
    install(StackSimulation(stack_seconds=0))
    with mock_aws():
        yield boto3.client("cloudformation", region_name="us-east-1")
    install(StackSimulation(stack_seconds=0))


def status(cfn: Any, name: str) -> str:
    return str(cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"])


def template(**resources: Any) -> str:
    return json.dumps({"Parameters": {"Name": {"Type": "String", "Default": "n1"}}, "Resources": resources})


def test_change_sets_report_aws_replacement_semantics(cfn):
    cfn.create_stack(
        StackName="s",
        TemplateBody=template(
            Tab=TABLE,
            Q={"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Ref": "Name"}}},
            Fifo={"Type": "AWS::SQS::Queue", "Properties": {"FifoQueue": False}},
            Topic={"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": "a"}},
            Other={"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "x"}},
        ),
    )
    renamed = {**TABLE, "Properties": {**TABLE["Properties"], "TableName": "t2"}}
    cfn.create_change_set(
        StackName="s",
        ChangeSetName="c",
        ChangeSetType="UPDATE",
        TemplateBody=template(
            Tab=renamed,  # TableName: Replacement True
            Q={"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Ref": "Name"}}},  # parameter changes
            Fifo={"Type": "AWS::SQS::Queue", "Properties": {"FifoQueue": True}},  # FifoQueue flip: True
            Topic={"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": "b"}},  # in place: False
            Other={
                "Type": "AWS::SQS::Queue",
                "Properties": {"QueueName": {"Fn::GetAtt": ["Topic", "TopicName"]}},
            },
            Role={"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {}}},
        ),
        Parameters=[{"ParameterKey": "Name", "ParameterValue": "n2"}],
    )
    changes = {
        c["ResourceChange"]["LogicalResourceId"]: c["ResourceChange"]
        for c in cfn.describe_change_set(StackName="s", ChangeSetName="c")["Changes"]
    }
    assert {k: v.get("Replacement") for k, v in changes.items()} == {
        "Tab": "True",
        "Q": "True",
        "Fifo": "True",
        "Topic": "False",
        "Other": "Conditional",  # depends on a value known only while the update runs
        "Role": None,  # AWS gives no Replacement for an Add
    }


def test_cancel_update_stack_rolls_back_to_the_previous_configuration(cfn):
    cfn.create_stack(
        StackName="s",
        TemplateBody=template(Q={"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": 30}}),
    )
    with pytest.raises(ClientError, match="CancelUpdateStack cannot be called from current stack status"):
        cfn.cancel_update_stack(StackName="s")
    install(StackSimulation(stack_seconds=2))
    cfn.update_stack(
        StackName="s",
        TemplateBody=template(
            Q={"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": 99}},
            New={"Type": "AWS::SNS::Topic"},
        ),
        ClientRequestToken="upd-1",
    )
    assert status(cfn, "s") == "UPDATE_IN_PROGRESS"
    cfn.cancel_update_stack(StackName="s", ClientRequestToken="upd-1-cancel")
    cfn.cancel_update_stack(StackName="s", ClientRequestToken="upd-1-cancel")  # a retry is idempotent
    assert status(cfn, "s") == "UPDATE_ROLLBACK_IN_PROGRESS"
    time.sleep(2.1)
    assert status(cfn, "s") == "UPDATE_ROLLBACK_COMPLETE"
    events = cfn.describe_stack_events(StackName="s")["StackEvents"]
    cancel = [e for e in events if e.get("ClientRequestToken") == "upd-1-cancel"]
    assert any(
        e["ResourceStatusReason"] == "Stack update cancelled" for e in cancel if "ResourceStatusReason" in e
    )
    assert not any(e["ResourceStatus"] == "UPDATE_COMPLETE" and e["LogicalResourceId"] == "s" for e in events)
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.list_queues()["QueueUrls"][0]
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"] == {
        "VisibilityTimeout": "30"
    }
    assert boto3.client("sns", region_name="us-east-1").list_topics()["Topics"] == []


def test_continue_update_rollback_skips_only_resources_that_failed(cfn):
    cfn.create_stack(StackName="s", TemplateBody=template(Q={"Type": "AWS::SQS::Queue"}))
    with pytest.raises(ClientError, match="can not continue update rollback"):
        cfn.continue_update_rollback(StackName="s")
    cfn.update_stack(
        StackName="s", TemplateBody=template(Q={"Type": "AWS::SQS::Queue"}, Tab=PROTECTED, Subnet=SUBNET)
    )
    assert status(cfn, "s") == "UPDATE_ROLLBACK_FAILED"
    with pytest.raises(ClientError, match="cannot be skipped"):
        cfn.continue_update_rollback(StackName="s", ResourcesToSkip=["Q"])
    cfn.continue_update_rollback(StackName="s", ClientRequestToken="cont-1")
    assert status(cfn, "s") == "UPDATE_ROLLBACK_FAILED"  # still blocked by the protected table
    cfn.continue_update_rollback(StackName="s", ResourcesToSkip=["Tab"], ClientRequestToken="cont-2")
    assert status(cfn, "s") == "UPDATE_ROLLBACK_COMPLETE"
    events = cfn.describe_stack_events(StackName="s")["StackEvents"]
    assert any(
        e.get("ClientRequestToken") == "cont-2" and e["ResourceStatus"] == "DELETE_SKIPPED" for e in events
    )


def test_retain_resources_only_after_delete_failed(cfn):
    cfn.create_stack(StackName="s", TemplateBody=template(Tab=PROTECTED, Q={"Type": "AWS::SQS::Queue"}))
    with pytest.raises(ClientError, match="RetainResources can only be specified"):
        cfn.delete_stack(StackName="s", RetainResources=["Tab"])
    cfn.delete_stack(StackName="s")
    assert status(cfn, "s") == "DELETE_FAILED"
    failed = [
        e
        for e in cfn.describe_stack_events(StackName="s")["StackEvents"]
        if e["ResourceStatus"] == "DELETE_FAILED"
    ]
    assert [e["LogicalResourceId"] for e in failed] == ["s", "Tab"]  # the stack, then what blocked it
    stack_id = cfn.describe_stacks(StackName="s")["Stacks"][0]["StackId"]
    cfn.delete_stack(StackName="s", RetainResources=["Tab"])
    assert status(cfn, stack_id) == "DELETE_COMPLETE"
    assert boto3.client("dynamodb", region_name="us-east-1").list_tables()["TableNames"] == ["t1"]


def test_describe_stack_events_pages_of_100_newest_first(cfn):
    cfn.create_stack(StackName="s", TemplateBody=template(Q={"Type": "AWS::SQS::Queue"}))
    for n in range(30):
        cfn.update_stack(
            StackName="s",
            TemplateBody=template(Q={"Type": "AWS::SQS::Queue", "Properties": {"DelaySeconds": n}}),
        )
    first = cfn.describe_stack_events(StackName="s")
    second = cfn.describe_stack_events(StackName="s", NextToken=first["NextToken"])
    assert len(first["StackEvents"]) == 100
    ids = [e["EventId"] for e in first["StackEvents"] + second["StackEvents"]]
    assert len(ids) == len(set(ids))
    stamps = [e["Timestamp"] for e in first["StackEvents"] + second["StackEvents"]]
    assert stamps == sorted(stamps, reverse=True)


def test_a_create_change_set_reuses_the_stack_left_in_review(cfn):
    first = cfn.create_change_set(
        StackName="s",
        ChangeSetName="c1",
        ChangeSetType="CREATE",
        TemplateBody=template(Q={"Type": "AWS::SQS::Queue"}),
    )
    second = cfn.create_change_set(
        StackName="s",
        ChangeSetName="c2",
        ChangeSetType="CREATE",
        TemplateBody=template(T={"Type": "AWS::SNS::Topic"}),
    )
    assert first["StackId"] == second["StackId"]
    assert [s["StackName"] for s in cfn.describe_stacks()["Stacks"]] == ["s"]
    cfn.execute_change_set(StackName=second["StackId"], ChangeSetName="c2")
    assert status(cfn, "s") == "CREATE_COMPLETE"
    with pytest.raises(ClientError, match="already exists"):
        cfn.create_change_set(
            StackName="s",
            ChangeSetName="c3",
            ChangeSetType="CREATE",
            TemplateBody=template(Q={"Type": "AWS::SQS::Queue"}),
        )
