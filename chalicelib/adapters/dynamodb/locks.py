"""Per-stack locks with a lease (``LOCK#<account>#<region>#<stack>``): the ``LockStore`` port.

A lease runs out by the clock (``expires_at``, DynamoDB's TTL attribute, which deletes the item later),
so an operation whose step died does not hold its stack for ever; the conditional writes decide who
holds it.
"""

from __future__ import annotations

import time
from typing import Any

from boto3.dynamodb.conditions import Attr
from botocore.exceptions import ClientError

from chalicelib.adapters.dynamodb.table import TTL_ATTRIBUTE, SharedTable
from chalicelib.adapters.errors import aws_call, error_code


class DynamoLockStore:
    """Implements LockStore (``chalicelib/service/ports.py``)."""

    def __init__(self, shared: SharedTable, clock: Any = time.time) -> None:
        self._shared = shared
        self._table: Any = shared.table
        self._clock = clock

    def acquire_lock(self, key: str, owner: str, lease_seconds: int) -> bool:
        now = int(self._clock())
        with aws_call("PutItem"):
            try:
                self._table.put_item(
                    Item={
                        "pk": f"LOCK#{key}",
                        "sk": "LOCK",
                        "owner": owner,
                        TTL_ATTRIBUTE: now + lease_seconds,
                    },
                    ConditionExpression=Attr("pk").not_exists()
                    | Attr("owner").eq(owner)
                    | Attr(TTL_ATTRIBUTE).lt(now),
                )
            except ClientError as error:
                if error_code(error) == "ConditionalCheckFailedException":
                    return False
                raise
        return True

    def renew_lock(self, key: str, owner: str, lease_seconds: int) -> bool:
        """Extend ``owner``'s lease; False when the lock is not ``owner``'s (gone, or another's)."""
        with aws_call("UpdateItem"):
            try:
                self._table.update_item(
                    Key={"pk": f"LOCK#{key}", "sk": "LOCK"},
                    UpdateExpression="SET #ttl = :until",
                    ConditionExpression=Attr("owner").eq(owner),
                    ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
                    ExpressionAttributeValues={":until": int(self._clock()) + lease_seconds},
                )
            except ClientError as error:
                if error_code(error) == "ConditionalCheckFailedException":
                    return False
                raise
        return True

    def release_lock(self, key: str, owner: str) -> None:
        with aws_call("DeleteItem"):
            try:
                self._table.delete_item(
                    Key={"pk": f"LOCK#{key}", "sk": "LOCK"}, ConditionExpression=Attr("owner").eq(owner)
                )
            except ClientError as error:
                if error_code(error) != "ConditionalCheckFailedException":  # not ours, or gone
                    raise

    def lock_holder(self, key: str) -> str | None:
        item = self._shared.get(f"LOCK#{key}", "LOCK")
        if not item or int(item.get(TTL_ATTRIBUTE, 0)) < int(self._clock()):
            return None
        return str(item["owner"])
