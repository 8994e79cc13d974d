"""The local AWS's CloudFormation fails as AWS does (plain boto3 calls): a resource moto refuses, or
crashes on, fails the stack and rolls it back; a failed update rolls back to the previous template and
outputs; parameter errors are refused at once; nothing is silently dropped (a resource type the local
AWS does not emulate fails the stack, or is skipped with a warning when asked); public-style templates
deploy or fail cleanly; and the same through a threaded moto server.

The ``cfn`` fixture and the helpers shared with the other ``test_cloudformation_*`` modules are in this
package's ``conftest``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from localaws.cloudformation import StackSimulation, install
from localaws.cloudformation.resources import _is_emulated
from tests.localaws.conftest import QUEUE_AND_TOPIC, REGION, body, stack_of, statuses, threaded_moto_server
from tests.localaws.conftest import events as events_oldest_first

TEMPLATES = Path(__file__).parent / "templates"
FINAL_STATES = {
    "CREATE_COMPLETE",
    "ROLLBACK_COMPLETE",
    "ROLLBACK_FAILED",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "DELETE_COMPLETE",
}

SUBNET_IN_MISSING_VPC: dict[str, Any] = {
    "Resources": {
        "Queue": {"Type": "AWS::SQS::Queue"},
        "Subnet": {
            "Type": "AWS::EC2::Subnet",
            "DependsOn": "Queue",
            "Properties": {"VpcId": "vpc-0123456789abcdef0", "CidrBlock": "10.0.0.0/24"},
        },
    }
}

WITH_CLOUDFRONT: dict[str, Any] = {
    "Resources": {
        "Queue": {"Type": "AWS::SQS::Queue"},
        "Cdn": {"Type": "AWS::CloudFront::Distribution", "DependsOn": "Queue", "Properties": {}},
    },
    "Outputs": {
        "QueueUrl": {"Value": {"Ref": "Queue"}},
        "CdnDomain": {"Value": {"Fn::GetAtt": ["Cdn", "DomainName"]}},
    },
}


@pytest.fixture
def simulation() -> Iterator[None]:
    install(StackSimulation(stack_seconds=0))
    yield
    install(StackSimulation(stack_seconds=0))


# ------------------------------------------------------------------------------------------ 3. failures


def test_moto_client_error_becomes_create_failed_and_rollback(cfn: Any) -> None:
    cfn.create_stack(StackName="novpc", TemplateBody=body(SUBNET_IN_MISSING_VPC))
    stack = stack_of(cfn, "novpc")
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    assert "The following resource(s) failed to create: [Subnet]" in stack["StackStatusReason"]
    events = events_oldest_first(cfn, "novpc")
    failed = next(e for e in events if e["ResourceStatus"] == "CREATE_FAILED")
    assert failed["LogicalResourceId"] == "Subnet"
    assert "vpc-0123456789abcdef0" in failed["ResourceStatusReason"]
    assert statuses(events, "Queue") == [
        "CREATE_IN_PROGRESS",
        "CREATE_COMPLETE",
        "DELETE_IN_PROGRESS",
        "DELETE_COMPLETE",
    ]
    assert statuses(events, "novpc") == ["CREATE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS", "ROLLBACK_COMPLETE"]
    assert boto3.client("sqs", region_name=REGION).list_queues().get("QueueUrls", []) == []
    with pytest.raises(ClientError, match="ROLLBACK_COMPLETE state and can not be updated"):
        cfn.update_stack(StackName="novpc", TemplateBody=body(QUEUE_AND_TOPIC))


PYTHON_EXCEPTION = re.compile(r"\b(KeyError|TypeError|AttributeError|ValueError|IndexError|Exception)\b")


def test_raw_python_exception_inside_moto_becomes_a_plain_create_failed(cfn: Any) -> None:
    """moto crashes (KeyError) on an ECS service without a cluster: the reason says what is not emulated."""
    template = {
        "Resources": {
            "Queue": {"Type": "AWS::SQS::Queue"},
            "Broken": {"Type": "AWS::ECS::Service", "Properties": {}, "DependsOn": "Queue"},
        }
    }
    response = cfn.create_stack(StackName="raw", TemplateBody=body(template))
    assert response["StackId"]
    stack = stack_of(cfn, "raw")
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    assert "[Broken]" in stack["StackStatusReason"]
    events = events_oldest_first(cfn, "raw")
    assert statuses(events, "Broken") == ["CREATE_IN_PROGRESS", "CREATE_FAILED"]
    reason = next(e["ResourceStatusReason"] for e in events if e["ResourceStatus"] == "CREATE_FAILED")
    assert reason == (
        "The local AWS does not emulate this resource as the template configures it: moto cannot handle one "
        "of its properties or references"
    )
    assert not PYTHON_EXCEPTION.search(stack["StackStatusReason"])
    assert statuses(events, "Queue")[-1] == "DELETE_COMPLETE"


def test_failed_update_rolls_back_and_keeps_previous_template_and_outputs(cfn: Any) -> None:
    cfn.create_stack(StackName="upd", TemplateBody=body(QUEUE_AND_TOPIC))
    before = stack_of(cfn, "upd")["Outputs"]
    broken = json.loads(body(QUEUE_AND_TOPIC))
    broken["Resources"]["Queue"]["Properties"]["VisibilityTimeout"] = 90
    broken["Resources"]["Extra"] = {"Type": "AWS::SQS::Queue"}
    broken["Resources"]["Subnet"] = SUBNET_IN_MISSING_VPC["Resources"]["Subnet"] | {"DependsOn": "Extra"}
    broken["Outputs"]["ExtraUrl"] = {"Value": {"Ref": "Extra"}}

    cfn.update_stack(StackName="upd", TemplateBody=body(broken), ClientRequestToken="upd-2")

    stack = stack_of(cfn, "upd")
    assert stack["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert "[Subnet]" in stack["StackStatusReason"]
    assert stack["Outputs"] == before
    assert cfn.get_template(StackName="upd")["TemplateBody"] == QUEUE_AND_TOPIC
    events = events_oldest_first(cfn, "upd")
    assert statuses(events, "upd")[-4:] == [
        "UPDATE_IN_PROGRESS",
        "UPDATE_ROLLBACK_IN_PROGRESS",
        "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
        "UPDATE_ROLLBACK_COMPLETE",
    ]
    assert statuses(events, "Subnet") == ["CREATE_IN_PROGRESS", "CREATE_FAILED"]
    assert statuses(events, "Extra") == [
        "CREATE_IN_PROGRESS",
        "CREATE_COMPLETE",
        "DELETE_IN_PROGRESS",
        "DELETE_COMPLETE",
    ]
    resources = {
        r["LogicalResourceId"] for r in cfn.describe_stack_resources(StackName="upd")["StackResources"]
    }
    assert resources == {"Queue", "Topic"}
    queue_url = next(o["OutputValue"] for o in before if o["OutputKey"] == "QueueUrl")
    attributes = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"]
    )
    assert attributes["Attributes"]["VisibilityTimeout"] == "30"
    # UPDATE_ROLLBACK_COMPLETE is updatable again
    fixed = json.loads(body(QUEUE_AND_TOPIC))
    fixed["Resources"]["Queue"]["Properties"]["VisibilityTimeout"] = 90
    cfn.update_stack(StackName="upd", TemplateBody=body(fixed))
    assert stack_of(cfn, "upd")["StackStatus"] == "UPDATE_COMPLETE"


def test_parameter_errors_are_rejected_synchronously(cfn: Any) -> None:
    template = {
        "Parameters": {"Name": {"Type": "String"}},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
    }
    with pytest.raises(ClientError, match="Missing parameter Name"):
        cfn.create_stack(StackName="params", TemplateBody=body(template))
    with pytest.raises(ClientError) as error:
        cfn.create_stack(StackName="params", TemplateBody="Resources: [unbalanced")
    assert error.value.response["Error"]["Code"] == "ValidationError"


# --------------------------------------------------------------------------- 4. nothing silently dropped


def test_unsupported_resource_type_fails_the_stack(cfn: Any) -> None:
    cfn.create_stack(StackName="cdn", TemplateBody=body(WITH_CLOUDFRONT))
    stack = stack_of(cfn, "cdn")
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    events = events_oldest_first(cfn, "cdn")
    failed = [e for e in events if e["ResourceStatus"] == "CREATE_FAILED"]
    assert [(e["LogicalResourceId"], e["ResourceType"]) for e in failed] == [
        ("Cdn", "AWS::CloudFront::Distribution")
    ]
    assert failed[0]["ResourceStatusReason"] == (
        "resource type AWS::CloudFront::Distribution is not emulated by the local AWS"
    )
    assert statuses(events, "Queue")[-1] == "DELETE_COMPLETE"


def test_unsupported_resource_type_is_skipped_with_a_warning_when_asked(cfn: Any) -> None:
    install(StackSimulation(stack_seconds=0, unsupported="skip"))
    cfn.create_stack(StackName="cdn", TemplateBody=body(WITH_CLOUDFRONT))
    stack = stack_of(cfn, "cdn")
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert [o["OutputKey"] for o in stack["Outputs"]] == ["QueueUrl"]
    warnings = [e for e in events_oldest_first(cfn, "cdn") if e["LogicalResourceId"] == "Cdn"]
    assert len(warnings) == 1
    assert warnings[0]["ResourceStatus"] == "CREATE_COMPLETE"
    assert warnings[0]["ResourceStatusReason"].startswith(
        "WARNING: skipped: resource type AWS::CloudFront::Distribution is not emulated by the local AWS"
    )
    resources = cfn.describe_stack_resources(StackName="cdn")["StackResources"]
    assert [r["LogicalResourceId"] for r in resources] == [
        "Queue"
    ]  # never an entry without a LogicalResourceId


@pytest.mark.parametrize(
    "resource",
    [
        {
            "Type": "Custom::Seed",
            "Properties": {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:f"},
        },
        {
            "Type": "AWS::CloudFormation::CustomResource",
            "Properties": {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:f"},
        },
        {"Type": "AWS::CloudFormation::WaitCondition", "Properties": {"Timeout": "60"}},
    ],
)
def test_resources_that_never_finish_locally_are_not_emulated(cfn: Any, resource: dict[str, Any]) -> None:
    cfn.create_stack(StackName="custom", TemplateBody=body({"Resources": {"Thing": resource}}))
    stack = stack_of(cfn, "custom")
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    reason = next(e for e in events_oldest_first(cfn, "custom") if e["ResourceStatus"] == "CREATE_FAILED")
    assert (
        reason["ResourceStatusReason"] == f"resource type {resource['Type']} is not emulated by the local AWS"
    )


def test_emulated_types_come_from_motos_model_map() -> None:
    from moto.cloudformation.parsing import get_model_map

    known = get_model_map()
    assert "AWS::SQS::Queue" in known
    assert _is_emulated("AWS::SQS::Queue")
    assert "AWS::CloudFront::Distribution" not in known
    assert not _is_emulated("AWS::CloudFront::Distribution")


# ------------------------------------------------------------------------------- 8. realistic templates


@pytest.mark.parametrize("unsupported", ["fail", "skip"])
@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("networking.yaml", "CREATE_COMPLETE"),
        ("messaging.yaml", "CREATE_COMPLETE"),
        ("static-site-cdn.yaml", "ROLLBACK_COMPLETE"),
    ],
)
def test_public_style_templates_deploy_or_fail_cleanly(
    cfn: Any, template: str, expected: str, unsupported: str
) -> None:
    install(StackSimulation(stack_seconds=0, unsupported=unsupported))
    stack_id = cfn.create_stack(StackName="public", TemplateBody=(TEMPLATES / template).read_text())[
        "StackId"
    ]
    stack = stack_of(cfn, "public")
    assert stack["StackStatus"] in FINAL_STATES
    if unsupported == "skip":
        assert stack["StackStatus"] == "CREATE_COMPLETE"
    else:
        assert stack["StackStatus"] == expected
    events = events_oldest_first(cfn, "public")
    if stack["StackStatus"] == "ROLLBACK_COMPLETE":
        failed = [e for e in events if e["ResourceStatus"] == "CREATE_FAILED"]
        assert failed
        assert failed[0]["ResourceStatusReason"] == (
            "resource type AWS::CloudFront::Distribution is not emulated by the local AWS"
        )
    else:
        assert stack["Outputs"]
        assert not [e for e in events if e["ResourceStatus"].endswith("FAILED")]
    cfn.delete_stack(StackName="public")
    assert stack_of(cfn, stack_id)["StackStatus"] == "DELETE_COMPLETE"
    delete_events = [
        e for e in events_oldest_first(cfn, stack_id) if e["ResourceStatus"].startswith("DELETE")
    ]
    assert "DELETE_FAILED" not in {e["ResourceStatus"] for e in delete_events}


def test_networking_template_updates_and_deletes_every_resource(cfn: Any) -> None:
    template = (TEMPLATES / "networking.yaml").read_text()
    cfn.create_stack(StackName="net", TemplateBody=template)
    cfn.update_stack(
        StackName="net",
        TemplateBody=template,
        Parameters=[{"ParameterKey": "EnvironmentName", "ParameterValue": "prod"}],
    )
    stack = stack_of(cfn, "net")
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    assert {o["OutputKey"]: o.get("ExportName") for o in stack["Outputs"]}["VpcId"] == "prod-VpcId"
    resources = {
        r["LogicalResourceId"] for r in cfn.describe_stack_resources(StackName="net")["StackResources"]
    }
    assert "Vpc" in resources  # moto cannot update a VPC; the local AWS keeps it instead of dropping it
    cfn.delete_stack(StackName="net")
    ec2 = boto3.client("ec2", region_name=REGION)
    assert [v for v in ec2.describe_vpcs()["Vpcs"] if not v["IsDefault"]] == []


# ------------------------------------------------------------------------------------ server mode


def test_works_through_a_threaded_moto_server(simulation: None) -> None:
    with threaded_moto_server() as endpoint:
        cfn = boto3.client(
            "cloudformation",
            region_name=REGION,
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        cfn.create_stack(StackName="srv", TemplateBody=body(WITH_CLOUDFRONT), ClientRequestToken="srv-1")
        again = cfn.create_stack(
            StackName="srv", TemplateBody=body(WITH_CLOUDFRONT), ClientRequestToken="srv-1"
        )
        stack = stack_of(cfn, "srv")
        assert stack["StackId"] == again["StackId"]
        assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
        failed = [e for e in events_oldest_first(cfn, "srv") if e["ResourceStatus"] == "CREATE_FAILED"]
        assert failed[0]["ClientRequestToken"] == "srv-1"
        assert failed[0]["ResourceStatusReason"].endswith("is not emulated by the local AWS")
