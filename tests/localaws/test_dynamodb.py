"""TransactWriteItems in the local AWS (localaws/dynamodb.py): all or nothing, at the cost of its items.

moto's own method deep-copies every table a transaction names; ours journals the items it touches.
These prove the replacement keeps AWS's semantics (a failing condition leaves every item as it was
and names each item's reason), and that its cost no longer depends on the size of the table.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from localaws import dynamodb
from tests.support.dynamodb import pk_sk_table

TABLE = "journal"


@pytest.fixture
def ddb() -> Iterator[Any]:
    dynamodb.install()
    stream = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    with pk_sk_table(TABLE, StreamSpecification=stream) as client:
        yield client


def key(pk: str, sk: str = "A") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def put(client: Any, pk: str, sk: str = "A", **attrs: str) -> None:
    item = {**key(pk, sk), **{k: {"S": v} for k, v in attrs.items()}}
    client.put_item(TableName=TABLE, Item=item)


def everything(client: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.scan(TableName=TABLE, ConsistentRead=True)["Items"]
    return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def stream_records(client: Any) -> int:
    """Records in the table's stream shard, read from moto (its DescribeStream is not implemented)."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    shard = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables[TABLE].stream_shard
    assert shard is not None
    return len(shard.items)


def test_canary_moto_transact_write_items_is_what_this_replaces() -> None:
    """Fails loudly if moto changes the method (or anything it calls) that localaws/dynamodb.py replaces."""
    dynamodb.check_moto_internals()
    from moto.dynamodb.models import DynamoDBBackend

    dynamodb.install()
    dynamodb.install()  # idempotent
    assert DynamoDBBackend.transact_write_items is dynamodb._transact_write_items
    dynamodb.check_moto_internals()  # still checks moto's original after the swap


def test_a_failing_condition_leaves_every_item_unchanged_and_names_the_reasons(ddb: Any) -> None:
    put(ddb, "updated", status="old")
    put(ddb, "deleted", status="here")
    put(ddb, "guard", status="locked")
    before, records_before = everything(ddb), stream_records(ddb)

    with pytest.raises(ClientError) as raised:
        ddb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": key("updated"),
                        "UpdateExpression": "SET #s = :new",
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": {":new": {"S": "new"}},
                    }
                },
                {"Put": {"TableName": TABLE, "Item": {**key("created", "B"), "status": {"S": "new"}}}},
                {"Delete": {"TableName": TABLE, "Key": key("deleted")}},
                {
                    "ConditionCheck": {
                        "TableName": TABLE,
                        "Key": key("guard"),
                        "ConditionExpression": "#s = :free",
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": {":free": {"S": "free"}},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
                # After the failure, as on AWS, the remaining items are still evaluated and reported.
                {"Put": {"TableName": TABLE, "Item": {**key("created", "C")}}},
            ]
        )

    error = raised.value.response
    assert error["Error"]["Code"] == "TransactionCanceledException"
    reasons = error["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "None", "None", "ConditionalCheckFailed", "None"]
    assert reasons[3]["Item"] == {**key("guard"), "status": {"S": "locked"}}
    assert "[None, None, None, ConditionalCheckFailed, None]" in error["Error"]["Message"]
    assert everything(ddb) == before  # the update, the two puts and the delete were all undone
    assert stream_records(ddb) == records_before  # and so were the stream records they wrote
    queried = ddb.query(
        TableName=TABLE, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "created"}}
    )
    assert queried["Items"] == []


def test_a_transaction_that_passes_applies_every_item(ddb: Any) -> None:
    put(ddb, "counter", n="0")
    ddb.transact_write_items(
        TransactItems=[
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": key("new"),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": key("counter"),
                    "UpdateExpression": "SET n = :one",
                    "ExpressionAttributeValues": {":one": {"S": "1"}},
                }
            },
        ]
    )
    assert everything(ddb) == [{**key("counter"), "n": {"S": "1"}}, key("new")]


def test_naming_one_item_twice_is_refused_and_changes_nothing(ddb: Any) -> None:
    put(ddb, "twice", status="old")
    before = everything(ddb)
    with pytest.raises(ClientError) as raised:
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": {**key("twice"), "status": {"S": "first"}}}},
                {"Delete": {"TableName": TABLE, "Key": key("twice")}},
            ]
        )
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert everything(ddb) == before


def test_a_table_named_by_arn_is_rolled_back_too(ddb: Any) -> None:
    """moto 5.2.5 only snapshots tables named by name: this transaction was left half-applied."""
    arn = ddb.describe_table(TableName=TABLE)["Table"]["TableArn"]
    with pytest.raises(ClientError):
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": arn, "Item": key("by-arn")}},
                {
                    "ConditionCheck": {
                        "TableName": arn,
                        "Key": key("missing"),
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    assert everything(ddb) == []


def test_the_cost_is_the_items_touched_not_the_table(ddb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto deep-copied whole tables per transaction (O(table)); the journal copies the items it names."""
    from moto.dynamodb.models.dynamo_type import Item

    for n in range(300):
        put(ddb, f"filler-{n:03d}")
    copied: list[object] = []
    original = Item.__deepcopy__

    def counting(self: Any, memo: dict[int, Any]) -> Any:
        copied.append(self)
        return original(self, memo)

    monkeypatch.setattr(Item, "__deepcopy__", counting)
    with pytest.raises(ClientError):
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": {**key("filler-001"), "x": {"S": "1"}}}},
                {
                    "Delete": {
                        "TableName": TABLE,
                        "Key": key("filler-002"),
                        "ConditionExpression": "x = :y",
                        "ExpressionAttributeValues": {":y": {"S": "nope"}},
                    }
                },
            ]
        )
    assert len(copied) <= 2  # one before-image per item; moto copied all 300
    assert len(everything(ddb)) == 300
    assert "x" not in ddb.get_item(TableName=TABLE, Key=key("filler-001"))["Item"]
