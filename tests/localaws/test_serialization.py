"""moto's response serializer with localaws/serialization.py's alias cache: byte-identical responses."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from localaws import serialization
from tests.support.dynamodb import pk_sk_table

EVERY_TYPE = {
    "pk": {"S": "p"},
    "sk": {"S": "s"},
    "n": {"N": "12.5"},
    "b": {"B": b"\x00\xffbytes"},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2"]},
    "bs": {"BS": [b"x", b"y"]},
    "m": {"M": {"inner": {"L": [{"S": "x"}, {"NULL": True}, {"BOOL": False}, {"M": {}}]}}},
    "l": {"L": []},
    "none": {"NULL": True},
    "yes": {"BOOL": True},
}

# (service, operation, a result as moto's responses hand it to the serializer)
RESULTS: list[tuple[str, str, Any]] = [
    (
        "dynamodb",
        "GetItem",
        {"Item": EVERY_TYPE, "ConsumedCapacity": {"TableName": "t", "CapacityUnits": 1.0}},
    ),
    ("dynamodb", "GetItem", {}),
    (
        "dynamodb",
        "Query",
        {
            "Items": [EVERY_TYPE, {"pk": {"S": "q"}}],
            "Count": 2,
            "ScannedCount": 2,
            "LastEvaluatedKey": {"pk": {"S": "q"}},
        },
    ),
    ("dynamodb", "TransactWriteItems", {"ConsumedCapacity": [], "ItemCollectionMetrics": {}}),
    (
        "dynamodb",
        "BatchGetItem",
        {"Responses": {"t": [EVERY_TYPE]}, "UnprocessedKeys": {}},
    ),
    (
        "stepfunctions",
        "DescribeExecution",
        {
            "executionArn": "arn:aws:states:us-east-1:123456789012:execution:m:e",
            "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:m",
            "name": "e",
            "status": "RUNNING",
            "input": "{}",
        },
    ),
    (
        "sts",
        "GetCallerIdentity",
        {"UserId": "u", "Account": "123456789012", "Arn": "arn:aws:iam::123456789012:user/u"},
    ),
]


def serialize(service: str, operation: str, result: Any) -> tuple[int, str]:
    from moto.core.responses import ActionContext, ActionResult
    from moto.core.serialize import get_serializer_class
    from moto.core.utils import get_service_model

    service_model = get_service_model(service)
    response: Any = SimpleNamespace()  # no RESPONSE_KEY_PATH_TO_TRANSFORMER, as dynamodb's responses
    protocol = service_model.protocol
    context = ActionContext(
        service_model,
        service_model.operation_model(operation),
        get_serializer_class(service, protocol),
        response,
    )
    status, _, body = ActionResult(result).execute_result(context)
    return int(status), str(body)


def test_canary_moto_serializer_internals_are_what_this_caches() -> None:
    """Fails loudly if moto changes the serializer code whose behaviour the cache reproduces."""
    serialization.check_moto_internals()
    from moto.core.serialize import ResponseSerializer

    serialization.install()
    serialization.install()  # idempotent
    assert ResponseSerializer.get_value is serialization._get_value
    serialization.check_moto_internals()


@pytest.mark.parametrize(("service", "operation", "result"), RESULTS)
def test_responses_are_byte_identical_to_motos_own(
    service: str, operation: str, result: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    serialization.install()
    cached = [serialize(service, operation, result) for _ in range(2)]  # derive, then reuse
    from moto.core.serialize import ResponseSerializer

    monkeypatch.setattr(ResponseSerializer, "get_value", serialization._original)
    assert cached == [serialize(service, operation, result)] * 2


@pytest.fixture
def table() -> Iterator[Any]:
    serialization.install()
    with pk_sk_table("t") as client:
        yield client


def test_every_attribute_type_survives_a_round_trip(table: Any) -> None:
    table.put_item(TableName="t", Item=EVERY_TYPE)
    got = table.get_item(TableName="t", Key={"pk": {"S": "p"}, "sk": {"S": "s"}}, ConsistentRead=True)["Item"]
    assert got == EVERY_TYPE
    queried = table.query(
        TableName="t", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p"}}
    )
    assert queried["Items"] == [EVERY_TYPE]
    assert queried["Count"] == 1
