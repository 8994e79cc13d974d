"""Rollout notifications, end to end: the real rollout.asl.json, a signed webhook to a real HTTP server
on 127.0.0.1 and an SNS topic (with an SQS queue subscribed) in one of the fleet's accounts.

The receiver checks each signature as a customer's would (``verify_signature``). Retries are the
state machine's own: a step that fails with TransientAwsError is run again by its ``Retry``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.adapters.notify import SnsTopicPublisher
from chalicelib.adapters.rollouts import DynamoRolloutStore
from chalicelib.composition import Services
from chalicelib.domain.errors import TransientAwsError
from chalicelib.service.notifications import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    NotificationService,
    verify_signature,
)
from chalicelib.steps import rollout_handlers
from localaws.environment import LocalAws
from tests.conftest import AwsCalls, Tenant, call, webhook_receiver
from tests.support.faults import refused_once
from tests.support.polling import until
from tests.workflow.rollout_helpers import wired_rollouts
from tests.workflow.test_rollouts import (
    account,
    break_account,
    register_fleet,
    rollout_body,
    wait_rollout,
)

SECRET = "whsec-rollout-0123456789-do-not-log"
PARAMETER_SECRET = "db-password-never-in-a-message"
QUEUE_WITH_SECRET = json.dumps(
    {
        "Parameters": {"DbPassword": {"Type": "String", "NoEcho": True}},
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
    }
)

Received = list[dict[str, Any]]


@pytest.fixture
def receiver() -> Iterator[tuple[str, Received]]:
    with webhook_receiver("/hooks/rollouts") as served:
        yield served


@pytest.fixture
def notifying(local_aws: LocalAws) -> Iterator[Services]:
    with wired_rollouts(local_aws) as built:
        yield built


@pytest.fixture
def nclient(notifying: Services) -> Iterator[Client]:
    with Client(app_module.app) as test_client:
        yield test_client


@pytest.fixture
def ntenant(notifying: Services) -> Tenant:
    return Tenant("tenant-a", notifying.auth.issue("tenant-a", "tests"))


def subscribed_topic(aws: LocalAws, account_id: str) -> tuple[str, Any, str]:
    session = aws.account_session(account_id)
    topic_arn = session.client("sns").create_topic(Name="rollouts")["TopicArn"]
    sqs = session.client("sqs")
    queue_url = sqs.create_queue(QueueName="rollout-outcomes")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    session.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return topic_arn, sqs, queue_url


def us_east_only(fleet: list[dict[str, Any]], **strategy: Any) -> dict[str, Any]:
    body = rollout_body(fleet, **strategy)
    body["targets"] = [{"target_id": t["target_id"], "regions": ["us-east-1"]} for t in fleet]
    return body


def start(client: Client, tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    response = call(client, "POST", "/rollouts", tenant, body)
    assert response.status_code == 202, response.body
    assert SECRET not in response.body.decode()
    started: dict[str, Any] = json.loads(response.body)
    return started


def verified(delivery: dict[str, Any]) -> dict[str, Any]:
    """The message, after checking its signature exactly as a receiver does."""
    headers = delivery["headers"]
    timestamp, signature = headers[TIMESTAMP_HEADER.lower()], headers[SIGNATURE_HEADER.lower()]
    assert signature.startswith("sha256=")
    assert verify_signature(SECRET, delivery["body"], timestamp, signature, time.time())
    assert not verify_signature(SECRET, delivery["body"] + b" ", timestamp, signature, time.time())
    assert not verify_signature("another-secret-of-16+", delivery["body"], timestamp, signature, time.time())
    message: dict[str, Any] = json.loads(delivery["body"])
    return message


def next_message(sqs: Any, queue_url: str) -> dict[str, Any] | None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1).get("Messages", [])
        if messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
            body: dict[str, Any] = json.loads(messages[0]["Body"])
            return body
        time.sleep(0.05)
    return None


def retried_steps(services: Services, tenant: Tenant, rollout_id: str) -> None:
    """Run the steps that end a rollout again, as Lambda does when it retries them."""
    ids = {"tenant_id": tenant.tenant_id, "rollout_id": rollout_id}
    assert rollout_handlers.next_wave(services, {**ids, "wave": {"run": False}}) == {"run": False}
    failure = {"Error": "States.Timeout", "Cause": ""}
    assert rollout_handlers.record_rollout_failure(services, {**ids, "error": failure})["recorded"]


# -- SUCCEEDED and FAILED ---------------------------------------------------------------------------


def test_a_succeeded_rollout_is_announced_once_signed_on_the_webhook_and_sns(
    nclient: Client, ntenant: Tenant, notifying: Services, local_aws: LocalAws, receiver: Any
) -> None:
    url, received = receiver
    fleet = register_fleet(nclient, ntenant, local_aws, 2)
    topic_arn, sqs, queue_url = subscribed_topic(local_aws, account(1))
    body = {
        **us_east_only(fleet, max_concurrent=2),
        "template_body": QUEUE_WITH_SECRET,
        "parameters": {"DbPassword": PARAMETER_SECRET},
        "notifications": {"sns_topic_arn": topic_arn, "webhook_url": url, "webhook_secret": SECRET},
    }
    started = start(nclient, ntenant, body)
    assert started["notifications"] == {
        "sns_topic_arn": topic_arn,
        "webhook_url": url,
        "webhook_signed": True,
    }
    rollout_id = started["rollout_id"]
    done = wait_rollout(nclient, ntenant, rollout_id)
    assert done["status"] == "SUCCEEDED", done["summary"]

    until(lambda: len(received) >= 1, timeout=15, interval=0.02, what="a webhook delivery")
    (delivery,) = received
    message = verified(delivery)
    assert message["type"] == "rollout.succeeded"
    rollout = message["rollout"]
    assert (rollout["rollout_id"], rollout["status"], rollout["stack_name"]) == (
        rollout_id,
        "SUCCEEDED",
        "fleet",
    )
    assert rollout["counts"] == done["counts"]
    assert rollout["counts"]["SUCCEEDED"] == 2
    assert rollout["summary"] == done["summary"]
    assert rollout["summary"].startswith("2 items in 2 accounts: 2 succeeded")
    assert rollout["failed_items"] == []
    for private in (SECRET, PARAMETER_SECRET, "AWS::SQS::Queue", "DbPassword", "webhook"):
        assert private not in delivery["body"].decode(), private
    assert len(delivery["headers"][DELIVERY_HEADER.lower()]) == 32

    sns = next_message(sqs, queue_url)
    assert sns is not None
    assert json.loads(sns["Message"])["rollout"]["rollout_id"] == rollout_id
    assert json.loads(sns["Message"])["type"] == "rollout.succeeded"
    assert sns["MessageAttributes"]["rollout_id"]["Value"] == rollout_id
    assert PARAMETER_SECRET not in sns["Message"]

    # Lambda retrying the steps that end a rollout sends nothing more, on either channel.
    retried_steps(notifying, ntenant, rollout_id)
    time.sleep(0.5)
    assert len(received) == 1
    assert next_message(sqs, queue_url) is None

    # The webhook secret is in Secrets Manager, never in the table.
    table = local_aws.account_session("123456789012").resource("dynamodb").Table(local_aws.central.table_name)
    assert SECRET not in json.dumps(table.scan()["Items"], default=str)


def test_a_failed_rollout_is_announced_naming_the_failed_item(
    nclient: Client, ntenant: Tenant, notifying: Services, local_aws: LocalAws, receiver: Any
) -> None:
    url, received = receiver
    fleet = register_fleet(nclient, ntenant, local_aws, 2)
    break_account(local_aws, 1)
    body = {
        **us_east_only(fleet, max_concurrent=1, failure_tolerance=0),
        "notifications": {"webhook_url": url, "webhook_secret": SECRET},
    }
    rollout_id = start(nclient, ntenant, body)["rollout_id"]
    done = wait_rollout(nclient, ntenant, rollout_id)
    assert done["status"] == "FAILED", done["summary"]

    until(lambda: len(received) >= 1, timeout=15, interval=0.02, what="a webhook delivery")
    retried_steps(notifying, ntenant, rollout_id)
    time.sleep(0.5)
    (delivery,) = received
    message = verified(delivery)
    assert message["type"] == "rollout.failed"
    rollout = message["rollout"]
    assert (rollout["rollout_id"], rollout["status"]) == (rollout_id, "FAILED")
    assert (rollout["counts"]["SUCCEEDED"], rollout["counts"]["FAILED"]) == (1, 1)
    assert rollout["error"]["code"] == "FAILURE_TOLERANCE_EXCEEDED"
    (failed,) = rollout["failed_items"]
    (item,) = [i for i in done["items"] if i["status"] == "FAILED"]
    assert (failed["target_id"], failed["account_id"], failed["region"]) == (
        fleet[1]["target_id"],
        account(1),
        "us-east-1",
    )
    assert failed["deployment_id"] == item["deployment_id"]
    assert failed["error"]["code"] == item["error"]["code"]
    assert failed["error"]["message"] == item["error"]["message"]
    assert f"{account(1)}/us-east-1" in failed["error"]["message"]
    assert "already exists" in failed["error"]["message"]
    assert rollout["failed_items_not_listed"] == 0
    for template_only in ("PAY_PER_REQUEST", "KeySchema", "AttributeDefinitions"):
        assert template_only not in delivery["body"].decode()  # the template is never sent


def test_a_paused_rollout_and_then_its_cancel_are_each_announced(
    nclient: Client, ntenant: Tenant, local_aws: LocalAws, receiver: Any
) -> None:
    url, received = receiver
    fleet = register_fleet(nclient, ntenant, local_aws, 2)
    break_account(local_aws, 0)
    body = {
        **us_east_only(fleet, canary=1, region_order=["us-east-1"]),
        "notifications": {"webhook_url": url, "webhook_secret": SECRET},
    }
    rollout_id = start(nclient, ntenant, body)["rollout_id"]
    assert wait_rollout(nclient, ntenant, rollout_id)["status"] == "PAUSED"
    until(lambda: len(received) >= 1, timeout=15, interval=0.02, what="a webhook delivery")
    paused = verified(received[0])
    assert paused["type"] == "rollout.paused"
    assert [i["account_id"] for i in paused["rollout"]["failed_items"]] == [account(0)]

    assert call(nclient, "POST", f"/rollouts/{rollout_id}/cancel", ntenant).status_code == 202
    until(lambda: len(received) >= 2, timeout=15, interval=0.02, what="a second webhook delivery")
    cancelled = verified(received[1])
    assert cancelled["type"] == "rollout.cancelled"
    assert cancelled["rollout"]["counts"]["CANCELLED"] == 1
    ids = {d["headers"][DELIVERY_HEADER.lower()] for d in received}
    assert len(ids) == 2  # two status changes, two announcements


# -- retries of the step that ends the rollout ------------------------------------------------------


def test_a_lost_announcement_is_sent_by_the_retried_step_and_a_sent_one_never_twice(
    nclient: Client,
    ntenant: Tenant,
    local_aws: LocalAws,
    receiver: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """NextWave saves SUCCEEDED, then fails before it claims the announcement (a throttled write):
    its Retry announces. That run fails again right after sending: the next Retry sends nothing."""
    url, received = receiver
    fleet = register_fleet(nclient, ntenant, local_aws, 1)
    claims: list[bool] = []
    died_after_sending: list[bool] = []
    claim = DynamoRolloutStore.claim_notice
    send = NotificationService.send

    def lost_claim(self: DynamoRolloutStore, rollout_id: str, key: str) -> bool:
        if not claims:
            claims.append(False)
            raise TransientAwsError("PutItem failed: throttled")
        claims.append(claim(self, rollout_id, key))
        return claims[-1]

    def send_then_fail(self: NotificationService, *args: Any, **kwargs: Any) -> None:
        send(self, *args, **kwargs)
        if not died_after_sending:
            died_after_sending.append(True)
            raise TransientAwsError("the Lambda died after the message went out")

    monkeypatch.setattr(DynamoRolloutStore, "claim_notice", lost_claim)
    monkeypatch.setattr(NotificationService, "send", send_then_fail)
    body = {
        **us_east_only(fleet),
        "notifications": {"webhook_url": url, "webhook_secret": SECRET},
    }
    rollout_id = start(nclient, ntenant, body)["rollout_id"]
    assert wait_rollout(nclient, ntenant, rollout_id)["status"] == "SUCCEEDED"
    until(  # NextWave ran three times: two Retries
        lambda: len(claims) >= 3, timeout=40, interval=0.02, what="three NextWave claims"
    )
    time.sleep(0.5)
    assert claims == [False, True, False]
    assert died_after_sending == [True]
    (delivery,) = received
    assert verified(delivery)["type"] == "rollout.succeeded"


def test_an_announcement_aws_throttled_is_sent_by_the_retried_step(
    nclient: Client, ntenant: Tenant, local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SNS's Publish throttled past botocore's retries: the claim is freed and NextWave fails with
    TransientAwsError, so its Retry announces; the topic gets the message once. (The claim used to stay
    taken and the announcement was lost.)"""
    fleet = register_fleet(nclient, ntenant, local_aws, 1)
    topic_arn, sqs, queue_url = subscribed_topic(local_aws, account(0))
    publish, refused = refused_once(
        SnsTopicPublisher.publish,
        lambda publisher, topic, subject, message, attributes: (
            (topic, attributes["type"]) if topic == topic_arn else None
        ),
    )
    monkeypatch.setattr(SnsTopicPublisher, "publish", publish)
    body = {**us_east_only(fleet), "notifications": {"sns_topic_arn": topic_arn}}
    rollout_id = start(nclient, ntenant, body)["rollout_id"]
    assert wait_rollout(nclient, ntenant, rollout_id)["status"] == "SUCCEEDED"
    sns = next_message(sqs, queue_url)
    assert refused == [(topic_arn, "rollout.succeeded")]  # NextWave's announcement, refused once
    assert sns is not None
    assert json.loads(sns["Message"])["type"] == "rollout.succeeded"
    assert next_message(sqs, queue_url) is None  # once


def test_a_cancel_through_the_api_whose_announcement_aws_throttled_still_answers_the_cancel(
    nclient: Client, ntenant: Tenant, local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelling a PAUSED rollout ends it in the request itself; its announcement throttled (no step to
    retry it here) does not turn the cancel that happened into a 503 that a retry would meet as 409."""
    fleet = register_fleet(nclient, ntenant, local_aws, 2)
    break_account(local_aws, 0)
    topic_arn, _, _ = subscribed_topic(local_aws, account(1))
    body = {
        **us_east_only(fleet, canary=1, region_order=["us-east-1"]),
        "notifications": {"sns_topic_arn": topic_arn},
    }
    rollout_id = start(nclient, ntenant, body)["rollout_id"]
    assert wait_rollout(nclient, ntenant, rollout_id)["status"] == "PAUSED"

    publish = SnsTopicPublisher.publish
    refused: list[tuple[str, str]] = []

    def throttled(
        publisher: SnsTopicPublisher, topic: str, subject: str, message: str, attributes: dict[str, str]
    ) -> None:
        if topic == topic_arn and attributes["type"] == "rollout.cancelled":  # every try of the cancel's
            refused.append((topic, attributes["type"]))
            raise TransientAwsError("Publish failed: Throttling: Rate exceeded")
        publish(publisher, topic, subject, message, attributes)

    monkeypatch.setattr(SnsTopicPublisher, "publish", throttled)
    cancelled = call(nclient, "POST", f"/rollouts/{rollout_id}/cancel", ntenant)
    assert refused == [(topic_arn, "rollout.cancelled")]  # the cancel's own announcement
    assert cancelled.status_code == 202, cancelled.body
    assert json.loads(cancelled.body)["status"] == "CANCELLED"


# -- validation -------------------------------------------------------------------------------------

WRITES = {"PutItem", "BatchWriteItem", "TransactWriteItems", "UpdateItem", "DeleteItem", "StartExecution"}


@pytest.mark.parametrize(
    ("notifications", "code", "needs_targets"),
    [
        ({"sns_topic_arn": "arn:aws:sns:us-east-1:999999999999:theirs"}, "INVALID_SNS_TOPIC", True),
        ({"sns_topic_arn": "arn:aws:sqs:us-east-1:300000000000:queue"}, "INVALID_SNS_TOPIC", False),
        ({"webhook_url": "https://example.com/hook"}, "WEBHOOK_SECRET_REQUIRED", False),
        ({"webhook_url": "ftp://example.com/hook", "webhook_secret": SECRET}, "INVALID_WEBHOOK_URL", False),
        (
            {"webhook_url": "https://u:p@example.com/h", "webhook_secret": SECRET},
            "INVALID_WEBHOOK_URL",
            False,
        ),
        (
            {"sns_topic_arn": "arn:aws:sns:us-east-1:300000000000:t", "webhook_secret": SECRET},
            "WEBHOOK_URL_REQUIRED",
            False,
        ),
        ({"webhook_url": "https://example.com/hook", "webhook_secret": "short"}, "VALIDATION_FAILED", False),
        ({}, "VALIDATION_FAILED", False),
        ({"email": "ops@example.com"}, "VALIDATION_FAILED", False),
    ],
)
def test_invalid_notifications_are_refused_before_any_write_or_aws_call(
    nclient: Client,
    ntenant: Tenant,
    local_aws: LocalAws,
    aws_calls: AwsCalls,
    notifications: dict[str, Any],
    code: str,
    needs_targets: bool,
) -> None:
    fleet = register_fleet(nclient, ntenant, local_aws, 1)
    aws_calls.clear()
    response = call(
        nclient, "POST", "/rollouts", ntenant, {**rollout_body(fleet), "notifications": notifications}
    )
    assert response.status_code == 422, response.body
    error = json.loads(response.body)["error"]
    assert set(error) == {"code", "message", "hint", "details"}
    assert error["code"] == code, error
    if code == "VALIDATION_FAILED":
        assert any(d["field"].startswith("notifications") for d in error["details"]), error
    else:
        assert error["details"]["field"].startswith("notifications."), error
    assert SECRET not in response.body.decode()
    assert [c for c in aws_calls.calls if c[1] in WRITES] == []
    assert [c for c in aws_calls.calls if c[0] != "dynamodb"] == []  # no Secrets Manager, SNS, STS
    reads = {op for _, op in aws_calls.calls}
    # The token's tenant is one GetItem; only the topic's owner needs the targets read.
    assert reads <= ({"GetItem", "Query"} if needs_targets else {"GetItem"}), aws_calls.calls
