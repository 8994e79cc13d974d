"""ThrottlesRetried counts what botocore really retries: a real client against a real HTTP server that
answers DynamoDB's throttling errors, in the composition root's retry mode. It also counts a transaction
cancelled for a throttled item and sent again by ``transact_write_items`` (botocore never retries one)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from chalicelib.adapters.errors import transact_write_items
from chalicelib.adapters.metrics import InMemoryMetrics
from chalicelib.adapters.retries import ThrottleCounter
from chalicelib.domain.metrics import Metric
from tests.support.http_server import serving

THROTTLED = (
    400,
    {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "Rate exceeded"},
)
OVER_CAPACITY = (
    400,
    {
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "The level of configured provisioned throughput for the table was exceeded.",
    },
)
INVALID = (400, {"__type": "com.amazon.coral.validate#ValidationException", "message": "bad key"})
FOUND = (200, {"Item": {"pk": {"S": "a"}}})
WRITTEN: tuple[int, dict[str, Any]] = (200, {})


def cancelled(*reasons: str) -> tuple[int, dict[str, Any]]:
    """DynamoDB's answer to a cancelled transaction: one reason per item, "None" for the others."""
    return (
        400,
        {
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "Message": f"Transaction cancelled, please refer cancellation reasons for specific reasons "
            f"[{', '.join(reasons)}]",
            "CancellationReasons": [{"Code": reason} for reason in reasons],
        },
    )


PUTS = [{"Put": {"TableName": "t", "Item": {"pk": {"S": key}}}} for key in ("a", "b")]


@contextmanager
def dynamodb_answering(answers: list[tuple[int, dict[str, Any]]]) -> Iterator[tuple[str, list[str]]]:
    """A server answering each request with the next of ``answers`` (the last one repeats)."""
    received: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            received.append(self.headers["X-Amz-Target"])
            status, body = answers[min(len(received), len(answers)) - 1]
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("x-amzn-RequestId", f"req-{len(received)}")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Handler) as url:
        yield url, received


def observed_client(endpoint: str, metrics: InMemoryMetrics, attempts: int) -> Any:
    session = ThrottleCounter(metrics).observe(boto3.Session(region_name="us-east-1"))
    config = Config(retries={"mode": "standard", "total_max_attempts": attempts})
    return session.client("dynamodb", endpoint_url=endpoint, config=config)


def test_each_throttled_attempt_that_botocore_retries_is_counted_once() -> None:
    metrics = InMemoryMetrics()
    with dynamodb_answering([THROTTLED, OVER_CAPACITY, FOUND]) as (endpoint, received):
        client = observed_client(endpoint, metrics, attempts=5)
        item = client.get_item(TableName="t", Key={"pk": {"S": "a"}})
    assert item["Item"] == {"pk": {"S": "a"}}
    assert len(received) == 3
    assert metrics.points == [("ThrottlesRetried", 1.0, {"aws_service": "dynamodb"})] * 2


def test_the_last_throttled_attempt_is_not_counted_as_retried() -> None:
    metrics = InMemoryMetrics()
    with dynamodb_answering([THROTTLED]) as (endpoint, received):
        client = observed_client(endpoint, metrics, attempts=3)
        with pytest.raises(ClientError) as raised:
            client.get_item(TableName="t", Key={"pk": {"S": "a"}})
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    assert len(received) == 3  # three attempts, two retries
    assert metrics.total(Metric.THROTTLES_RETRIED) == 2


def test_errors_that_are_not_throttles_are_not_counted() -> None:
    metrics = InMemoryMetrics()
    with dynamodb_answering([INVALID]) as (endpoint, received):
        client = observed_client(endpoint, metrics, attempts=5)
        with pytest.raises(ClientError):
            client.get_item(TableName="t", Key={"pk": {"S": "a"}})
    assert len(received) == 1
    assert metrics.points == []


def test_a_transaction_sent_again_after_a_throttled_item_is_counted_and_a_conflict_is_not() -> None:
    metrics = InMemoryMetrics()
    answers = [
        cancelled("ThrottlingError", "None"),
        cancelled("None", "TransactionConflict"),
        cancelled("None", "ProvisionedThroughputExceeded"),
        WRITTEN,
    ]
    with dynamodb_answering(answers) as (endpoint, received):
        client = observed_client(endpoint, metrics, attempts=5)
        transact_write_items(client, PUTS, sleep=lambda _: None)
    assert received == ["DynamoDB_20120810.TransactWriteItems"] * 4
    # the throttled item's retry and the over-capacity one's; the conflict's retry is not a throttle
    assert metrics.points == [("ThrottlesRetried", 1.0, {"aws_service": "dynamodb"})] * 2


def test_a_throttled_transaction_given_up_is_not_counted_for_its_last_attempt() -> None:
    metrics = InMemoryMetrics()
    with dynamodb_answering([cancelled("ThrottlingError", "None")]) as (endpoint, received):
        client = observed_client(endpoint, metrics, attempts=3)
        with pytest.raises(ClientError) as raised:
            transact_write_items(client, PUTS, sleep=lambda _: None)
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert len(received) == 3
    assert metrics.total(Metric.THROTTLES_RETRIED) == 2


def test_a_transaction_refused_by_a_condition_is_neither_retried_nor_counted() -> None:
    metrics = InMemoryMetrics()
    with dynamodb_answering([cancelled("ConditionalCheckFailed", "ThrottlingError")]) as (endpoint, received):
        client = observed_client(endpoint, metrics, attempts=5)
        with pytest.raises(ClientError):
            transact_write_items(client, PUTS, sleep=lambda _: None)
    assert len(received) == 1
    assert metrics.points == []
