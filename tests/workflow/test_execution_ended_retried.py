"""DeploymentExecutionEnded is idempotent under Lambda's retry of its event.

Step Functions' "Execution Status Change" event reaches the handler asynchronously, so when an attempt
fails after its work (its answer lost), Lambda runs the same event again (localaws/async_invoke.py). The
crash is the local AWS's own fault (``crash_after``): the first attempt ends the operation, then fails;
the retry must find the operation ended and record nothing more.
"""

from __future__ import annotations

import json
from typing import Any

from chalice.test import Client

import app as app_module
from localaws import faults
from localaws.async_invoke import AsyncRetries
from localaws.cloudformation import StackSimulation
from localaws.environment import LocalAws
from localaws.faults import FaultSettings
from tests.conftest import (
    Tenant,
    call,
    deploy,
    local_aws_for_app,
    register_target,
    running_executions,
    wait_for,
    wired,
)
from tests.support.polling import until
from tests.workflow.lifecycle_helpers import waiting_for_stack_event

QUEUE = json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})
HANDLER = "DeploymentExecutionEnded"


def _waiting_execution(aws: LocalAws) -> str:
    """The deployment's execution, once it waits in WaitForStackEvent (its task token parked)."""

    def waiting() -> str | None:
        for execution in running_executions(aws, aws.central.state_machine_arn):
            if waiting_for_stack_event(aws, execution["executionArn"]):
                return str(execution["executionArn"])
        return None

    arn: str = until(waiting, timeout=30, what="the execution waiting in WaitForStackEvent")
    return arn


def _dead_letters(aws: LocalAws) -> list[Any]:
    sqs = aws.central_session().client("sqs")
    url = sqs.get_queue_url(QueueName=aws.stack.attribute("EventHandlerDeadLetterQueue", "QueueName"))[
        "QueueUrl"
    ]
    messages: list[Any] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return messages


def test_a_retried_execution_end_event_records_the_operations_end_once() -> None:
    with (
        local_aws_for_app(
            simulation=StackSimulation(stack_seconds=30),
            faults=FaultSettings(crash_after=frozenset({HANDLER})),
            async_retries=AsyncRetries((0.2, 0.4)),
        ) as aws,
        wired(aws) as services,
        Client(app_module.app) as client,
    ):
        tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
        target = register_target(client, tenant, aws)
        deployment_id = deploy(client, tenant, target["target_id"], "retried", QUEUE)
        execution_arn = _waiting_execution(aws)

        aws.central_session().client("stepfunctions").stop_execution(
            executionArn=execution_arn, error="Operator", cause="stopped by the test"
        )
        ended = wait_for(client, tenant, deployment_id, timeout=30)
        # The first attempt recorded the end, then crashed; Lambda ran the event once more.
        until(lambda: aws.host.invocations[HANDLER] >= 2, timeout=15, what="the retried attempt")
        assert faults.counts() == {f"crash:{HANDLER}": 1}
        assert aws.host.invocations[HANDLER] == 2
        assert _dead_letters(aws) == []  # the retry succeeded

        assert ended["operation"]["status"] == "FAILED"
        assert ended["error"]["code"] == "EXECUTION_ABORTED"
        body = call(client, "GET", f"/deployments/{deployment_id}/events", tenant).body
        items: list[dict[str, Any]] = json.loads(body)["items"]
        endings = [e for e in items if e["source"] != "stack" and e["status"] == "FAILED"]
        assert len(endings) == 1, items
        assert "EXECUTION_ABORTED" in endings[0]["message"]
        again = json.loads(call(client, "GET", f"/deployments/{deployment_id}", tenant).body)
        assert again["operation"] == ended["operation"]
        assert again["error"] == ended["error"]
