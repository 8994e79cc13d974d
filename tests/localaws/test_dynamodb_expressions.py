"""Placeholders that no expression of the request uses are refused, as DynamoDB refuses them."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from localaws import dynamodb_expressions
from localaws.environment import LocalAws

KEY = {"pk": {"S": "a"}}
UNUSED = "Value provided in ExpressionAttributeValues unused in expressions: keys: {:unused}"


def test_canary_the_handlers_it_wraps_are_still_there() -> None:
    dynamodb_expressions.check_moto_internals()


def refusal(call: Any) -> str:
    with pytest.raises(ClientError) as refused:
        call()
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    return str(refused.value.response["Error"]["Message"])


def test_every_operation_refuses_an_unused_placeholder_and_takes_used_ones() -> None:
    with LocalAws() as aws:
        ddb: Any = aws.central_session().client("dynamodb")  # the calls below are built from dicts
        ddb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        used = {":s": {"S": "new"}}
        ddb.put_item(
            TableName="t",
            Item={**KEY, "s": {"S": "new"}},
            ConditionExpression="attribute_not_exists(pk) OR #s = :s",
            ExpressionAttributeNames={"#s": "s"},
            ExpressionAttributeValues=used,
        )
        extra = {**used, ":unused": {"S": "x"}}
        condition = {"ConditionExpression": "#s = :s", "ExpressionAttributeNames": {"#s": "s"}}
        calls = {
            "PutItem": lambda: ddb.put_item(
                TableName="t", Item=KEY, ExpressionAttributeValues=extra, **condition
            ),
            "DeleteItem": lambda: ddb.delete_item(
                TableName="t", Key=KEY, ExpressionAttributeValues=extra, **condition
            ),
            "Query": lambda: ddb.query(
                TableName="t",
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": "a"}, ":unused": {"S": "x"}},
            ),
            "Scan": lambda: ddb.scan(
                TableName="t",
                FilterExpression="#s = :s",
                ExpressionAttributeValues=extra,
                ExpressionAttributeNames={"#s": "s"},
            ),
            "TransactWriteItems": lambda: ddb.transact_write_items(
                TransactItems=[
                    {
                        "ConditionCheck": {
                            "TableName": "t",
                            "Key": KEY,
                            "ExpressionAttributeValues": used,
                            **condition,
                        }
                    },
                    {
                        "Put": {
                            "TableName": "t",
                            "Item": {"pk": {"S": "b"}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                            "ExpressionAttributeValues": {":unused": {"S": "x"}},
                        }
                    },
                ]
            ),
        }
        answers = {name: refusal(call) for name, call in calls.items()}
        assert answers == dict.fromkeys(calls, UNUSED)
        assert (
            refusal(lambda: ddb.put_item(TableName="t", Item=KEY, ExpressionAttributeValues=used))
            == "ExpressionAttributeValues can only be specified when using expressions"
        )
        assert (
            refusal(
                lambda: ddb.delete_item(
                    TableName="t",
                    Key=KEY,
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeNames={"#gone": "s"},
                )
            )
            == "Value provided in ExpressionAttributeNames unused in expressions: keys: {#gone}"
        )
        # Reads: a projection's names, each table's entry of a batch, each Get of a transaction.
        unused_name = "Value provided in ExpressionAttributeNames unused in expressions: keys: {#gone}"
        projection = {"ProjectionExpression": "#s", "ExpressionAttributeNames": {"#s": "s", "#gone": "x"}}
        reads = {
            "GetItem": lambda: ddb.get_item(TableName="t", Key=KEY, **projection),
            "BatchGetItem": lambda: ddb.batch_get_item(RequestItems={"t": {"Keys": [KEY], **projection}}),
            "TransactGetItems": lambda: ddb.transact_get_items(
                TransactItems=[{"Get": {"TableName": "t", "Key": KEY, **projection}}]
            ),
        }
        assert {name: refusal(call) for name, call in reads.items()} == dict.fromkeys(reads, unused_name)
        assert ddb.get_item(
            TableName="t", Key=KEY, ProjectionExpression="#s", ExpressionAttributeNames={"#s": "s"}
        )["Item"] == {"s": {"S": "new"}}
        # Nothing refused was written: the item is as the first put left it, and "b" was never put.
        assert ddb.get_item(TableName="t", Key=KEY)["Item"]["s"] == {"S": "new"}
        assert "Item" not in ddb.get_item(TableName="t", Key={"pk": {"S": "b"}})
