"""What the local AWS does with the resources of a stack as AWS does (issue 13 B.4, B.7), through plain
boto3 calls.

A change to a create-only property replaces the resource (and a failed update deletes the new one), an
in-place change keeps it, and resource types moto does not emulate fail, are skipped or are simulated.
"""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
import pytest

from localaws.cloudformation import StackSimulation, install
from tests.localaws.conftest import REGION, body, events, resource_events, status

# ---------------------------------------------------------------------------------- B.4 replacement


QUEUE_NAMED: dict[str, Any] = {
    "Parameters": {"Name": {"Type": "String"}, "Timeout": {"Type": "Number", "Default": 30}},
    "Resources": {
        "Queue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {"QueueName": {"Ref": "Name"}, "VisibilityTimeout": {"Ref": "Timeout"}},
        }
    },
    "Outputs": {"Url": {"Value": {"Ref": "Queue"}}},
}


def params(**values: str) -> list[dict[str, str]]:
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def queue_urls() -> list[str]:
    return sorted(boto3.client("sqs", region_name=REGION).list_queues().get("QueueUrls", []))


def test_changing_a_create_only_property_replaces_the_resource(cfn: Any) -> None:
    cfn.create_stack(StackName="rep", TemplateBody=body(QUEUE_NAMED), Parameters=params(Name="old-q"))
    old_url = queue_urls()[0]
    cfn.create_change_set(
        StackName="rep", ChangeSetName="rename", ChangeSetType="UPDATE", UsePreviousTemplate=True,
        Parameters=params(Name="new-q"),
    )  # fmt: skip
    change = cfn.describe_change_set(StackName="rep", ChangeSetName="rename")["Changes"][0]["ResourceChange"]
    assert (change["Action"], change["Replacement"]) == ("Modify", "True")
    cfn.execute_change_set(StackName="rep", ChangeSetName="rename")
    assert status(cfn, "rep") == "UPDATE_COMPLETE"
    new_url = queue_urls()[0]
    assert queue_urls() == [new_url]
    assert new_url.endswith("/new-q")
    assert old_url.endswith("/old-q")
    stack_events = [(e["LogicalResourceId"], e["ResourceStatus"], e.get("PhysicalResourceId"), e.get("ResourceStatusReason"))
                    for e in events(cfn, "rep")]  # fmt: skip
    update_part = stack_events[
        stack_events.index(("rep", "UPDATE_IN_PROGRESS", stack_events[0][2], "User Initiated")) :
    ]
    assert [(name, state, physical) for name, state, physical, _ in update_part] == [
        ("rep", "UPDATE_IN_PROGRESS", stack_events[0][2]),
        ("Queue", "UPDATE_IN_PROGRESS", old_url),
        ("Queue", "UPDATE_IN_PROGRESS", new_url),
        ("Queue", "UPDATE_COMPLETE", new_url),
        ("rep", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", stack_events[0][2]),
        ("Queue", "DELETE_IN_PROGRESS", old_url),
        ("Queue", "DELETE_COMPLETE", old_url),
        ("rep", "UPDATE_COMPLETE", stack_events[0][2]),
    ]
    assert update_part[1][3] == (
        "Requested update requires the creation of a new physical resource; hence creating one."
    )
    assert cfn.describe_stacks(StackName="rep")["Stacks"][0]["Outputs"][0]["OutputValue"] == new_url
    resource = cfn.describe_stack_resources(StackName="rep")["StackResources"][0]
    assert resource["PhysicalResourceId"] == new_url


def test_an_in_place_change_keeps_the_physical_resource(cfn: Any) -> None:
    cfn.create_stack(StackName="inplace", TemplateBody=body(QUEUE_NAMED), Parameters=params(Name="same-q"))
    before = queue_urls()
    cfn.create_change_set(
        StackName="inplace", ChangeSetName="timeout", ChangeSetType="UPDATE", UsePreviousTemplate=True,
        Parameters=params(Name="same-q", Timeout="60"),
    )  # fmt: skip
    change = cfn.describe_change_set(StackName="inplace", ChangeSetName="timeout")["Changes"][0][
        "ResourceChange"
    ]
    assert change["Replacement"] == "False"
    cfn.execute_change_set(StackName="inplace", ChangeSetName="timeout")
    assert status(cfn, "inplace") == "UPDATE_COMPLETE"
    assert queue_urls() == before
    assert not [e for e in resource_events(cfn, "inplace", "Queue") if e[0].startswith("DELETE")]


def test_a_failed_update_deletes_the_new_resource_and_keeps_the_old(cfn: Any) -> None:
    cfn.create_stack(StackName="rb", TemplateBody=body(QUEUE_NAMED), Parameters=params(Name="keep-q"))
    broken = json.loads(body(QUEUE_NAMED))
    broken["Resources"]["Later"] = {
        "Type": "AWS::EC2::Subnet",
        "DependsOn": "Queue",
        "Properties": {"VpcId": "vpc-0123456789abcdef0", "CidrBlock": "10.0.0.0/24"},
    }
    cfn.update_stack(StackName="rb", TemplateBody=body(broken), Parameters=params(Name="temp-q"))
    assert status(cfn, "rb") == "UPDATE_ROLLBACK_COMPLETE"
    assert [url.rsplit("/", 1)[1] for url in queue_urls()] == ["keep-q"]
    queue = resource_events(cfn, "rb", "Queue")
    assert queue[-2:] == [
        ("DELETE_IN_PROGRESS", queue[-1][1], ""),
        ("DELETE_COMPLETE", queue[-1][1], ""),
    ]
    assert queue[-1][1].endswith("/temp-q")


def test_a_custom_name_that_stays_cannot_be_replaced(cfn: Any) -> None:
    role = {
        "Parameters": {"Path": {"Type": "String", "Default": "/a/"}},
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": "fixed-name",
                    "Path": {"Ref": "Path"},
                    "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []},
                },
            }
        },
    }
    cfn.create_stack(StackName="named", TemplateBody=body(role))
    cfn.update_stack(StackName="named", UsePreviousTemplate=True, Parameters=params(Path="/b/"))
    assert status(cfn, "named") == "UPDATE_ROLLBACK_COMPLETE"
    failed = [e for e in resource_events(cfn, "named", "Role") if e[0] == "UPDATE_FAILED"]
    assert failed[0][2] == (
        "CloudFormation cannot update a stack when a custom-named resource requires replacing. Rename "
        "fixed-name and update the stack again."
    )


# ----------------------------------------------------------- B.7 types moto does not emulate, simulated

DISTRIBUTION: dict[str, Any] = {
    "Parameters": {"Comment": {"Type": "String", "Default": "one"}},
    "Resources": {
        "Queue": {"Type": "AWS::SQS::Queue"},
        "Cdn": {
            "Type": "AWS::CloudFront::Distribution",
            "Properties": {
                "DistributionConfig": {
                    "Enabled": True,
                    "Comment": {"Ref": "Comment"},
                    "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all",
                                             "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"},
                    "Origins": [{"Id": "o", "DomainName": "example.com", "CustomOriginConfig": {"OriginProtocolPolicy": "https-only"}}],
                }
            },
        },
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": {"Fn::Sub": "${Cdn}-topic"}}},
    },
    "Outputs": {
        "Domain": {"Value": {"Fn::GetAtt": ["Cdn", "DomainName"]}},
        "Id": {"Value": {"Ref": "Cdn"}},
    },
}  # fmt: skip


def simulate_mode() -> None:
    install(StackSimulation(stack_seconds=0, unsupported="simulate"))


def test_simulated_resources_get_ids_attributes_and_say_so(cfn: Any) -> None:
    simulate_mode()
    cfn.create_stack(StackName="sim", TemplateBody=body(DISTRIBUTION))
    stack = cfn.describe_stacks(StackName="sim")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["Id"].startswith("sim-Cdn-")
    assert re.fullmatch(r"[a-z0-9-]+\.cloudfront\.us-east-1\.amazonaws\.com", outputs["Domain"]), outputs
    topics = boto3.client("sns", region_name=REGION).list_topics()["Topics"]
    assert topics[0]["TopicArn"].endswith(f":{outputs['Id']}-topic")  # a real resource used the Ref
    cdn = resource_events(cfn, "sim", "Cdn")
    assert [state for state, _, _ in cdn] == ["CREATE_IN_PROGRESS", "CREATE_COMPLETE"]
    assert all("SIMULATED by the local AWS" in reason for _, _, reason in cdn)
    assert not any("SIMULATED" in reason for _, _, reason in resource_events(cfn, "sim", "Queue"))

    cfn.update_stack(StackName="sim", UsePreviousTemplate=True, Parameters=params(Comment="two"))
    assert status(cfn, "sim") == "UPDATE_COMPLETE"
    assert [state for state, _, _ in resource_events(cfn, "sim", "Cdn")][-2:] == [
        "UPDATE_IN_PROGRESS",
        "UPDATE_COMPLETE",
    ]
    cfn.delete_stack(StackName="sim")
    deleted = resource_events(cfn, stack["StackId"], "Cdn")
    assert [state for state, _, _ in deleted][-2:] == ["DELETE_IN_PROGRESS", "DELETE_COMPLETE"]
    assert all("SIMULATED by the local AWS" in reason for _, _, reason in deleted)
    assert boto3.client("sns", region_name=REGION).list_topics()["Topics"] == []


def test_simulated_resources_are_validated_and_replaced(cfn: Any) -> None:
    simulate_mode()
    topic = {"Type": "AWS::SNS::Topic"}
    typo = {"Resources": {"Topic": topic, "Sub": {"Type": "AWS::SNS::Subscription",
                                                  "Properties": {"Protocol": "sqs", "TopicArnn": {"Ref": "Topic"}}}}}  # fmt: skip
    cfn.create_stack(StackName="simtypo", TemplateBody=body(typo))
    reason = resource_events(cfn, "simtypo", "Sub")[-1][2]
    assert reason.startswith(
        "Properties validation failed for resource Sub with message: [#: required key [TopicArn] not found, "
        "#: extraneous key [TopicArnn] is not permitted] (SIMULATED by the local AWS"
    )

    subscription = {
        "Parameters": {"Endpoint": {"Type": "String"}},
        "Resources": {
            "Topic": topic,
            "Sub": {"Type": "AWS::SNS::Subscription",
                    "Properties": {"Protocol": "email", "Endpoint": {"Ref": "Endpoint"}, "TopicArn": {"Ref": "Topic"}}},
        },
        "Outputs": {"Sub": {"Value": {"Ref": "Sub"}}},
    }  # fmt: skip
    cfn.create_stack(
        StackName="simrep", TemplateBody=body(subscription), Parameters=params(Endpoint="a@example.com")
    )
    first = cfn.describe_stacks(StackName="simrep")["Stacks"][0]["Outputs"][0]["OutputValue"]
    assert first.startswith("arn:aws:sns:us-east-1:123456789012:subscription/simrep-Sub-")
    cfn.update_stack(
        StackName="simrep", UsePreviousTemplate=True, Parameters=params(Endpoint="b@example.com")
    )
    assert status(cfn, "simrep") == "UPDATE_COMPLETE"
    second = cfn.describe_stacks(StackName="simrep")["Stacks"][0]["Outputs"][0]["OutputValue"]
    assert second != first
    sequence = [(state, physical) for state, physical, _ in resource_events(cfn, "simrep", "Sub")]
    assert sequence == [
        ("CREATE_IN_PROGRESS", ""),
        ("CREATE_COMPLETE", first),
        ("UPDATE_IN_PROGRESS", first),
        ("UPDATE_IN_PROGRESS", second),
        ("UPDATE_COMPLETE", second),
        ("DELETE_IN_PROGRESS", first),
        ("DELETE_COMPLETE", first),
    ]


@pytest.mark.parametrize(
    ("mode", "final"),
    [("fail", "ROLLBACK_COMPLETE"), ("skip", "CREATE_COMPLETE"), ("simulate", "CREATE_COMPLETE")],
)
def test_each_mode_treats_an_unemulated_type_its_own_way(cfn: Any, mode: str, final: str) -> None:
    install(StackSimulation(stack_seconds=0, unsupported=mode))
    template = {"Resources": {"Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {
        "ComparisonOperator": "GreaterThanThreshold", "EvaluationPeriods": 1, "Threshold": 1,
        "MetricName": "Errors", "Namespace": "AWS/Lambda", "Statistic": "Sum", "Period": 60}}}}  # fmt: skip
    cfn.create_stack(StackName="modes", TemplateBody=body(template))
    assert status(cfn, "modes") == final
    reasons = [reason for _, _, reason in resource_events(cfn, "modes", "Alarm")]
    expected = {
        "fail": "resource type AWS::CloudWatch::Alarm is not emulated by the local AWS",
        "skip": "WARNING: skipped: resource type AWS::CloudWatch::Alarm is not emulated by the local AWS",
        "simulate": "SIMULATED by the local AWS (NEXUS_LOCAL_UNSUPPORTED=simulate): AWS::CloudWatch::Alarm is "
        "not emulated, so no real resource exists",
    }[mode]
    assert reasons[-1] == expected
