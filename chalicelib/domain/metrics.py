"""The service's metrics: the one list of what it emits, in CloudWatch's embedded metric format.

The services emit them through the ``Metrics`` port (chalicelib/service/ports.py); the adapters
(chalicelib/adapters/metrics.py) check every data point against this catalogue, so nothing outside
it can be emitted. The cloud template's alarms and dashboard (infra/package.py) are built from it
and its package tests check every metric they name against it.

Every data point carries the ``service`` dimension, and is published twice by CloudWatch: under
``service`` alone (the total, which alarms and the dashboard read) and, for a metric with its own
dimensions, under ``service`` plus those (the breakdown, e.g. failures by error code). Dimension
values come from small fixed sets (actions, error codes, statuses, function names), never ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

SERVICE_DIMENSION = "service"
DEFAULT_NAMESPACE = "NexusDeployer"


@dataclass(frozen=True)
class MetricSpec:
    name: str  # the CloudWatch metric name
    unit: str  # a CloudWatch unit: Count or Seconds here
    dimensions: tuple[str, ...]  # besides ``service``: every data point names exactly these
    description: str


class Metric(Enum):
    DEPLOYMENTS_STARTED = MetricSpec(
        "DeploymentsStarted", "Count", ("action",), "operations whose workflow execution started"
    )
    DEPLOYMENTS_SUCCEEDED = MetricSpec(
        "DeploymentsSucceeded", "Count", ("action",), "operations that ended SUCCEEDED (or PLANNED)"
    )
    DEPLOYMENTS_FAILED = MetricSpec(
        "DeploymentsFailed", "Count", ("error_code",), "operations that ended FAILED, by error code"
    )
    DEPLOYMENTS_CANCELLED = MetricSpec(
        "DeploymentsCancelled", "Count", ("action",), "operations that ended CANCELLED"
    )
    OPERATION_DURATION = MetricSpec(
        "OperationDuration", "Seconds", ("action",), "from an operation's start to its end"
    )
    ROLLOUT_ITEMS = MetricSpec("RolloutItemsEnded", "Count", ("status",), "rollout items, by final status")
    THROTTLES_RETRIED = MetricSpec(
        "ThrottlesRetried",
        "Count",
        ("aws_service",),
        "AWS calls throttled and retried by botocore, and throttled DynamoDB transactions sent again",
    )
    FALLBACK_RECONCILES = MetricSpec(
        "FallbackReconciles",
        "Count",
        ("wait",),
        "reconciles after a wait that no event ended, finding it had ended (a lost stack event or item end)",
    )
    NOTIFICATIONS_FAILED = MetricSpec(
        "NotificationsFailed", "Count", ("channel",), "notifications that could not be delivered"
    )
    COLD_STARTS = MetricSpec(
        "ColdStarts", "Count", ("function",), "first invocations of a function's process"
    )
    RETRIES_REQUESTED = MetricSpec(
        "RetriesRequested",
        "Count",
        ("function",),
        "invocations that handed a throttled AWS back to be run again (TransientAwsError left the "
        "handler: the step's Retry or Lambda's own retry runs it again); the Lambda errors alarms "
        "discount them",
    )

    @property
    def spec(self) -> MetricSpec:
        spec: MetricSpec = self.value
        return spec

    def check(self, dimensions: Mapping[str, str]) -> None:
        """Refuse a data point whose dimensions are not exactly the metric's own (a bug, not input)."""
        if set(dimensions) != set(self.spec.dimensions):
            raise ValueError(
                f"{self.spec.name} takes dimensions {sorted(self.spec.dimensions)}, not {sorted(dimensions)}"
            )
        empty = [name for name, value in dimensions.items() if not value]
        if empty:
            raise ValueError(f"{self.spec.name}: empty dimension value for {empty}")


# Where a fallback reconcile came from (FALLBACK_RECONCILES' ``wait`` dimension).
WAIT_STACK_EVENT = "stack_event"
WAIT_ITEM_END = "item_end"
