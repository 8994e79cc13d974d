"""The local AWS's CloudFormation behaves like AWS where the deployer relies on it (plain boto3 calls)."""

from __future__ import annotations

import inspect
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from localaws import cloudformation as local_cfn
from localaws.cloudformation import StackSimulation, install
from localaws.cloudformation.resources import _is_emulated

TEMPLATES = Path(__file__).parent / "templates"
REGION = "us-east-1"
FINAL_STATES = {
    "CREATE_COMPLETE",
    "ROLLBACK_COMPLETE",
    "ROLLBACK_FAILED",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "DELETE_COMPLETE",
}

QUEUE_AND_TOPIC: dict[str, Any] = {
    "Resources": {
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": 30}},
        "Topic": {"Type": "AWS::SNS::Topic"},
    },
    "Outputs": {
        "QueueUrl": {"Value": {"Ref": "Queue"}, "Export": {"Name": "app-queue-url"}},
        "TopicArn": {"Value": {"Ref": "Topic"}},
    },
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


def body(template: dict[str, Any]) -> str:
    return json.dumps(template)


def stack_of(cfn: Any, name: str) -> dict[str, Any]:
    stack: dict[str, Any] = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return stack


def events_oldest_first(cfn: Any, name: str) -> list[dict[str, Any]]:
    return list(reversed(cfn.describe_stack_events(StackName=name)["StackEvents"]))


def statuses(events: list[dict[str, Any]], logical_id: str) -> list[str]:
    return [e["ResourceStatus"] for e in events if e["LogicalResourceId"] == logical_id]


@pytest.fixture
def simulation() -> Iterator[None]:
    install(StackSimulation(stack_seconds=0))
    yield
    install(StackSimulation(stack_seconds=0))


@pytest.fixture
def cfn(simulation: None) -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("cloudformation", region_name=REGION)


# ---------------------------------------------------------------------------------------------- settings


def test_from_env_reads_seconds_and_unsupported_mode() -> None:
    assert StackSimulation.from_env({}) == StackSimulation(stack_seconds=3.0, unsupported="fail")
    parsed = StackSimulation.from_env(
        {"NEXUS_LOCAL_STACK_SECONDS": "0.25", "NEXUS_LOCAL_UNSUPPORTED": "skip"}
    )
    assert parsed == StackSimulation(stack_seconds=0.25, unsupported="skip")
    assert StackSimulation.from_env({"NEXUS_LOCAL_UNSUPPORTED": " Simulate "}).unsupported == "simulate"
    with pytest.raises(ValueError, match="NEXUS_LOCAL_STACK_SECONDS"):
        StackSimulation.from_env({"NEXUS_LOCAL_STACK_SECONDS": "soon"})
    with pytest.raises(ValueError, match="fail, skip, simulate"):
        StackSimulation.from_env({"NEXUS_LOCAL_UNSUPPORTED": "ignore"})
    with pytest.raises(ValueError, match="replaced by NEXUS_LOCAL_UNSUPPORTED"):
        StackSimulation.from_env({"NEXUS_LOCAL_SKIP_UNSUPPORTED": "1"})


def test_moto_internals_the_patch_relies_on_are_still_there() -> None:
    """Canary: fails with a list of what moved when moto is upgraded."""
    local_cfn.check_moto_internals()
    from moto.cloudformation import parsing

    # install() wrapped the lazy resource factory exactly once, keeping moto's original reachable
    install(StackSimulation(stack_seconds=0))
    install(StackSimulation(stack_seconds=0))
    wrapper: Any = parsing.parse_and_create_resource
    original = wrapper.__nexus_original__
    assert not hasattr(original, "__nexus_original__")
    assert list(inspect.signature(original).parameters) == [
        "logical_id",
        "resource_json",
        "resources_map",
        "account_id",
        "region_name",
    ]


# ------------------------------------------------------------------------------------ 1. stacks take time


def test_operations_stay_in_progress_for_stack_seconds_then_complete() -> None:
    install(StackSimulation(stack_seconds=2))  # room for a loaded machine between calls
    try:
        with mock_aws():
            cfn = boto3.client("cloudformation", region_name=REGION)
            stack_id = cfn.create_stack(StackName="slow", TemplateBody=body(QUEUE_AND_TOPIC))["StackId"]
            first = stack_of(cfn, "slow")
            assert first["StackStatus"] == "CREATE_IN_PROGRESS"
            assert "Outputs" not in first  # AWS shows outputs only once the stack is complete
            assert [s["StackStatus"] for s in cfn.list_stacks()["StackSummaries"]] == ["CREATE_IN_PROGRESS"]
            assert cfn.describe_stack_resources(StackName="slow")["StackResources"][0]["ResourceStatus"] == (
                "CREATE_IN_PROGRESS"
            )
            early = events_oldest_first(cfn, "slow")
            assert early[0]["ResourceStatus"] == "CREATE_IN_PROGRESS"
            assert "CREATE_COMPLETE" not in statuses(early, "slow")
            time.sleep(2.1)
            done = stack_of(cfn, "slow")
            assert done["StackStatus"] == "CREATE_COMPLETE"
            assert {o["OutputKey"] for o in done["Outputs"]} == {"QueueUrl", "TopicArn"}
            # resource events are spread over the duration
            stamps = [e["Timestamp"] for e in events_oldest_first(cfn, "slow")]
            assert stamps == sorted(stamps)
            assert (stamps[-1] - stamps[0]).total_seconds() == pytest.approx(2, abs=0.05)

            changed = json.loads(body(QUEUE_AND_TOPIC))
            changed["Resources"]["Queue"]["Properties"]["VisibilityTimeout"] = 45
            cfn.update_stack(StackName="slow", TemplateBody=body(changed))
            assert stack_of(cfn, "slow")["StackStatus"] == "UPDATE_IN_PROGRESS"
            with pytest.raises(ClientError, match="UPDATE_IN_PROGRESS state and can not be updated"):
                cfn.update_stack(StackName="slow", TemplateBody=body(QUEUE_AND_TOPIC))
            time.sleep(2.1)
            assert stack_of(cfn, "slow")["StackStatus"] == "UPDATE_COMPLETE"

            cfn.delete_stack(StackName="slow")
            assert stack_of(cfn, "slow")["StackStatus"] == "DELETE_IN_PROGRESS"  # still found by name
            time.sleep(2.1)
            assert stack_of(cfn, stack_id)["StackStatus"] == "DELETE_COMPLETE"
            with pytest.raises(ClientError, match="does not exist"):
                cfn.describe_stacks(StackName="slow")
    finally:
        install(StackSimulation(stack_seconds=0))


def test_zero_seconds_shows_the_final_state_on_the_next_read(cfn: Any) -> None:
    cfn.create_stack(StackName="fast", TemplateBody=body(QUEUE_AND_TOPIC))
    assert stack_of(cfn, "fast")["StackStatus"] == "CREATE_COMPLETE"


def test_concurrent_operations_from_threads_all_finish(cfn: Any) -> None:
    errors: list[BaseException] = []

    def deploy(index: int) -> None:
        try:
            cfn.create_stack(
                StackName=f"t{index}", TemplateBody=body({"Resources": QUEUE_AND_TOPIC["Resources"]})
            )
            cfn.delete_stack(StackName=f"t{index}")
        except BaseException as exc:  # noqa: BLE001 - collected and asserted by the test
            errors.append(exc)

    threads = [threading.Thread(target=deploy, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert errors == []
    summaries = cfn.list_stacks()["StackSummaries"]
    assert sorted(s["StackName"] for s in summaries) == sorted(f"t{i}" for i in range(8))
    assert {s["StackStatus"] for s in summaries} == {"DELETE_COMPLETE"}


# ------------------------------------------------------------------------------- 2. resource-level events


def test_events_are_per_resource_newest_first_with_the_request_token(cfn: Any) -> None:
    stack_id = cfn.create_stack(
        StackName="ev", TemplateBody=body(QUEUE_AND_TOPIC), ClientRequestToken="op-1-create"
    )["StackId"]
    newest_first = cfn.describe_stack_events(StackName="ev")["StackEvents"]
    assert newest_first[0]["LogicalResourceId"] == "ev"
    assert newest_first[0]["ResourceStatus"] == "CREATE_COMPLETE"
    events = list(reversed(newest_first))
    assert statuses(events, "ev") == ["CREATE_IN_PROGRESS", "CREATE_COMPLETE"]
    assert statuses(events, "Queue") == ["CREATE_IN_PROGRESS", "CREATE_COMPLETE"]
    assert statuses(events, "Topic") == ["CREATE_IN_PROGRESS", "CREATE_COMPLETE"]
    assert events[0]["ResourceStatusReason"] == "User Initiated"
    for event in events:
        assert event["ClientRequestToken"] == "op-1-create"
        assert event["StackId"] == stack_id
        assert event["StackName"] == "ev"
        assert event["EventId"]
        assert event["Timestamp"]
    queue_done = next(
        e for e in events if e["LogicalResourceId"] == "Queue" and e["ResourceStatus"] == "CREATE_COMPLETE"
    )
    assert queue_done["ResourceType"] == "AWS::SQS::Queue"
    assert queue_done["PhysicalResourceId"].startswith("https://sqs.")
    assert len({e["EventId"] for e in events}) == len(events)

    cfn.delete_stack(StackName="ev", ClientRequestToken="op-1-delete")
    deleted = events_oldest_first(cfn, stack_id)
    assert statuses(deleted, "Queue")[-2:] == ["DELETE_IN_PROGRESS", "DELETE_COMPLETE"]
    assert {e["ClientRequestToken"] for e in deleted if "DELETE" in e["ResourceStatus"]} == {"op-1-delete"}


def test_invalid_request_token_is_rejected(cfn: Any) -> None:
    with pytest.raises(ClientError, match="clientRequestToken"):
        cfn.create_stack(StackName="tok", TemplateBody=body(QUEUE_AND_TOPIC), ClientRequestToken="no spaces")


def test_a_stack_takes_at_most_50_tags_on_every_call_that_sets_them(cfn: Any) -> None:
    """botocore checks only the minimums; AWS refuses 51 tags, a 129-character key, a 257-character value."""
    fifty = [{"Key": f"k{n}", "Value": "v"} for n in range(50)]
    cfn.create_stack(StackName="tags", TemplateBody=body(QUEUE_AND_TOPIC), Tags=fifty)
    assert len(stack_of(cfn, "tags")["Tags"]) == 50

    too_many = [*fifty, {"Key": "k50", "Value": "v"}]
    calls = {
        "CreateStack": lambda tags: cfn.create_stack(
            StackName="more", TemplateBody=body(QUEUE_AND_TOPIC), Tags=tags
        ),
        "UpdateStack": lambda tags: cfn.update_stack(StackName="tags", UsePreviousTemplate=True, Tags=tags),
        "CreateChangeSet": lambda tags: cfn.create_change_set(
            StackName="tags", ChangeSetName="c1", UsePreviousTemplate=True, Tags=tags
        ),
    }
    for name, call in calls.items():
        for tags, where in (
            (
                too_many,
                "at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50",
            ),
            ([{"Key": "k" * 129, "Value": "v"}], "at 'tags.1.member.key' failed"),
            ([{"Key": "k", "Value": "v" * 257}], "at 'tags.1.member.value' failed"),
        ):
            with pytest.raises(ClientError) as exc:
                call(tags)
            assert exc.value.response["Error"]["Code"] == "ValidationError", name
            assert where in exc.value.response["Error"]["Message"], name
    assert [s["StackName"] for s in cfn.describe_stacks()["Stacks"]] == ["tags"]


def test_template_url_is_read_at_its_version_through_the_buckets_own_region(cfn: Any) -> None:
    """As CloudFormation reads it: versionId honoured, the key percent-decoded, and a regional endpoint
    that is not the bucket's refused (S3 redirects it; CloudFormation does not follow)."""
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket="tpl.eu", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_versioning(Bucket="tpl.eu", VersioningConfiguration={"Status": "Enabled"})
    first = json.loads(body(QUEUE_AND_TOPIC))
    first["Outputs"] = {"Release": {"Value": "one"}}
    second = {**first, "Outputs": {"Release": {"Value": "two"}}}
    v1 = s3.put_object(Bucket="tpl.eu", Key="my stacks/app.json", Body=json.dumps(first).encode())[
        "VersionId"
    ]
    s3.put_object(Bucket="tpl.eu", Key="my stacks/app.json", Body=json.dumps(second).encode())

    good = f"https://s3.eu-west-1.amazonaws.com/tpl.eu/my%20stacks/app.json?versionId={v1}"
    cfn.create_stack(StackName="pinned", TemplateURL=good)  # a us-east-1 stack, an eu-west-1 bucket
    assert {o["OutputKey"]: o["OutputValue"] for o in stack_of(cfn, "pinned")["Outputs"]} == {
        "Release": "one"
    }
    # Virtual-hosted on the global endpoint: DNS finds the bucket's region (a name without dots).
    s3.create_bucket(Bucket="tpleu", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="tpleu", Key="app.json", Body=json.dumps(second).encode())
    cfn.create_stack(StackName="hosted", TemplateURL="https://tpleu.s3.amazonaws.com/app.json")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack_of(cfn, "hosted")["Outputs"]}
    assert outputs == {"Release": "two"}

    for bad in (
        f"https://s3.us-east-1.amazonaws.com/tpl.eu/my%20stacks/app.json?versionId={v1}",  # not its region
        "https://s3.amazonaws.com/tpl.eu/my%20stacks/app.json",  # the global endpoint, path style: us-east-1
        "https://s3.eu-west-1.amazonaws.com/tpl.eu/my%20stacks/app.json?versionId=nope",
        "https://s3.eu-west-1.amazonaws.com/tpl.eu/missing.json",
        "https://example.com/tpl.eu/my%20stacks/app.json",
        "https://tpl.eu.s3.eu-west-1.amazonaws.com/my%20stacks/app.json",  # dots: S3's certificate fails
    ):
        with pytest.raises(ClientError) as refused:
            cfn.create_stack(StackName="refused", TemplateURL=bad)
        assert refused.value.response["Error"]["Code"] == "ValidationError", bad
        assert refused.value.response["Error"]["Message"] == local_cfn.template_url.INVALID_TEMPLATE_URL, bad
    assert sorted(s["StackName"] for s in cfn.describe_stacks()["Stacks"]) == ["hosted", "pinned"]


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
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        cfn = boto3.client(
            "cloudformation",
            region_name=REGION,
            endpoint_url=f"http://{host}:{port}",
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
    finally:
        server.stop()
