"""Targets (``TENANT#<tenant>`` / ``TARGET#<id>``): the ``TargetStore`` port on the shared table."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Attr
from botocore.exceptions import ClientError

from chalicelib.adapters.dynamodb.records import target_from_item, target_to_item
from chalicelib.adapters.dynamodb.table import SharedTable, tenant_pk
from chalicelib.adapters.errors import aws_call, error_code
from chalicelib.domain.errors import NotFound
from chalicelib.domain.model import Page, Target


class DynamoTargetStore:
    """Implements TargetStore (``chalicelib/service/ports.py``)."""

    def __init__(self, shared: SharedTable) -> None:
        self._shared = shared
        self._table: Any = shared.table

    def put_target(self, target: Target) -> None:
        with aws_call("PutItem"):
            self._table.put_item(Item=target_to_item(target), ConditionExpression=Attr("pk").not_exists())

    def edit_target(self, target: Target) -> None:
        """Only the fields PATCH may change, and only while the target exists: never a whole-item write
        racing the external-ID check's record."""
        with aws_call("UpdateItem"):
            try:
                self._table.update_item(
                    Key={"pk": tenant_pk(target.tenant_id), "sk": f"TARGET#{target.target_id}"},
                    UpdateExpression="SET #n = :n, regions = :r, permission_profile = :p",
                    ConditionExpression=Attr("pk").exists(),
                    ExpressionAttributeNames={"#n": "name"},
                    ExpressionAttributeValues={
                        ":n": target.name,
                        ":r": list(target.regions),
                        ":p": target.permission_profile,
                    },
                )
            except ClientError as error:
                if error_code(error) != "ConditionalCheckFailedException":
                    raise
                raise NotFound(
                    f"Target {target.target_id} does not exist.", code="TARGET_NOT_FOUND"
                ) from None

    def get_target(self, tenant_id: str, target_id: str) -> Target | None:
        item = self._shared.get(tenant_pk(tenant_id), f"TARGET#{target_id}")
        return target_from_item(item) if item else None

    def list_targets(self, tenant_id: str, limit: int, next_token: str | None) -> Page:
        items, token = self._shared.query(tenant_pk(tenant_id), "TARGET#", limit, next_token)
        return Page([target_from_item(i).public() for i in items], token)

    def record_external_id_check(self, target: Target, enforced: bool, checked_at: str) -> None:
        """Only these two attributes, and only while the target exists: never a whole-item write
        racing an edit of the target."""
        with aws_call("UpdateItem"):
            try:
                self._table.update_item(
                    Key={"pk": tenant_pk(target.tenant_id), "sk": f"TARGET#{target.target_id}"},
                    UpdateExpression="SET external_id_enforced = :e, external_id_checked_at = :t",
                    ConditionExpression=Attr("pk").exists(),
                    ExpressionAttributeValues={":e": enforced, ":t": checked_at},
                )
            except ClientError as error:
                if error_code(error) != "ConditionalCheckFailedException":  # deleted meanwhile
                    raise

    def delete_target(self, tenant_id: str, target_id: str) -> None:
        with aws_call("DeleteItem"):
            self._table.delete_item(Key={"pk": tenant_pk(tenant_id), "sk": f"TARGET#{target_id}"})
