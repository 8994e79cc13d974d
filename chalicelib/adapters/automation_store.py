"""Automation's records in the deployments table (the single-table layout is in ``dynamodb/table.py``).

    REDEPLOY#<deployment id>        REV#<sha256[:32]>     a redeploy claim, expiring (TTL)
    TEMPLATE#s3://<bucket>/<key>    DEPLOYMENT#<id>       a deployment built from that S3 object

A claim is one conditional PutItem: the first writer of (deployment, revision) wins; an expired
claim (DynamoDB's TTL deletes it within about two days, so the condition also compares the expiry)
may be taken again. A refused claim comes back with the claim held (ReturnValuesOnConditionCheckFailure),
and one older than its lease may be taken over, by a put conditional on that claim's time. The drift
check's fleet-wide read is a paginated Scan of deployment items, the one query that crosses tenants,
run only by the scheduled check.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from chalicelib.adapters.dynamodb import (
    TTL_ATTRIBUTE,
    DynamoDeploymentStore,
    SharedTable,
    deployment_from_item,
)
from chalicelib.adapters.errors import aws_call, error_code, refused_item
from chalicelib.domain.automation import DriftInfo
from chalicelib.domain.errors import NotFound
from chalicelib.domain.model import Deployment, DeploymentEvent, DeploymentStatus
from chalicelib.service.event_ports import RevisionClaim, TemplateSubscriber

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table


class AutomationDynamoStore:
    def __init__(self, table: Table, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._clock = clock

    def claim_revision(
        self, deployment_id: str, revision_key: str, ttl_seconds: int, origin: str, lease_seconds: int
    ) -> RevisionClaim:
        now = self._clock()
        with aws_call("PutItem"):
            try:
                self._table.put_item(
                    Item=_claim(deployment_id, revision_key, origin, now, ttl_seconds),
                    ConditionExpression=Attr("pk").not_exists() | Attr(TTL_ATTRIBUTE).lt(int(now)),
                    # The claim held comes back with the refusal: no read to see how old it is.
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as error:
                if error_code(error) != "ConditionalCheckFailedException":
                    raise
                held = refused_item(error) or {}
                claimed_at = float(held.get("claimed_at", now))
                return RevisionClaim(False, claimed_at if now - claimed_at >= lease_seconds else None)
        return RevisionClaim(True)

    def take_over_revision(
        self, deployment_id: str, revision_key: str, stale_since: float, ttl_seconds: int, origin: str
    ) -> bool:
        with aws_call("PutItem"):
            try:
                self._table.put_item(
                    Item=_claim(deployment_id, revision_key, origin, self._clock(), ttl_seconds),
                    # The time as the claim held it: a float's repr gives back the number it was read from.
                    ConditionExpression=Attr("claimed_at").eq(Decimal(repr(stale_since))),
                )
            except ClientError as error:
                if error_code(error) == "ConditionalCheckFailedException":
                    return False
                raise
        return True

    def release_revision(self, deployment_id: str, revision_key: str) -> None:
        with aws_call("DeleteItem"):
            self._table.delete_item(Key={"pk": f"REDEPLOY#{deployment_id}", "sk": f"REV#{revision_key}"})

    def subscribe_template(self, url: str, tenant_id: str, deployment_id: str) -> None:
        with aws_call("PutItem"):
            self._table.put_item(
                Item={
                    "pk": f"TEMPLATE#{url}",
                    "sk": f"DEPLOYMENT#{deployment_id}",
                    "kind": "template-subscription",
                    "tenant_id": tenant_id,
                    "deployment_id": deployment_id,
                }
            )

    def unsubscribe_template(self, url: str, deployment_id: str) -> None:
        with aws_call("DeleteItem"):
            self._table.delete_item(Key={"pk": f"TEMPLATE#{url}", "sk": f"DEPLOYMENT#{deployment_id}"})

    def template_subscribers(self, url: str) -> list[TemplateSubscriber]:
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(f"TEMPLATE#{url}") & Key("sk").begins_with("DEPLOYMENT#"),
            "ConsistentRead": True,
        }
        found: list[TemplateSubscriber] = []
        with aws_call("Query"):
            while True:
                page = self._table.query(**kwargs)
                found.extend(
                    TemplateSubscriber(str(i["tenant_id"]), str(i["deployment_id"]))
                    for i in page.get("Items", [])
                )
                if "LastEvaluatedKey" not in page:
                    return found
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def active_deployments(self) -> Iterator[Deployment]:
        kwargs: dict[str, Any] = {
            "FilterExpression": Attr("kind").eq("deployment")
            & Attr("status").eq(DeploymentStatus.ACTIVE.value)
        }
        while True:
            with aws_call("Scan"):
                page = self._table.scan(**kwargs)
            for item in page.get("Items", []):
                yield deployment_from_item(dict(item))
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def record_drift(self, tenant_id: str, deployment_id: str, drift: DriftInfo) -> None:
        with aws_call("UpdateItem"):
            try:
                self._table.update_item(
                    Key={"pk": f"TENANT#{tenant_id}", "sk": f"DEPLOYMENT#{deployment_id}"},
                    UpdateExpression="SET drift = :drift",
                    ConditionExpression=Attr("pk").exists(),
                    ExpressionAttributeValues={":drift": drift.as_item()},
                )
            except ClientError as error:
                if error_code(error) == "ConditionalCheckFailedException":
                    raise NotFound(
                        f"Deployment {deployment_id} is gone.", code="DEPLOYMENT_NOT_FOUND"
                    ) from None
                raise


class NotifyingDeploymentStore(DynamoDeploymentStore):
    """The deployments store, telling ``on_saved`` of every deployment it saves.

    Every end of an operation (the workflow's success, failure, delete, and a workflow that could not
    start) is a ``save_deployment`` of the deployment with its operation ended, so this is where
    notifications hook in without the workflow knowing of them. ``on_saved`` must not raise.
    """

    def __init__(self, shared: SharedTable, on_saved: Callable[[Deployment], None]) -> None:
        super().__init__(shared)
        self._on_saved = on_saved

    def save_deployment(self, deployment: Deployment, final_event: DeploymentEvent | None = None) -> bool:
        written = super().save_deployment(deployment, final_event)
        self._on_saved(deployment)
        return written


def _claim(
    deployment_id: str, revision_key: str, origin: str, now: float, ttl_seconds: int
) -> dict[str, Any]:
    return {
        "pk": f"REDEPLOY#{deployment_id}",
        "sk": f"REV#{revision_key}",
        "kind": "redeploy-claim",
        "origin": origin,
        # To the millisecond: a take-over compares it with the start of the deployment's operation.
        "claimed_at": _seconds(now),
        TTL_ATTRIBUTE: int(now) + ttl_seconds,
    }


def _seconds(value: float) -> Decimal:
    """Seconds since the epoch to the millisecond below, as a claim stores them (an operation's
    ``started_at`` is truncated to the millisecond too)."""
    return Decimal(math.floor(value * 1000)) / 1000
