"""Where an event that failed every attempt is kept: the deployed stack's own dead-letter queues.

A handler the template deployed is invoked asynchronously (``Invoke`` with ``InvocationType=Event``,
which Lambda treats as it treats EventBridge's delivery: localaws/async_invoke.py); with every call of
the service throttled and botocore told not to retry, the handler hands the throttle back
(TransientAwsError), Lambda runs the event twice more, then keeps it in the function's
``DeadLetterConfig`` queue. Read with boto3, as an operator reads them: a stack event goes to
StackEventDeadLetterQueue (its operation ends anyway, through the reconcile; a few there page no one), a
redeploy request to EventHandlerDeadLetterQueue (any message there pages: the redeploy was not made).
"""

from __future__ import annotations

import json
from typing import Any

from localaws.async_invoke import AsyncRetries
from localaws.environment import CENTRAL_ACCOUNT, LocalAws
from localaws.faults import FaultSettings
from tests.conftest import TARGET_ACCOUNT, local_aws_for_app, wired
from tests.support.polling import until

STACK_ID = f"arn:aws:cloudformation:us-east-1:{TARGET_ACCOUNT}:stack/app/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
STACK_EVENT = {
    "version": "0",
    "id": "evt-dead-letter",
    "detail-type": "CloudFormation Stack Status Change",
    "source": "aws.cloudformation",
    "account": TARGET_ACCOUNT,
    "time": "2026-12-07T12:00:00Z",
    "region": "us-east-1",
    "resources": [STACK_ID],
    "detail": {
        "stack-id": STACK_ID,
        "status-details": {"status": "UPDATE_COMPLETE", "status-reason": ""},
        "client-request-token": "nexus-op-dead-letter",
    },
}


def _redeploy_event(tenant_id: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "evt-redeploy-dead-letter",
        "detail-type": "Redeploy Requested",
        "source": "nexus.deployer",
        "account": CENTRAL_ACCOUNT,
        "time": "2026-12-07T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "tenant_id": tenant_id,
            "deployment_ids": ["dep-0123456789abcdef01234567"],
            "revision": "r1",
        },
    }


def _messages(aws: LocalAws, queue: str) -> list[dict[str, Any]]:
    sqs = aws.central_session().client("sqs")
    url = sqs.get_queue_url(QueueName=aws.stack.attribute(queue, "QueueName"))["QueueUrl"]
    found: list[dict[str, Any]] = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, MessageAttributeNames=["All"]
    ).get("Messages", [])
    return found


def _invoke_async(aws: LocalAws, function: str, event: dict[str, Any]) -> None:
    name = aws.stack.functions()[function].name
    answer = (
        aws.central_session()
        .client("lambda")
        .invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(event).encode())
    )
    assert answer["StatusCode"] == 202


def _why(message: dict[str, Any]) -> str:
    return str(message["MessageAttributes"]["ErrorMessage"]["StringValue"])


def test_a_failed_stack_event_and_a_failed_redeploy_land_in_their_own_dead_letter_queues() -> None:
    with (
        local_aws_for_app(
            faults=FaultSettings(throttle=1.0, seed=5), async_retries=AsyncRetries((0.0, 0.0))
        ) as aws,
        wired(aws, NEXUS_AWS_MAX_ATTEMPTS="1"),
    ):
        _invoke_async(aws, "StackStatusChanged", STACK_EVENT)
        kept = until(
            lambda: _messages(aws, "StackEventDeadLetterQueue"),
            timeout=30,
            what="the stack event in StackEventDeadLetterQueue",
        )
        assert aws.host.invocations["StackStatusChanged"] == 3  # the first attempt and Lambda's two retries
        assert [json.loads(m["Body"])["id"] for m in kept] == ["evt-dead-letter"]
        assert "Throttling" in _why(kept[0]) or "ProvisionedThroughputExceeded" in _why(kept[0]), _why(
            kept[0]
        )
        assert _messages(aws, "EventHandlerDeadLetterQueue") == []

        _invoke_async(aws, "RedeployRequested", _redeploy_event("tenant-a"))
        kept = until(
            lambda: _messages(aws, "EventHandlerDeadLetterQueue"),
            timeout=30,
            what="the redeploy request in EventHandlerDeadLetterQueue",
        )
        assert aws.host.invocations["RedeployRequested"] == 3
        assert [json.loads(m["Body"])["id"] for m in kept] == ["evt-redeploy-dead-letter"]
        assert "Throttling" in _why(kept[0]) or "ProvisionedThroughputExceeded" in _why(kept[0]), _why(
            kept[0]
        )
        assert len(_messages(aws, "StackEventDeadLetterQueue")) == 1  # still only the stack event
