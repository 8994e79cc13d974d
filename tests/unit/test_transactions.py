"""A DynamoDB transaction cancelled only in passing is sent again, as botocore sends again a throttled call.

botocore's standard retry never retries TransactionCanceledException, whatever its reasons; an item
throttled (ThrottlingError, ProvisionedThroughputExceeded) or held by another transaction
(TransactionConflict) is a passing state, and chalicelib/adapters/errors.py ``transact_write_items``
takes the transaction again, within the client's attempts and standard mode's backoff. A real client
(its config), botocore's Stubber for DynamoDB's answers.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from chalicelib.adapters.errors import aws_call, transact_write_items
from chalicelib.domain.errors import TransientAwsError

ITEMS = [
    {"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}, "sk": {"S": "x"}}}},
    {"Put": {"TableName": "t", "Item": {"pk": {"S": "b"}, "sk": {"S": "x"}}}},
]


def _client(attempts: int) -> Any:
    config = Config(retries={"mode": "standard", "total_max_attempts": attempts})
    return boto3.client(
        "dynamodb",
        region_name="us-east-1",
        aws_access_key_id="k",
        aws_secret_access_key="s",
        config=config,
    )


def _cancelled(stubber: Stubber, *reasons: str) -> None:
    stubber.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        service_message="Transaction cancelled",
        http_status_code=400,
        modeled_fields={"CancellationReasons": [{"Code": r} for r in reasons]},
    )


def _ok(stubber: Stubber) -> None:
    stubber.add_response("transact_write_items", {}, {"TransactItems": ITEMS})


def test_a_throttled_or_conflicting_transaction_is_sent_again_with_standard_backoff() -> None:
    client = _client(5)
    waits: list[float] = []
    with Stubber(client) as stubber:
        _cancelled(stubber, "None", "ThrottlingError")
        _cancelled(stubber, "ProvisionedThroughputExceeded", "None")
        _cancelled(stubber, "TransactionConflict", "None")
        _ok(stubber)
        transact_write_items(client, ITEMS, sleep=waits.append, jitter=lambda: 1.0)
        stubber.assert_no_pending_responses()
    assert waits == [1.0, 2.0, 4.0]  # standard mode's ceilings (full jitter: a random share of each)


def test_it_gives_up_after_the_clients_attempts_with_the_last_refusal_as_a_transient_error() -> None:
    client = _client(3)
    waits: list[float] = []
    with Stubber(client) as stubber:
        for _ in range(3):
            _cancelled(stubber, "ThrottlingError", "None")
        with pytest.raises(TransientAwsError), aws_call("TransactWriteItems"):
            transact_write_items(client, ITEMS, sleep=waits.append, jitter=lambda: 0.5)
        stubber.assert_no_pending_responses()
    assert waits == [0.5, 1.0]


@pytest.mark.parametrize(
    "reasons",
    [
        ("ConditionalCheckFailed", "None"),  # a condition did not hold: the caller decides
        ("ConditionalCheckFailed", "ThrottlingError"),  # never retried past a failed condition
        ("ValidationError", "None"),
    ],
)
def test_a_transaction_refused_for_a_reason_of_its_own_is_not_sent_again(reasons: tuple[str, ...]) -> None:
    client = _client(5)
    waits: list[float] = []
    with Stubber(client) as stubber:
        _cancelled(stubber, *reasons)
        with pytest.raises(ClientError) as raised:
            transact_write_items(client, ITEMS, sleep=waits.append)
        stubber.assert_no_pending_responses()
    assert [r["Code"] for r in raised.value.response["CancellationReasons"]] == list(reasons)
    assert waits == []


def test_the_backoff_is_capped_at_twenty_seconds() -> None:
    client = _client(8)
    waits: list[float] = []
    with Stubber(client) as stubber:
        for _ in range(7):
            _cancelled(stubber, "ThrottlingError")
        _ok(stubber)
        transact_write_items(client, ITEMS, sleep=waits.append, jitter=lambda: 1.0)
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 20.0, 20.0]
