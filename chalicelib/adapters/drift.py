"""CloudFormation drift detection in a target account, through the target role like the workflow."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.config import Config

from chalicelib.adapters.errors import aws_call
from chalicelib.service.event_ports import DriftResult

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient

    from chalicelib.adapters.sts import StsTargetAccess


class CloudFormationDrift:
    def __init__(self, client: CloudFormationClient) -> None:
        self._cfn = client

    def start(self, stack: str) -> str:
        with aws_call("DetectStackDrift"):
            return self._cfn.detect_stack_drift(StackName=stack)["StackDriftDetectionId"]

    def result(self, detection_id: str) -> DriftResult:
        with aws_call("DescribeStackDriftDetectionStatus"):
            found = self._cfn.describe_stack_drift_detection_status(StackDriftDetectionId=detection_id)
        status = found["DetectionStatus"]  # DETECTION_IN_PROGRESS | DETECTION_FAILED | DETECTION_COMPLETE
        return DriftResult(
            done=status != "DETECTION_IN_PROGRESS",
            stack_drift_status=found.get("StackDriftStatus"),
            drifted_resources=found.get("DriftedStackResourceCount"),
            reason=found.get("DetectionStatusReason") if status == "DETECTION_FAILED" else None,
        )


class StsDriftAccess:
    def __init__(self, access: StsTargetAccess, client_config: Config) -> None:
        self._access = access
        self._config = client_config

    def drift(
        self, *, role_arn: str, external_id: str, session_name: str, region: str
    ) -> CloudFormationDrift:
        session = self._access.session(
            role_arn=role_arn, external_id=external_id, session_name=session_name, region=region
        )
        return CloudFormationDrift(session.client("cloudformation", config=self._config))
