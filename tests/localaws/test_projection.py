"""DynamoDB projections with localaws/projection.py: the same answers as moto's own ``Item.project``,
through GetItem, BatchGetItem and Query, for top-level names (the patched path) and every other kind of
path (moto's)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from localaws import projection
from tests.support.dynamodb import pk_sk_table

ITEM: dict[str, Any] = {
    "pk": {"S": "p"},
    "sk": {"S": "s"},
    "n": {"N": "12.50"},
    "b": {"B": b"\x00\xffbytes"},
    "ss": {"SS": ["b", "a"]},
    "ns": {"NS": ["2", "1"]},
    "m": {"M": {"inner": {"L": [{"S": "x"}, {"NULL": True}, {"BOOL": False}, {"M": {"deep": {"N": "3"}}}]}}},
    "l": {"L": [{"S": "first"}, {"M": {"k": {"S": "v"}}}]},
    "none": {"NULL": True},
    "yes": {"BOOL": True},
    "big": {"S": "," + ",".join(f"tgt-{n:06d}" for n in range(500)) + ","},
}

PROJECTIONS = [
    ("#a, #b, #c", {"#a": "pk", "#b": "status", "#c": "n"}),  # a name the item lacks is left out
    ("pk, sk, n, b, ss, ns, m, l, #none, yes, big", {"#none": "none"}),  # every top-level kind of value
    ("m.inner", None),  # nested: moto's own path
    ("l[1].k, pk", None),  # a list element: moto's own path
    ("m.inner[3].deep, n", None),
    ("absent", None),  # nothing matches: an empty item
]


@pytest.fixture
def client() -> Iterator[Any]:
    with pk_sk_table("t") as dynamodb:
        dynamodb.put_item(TableName="t", Item=ITEM)
        dynamodb.put_item(TableName="t", Item={**ITEM, "sk": {"S": "s2"}, "n": {"N": "7"}})
        yield dynamodb


def _answers(client: Any, expression: str, names: dict[str, str] | None) -> list[Any]:
    extra: dict[str, Any] = {"ProjectionExpression": expression}
    if names:
        extra["ExpressionAttributeNames"] = names
    keys = [{"pk": {"S": "p"}, "sk": {"S": "s"}}, {"pk": {"S": "p"}, "sk": {"S": "s2"}}]
    got = client.get_item(TableName="t", Key=keys[0], ConsistentRead=True, **extra).get("Item")
    batch = client.batch_get_item(RequestItems={"t": {"Keys": keys, "ConsistentRead": True, **extra}})
    query = client.query(
        TableName="t",
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "p"}},
        **extra,
    )
    ordered = sorted(batch["Responses"]["t"], key=lambda item: str(item.get("sk", {}).get("S")))
    return [got, ordered, query["Items"]]


def _unpatched(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.models.dynamo_type import Item

    monkeypatch.setattr(Item, "project", getattr(Item.project, "__wrapped__"))  # noqa: B009 - moto's own


@pytest.mark.parametrize(("expression", "names"), PROJECTIONS)
def test_a_projection_answers_as_motos_own(
    client: Any, expression: str, names: dict[str, str] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    projection.install()
    patched = _answers(client, expression, names)
    _unpatched(monkeypatch)
    assert patched == _answers(client, expression, names)


def test_top_level_names_convert_the_item_once(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of the patch: moto converted the item to plain JSON once per name."""
    projection.install()
    from moto.dynamodb.models.dynamo_type import Item

    conversions: list[int] = []
    original = Item.to_regular_json

    def counted(self: Any) -> Any:
        conversions.append(1)
        return original(self)

    monkeypatch.setattr(Item, "to_regular_json", counted)
    key = {"pk": {"S": "p"}, "sk": {"S": "s"}}
    client.get_item(TableName="t", Key=key, ProjectionExpression="pk, sk, n, m, l, big")
    assert len(conversions) == 1
    _unpatched(monkeypatch)
    conversions.clear()
    client.get_item(TableName="t", Key=key, ProjectionExpression="pk, sk, n, m, l, big")
    assert len(conversions) == 6


def test_canary_moto_projection_internals_are_what_this_reproduces() -> None:
    projection.check_moto_internals()
    projection.install()
    projection.install()  # idempotent
    from moto.dynamodb.models.dynamo_type import Item

    assert projection._PATCHER.is_ours(Item.project)
    assert not projection._PATCHER.is_ours(getattr(Item.project, "__wrapped__"))  # noqa: B009
    projection.check_moto_internals()
