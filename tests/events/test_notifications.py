"""Outcome notifications: a signed webhook to a real HTTP server on 127.0.0.1, and SNS through moto.

The webhook receiver checks the signature exactly as a customer's would (``verify_signature``); the
SNS topic has an SQS queue subscribed, and the test reads the message from the queue.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.composition import Services
from chalicelib.service.notifications import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from localaws.environment import LocalAws
from tests.conftest import (
    TARGET_ACCOUNT,
    Tenant,
    call,
    register_target,
    remove_target_role,
    wait_for,
    webhook_receiver,
)
from tests.events.conftest import APP_STACK
from tests.support.polling import until

SECRET = "whsec-0123456789abcdef-do-not-log"


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    with webhook_receiver("/hooks/nexus?team=a") as served:
        yield served


@pytest.fixture
def local_client(local_services: Services) -> Iterator[tuple[Client, Tenant]]:
    with Client(app_module.app) as test_client:
        yield test_client, Tenant("tenant-a", local_services.auth.issue("tenant-a", "tests"))


def test_webhook_and_sns_get_signed_outcomes_of_success_and_failure(
    local_client, local_aws: LocalAws, receiver
):
    client, tenant = local_client
    url, received = receiver
    session = local_aws.account_session(TARGET_ACCOUNT)
    topic_arn = session.client("sns").create_topic(Name="deployments")["TopicArn"]
    sqs = session.client("sqs")
    queue_url = sqs.create_queue(QueueName="deployment-outcomes")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    session.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    target = register_target(client, tenant, local_aws)

    created = call(
        client,
        "POST",
        "/deployments",
        tenant,
        {
            "target_id": target["target_id"],
            "region": "us-east-1",
            "stack_name": "app",
            "template_body": APP_STACK,
            "notifications": {"sns_topic_arn": topic_arn, "webhook_url": url, "webhook_secret": SECRET},
        },
    )
    assert created.status_code == 202, created.body
    assert SECRET not in created.body.decode()
    deployment_id = json.loads(created.body)["deployment_id"]
    done = wait_for(client, tenant, deployment_id)
    assert done["status"] == "ACTIVE"
    assert done["notifications"] == {"sns_topic_arn": topic_arn, "webhook_url": url, "webhook_signed": True}

    # The webhook: one signed delivery, verifiable with the secret, fresh.
    # Sent right after the final state is saved.
    until(lambda: len(received) >= 1, timeout=10, interval=0.02, what="a webhook delivery")
    (delivery,) = received
    headers = delivery["headers"]
    assert headers["x-nexus-signature"].startswith("sha256=")
    assert verify_signature(
        SECRET,
        delivery["body"],
        headers[TIMESTAMP_HEADER.lower()],
        headers[SIGNATURE_HEADER.lower()],
        time.time(),
    )
    # The README's formula, computed here independently of the product's sign():
    # X-Nexus-Signature = "sha256=" + hex(HMAC-SHA256(secret, "<timestamp>.<body>")).
    timestamp = headers["x-nexus-timestamp"]
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + delivery["body"], hashlib.sha256)
    assert headers["x-nexus-signature"] == "sha256=" + expected.hexdigest()
    assert abs(int(timestamp) - time.time()) < 300
    assert not verify_signature(
        SECRET,
        delivery["body"] + b" ",
        headers[TIMESTAMP_HEADER.lower()],
        headers[SIGNATURE_HEADER.lower()],
        time.time(),
    )
    assert not verify_signature(  # a replay ten minutes later is refused
        SECRET,
        delivery["body"],
        headers[TIMESTAMP_HEADER.lower()],
        headers[SIGNATURE_HEADER.lower()],
        time.time() + 600,
    )
    message = json.loads(delivery["body"])
    assert message["type"] == "deployment.succeeded"
    assert message["deployment"]["deployment_id"] == deployment_id
    assert message["deployment"]["operation"]["status"] == "SUCCEEDED"
    assert "parameters" not in message["deployment"]
    assert delivery["path"] == "/hooks/nexus?team=a"

    # SNS: the same message, read from the subscribed queue.
    sns_message = _next_message(sqs, queue_url)
    assert json.loads(sns_message["Message"])["type"] == "deployment.succeeded"
    assert sns_message["MessageAttributes"]["deployment_id"]["Value"] == deployment_id

    # A failure is told too: the target account removes the role, then an update fails.
    remove_target_role(local_aws)
    assert (
        call(client, "PUT", f"/deployments/{deployment_id}", tenant, {"tags": {"x": "y"}}).status_code == 202
    )
    failed = wait_for(client, tenant, deployment_id)
    assert failed["status"] == "FAILED"
    until(lambda: len(received) >= 2, timeout=10, interval=0.02, what="a second webhook delivery")
    assert [json.loads(d["body"])["type"] for d in received] == ["deployment.succeeded", "deployment.failed"]
    failure = json.loads(received[1]["body"])["deployment"]["error"]
    assert failure["code"] == failed["error"]["code"]
    assert json.loads(_next_message(sqs, queue_url)["Message"])["type"] == "deployment.failed"

    # The secret is in Secrets Manager, never in the table.
    table = local_aws.account_session("123456789012").resource("dynamodb").Table(local_aws.central.table_name)
    assert SECRET not in json.dumps(table.scan()["Items"], default=str)


def test_notification_settings_are_validated(local_client, local_aws: LocalAws):
    client, tenant = local_client
    target = register_target(client, tenant, local_aws)
    base = {
        "target_id": target["target_id"],
        "region": "us-east-1",
        "stack_name": "app",
        "template_body": APP_STACK,
    }
    cases = {
        "topic in another account": {"sns_topic_arn": "arn:aws:sns:us-east-1:222222222222:theirs"},
        "webhook without secret": {"webhook_url": "https://example.com/hook"},
        "short secret": {"webhook_url": "https://example.com/hook", "webhook_secret": "short"},
        "ftp webhook": {"webhook_url": "ftp://example.com/hook", "webhook_secret": SECRET},
        "credentials in url": {"webhook_url": "https://u:p@example.com/hook", "webhook_secret": SECRET},
        "nothing": {},
    }
    for name, notifications in cases.items():
        response = call(client, "POST", "/deployments", tenant, {**base, "notifications": notifications})
        assert response.status_code == 422, (name, response.body)
        assert SECRET not in response.body.decode()


def test_a_failing_webhook_never_fails_the_operation(local_client, local_aws: LocalAws, caplog):
    client, tenant = local_client
    target = register_target(client, tenant, local_aws)
    created = call(
        client,
        "POST",
        "/deployments",
        tenant,
        {
            "target_id": target["target_id"],
            "region": "us-east-1",
            "stack_name": "app",
            "template_body": APP_STACK,
            "notifications": {"webhook_url": "http://127.0.0.1:9/closed", "webhook_secret": SECRET},
        },
    )
    assert created.status_code == 202, created.body
    done = wait_for(client, tenant, json.loads(created.body)["deployment_id"])
    assert done["status"] == "ACTIVE"
    assert SECRET not in caplog.text


def _next_message(sqs: Any, queue_url: str) -> dict[str, Any]:
    def taken() -> dict[str, Any] | None:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1).get("Messages", [])
        if not messages:
            return None
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
        body: dict[str, Any] = json.loads(messages[0]["Body"])
        return body

    return until(taken, timeout=10, what="a message on the queue")
