"""ThrottlesRetried counts what botocore really retries: a real client against a real HTTP server that
answers DynamoDB's throttling errors, in the composition root's retry mode."""

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
