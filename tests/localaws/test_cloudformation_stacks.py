"""The local AWS's CloudFormation behaves like AWS where the deployer relies on it (plain boto3 calls):
the stack simulation's settings and the moto internals it relies on, operations that take time (and
finish when run from many threads), and resource-level events, with the request checks AWS makes on a
stack call (its ClientRequestToken, its tags, its TemplateURL).

Failures are in ``test_cloudformation_failures``, retries, updates and deletion in
``test_cloudformation_updates``; the ``cfn`` fixture and the helpers they share are in this package's
``conftest``.
"""

from __future__ import annotations

import inspect
import json
import threading
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from localaws import cloudformation as local_cfn
from localaws.cloudformation import StackSimulation, install
from tests.localaws.conftest import QUEUE_AND_TOPIC, REGION, body, stack_of, statuses
from tests.localaws.conftest import events as events_oldest_first

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
