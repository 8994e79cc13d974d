"""The handlers' middleware and the metrics adapters, without I/O: Chalice's own event objects."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from chalice.app import LambdaFunctionEvent

from chalicelib import observability
from chalicelib.adapters.metrics import EmfMetrics, InMemoryMetrics
from chalicelib.adapters.tracing import NoTracing
from chalicelib.domain.errors import TransientAwsError
from chalicelib.domain.metrics import Metric
from chalicelib.observability import Telemetry
from chalicelib.settings import TelemetrySettings
from localaws.lambda_runner import FakeContext


def step_event(function: str, **payload: Any) -> LambdaFunctionEvent:
    return LambdaFunctionEvent(payload, FakeContext(f"nexus-deployer-dev-{function}"))


def run(observe: Any, event: Any) -> dict[str, str | None]:
    """Invoke through the middleware; what the handler saw bound on its log lines."""
    seen: dict[str, str | None] = {}

    def handler(_: Any) -> str:
        for key in ("tenant_id", "deployment_id", "operation_id", "correlation_id"):
            seen[key] = observability.bound(key)
        return "done"

    assert observe(event, handler) == "done"
    return seen


def test_a_cold_start_is_counted_once_per_function_of_the_process() -> None:
    metrics = InMemoryMetrics()
    observe = observability.middleware(lambda: Telemetry(NoTracing(), metrics))
    for function in ("AcquireLock", "PollStack", "AcquireLock", "PollStack", "PollStack"):
        run(observe, step_event(function, tenant_id="t", deployment_id="d", operation_id="o"))
    assert metrics.points == [
        ("ColdStarts", 1.0, {"function": "AcquireLock"}),
        ("ColdStarts", 1.0, {"function": "PollStack"}),
    ]


def test_a_step_logs_with_its_inputs_ids_and_correlation_id_and_leaves_nothing_behind() -> None:
    observe = observability.middleware(lambda: Telemetry(NoTracing(), InMemoryMetrics()))
    event = step_event(
        "PollStack", tenant_id="t-1", deployment_id="dep-1", operation_id="op-1", correlation_id="c-9"
    )
    assert run(observe, event) == {
        "tenant_id": "t-1",
        "deployment_id": "dep-1",
        "operation_id": "op-1",
        "correlation_id": "c-9",
    }
    assert observability.bound("operation_id") is None  # cleared when the invocation ended
    # An input whose correlation id is not of the expected shape: the operation id stands in.
    forged = step_event("PollStack", tenant_id="t", operation_id="op-2", correlation_id="x\ny" * 3)
    assert run(observe, forged)["correlation_id"] == "op-2"


def test_keys_are_cleared_when_the_handler_raises() -> None:
    observe = observability.middleware(lambda: Telemetry(NoTracing(), InMemoryMetrics()))

    def failing(_: Any) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        observe(step_event("AcquireLock", tenant_id="t", operation_id="op-3"), failing)
    assert observability.bound("tenant_id") is None


def test_a_throttle_handed_back_for_a_retry_is_counted_and_still_raised() -> None:
    """TransientAwsError leaves a step on purpose (its Retry runs it again): counted by function, so
    the errors alarms can discount it; any other error is not."""
    metrics = InMemoryMetrics()
    observe = observability.middleware(lambda: Telemetry(NoTracing(), metrics))

    def throttled(_: Any) -> None:
        raise TransientAwsError("the call failed: ThrottlingException: Rate exceeded")

    def broken(_: Any) -> None:
        raise RuntimeError("boom")

    with pytest.raises(TransientAwsError):
        observe(step_event("PollStack", tenant_id="t", operation_id="op-1"), throttled)
    with pytest.raises(RuntimeError):
        observe(step_event("AcquireLock", tenant_id="t", operation_id="op-2"), broken)
    retries = [point for point in metrics.points if point[0] == "RetriesRequested"]
    assert retries == [("RetriesRequested", 1.0, {"function": "PollStack"})]


def test_on_aws_a_functions_metrics_carry_its_template_name_not_its_deployed_name() -> None:
    """CloudFormation names a function ``<stack>-<logical id>-<random suffix>``: read from that name, the
    ``function`` dimension would be the suffix, which no alarm reads. The template tells each function
    its name (NEXUS_FUNCTION_NAME), and the metrics carry that."""
    settings = TelemetrySettings.from_env({"NEXUS_FUNCTION_NAME": "PollStack"})
    metrics = InMemoryMetrics()
    observe = observability.middleware(lambda: Telemetry(NoTracing(), metrics, settings.function_name))
    deployed = LambdaFunctionEvent(
        {"tenant_id": "t", "operation_id": "op-1"}, FakeContext("nexus-deployer-PollStack-1Q2W3E4R5T6Y")
    )

    def throttled(_: Any) -> None:
        raise TransientAwsError("the call failed: ThrottlingException: Rate exceeded")

    with pytest.raises(TransientAwsError):
        observe(deployed, throttled)
    assert metrics.points == [
        ("ColdStarts", 1.0, {"function": "PollStack"}),
        ("RetriesRequested", 1.0, {"function": "PollStack"}),
    ]


def test_emf_document_names_the_metric_its_unit_and_both_dimension_sets() -> None:
    stream = io.StringIO()
    metrics = EmfMetrics("Team/Nexus", "nexus-deployer", stream)
    metrics.add(Metric.DEPLOYMENTS_FAILED, error_code="ACCESS_DENIED")
    metrics.add(Metric.OPERATION_DURATION, 12.5, action="update")
    failed, duration = (json.loads(line) for line in stream.getvalue().splitlines())
    assert failed["_aws"]["CloudWatchMetrics"] == [
        {
            "Namespace": "Team/Nexus",
            "Dimensions": [["service"], ["service", "error_code"]],
            "Metrics": [{"Name": "DeploymentsFailed", "Unit": "Count"}],
        }
    ]
    assert (failed["service"], failed["error_code"], failed["DeploymentsFailed"]) == (
        "nexus-deployer",
        "ACCESS_DENIED",
        [1.0],
    )
    assert duration["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [
        {"Name": "OperationDuration", "Unit": "Seconds"}
    ]
    assert duration["OperationDuration"] == [12.5]


@pytest.mark.parametrize("metrics", [EmfMetrics("N", "s", io.StringIO()), InMemoryMetrics()])
def test_a_data_point_must_name_exactly_its_metrics_dimensions(metrics: Any) -> None:
    with pytest.raises(ValueError, match="error_code"):
        metrics.add(Metric.DEPLOYMENTS_FAILED)
    with pytest.raises(ValueError, match="takes dimensions"):
        metrics.add(Metric.FALLBACK_RECONCILES, wait="stack_event", tenant_id="t-1")
    with pytest.raises(ValueError, match="empty"):
        metrics.add(Metric.COLD_STARTS, function="")


def test_metric_names_are_unique_and_cloudwatch_units() -> None:
    names = [m.spec.name for m in Metric]
    assert len(names) == len(set(names))
    assert {m.spec.unit for m in Metric} <= {"Count", "Seconds"}


def test_keys_read_back_from_a_record_are_only_an_operations_ids_and_a_valid_correlation_id() -> None:
    stored = {
        "tenant_id": "t-1",
        "deployment_id": "d-1",
        "operation_id": "op-1",
        "correlation_id": "req-42",
        "level": "DEBUG",  # Powertools' own field: it would replace the line's level
        "message": "%s %s",  # a %-format would break every line that logs it
    }
    assert observability.restored_keys(stored) == {
        "tenant_id": "t-1",
        "deployment_id": "d-1",
        "operation_id": "op-1",
        "correlation_id": "req-42",
    }
    tampered = {"operation_id": "op-1", "correlation_id": "bad\nid %s"}
    assert observability.restored_keys(tampered) == {"operation_id": "op-1"}
