"""Metrics and logs of real runs: the API and the real workflow on the local AWS, read from what the
process writes (EMF documents on stdout, Powertools' JSON log lines)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import observability
from chalicelib.domain.metrics import DEFAULT_NAMESPACE, Metric
from tests.conftest import execution_history, register_target
from tests.workflow.lifecycle_helpers import FAILING_SUBNET, QUEUE, accepted, create, settle, with_resources

STEPS = ("AcquireLock", "StartStackOperation", "AwaitStackEvent", "PollStack", "ReleaseLock")


def emf_documents(output: str) -> list[dict[str, Any]]:
    documents = []
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            documents.append(json.loads(line))
    return documents


def totals(documents: list[dict[str, Any]], metric: Metric) -> dict[tuple[tuple[str, str], ...], float]:
    """Sum of ``metric``'s values by its own dimensions, as CloudWatch would aggregate them."""
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for document in documents:
        name = metric.spec.name
        if name not in document:
            continue
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == DEFAULT_NAMESPACE
        assert directive["Metrics"] == [{"Name": name, "Unit": metric.spec.unit}]
        assert directive["Dimensions"][0] == ["service"]
        assert document["service"] == observability.SERVICE_NAME
        key = tuple((d, document[d]) for d in metric.spec.dimensions)
        found[key] = found.get(key, 0) + sum(document[name])
    return found


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Every log line of chalicelib, formatted by the service's own Powertools formatter."""
    observability.configure_logging()
    package = logging.getLogger("chalicelib")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(package.handlers[0].formatter)
    package.addHandler(handler)
    try:
        yield stream
    finally:
        package.removeHandler(handler)


def test_emf_documents_count_two_creates_that_succeed_and_one_that_fails(
    client: Any, tenant: Any, local_aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    target = register_target(client, tenant, local_aws)
    broken = with_resources(QUEUE, Subnet=FAILING_SUBNET)
    started = [
        accepted(create(client, tenant, target, template, stack_name=name))
        for name, template in (("one", QUEUE), ("two", QUEUE), ("three", broken))
    ]
    ended = [settle(client, tenant, d["deployment_id"]) for d in started]
    for deployment in ended:  # every step has run, the last one (which counts nothing) included
        execution_history(local_aws, deployment["operation"]["operation_id"])
    assert [d["status"] for d in ended] == ["ACTIVE", "ACTIVE", "FAILED"]
    assert ended[2]["error"]["code"] == "STACK_CREATE_FAILED"

    documents = emf_documents(capsys.readouterr().out)
    assert totals(documents, Metric.DEPLOYMENTS_STARTED) == {(("action", "create"),): 3}
    assert totals(documents, Metric.DEPLOYMENTS_SUCCEEDED) == {(("action", "create"),): 2}
    assert totals(documents, Metric.DEPLOYMENTS_FAILED) == {(("error_code", "STACK_CREATE_FAILED"),): 1}
    assert totals(documents, Metric.DEPLOYMENTS_CANCELLED) == {}
    durations = [d[Metric.OPERATION_DURATION.spec.name] for d in documents if "OperationDuration" in d]
    assert len(durations) == 3
    assert all(0 < value[0] < 60 for value in durations), durations
    failed = next(d for d in documents if "DeploymentsFailed" in d)
    # Published under service alone (the total the alarms read) and by error code.
    assert failed["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"], ["service", "error_code"]]
    # Events came for each stack: no wait ended by its timeout.
    assert totals(documents, Metric.FALLBACK_RECONCILES) == {}


def test_every_log_line_of_an_operation_carries_its_ids_and_the_requests_correlation_id(
    client: Any, tenant: Any, local_aws: Any, json_logs: io.StringIO
) -> None:
    target = register_target(client, tenant, local_aws)
    response = create(client, tenant, target, QUEUE, stack_name="traced")
    assert response.status_code == 202
    request_id = response.headers["X-Correlation-Id"]
    assert request_id  # API Gateway's request id when the caller sends none
    body = {
        "target_id": target["target_id"],
        "region": "us-east-1",
        "stack_name": "mine",
        "template_body": json.dumps(QUEUE),
    }
    mine = client.http.post(
        "/deployments",
        headers={**tenant.headers, "X-Correlation-Id": "deploy-from-pipeline-42"},
        body=json.dumps(body).encode(),
    )
    assert mine.status_code == 202, mine.body
    assert mine.headers["X-Correlation-Id"] == "deploy-from-pipeline-42"
    deployment = json.loads(mine.body)
    operation_id = deployment["operation"]["operation_id"]
    settle(client, tenant, deployment["deployment_id"])
    execution_history(local_aws, operation_id)
    settle(client, tenant, json.loads(response.body)["deployment_id"])

    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    ours = [line for line in lines if line.get("correlation_id") == "deploy-from-pipeline-42"]
    ended = {line["function"] for line in ours if line["message"] == "invocation ended"}
    assert ended == {"APIHandler", *STEPS}, ended
    for line in ours:
        assert line["tenant_id"] == tenant.tenant_id, line
        assert line["deployment_id"] == deployment["deployment_id"], line
        assert line["operation_id"] == operation_id, line
    # No line of this operation lacks its correlation id.
    assert [line for line in lines if line.get("operation_id") == operation_id and line not in ours] == []


def test_a_malformed_correlation_id_is_replaced_by_the_request_id(client: Any, tenant: Any) -> None:
    response = client.http.get(
        "/targets", headers={**tenant.headers, "X-Correlation-Id": "bad id\nwith newline"}
    )
    assert response.status_code == 200
    assert response.headers["X-Correlation-Id"] != "bad id\nwith newline"
    assert observability.valid_correlation_id(response.headers["X-Correlation-Id"])
