"""``DetectStackDrift`` and ``DescribeStackDriftDetectionStatus`` for the embedded local AWS (moto 5.2.5).

Why this exists: moto has no drift detection (the actions are missing from its CloudFormation
responses), and the deployer's scheduled drift check calls both through the target role.

What is emulated, minimally and honestly: a detection finishes inside the DetectStackDrift call
(``DETECTION_COMPLETE``). A resource counts as drifted when it was deleted outside CloudFormation,
which is checked for the types whose existence is easy to see in moto's backends: S3 buckets, SQS
queues and SNS topics. Every other resource type is treated as IN_SYNC (AWS would compare its
properties; this emulation does not). A stack in an ``*_IN_PROGRESS`` status is refused with
ValidationError, as AWS refuses it. Not emulated: property-level drift, ``DescribeStackResourceDrifts``
and ``DetectStackResourceDrift``.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from localaws.patching import MotoInternalsChanged, Patcher

_LOCK = threading.Lock()
_DETECTIONS: dict[str, dict[str, Any]] = {}
_PATCHER = Patcher("localaws.drift")


def _exists(resource: Any, account_id: str, region: str) -> bool | None:
    """True/False for the types checked here, None for any other type (not checked)."""
    from moto.s3.models import FakeBucket, s3_backends
    from moto.sns.models import Topic, sns_backends
    from moto.sqs.models import Queue, sqs_backends

    if isinstance(resource, FakeBucket):
        return any(resource.name in backend.buckets for backend in s3_backends[account_id].values())
    if isinstance(resource, Queue):
        return resource.name in sqs_backends[account_id][region].queues
    if isinstance(resource, Topic):
        return resource.arn in sns_backends[account_id][region].topics
    return None


def detect_stack_drift(self: Any) -> Any:
    from moto.cloudformation.exceptions import ValidationError
    from moto.core.responses import ActionResult

    backend = self.cloudformation_backend
    stack_name = self._get_param("StackName")
    (stack,) = backend.describe_stacks(stack_name)  # raises ValidationError for an unknown stack
    if str(stack.status).endswith("_IN_PROGRESS"):
        raise ValidationError(message=f"Stack {stack.name} is in {stack.status} state and can not be checked")
    drifted = 0
    for resource in stack.stack_resources:
        if _exists(resource, backend.account_id, backend.region_name) is False:
            drifted += 1
    detection_id = str(uuid.uuid4())
    with _LOCK:
        _DETECTIONS[detection_id] = {
            "StackId": stack.stack_id,
            "StackDriftDetectionId": detection_id,
            "StackDriftStatus": "DRIFTED" if drifted else "IN_SYNC",
            "DetectionStatus": "DETECTION_COMPLETE",
            "DriftedStackResourceCount": drifted,
            "Timestamp": datetime.now(UTC),
        }
    return ActionResult({"StackDriftDetectionId": detection_id})


def describe_stack_drift_detection_status(self: Any) -> Any:
    from moto.cloudformation.exceptions import ValidationError
    from moto.core.responses import ActionResult

    detection_id = self._get_param("StackDriftDetectionId")
    with _LOCK:
        found = _DETECTIONS.get(detection_id)
    if found is None:
        raise ValidationError(message=f"No drift detection with id {detection_id}")
    return ActionResult(dict(found))


_OPERATIONS = {
    "detect_stack_drift": detect_stack_drift,
    "describe_stack_drift_detection_status": describe_stack_drift_detection_status,
}


def check_moto_internals() -> None:
    """Fail loudly when moto grows its own drift detection or moves what this module relies on."""
    from moto.cloudformation.responses import CloudFormationResponse

    for name in _OPERATIONS:
        if not _PATCHER.lacks(CloudFormationResponse, name):
            raise MotoInternalsChanged(f"moto now implements CloudFormation {name}: drop localaws/drift.py")
    from moto.s3.models import FakeBucket  # noqa: F401 - imported to prove it is still there
    from moto.sns.models import Topic  # noqa: F401
    from moto.sqs.models import Queue  # noqa: F401


def install() -> None:
    """Add the two drift operations to moto's CloudFormation responses (process-wide, idempotent)."""
    from moto.cloudformation.responses import CloudFormationResponse

    with _PATCHER.lock:
        check_moto_internals()
        for name, operation in _OPERATIONS.items():
            _PATCHER.add(CloudFormationResponse, name, operation)
