"""Canary and behaviour of localaws/drift.py, the DetectStackDrift emulation moto 5.2.5 lacks."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from localaws import drift
from localaws.environment import LocalAws

TEMPLATE = json.dumps(
    {
        "Resources": {
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "drifty"}},
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "drifty"}},
        }
    }
)


def test_moto_still_lacks_drift_detection_and_the_patch_is_ours(monkeypatch):
    from moto.cloudformation.responses import CloudFormationResponse

    drift.install()
    drift.check_moto_internals()  # passes: the only implementations are ours
    # If moto grows its own, the check fails loudly instead of silently replacing it.
    monkeypatch.setattr(CloudFormationResponse, "detect_stack_drift", lambda self: None)
    with pytest.raises(RuntimeError, match="moto now implements CloudFormation detect_stack_drift"):
        drift.check_moto_internals()


def test_detection_reports_in_sync_then_drifted_after_an_out_of_band_delete():
    with LocalAws() as aws:
        session = aws.account_session("111111111111")
        cfn = session.client("cloudformation")
        cfn.create_stack(StackName="s", TemplateBody=TEMPLATE)

        first = cfn.detect_stack_drift(StackName="s")["StackDriftDetectionId"]
        status = cfn.describe_stack_drift_detection_status(StackDriftDetectionId=first)
        assert status["DetectionStatus"] == "DETECTION_COMPLETE"
        assert status["StackDriftStatus"] == "IN_SYNC"
        assert status["DriftedStackResourceCount"] == 0

        sqs = session.client("sqs")
        sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName="drifty")["QueueUrl"])
        second = cfn.detect_stack_drift(StackName="s")["StackDriftDetectionId"]
        status = cfn.describe_stack_drift_detection_status(StackDriftDetectionId=second)
        assert (status["StackDriftStatus"], status["DriftedStackResourceCount"]) == ("DRIFTED", 1)

        with pytest.raises(ClientError, match=r"ValidationError|does not exist"):
            cfn.detect_stack_drift(StackName="no-such-stack")
        with pytest.raises(ClientError, match="No drift detection"):
            cfn.describe_stack_drift_detection_status(StackDriftDetectionId="nope")
