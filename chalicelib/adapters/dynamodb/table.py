"""All records in one DynamoDB table (single-table design), keyed so a tenant only reaches its own.

    pk                              sk                    what
    TENANT#<tenant>                 TARGET#<id>           a target
    TENANT#<tenant>                 DEPLOYMENT#<id>       a deployment and its current operation
    DEPLOYMENT#<id>                 REQUEST#<op>          an operation's template, parameters, tags
    DEPLOYMENT#<id>                 EVENT#<ns>#<n>        the deployment's events, oldest first
    DEPLOYMENT#<id>                 CANCEL#<op>           a cancel requested for that operation (TTL)
    CLAIM#<target>#<region>#<stack> CLAIM                 one live deployment per stack name
    LOCK#<account>#<region>#<stack> LOCK                  the per-stack lock, with a lease (TTL)
    TOKEN#<sha256>                  TOKEN                 an API token's hash and its tenant
    IDEMPOTENCY                     <key hash>            Powertools idempotency records (TTL)
    TEMPLATE#s3://<bucket>/<key>    DEPLOYMENT#<id>       deployments whose template_url is that object
    REDEPLOY#<deployment id>        REV#<sha256[:32]>     one claim per (deployment, revision) (TTL)

Every key a query uses begins with the caller's tenant or an id looked up under it, so another
tenant's ids answer "not found". Pagination tokens are checked to belong to the query they resume.

The stores of this package, one per port of ``chalicelib/service/ports.py``, share what this module
holds: the key every tenant's records begin with, the serialised table, one item's read, a page of a
query, and a transaction whose refused condition each store turns into its own error.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from chalicelib.adapters.errors import aws_call, cancellation_reasons, condition_failed, transact_write_items
from chalicelib.domain.errors import StartGuardFailed
from chalicelib.domain.paging import decode_token, encode_token

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

TTL_ATTRIBUTE = "expires_at"


def tenant_pk(tenant_id: str) -> str:
    return f"TENANT#{tenant_id}"


class _SerializedTable:
    """A Table whose calls run one at a time.

    boto3 turns ``Key()``/``Attr()`` conditions into expressions with one builder per client, and
    that builder's placeholder counter is not thread-safe: two threads building conditions at once
    can send ``#n0`` names that point at the wrong attribute. Lambda runs one request at a time, but
    local mode and the tests run many executions' steps in one process, so calls are serialised here.
    """

    _CALLS = frozenset({"put_item", "get_item", "query", "scan", "delete_item", "update_item"})

    def __init__(self, table: Table) -> None:
        self._table = table
        self._lock = threading.RLock()
        self.name = table.name
        self.meta = table.meta

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._table, name)
        if name not in self._CALLS:
            return attribute

        def locked(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return locked


class SharedTable:
    """The table as the stores of this package use it: the composition root builds one and hands it to
    each of them, because they share boto3's condition builder too: their calls must go through one
    ``_SerializedTable``, one lock. (``DynamoRolloutStore`` builds its own for the one claim read it
    asks of the deployments store, as it built its own ``DynamoStore`` before the split.)
    """

    def __init__(self, table: Table) -> None:
        self.table: Any = _SerializedTable(table)
        self.name = table.name

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        with aws_call("GetItem"):
            item = self.table.get_item(Key={"pk": pk, "sk": sk}, ConsistentRead=True).get("Item")
        return dict(item) if item else None

    def query(
        self, pk: str, prefix: str, limit: int, next_token: str | None, condition: Any = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        return query_page(self.table, pk, prefix, limit, next_token, condition)

    def transact(self, items: list[dict[str, Any]], also: Sequence[Mapping[str, Any]] = ()) -> None:
        """One TransactWriteItems of ``items`` and ``also`` (the caller's own writes, such as a rollout
        item's start: ``ItemStart.write``); ``StartGuardFailed`` when a condition of ``also`` did not
        hold (whatever the others did), else ``ConditionFailed`` when one of ``items`` did not."""
        with aws_call("TransactWriteItems"):
            try:
                transact_write_items(self.table.meta.client, [*items, *also])
            except ClientError as error:
                if condition_failed(error):
                    reasons = cancellation_reasons(error)
                    if "ConditionalCheckFailed" in reasons[len(items) :]:
                        raise StartGuardFailed(
                            "The item this operation was to start for had moved on; nothing was written."
                        ) from None
                    raise ConditionFailed(reasons) from error
                raise


def query_page(
    table: Table,
    pk: str,
    prefix: str,
    limit: int,
    next_token: str | None,
    condition: Any = None,
    projection: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Up to ``limit`` items of ``pk`` whose sort key starts with ``prefix`` (and that match
    ``condition``), and the token of the next page (None on the last); every listing pages with it.
    ``projection``: the ProjectionExpression (and its ExpressionAttributeNames) to read; it keeps sk."""
    kwargs: dict[str, Any] = {
        "KeyConditionExpression": Key("pk").eq(pk) & Key("sk").begins_with(prefix),
        "ConsistentRead": True,
        **(projection or {}),
    }
    if condition is not None:
        kwargs["FilterExpression"] = condition
    if next_token:
        kwargs["ExclusiveStartKey"] = decode_token(next_token, pk, prefix)
    found: list[dict[str, Any]] = []
    with aws_call("Query"):
        while True:
            page = table.query(**kwargs)
            items = page.get("Items", [])
            last_key = page.get("LastEvaluatedKey")
            for index, item in enumerate(items):
                found.append(dict(item))
                if len(found) == limit:
                    more = index < len(items) - 1 or last_key is not None
                    return found, encode_token({"pk": pk, "sk": str(item["sk"])}) if more else None
            if not last_key:
                return found, None
            kwargs["ExclusiveStartKey"] = last_key


class ConditionFailed(Exception):
    """Internal signal: a transaction's condition failed; ``reasons``: why it was cancelled, item by item."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__(reasons)
        self.reasons = reasons
