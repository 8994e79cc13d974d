"""Metrics and logs of real runs: the API and the real workflow on the local AWS, read from what the
process writes (EMF documents on stdout, Powertools' JSON log lines)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib import observability
from chalicelib.domain.metrics import DEFAULT_NAMESPACE, Metric
from localaws.cloudformation import StackSimulation
from localaws.environment import LocalAws
from tests.conftest import (
    Tenant,
    call,
    deploy,
    deployment_request,
    execution_history,
    local_aws_for_app,
    register_target,
    running_executions,
    wait_for,
    wired,
)
from tests.support.polling import until
from tests.workflow.lifecycle_helpers import (
    FAILING_SUBNET,
    QUEUE,
    accepted,
    create,
    settle,
    waiting_for_stack_event,
    with_resources,
)
from tests.workflow.test_rollouts import register_fleet, wait_rollout

TWO_QUEUES = json.dumps(with_resources(QUEUE, R={"Type": "AWS::SQS::Queue"}))
STEPS = ("AcquireLock", "StartStackOperation", "AwaitStackEvent", "PollStack", "ReleaseLock")
EVENT_HANDLERS = ("StackStatusChanged", "DeploymentExecutionEnded")
UNSUCCESSFUL = ("FAILED", "TIMED_OUT", "ABORTED")
ITEM_STEPS = ("StartItem", "PollItem", "AwaitItem", "RecordItemFailure")


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


def bus_events(aws: LocalAws) -> Callable[[], list[dict[str, Any]]]:
    """What the central bus gets from CloudFormation (the target accounts' forwarded stack events) and
    Step Functions, as the service's own rules get it: a rule of the test's sends it to a queue. The
    answer reads what has arrived so far (everything since the call, each time)."""
    session = aws.central_session()
    sqs, events = session.client("sqs"), session.client("events")
    url = sqs.create_queue(QueueName="heard")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="heard", EventPattern=json.dumps({"source": ["aws.cloudformation", "aws.states"]}))
    events.put_targets(Rule="heard", Targets=[{"Id": "q", "Arn": arn}])
    heard: list[dict[str, Any]] = []

    def read() -> list[dict[str, Any]]:
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            heard.extend(json.loads(m["Body"]) for m in messages)
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
            )
        return list(heard)

    return read


def events_of_the_run(heard: list[dict[str, Any]], stack_name: str, operation_id: str) -> set[str]:
    """The ids of the events that the service acts on for this operation: its stack's settled statuses
    (an *_IN_PROGRESS one is read by nothing, so it is logged as itself) and its execution's end if the
    execution did not succeed (the service's rule takes only those)."""
    ids = set()
    for event in heard:
        detail = event["detail"]
        if event["source"] == "aws.cloudformation":
            settled = not detail["status-details"]["status"].endswith("_IN_PROGRESS")
            if settled and f":stack/{stack_name}/" in detail["stack-id"]:
                ids.add(event["id"])
        elif detail["status"] in UNSUCCESSFUL and detail["executionArn"].endswith(f":{operation_id}"):
            ids.add(event["id"])
    return ids


def handled(
    heard: Callable[[], list[dict[str, Any]]],
    stream: io.StringIO,
    stack_name: str,
    operation_id: str,
    count: int,
) -> set[str]:
    """The ids of the ``count`` events about the run, once the handler of each has written its last line."""

    def ended() -> set[str] | None:
        events = events_of_the_run(heard(), stack_name, operation_id)
        ends = [line for line in logged(stream) if line["message"] == "invocation ended"]
        # An event's id is its line's event_id, or its correlation id where nothing names one.
        done = {
            line.get("event_id") or line.get("correlation_id")
            for line in ends
            if line["function"] in EVENT_HANDLERS
        }
        return events if len(events) == count and events <= done else None

    return until(ended, timeout=20, what=f"{count} events about {operation_id} handled")


def concerning(
    lines: list[dict[str, Any]], deployment_id: str, operation_id: str, event_ids: set[str]
) -> list[dict[str, Any]]:
    """Every line about the operation, whatever it carries: its ids, or the id of an event about it
    handled by the function for such events (as ``event_id``, or as the correlation id that the event's
    line would otherwise have). RolloutExecutionEnded, which ignores a deployment execution's end, is not
    about the operation."""
    return [
        line
        for line in lines
        if line.get("operation_id") == operation_id
        or line.get("deployment_id") == deployment_id
        or (
            line.get("function") in EVENT_HANDLERS
            and {line.get("event_id"), line.get("correlation_id")} & event_ids
        )
    ]


def logged(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def keys_of(line: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(line.get(k) for k in ("tenant_id", "deployment_id", "operation_id", "correlation_id"))


def without(wanted: tuple[str, ...], lines: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The lines whose keys are not ``wanted``: what wrote them, and what they carry."""
    return [
        (line.get("function"), line["message"], *keys_of(line)) for line in lines if keys_of(line) != wanted
    ]


def test_every_log_line_of_an_operation_carries_its_ids_and_the_requests_correlation_id(
    json_logs: io.StringIO,
) -> None:
    """A run from the API through its execution and the stack event that releases its wait. Stacks take
    4 s here, so the event comes after the wait registered, even on a loaded machine: an event that comes
    before the operation's first wait finds no waiter's record to learn the operation from, and is
    logged as itself."""
    with (
        local_aws_for_app(simulation=StackSimulation(stack_seconds=4)) as aws,
        wired(aws) as services,
        Client(app_module.app) as client,
    ):
        heard = bus_events(aws)
        tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
        target = register_target(client, tenant, aws)
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
        execution_history(aws, operation_id)
        settle(client, tenant, json.loads(response.body)["deployment_id"])
        events = handled(heard, json_logs, "mine", operation_id, 1)  # CREATE_COMPLETE

    ours = concerning(logged(json_logs), deployment["deployment_id"], operation_id, events)
    ended = {line["function"] for line in ours if line["message"] == "invocation ended"}
    assert ended == {"APIHandler", *STEPS, "StackStatusChanged"}, ended
    wanted = (tenant.tenant_id, deployment["deployment_id"], operation_id, "deploy-from-pipeline-42")
    assert without(wanted, ours) == [], wanted


def test_a_stopped_runs_stack_events_and_its_end_log_under_its_ids_and_correlation_id(
    json_logs: io.StringIO,
) -> None:
    """One run from the API to its end by DeploymentExecutionEnded: the execution is stopped while it
    waits for its stack, whose CREATE_COMPLETE comes after (and finds the stopped execution's waiter).
    Every line about it, by its ids or by an event about it, carries its ids and the request's
    correlation id: the events' handlers learn them from the execution's input and the waiter's record."""
    with (
        local_aws_for_app(simulation=StackSimulation(stack_seconds=6)) as aws,
        wired(aws) as services,
        Client(app_module.app) as client,
    ):
        heard = bus_events(aws)
        tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
        target = register_target(client, tenant, aws)
        body = deployment_request(target["target_id"], "stopped", json.dumps(QUEUE))
        response = call(client, "POST", "/deployments", tenant, body, X_Correlation_Id="stopped-run-7")
        deployment = accepted(response)
        deployment_id, operation_id = deployment["deployment_id"], deployment["operation"]["operation_id"]
        (execution,) = until(
            lambda: running_executions(aws, aws.central.state_machine_arn), what="the execution"
        )
        until(lambda: waiting_for_stack_event(aws, execution["executionArn"]), what="WaitForStackEvent")
        aws.central_session().client("stepfunctions").stop_execution(executionArn=execution["executionArn"])
        assert wait_for(client, tenant, deployment_id)["error"]["code"] == "EXECUTION_ABORTED"

        events = handled(heard, json_logs, "stopped", operation_id, 2)  # CREATE_COMPLETE, the execution's end

    ours = concerning(logged(json_logs), deployment_id, operation_id, events)
    ended = {line["function"] for line in ours if line["message"] == "invocation ended"}
    assert ended >= {"APIHandler", "StackStatusChanged", "DeploymentExecutionEnded", "AwaitStackEvent"}, ended
    wanted = (tenant.tenant_id, deployment_id, operation_id, "stopped-run-7")
    assert without(wanted, ours) == [], wanted


def test_the_rollout_item_steps_log_the_items_operation(
    client: Any, tenant: Any, local_aws: LocalAws, json_logs: io.StringIO
) -> None:
    """An item step's input names the rollout and the item: each step reads the item's record, and
    its lines name the item's deployment and operation too. PollItem runs in the poll loop; AwaitItem
    and RecordItemFailure are then invoked with the input the Map gives them (the item has ended)."""
    with wired(local_aws, NEXUS_COMPLETION_MODE="poll"):
        (target,) = register_fleet(client, tenant, local_aws, 1)
        body = {
            "stack_name": "fleet",
            "template_body": json.dumps(QUEUE),
            "targets": [{"target_id": target["target_id"], "regions": ["us-east-1"]}],
        }
        response = call(client, "POST", "/rollouts", tenant, body, X_Correlation_Id="rollout-run-5")
        rollout_id = accepted(response)["rollout_id"]
        (item,) = wait_rollout(client, tenant, rollout_id)["items"]
        item_input = {"tenant_id": tenant.tenant_id, "rollout_id": rollout_id, "item_id": item["item_id"]}
        item_input["correlation_id"] = "rollout-run-5"  # as the Map passes its rollout's on
        assert local_aws.host.invoke("AwaitItem", {**item_input, "task_token": "t-gone"}) == {
            "waiting": False
        }
        failure = {"Error": "States.TaskFailed", "Cause": "a step that failed"}
        ended = local_aws.host.invoke(
            "RecordItemFailure", {**item_input, "error": failure, "resumable": True}
        )
        assert (ended["done"], ended["recorded"]) == (True, None)  # the item has ended: nothing recorded
    operation_id = wait_for(client, tenant, item["deployment_id"])["operation"]["operation_id"]

    lines = [line for line in logged(json_logs) if line.get("rollout_id") == rollout_id]
    steps = [line for line in lines if line["function"] in ITEM_STEPS]
    assert {line["function"] for line in steps} == set(ITEM_STEPS)
    wanted = (tenant.tenant_id, item["deployment_id"], operation_id, "rollout-run-5")
    assert without(wanted, steps) == [], wanted


def test_each_deployment_of_a_redeploy_logs_its_own_tenant_and_ids(
    client: Any, tenant: Any, local_aws: LocalAws, json_logs: io.StringIO
) -> None:
    """One redeploy event names two deployments: the first is redeployed, the second (deleted) refused.
    The event names the tenant; each deployment's lines name it and that deployment (and the operation
    started for it), the refusal none of the first deployment's operation."""
    target = register_target(client, tenant, local_aws)
    first, second = (deploy(client, tenant, target["target_id"], name, json.dumps(QUEUE)) for name in "ab")
    before = wait_for(client, tenant, first)["operation"]["operation_id"]
    wait_for(client, tenant, second)
    assert call(client, "DELETE", f"/deployments/{second}", tenant).status_code == 202
    assert wait_for(client, tenant, second)["status"] == "DELETED"

    detail = {"tenant_id": tenant.tenant_id, "deployment_ids": [first, second]}
    (put,) = (
        local_aws.central_session()
        .client("events")
        .put_events(
            Entries=[
                {"Source": "nexus.deployer", "DetailType": "Redeploy Requested", "Detail": json.dumps(detail)}
            ]
        )["Entries"]
    )
    until(
        lambda: json.loads(call(client, "GET", f"/deployments/{first}", tenant).body)["operation"],
        ready=lambda operation: operation["operation_id"] != before,
        what="the redeploy of the first deployment",
    )
    redeploy = wait_for(client, tenant, first)["operation"]["operation_id"]
    until(
        lambda: [line for line in logged(json_logs) if line.get("function") == "RedeployRequested"],
        ready=lambda ended: any(line["message"] == "invocation ended" for line in ended),
        what="the redeploy event handled",
    )

    lines = [
        line
        for line in logged(json_logs)
        if put["EventId"] in (line.get("event_id"), line.get("correlation_id"))
    ]
    refused = [line for line in lines if line["message"] == "redeploy refused"]
    assert [line["deployment_id"] for line in refused] == [second]
    assert {line.get("tenant_id") for line in lines} == {tenant.tenant_id}
    allowed = {(first, redeploy), (first, None), (second, None), (None, None)}
    assert {(line.get("deployment_id"), line.get("operation_id")) for line in lines} <= allowed


def test_a_cancel_request_logs_the_ids_of_the_operation_it_cancels(json_logs: io.StringIO) -> None:
    with (
        local_aws_for_app(simulation=StackSimulation(stack_seconds=3)) as aws,
        wired(aws) as services,
        Client(app_module.app) as client,
    ):
        tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
        target = register_target(client, tenant, aws)
        deployment_id = deploy(client, tenant, target["target_id"], "cancelled", json.dumps(QUEUE))
        wait_for(client, tenant, deployment_id)
        update = accepted(
            call(client, "PUT", f"/deployments/{deployment_id}", tenant, {"template_body": TWO_QUEUES})
        )
        response = call(
            client, "POST", f"/deployments/{deployment_id}/cancel", tenant, X_Correlation_Id="cancel-3"
        )
        assert response.status_code == 202, response.body
        assert settle(client, tenant, deployment_id)["operation"]["status"] == "CANCELLED"

    lines = [line for line in logged(json_logs) if line.get("correlation_id") == "cancel-3"]
    assert [line["function"] for line in lines] == ["APIHandler"]
    wanted = (tenant.tenant_id, deployment_id, update["operation"]["operation_id"], "cancel-3")
    assert without(wanted, lines) == [], wanted


def test_inspect_target_logs_under_the_correlation_id_of_the_request_that_invoked_it(
    client: Any, tenant: Any, local_aws: LocalAws, json_logs: io.StringIO
) -> None:
    target = register_target(client, tenant, local_aws)
    path = f"/targets/{target['target_id']}/validate"
    assert call(client, "POST", path, tenant, X_Correlation_Id="inspect-7").status_code == 200

    inspected = [line for line in logged(json_logs) if line.get("function") == "InspectTarget"]
    assert [(line["correlation_id"], line["tenant_id"]) for line in inspected] == [
        ("inspect-7", tenant.tenant_id)
    ]


def test_a_malformed_correlation_id_is_replaced_by_the_request_id(client: Any, tenant: Any) -> None:
    response = client.http.get(
        "/targets", headers={**tenant.headers, "X-Correlation-Id": "bad id\nwith newline"}
    )
    assert response.status_code == 200
    assert response.headers["X-Correlation-Id"] != "bad id\nwith newline"
    assert observability.valid_correlation_id(response.headers["X-Correlation-Id"])
