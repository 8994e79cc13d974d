"""The scheduled drift check, through the target role, recorded on each ACTIVE deployment.

The local AWS emulates DetectStackDrift (moto has none, see localaws/drift.py): a resource deleted
outside CloudFormation (S3 bucket, SQS queue, SNS topic) makes its stack DRIFTED.
"""

from __future__ import annotations

import json

import pytest

from chalicelib.adapters.drift import CloudFormationDrift
from chalicelib.domain.errors import TransientAwsError
from chalicelib.service.event_ports import DriftResult
from tests.conftest import TARGET_ACCOUNT, call, register_target, remove_target_role
from tests.events.conftest import deploy


def tick(aws):
    """The template's schedule rule comes due: EventBridge invokes the DriftCheck function."""
    (result,) = aws.fire_schedule("DriftCheckDriftCheckEvent")
    return result


def test_drift_check_records_in_sync_then_drifted(client, tenant, local_aws, aws_calls):
    target = register_target(client, tenant, local_aws)
    deployment = deploy(client, tenant, target, "app")
    deployment_id = deployment["deployment_id"]
    assert deployment["drift"] is None
    aws_calls.clear()

    result = tick(local_aws)
    assert result == {"drift": {"IN_SYNC": 1}}
    assert aws_calls.count("sts", "AssumeRole") == 1
    assert aws_calls.count("cloudformation", "DetectStackDrift") == 1
    drift = json.loads(call(client, "GET", f"/deployments/{deployment_id}", tenant).body)["drift"]
    assert drift["status"] == "IN_SYNC"
    assert drift["drifted_resources"] == 0
    assert drift["checked_at"]

    # Someone deletes the stack's bucket by hand in the target account.
    s3 = local_aws.account_session(TARGET_ACCOUNT).client("s3")
    s3.delete_bucket(Bucket=deployment["outputs"]["BucketName"])
    assert tick(local_aws) == {"drift": {"DRIFTED": 1}}
    after = json.loads(call(client, "GET", f"/deployments/{deployment_id}", tenant).body)
    assert after["drift"]["status"] == "DRIFTED"
    assert after["drift"]["drifted_resources"] == 1
    assert after["status"] == "ACTIVE"  # drift is reported, never acted on


def test_a_stack_that_cannot_be_checked_is_recorded_unknown_with_the_reason(client, tenant, local_aws):
    target = register_target(client, tenant, local_aws)
    deployment_id = deploy(client, tenant, target, "app")["deployment_id"]
    remove_target_role(local_aws)  # the target account removed the service's access

    assert tick(local_aws) == {"drift": {"UNKNOWN": 1}}
    drift = json.loads(call(client, "GET", f"/deployments/{deployment_id}", tenant).body)["drift"]
    assert drift["status"] == "UNKNOWN"
    assert drift["reason"]


def test_a_throttled_read_of_a_running_detection_is_read_again_not_recorded_unknown(
    client, tenant, local_aws, monkeypatch: pytest.MonkeyPatch
):
    """DescribeStackDriftDetectionStatus throttled past botocore's retries says nothing of the detection:
    it is read again on the next round and its real result recorded (it was recorded UNKNOWN until the
    next run, 6 hours later)."""
    target = register_target(client, tenant, local_aws)
    deployment_id = deploy(client, tenant, target, "app")["deployment_id"]
    read = CloudFormationDrift.result
    reads: list[str] = []
    refused: list[str] = []

    def first_read_throttled(self: CloudFormationDrift, detection_id: str) -> DriftResult:
        reads.append(detection_id)
        if not refused:
            refused.append(detection_id)
            raise TransientAwsError("DescribeStackDriftDetectionStatus failed: Throttling: Rate exceeded")
        return read(self, detection_id)

    monkeypatch.setattr(CloudFormationDrift, "result", first_read_throttled)
    assert tick(local_aws) == {"drift": {"IN_SYNC": 1}}
    assert len(refused) == 1
    assert reads[:2] == [refused[0], refused[0]]  # the refused detection, read again on the next round
    shown = json.loads(call(client, "GET", f"/deployments/{deployment_id}", tenant).body)["drift"]
    assert shown["status"] == "IN_SYNC", shown
