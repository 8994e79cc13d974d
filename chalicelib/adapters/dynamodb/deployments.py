"""Deployments, their operations' requests, cancels and events, and the stack-name claims: the
``DeploymentStore`` port on the shared table.

The stack-name claims live here because a claim is written in the same transaction as the deployment
that takes it and is released only with that deployment (deleted or forgotten); ``DynamoRolloutStore``
asks this store who holds a stack.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from boto3.dynamodb.conditions import Attr, ConditionBase
from botocore.exceptions import ClientError

from chalicelib.adapters.dynamodb.records import (
    deployment_from_item,
    deployment_to_item,
    event_item,
    opt,
    request_to_item,
)
from chalicelib.adapters.dynamodb.table import TTL_ATTRIBUTE, ConditionFailed, SharedTable, tenant_pk
from chalicelib.adapters.errors import aws_call, error_code
from chalicelib.domain.errors import STALE_OPERATION, Conflict, DeployerError
from chalicelib.domain.model import (
    Action,
    Deployment,
    DeploymentEvent,
    DeploymentFilter,
    EventSource,
    OperationRequest,
    Page,
)
from chalicelib.domain.paging import encode_token


def _claim_key(deployment: Deployment) -> dict[str, str]:
    return {
        "pk": f"CLAIM#{deployment.target_id}#{deployment.region}#{deployment.stack_name}",
        "sk": "CLAIM",
    }


def _stale(deployment: Deployment) -> DeployerError:
    return DeployerError(
        f"Operation {deployment.operation.operation_id} is no longer current.", code=STALE_OPERATION
    )


class DynamoDeploymentStore:
    """Implements DeploymentStore (``chalicelib/service/ports.py``)."""

    def __init__(self, shared: SharedTable, clock: Any = time.time) -> None:
        self._shared = shared
        self._table: Any = shared.table
        self._name = shared.name
        self._clock = clock

    def create_deployment(
        self, deployment: Deployment, request: OperationRequest, also: Sequence[Mapping[str, Any]] = ()
    ) -> None:
        claim = {**_claim_key(deployment), "deployment_id": deployment.deployment_id}
        try:
            self._shared.transact(
                [
                    {
                        "Put": {
                            "TableName": self._name,
                            "Item": claim,
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._name,
                            "Item": deployment_to_item(deployment),
                        }
                    },
                    {"Put": {"TableName": self._name, "Item": request_to_item(request)}},
                ],
                also,
            )
        except ConditionFailed:
            holder = self._shared.get(**_claim_key(deployment)) or {}
            raise Conflict(
                f"Stack {deployment.stack_name} already has a live deployment on target "
                f"{deployment.target_id} in {deployment.region}.",
                code="STACK_ALREADY_DEPLOYED",
                hint="Update it with PUT /deployments/{deployment_id} instead of creating it again.",
                details={"deployment_id": holder.get("deployment_id")},
            ) from None

    def begin_operation(
        self,
        deployment: Deployment,
        request: OperationRequest,
        also: Sequence[Mapping[str, Any]] = (),
        *,
        release_name: bool = False,
    ) -> None:
        item = deployment_to_item(deployment)
        writes: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._name,
                    "Item": item,
                    "ConditionExpression": "attribute_exists(pk) AND op_running = :no",
                    "ExpressionAttributeValues": {":no": False},
                }
            },
            {"Put": {"TableName": self._name, "Item": request_to_item(request)}},
        ]
        if release_name:  # its own claim, or none left: never another deployment's
            writes.append(
                {
                    "Delete": {
                        "TableName": self._name,
                        "Key": _claim_key(deployment),
                        "ConditionExpression": "attribute_not_exists(pk) OR deployment_id = :id",
                        "ExpressionAttributeValues": {":id": deployment.deployment_id},
                    }
                }
            )
        try:
            self._shared.transact(writes, also)
        except ConditionFailed as failed:
            if release_name and failed.reasons[:2] == ["None", "None"]:
                # Only the claim's condition: another deployment holds the name now (freed when this
                # one's stack was deleted). The record goes; that claim stays its holder's.
                self.begin_operation(deployment, request, also)
                return
            raise Conflict(
                f"Deployment {deployment.deployment_id} already has an operation running.",
                code="OPERATION_IN_PROGRESS",
                hint="Wait until GET /deployments/{id} shows the operation ended, then retry.",
            ) from None

    def save_deployment(self, deployment: Deployment, final_event: DeploymentEvent | None = None) -> bool:
        if final_event is not None:
            return self._finish_operation(deployment, final_event)
        with aws_call("PutItem"):
            try:
                # Only while the operation is current and running: a step still running when its execution
                # was stopped (Lambda is not stopped with it) must not bring back an operation that the
                # execution's end recorded as ended (DeploymentExecutionEnded), nor a retried step one that
                # its own run ended.
                self._table.put_item(
                    Item=deployment_to_item(deployment),
                    ConditionExpression=Attr("op_id").eq(deployment.operation.operation_id)
                    & Attr("op_running").eq(True),
                )
            except ClientError as error:
                if error_code(error) == "ConditionalCheckFailedException":
                    raise _stale(deployment) from error
                raise
        return True

    def _finish_operation(self, deployment: Deployment, event: DeploymentEvent) -> bool:
        """The ended operation's record and its final event in one transaction, on condition that the
        operation is still current and running: a retried step that already finished it writes nothing."""
        record = deployment_to_item(deployment)
        try:
            self._shared.transact(
                [
                    {
                        "Put": {
                            "TableName": self._name,
                            "Item": record,
                            "ConditionExpression": "op_id = :op AND op_running = :yes",
                            "ExpressionAttributeValues": {
                                ":op": deployment.operation.operation_id,
                                ":yes": True,
                            },
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._name,
                            "Item": event_item(deployment.deployment_id, event, time.time_ns(), 0),
                        }
                    },
                ]
            )
        except ConditionFailed:
            current = self._shared.get(str(record["pk"]), str(record["sk"])) or {}
            if (
                current.get("op_id") == deployment.operation.operation_id
                and current.get("op_running") is False
            ):
                return False  # finished already, by an earlier run of this step
            raise _stale(deployment) from None
        return True

    def request_cancel(self, deployment_id: str, operation_id: str) -> None:
        with aws_call("PutItem"):
            self._table.put_item(
                Item={
                    "pk": f"DEPLOYMENT#{deployment_id}",
                    "sk": f"CANCEL#{operation_id}",
                    "kind": "cancel",
                    TTL_ATTRIBUTE: int(self._clock()) + 7 * 24 * 3600,
                }
            )

    def cancel_requested(self, deployment_id: str, operation_id: str) -> bool:
        return self._shared.get(f"DEPLOYMENT#{deployment_id}", f"CANCEL#{operation_id}") is not None

    def claimed_deployment_id(self, target_id: str, region: str, stack_name: str) -> str | None:
        item = self._shared.get(f"CLAIM#{target_id}#{region}#{stack_name}", "CLAIM")
        return str(item["deployment_id"]) if item else None

    def release_stack_name(self, deployment: Deployment) -> None:
        with aws_call("DeleteItem"):
            try:
                self._table.delete_item(
                    Key=_claim_key(deployment),
                    ConditionExpression=Attr("deployment_id").eq(deployment.deployment_id),
                )
            except ClientError as error:
                if error_code(error) != "ConditionalCheckFailedException":  # released already
                    raise

    def get_deployment(self, tenant_id: str, deployment_id: str) -> Deployment | None:
        item = self._shared.get(tenant_pk(tenant_id), f"DEPLOYMENT#{deployment_id}")
        return deployment_from_item(item) if item else None

    def get_request(self, deployment_id: str, operation_id: str) -> OperationRequest | None:
        item = self._shared.get(f"DEPLOYMENT#{deployment_id}", f"REQUEST#{operation_id}")
        if not item:
            return None
        return OperationRequest(
            deployment_id=deployment_id,
            operation_id=operation_id,
            action=Action(item["action"]),
            template_body=opt(item.get("template_body")),
            parameters={str(k): str(v) for k, v in (item.get("parameters") or {}).items()},
            tags={str(k): str(v) for k, v in (item.get("tags") or {}).items()},
            secret_parameters=tuple(str(n) for n in item.get("secret_parameters") or ()),
            previous_parameters=tuple(str(n) for n in item.get("previous_parameters") or ()),
            template_location=opt(item.get("template_location")),
            template_version=opt(item.get("template_version")),
            template_region=opt(item.get("template_region")),
        )

    def list_deployments(
        self, tenant_id: str, filters: DeploymentFilter, *, limit: int, next_token: str | None
    ) -> Page:
        condition = _deployment_condition(filters)
        items, token = self._shared.query(tenant_pk(tenant_id), "DEPLOYMENT#", limit, next_token, condition)
        return Page([deployment_from_item(i).public() for i in items], token)

    def count_deployments(self, tenant_id: str, filters: DeploymentFilter) -> int:
        items, _ = self._shared.query(
            tenant_pk(tenant_id), "DEPLOYMENT#", 100_000, None, _deployment_condition(filters)
        )
        return len(items)

    def append_events(self, deployment_id: str, events: list[DeploymentEvent]) -> None:
        base = time.time_ns()
        with aws_call("BatchWriteItem"), self._table.batch_writer() as batch:
            for n, event in enumerate(events):
                batch.put_item(Item=event_item(deployment_id, event, base, n))

    def list_events(self, deployment_id: str, limit: int, next_token: str | None) -> Page:
        pk = f"DEPLOYMENT#{deployment_id}"
        items, token = self._shared.query(pk, "EVENT#", limit, next_token)
        cursor = encode_token({"pk": pk, "sk": str(items[-1]["sk"])}) if items else next_token
        events = [
            DeploymentEvent(
                str(i["timestamp"]),
                EventSource(i["source"]),
                str(i["status"]),
                str(i["resource"]),
                str(i["message"]),
            ).public()
            for i in items
        ]
        return Page(list(events), token, cursor or encode_token({"pk": pk, "sk": "EVENT#"}))


def _deployment_condition(filters: DeploymentFilter) -> ConditionBase | None:
    """A FilterExpression for the filters that are set (each stored as a top-level attribute)."""
    wanted: dict[str, Any] = {
        "target_id": filters.target_id,
        "status": filters.status.value if filters.status is not None else None,
        "stack_name": filters.stack_name,
        "account_id": filters.account_id,
        "region": filters.region,
        "live": filters.live,
    }
    condition: ConditionBase | None = None
    for name, value in wanted.items():
        if value is not None:
            one = Attr(name).eq(value)
            condition = one if condition is None else condition & one
    return condition
