"""What an operation's start and end count (chalicelib/domain/metrics.py), in one place for the two
services that start and end operations: ``DeploymentService`` (an execution that could not start)
and ``WorkflowService`` (every other end).

Each end is counted once: the callers count only the write that recorded it (a retried step that
finds the operation already ended counts nothing).
"""

from __future__ import annotations

from chalicelib.domain.metrics import Metric
from chalicelib.domain.model import Deployment, OperationStatus, epoch_seconds
from chalicelib.service.ports import Metrics


def _seconds(start: str, end: str) -> float:
    return max(0.0, epoch_seconds(end) - epoch_seconds(start))


def count_started(metrics: Metrics, deployment: Deployment) -> None:
    metrics.add(Metric.DEPLOYMENTS_STARTED, action=deployment.operation.action.value)


def count_ended(metrics: Metrics, deployment: Deployment) -> None:
    """Succeeded (PLANNED too: a plan that was made), failed by error code, or cancelled; and the
    operation's duration, from its start to its end."""
    operation = deployment.operation
    action = operation.action.value
    if operation.status in (OperationStatus.SUCCEEDED, OperationStatus.PLANNED):
        metrics.add(Metric.DEPLOYMENTS_SUCCEEDED, action=action)
    elif operation.status is OperationStatus.FAILED:
        code = deployment.error.code if deployment.error is not None else "UNKNOWN"
        metrics.add(Metric.DEPLOYMENTS_FAILED, error_code=code)
    elif operation.status is OperationStatus.CANCELLED:
        metrics.add(Metric.DEPLOYMENTS_CANCELLED, action=action)
    else:
        return  # still running: nothing ended
    if operation.ended_at is not None:
        metrics.add(
            Metric.OPERATION_DURATION, _seconds(operation.started_at, operation.ended_at), action=action
        )
