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
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Attr, ConditionBase, Key
from botocore.exceptions import ClientError

from chalicelib.adapters.errors import aws_call, error_code
from chalicelib.domain.automation import DriftInfo, Notifications
from chalicelib.domain.errors import Conflict, DeployerError, NotFound, StartGuardFailed
from chalicelib.domain.model import (
    Action,
    Deployment,
    DeploymentEvent,
    DeploymentFilter,
    DeploymentStatus,
    ErrorInfo,
    EventSource,
    Operation,
    OperationMode,
    OperationRequest,
    OperationStatus,
    Page,
    Target,
)
from chalicelib.domain.paging import decode_token, encode_token
from chalicelib.domain.plans import Plan

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

TTL_ATTRIBUTE = "expires_at"


def _tenant_pk(tenant_id: str) -> str:
    return f"TENANT#{tenant_id}"


def _claim_key(deployment: Deployment) -> dict[str, str]:
    return {
        "pk": f"CLAIM#{deployment.target_id}#{deployment.region}#{deployment.stack_name}",
        "sk": "CLAIM",
    }


# -- records <-> items -------------------------------------------------------------------------


def target_to_item(target: Target) -> dict[str, Any]:
    return {
        "pk": _tenant_pk(target.tenant_id),
        "sk": f"TARGET#{target.target_id}",
        "kind": "target",
        "tenant_id": target.tenant_id,
        "target_id": target.target_id,
        "name": target.name,
        "account_id": target.account_id,
        "role_arn": target.role_arn,
        "regions": list(target.regions),
        "external_id": target.external_id,
        "trust_policy": json.dumps(target.trust_policy),
        "permission_profile": target.permission_profile,
        "created_at": target.created_at,
        "external_id_enforced": target.external_id_enforced,
        "external_id_checked_at": target.external_id_checked_at,
    }


def target_from_item(item: dict[str, Any]) -> Target:
    return Target(
        tenant_id=str(item["tenant_id"]),
        target_id=str(item["target_id"]),
        name=str(item["name"]),
        account_id=str(item["account_id"]),
        role_arn=str(item["role_arn"]),
        regions=tuple(str(r) for r in item["regions"]),
        external_id=str(item["external_id"]),
        trust_policy=json.loads(str(item["trust_policy"])),
        created_at=str(item["created_at"]),
        permission_profile=str(item.get("permission_profile", "default")),  # items written before profiles
        external_id_enforced=None
        if item.get("external_id_enforced") is None
        else bool(item["external_id_enforced"]),
        external_id_checked_at=_opt(item.get("external_id_checked_at")),
    )


def deployment_to_item(deployment: Deployment) -> dict[str, Any]:
    op = deployment.operation
    return {
        "pk": _tenant_pk(deployment.tenant_id),
        "sk": f"DEPLOYMENT#{deployment.deployment_id}",
        "kind": "deployment",
        "tenant_id": deployment.tenant_id,
        "deployment_id": deployment.deployment_id,
        "target_id": deployment.target_id,
        "account_id": deployment.account_id,
        "region": deployment.region,
        "stack_name": deployment.stack_name,
        "status": deployment.status.value,
        "live": deployment.live,
        "op_id": op.operation_id,
        "op_running": op.running,
        "operation": {
            "operation_id": op.operation_id,
            "action": op.action.value,
            "status": op.status.value,
            "started_at": op.started_at,
            "ended_at": op.ended_at,
            "phase": op.phase,
            "change_set_name": op.change_set_name,
            "last_event_id": op.last_event_id,
            "mode": op.mode.value,
            "resources": list(op.resources),
            "adopt": op.adopt,
            "holds_secrets": op.holds_secrets,
        },
        "created_at": deployment.created_at,
        "updated_at": deployment.updated_at,
        "parameters": dict(deployment.parameters),
        "tags": dict(deployment.tags),
        "stack_status": deployment.stack_status,
        "stack_id": deployment.stack_id,
        "outputs": dict(deployment.outputs),
        "error": deployment.error.as_dict() if deployment.error else None,
        "ever_active": deployment.ever_active,
        "config_hash": deployment.config_hash,
        "last_success_hash": deployment.last_success_hash,
        "plan": deployment.plan.as_item() if deployment.plan else None,
        "template_url": deployment.template_url,
        "notifications": deployment.notifications.as_item() if deployment.notifications else None,
        "drift": deployment.drift.as_item() if deployment.drift else None,
    }


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


def deployment_from_item(item: dict[str, Any]) -> Deployment:
    op = item["operation"]
    error = item.get("error")
    return Deployment(
        tenant_id=str(item["tenant_id"]),
        deployment_id=str(item["deployment_id"]),
        target_id=str(item["target_id"]),
        account_id=str(item["account_id"]),
        region=str(item["region"]),
        stack_name=str(item["stack_name"]),
        status=DeploymentStatus(item["status"]),
        operation=Operation(
            operation_id=str(op["operation_id"]),
            action=Action(op["action"]),
            status=OperationStatus(op["status"]),
            started_at=str(op["started_at"]),
            ended_at=_opt(op.get("ended_at")),
            phase=str(op.get("phase") or "pending"),
            change_set_name=_opt(op.get("change_set_name")),
            last_event_id=_opt(op.get("last_event_id")),
            mode=OperationMode(op.get("mode") or OperationMode.DEPLOY.value),
            resources=tuple(str(r) for r in op.get("resources") or ()),
            adopt=bool(op.get("adopt", False)),
            holds_secrets=bool(op.get("holds_secrets", False)),
        ),
        created_at=str(item["created_at"]),
        updated_at=str(item["updated_at"]),
        parameters={str(k): str(v) for k, v in (item.get("parameters") or {}).items()},
        tags={str(k): str(v) for k, v in (item.get("tags") or {}).items()},
        stack_status=_opt(item.get("stack_status")),
        stack_id=_opt(item.get("stack_id")),
        outputs={str(k): str(v) for k, v in (item.get("outputs") or {}).items()},
        error=ErrorInfo(str(error["code"]), str(error["message"]), str(error["hint"])) if error else None,
        ever_active=bool(item.get("ever_active", False)),
        config_hash=_opt(item.get("config_hash")),
        last_success_hash=_opt(item.get("last_success_hash")),
        plan=Plan.from_item(dict(item["plan"])) if item.get("plan") else None,
        template_url=_opt(item.get("template_url")),
        notifications=Notifications.from_item(item.get("notifications")),
        drift=DriftInfo.from_item(item.get("drift")),
    )


def request_to_item(request: OperationRequest) -> dict[str, Any]:
    return {
        "pk": f"DEPLOYMENT#{request.deployment_id}",
        "sk": f"REQUEST#{request.operation_id}",
        "kind": "request",
        "action": request.action.value,
        "template_body": request.template_body,
        "parameters": dict(request.parameters),
        "tags": dict(request.tags),
        "secret_parameters": list(request.secret_parameters),
        "previous_parameters": list(request.previous_parameters),
        "template_location": request.template_location,
        "template_version": request.template_version,
        "template_region": request.template_region,
    }


def _event_item(deployment_id: str, event: DeploymentEvent, base_ns: int, n: int) -> dict[str, Any]:
    """An event's item: its sort key orders events by write time (``n`` orders one batch)."""
    return {
        "pk": f"DEPLOYMENT#{deployment_id}",
        "sk": f"EVENT#{base_ns:020d}#{n:05d}",
        "kind": "event",
        "timestamp": event.timestamp,
        "source": event.source.value,
        "status": event.status,
        "resource": event.resource,
        "message": event.message,
    }


def _stale(deployment: Deployment) -> DeployerError:
    return DeployerError(
        f"Operation {deployment.operation.operation_id} is no longer current.", code="STALE_OPERATION"
    )


def _condition_failed(error: ClientError) -> bool:
    """A transaction refused because a condition did not hold (not for any other reason)."""
    reasons = error.response.get("CancellationReasons") or []
    return error_code(error) == "TransactionCanceledException" and any(
        r.get("Code") == "ConditionalCheckFailed" for r in reasons
    )


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


class DynamoStore:
    """Implements TargetStore, DeploymentStore, LockStore and TokenStore on one table."""

    def __init__(self, table: Table, clock: Any = time.time) -> None:
        self._table: Any = _SerializedTable(table)
        self._name = table.name
        self._clock = clock

    # -- targets ---------------------------------------------------------------------------------

    def put_target(self, target: Target) -> None:
        with aws_call("PutItem"):
            self._table.put_item(Item=target_to_item(target), ConditionExpression=Attr("pk").not_exists())

    def edit_target(self, target: Target) -> None:
        """Only the fields PATCH may change, and only while the target exists: never a whole-item write
        racing the external-ID check's record."""
        with aws_call("UpdateItem"):
            try:
                self._table.update_item(
                    Key={"pk": _tenant_pk(target.tenant_id), "sk": f"TARGET#{target.target_id}"},
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
        item = self._get(_tenant_pk(tenant_id), f"TARGET#{target_id}")
        return target_from_item(item) if item else None

    def list_targets(self, tenant_id: str, limit: int, next_token: str | None) -> Page:
        items, token = self._query(_tenant_pk(tenant_id), "TARGET#", limit, next_token)
        return Page([target_from_item(i).public() for i in items], token)

    def record_external_id_check(self, target: Target, enforced: bool, checked_at: str) -> None:
        """Only these two attributes, and only while the target exists: never a whole-item write
        racing an edit of the target."""
        with aws_call("UpdateItem"):
            try:
                self._table.update_item(
                    Key={"pk": _tenant_pk(target.tenant_id), "sk": f"TARGET#{target.target_id}"},
                    UpdateExpression="SET external_id_enforced = :e, external_id_checked_at = :t",
                    ConditionExpression=Attr("pk").exists(),
                    ExpressionAttributeValues={":e": enforced, ":t": checked_at},
                )
            except ClientError as error:
                if error_code(error) != "ConditionalCheckFailedException":  # deleted meanwhile
                    raise

    def delete_target(self, tenant_id: str, target_id: str) -> None:
        with aws_call("DeleteItem"):
            self._table.delete_item(Key={"pk": _tenant_pk(tenant_id), "sk": f"TARGET#{target_id}"})

    # -- deployments -----------------------------------------------------------------------------

    def create_deployment(
        self, deployment: Deployment, request: OperationRequest, also: Sequence[Mapping[str, Any]] = ()
    ) -> None:
        claim = {**_claim_key(deployment), "deployment_id": deployment.deployment_id}
        try:
            self._transact(
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
        except _ConditionFailed:
            holder = self._get(**_claim_key(deployment)) or {}
            raise Conflict(
                f"Stack {deployment.stack_name} already has a live deployment on target "
                f"{deployment.target_id} in {deployment.region}.",
                code="STACK_ALREADY_DEPLOYED",
                hint="Update it with PUT /deployments/{deployment_id} instead of creating it again.",
                details={"deployment_id": holder.get("deployment_id")},
            ) from None

    def begin_operation(
        self, deployment: Deployment, request: OperationRequest, also: Sequence[Mapping[str, Any]] = ()
    ) -> None:
        item = deployment_to_item(deployment)
        try:
            self._transact(
                [
                    {
                        "Put": {
                            "TableName": self._name,
                            "Item": item,
                            "ConditionExpression": "attribute_exists(pk) AND op_running = :no",
                            "ExpressionAttributeValues": {":no": False},
                        }
                    },
                    {"Put": {"TableName": self._name, "Item": request_to_item(request)}},
                ],
                also,
            )
        except _ConditionFailed:
            raise Conflict(
                f"Deployment {deployment.deployment_id} already has an operation running.",
                code="OPERATION_IN_PROGRESS",
                hint="Wait until GET /deployments/{id} shows the operation ended, then retry.",
            ) from None

    def _transact(self, items: list[dict[str, Any]], also: Sequence[Mapping[str, Any]] = ()) -> None:
        """One TransactWriteItems of ``items`` and ``also`` (the caller's own writes, such as a rollout
        item's start: ``ItemStart.write``); ``StartGuardFailed`` when a condition of ``also`` did not
        hold (whatever the others did), else ``_ConditionFailed`` when one of ``items`` did not."""
        with aws_call("TransactWriteItems"):
            try:
                self._table.meta.client.transact_write_items(TransactItems=[*items, *also])
            except ClientError as error:
                if _condition_failed(error):
                    reasons = error.response.get("CancellationReasons") or []
                    if any(r.get("Code") == "ConditionalCheckFailed" for r in reasons[len(items) :]):
                        raise StartGuardFailed(
                            "The item this operation was to start for had moved on; nothing was written."
                        ) from None
                    raise _ConditionFailed() from error
                raise

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
            self._transact(
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
                            "Item": _event_item(deployment.deployment_id, event, time.time_ns(), 0),
                        }
                    },
                ]
            )
        except _ConditionFailed:
            current = self._get(str(record["pk"]), str(record["sk"])) or {}
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
        return self._get(f"DEPLOYMENT#{deployment_id}", f"CANCEL#{operation_id}") is not None

    def claimed_deployment_id(self, target_id: str, region: str, stack_name: str) -> str | None:
        item = self._get(f"CLAIM#{target_id}#{region}#{stack_name}", "CLAIM")
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
        item = self._get(_tenant_pk(tenant_id), f"DEPLOYMENT#{deployment_id}")
        return deployment_from_item(item) if item else None

    def get_request(self, deployment_id: str, operation_id: str) -> OperationRequest | None:
        item = self._get(f"DEPLOYMENT#{deployment_id}", f"REQUEST#{operation_id}")
        if not item:
            return None
        return OperationRequest(
            deployment_id=deployment_id,
            operation_id=operation_id,
            action=Action(item["action"]),
            template_body=_opt(item.get("template_body")),
            parameters={str(k): str(v) for k, v in (item.get("parameters") or {}).items()},
            tags={str(k): str(v) for k, v in (item.get("tags") or {}).items()},
            secret_parameters=tuple(str(n) for n in item.get("secret_parameters") or ()),
            previous_parameters=tuple(str(n) for n in item.get("previous_parameters") or ()),
            template_location=_opt(item.get("template_location")),
            template_version=_opt(item.get("template_version")),
            template_region=_opt(item.get("template_region")),
        )

    def list_deployments(
        self, tenant_id: str, filters: DeploymentFilter, *, limit: int, next_token: str | None
    ) -> Page:
        condition = _deployment_condition(filters)
        items, token = self._query(_tenant_pk(tenant_id), "DEPLOYMENT#", limit, next_token, condition)
        return Page([deployment_from_item(i).public() for i in items], token)

    def count_deployments(self, tenant_id: str, filters: DeploymentFilter) -> int:
        items, _ = self._query(
            _tenant_pk(tenant_id), "DEPLOYMENT#", 100_000, None, _deployment_condition(filters)
        )
        return len(items)

    def append_events(self, deployment_id: str, events: list[DeploymentEvent]) -> None:
        base = time.time_ns()
        with aws_call("BatchWriteItem"), self._table.batch_writer() as batch:
            for n, event in enumerate(events):
                batch.put_item(Item=_event_item(deployment_id, event, base, n))

    def list_events(self, deployment_id: str, limit: int, next_token: str | None) -> Page:
        pk = f"DEPLOYMENT#{deployment_id}"
        items, token = self._query(pk, "EVENT#", limit, next_token)
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

    # -- locks -----------------------------------------------------------------------------------

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
        item = self._get(f"LOCK#{key}", "LOCK")
        if not item or int(item.get(TTL_ATTRIBUTE, 0)) < int(self._clock()):
            return None
        return str(item["owner"])

    # -- tokens ----------------------------------------------------------------------------------

    def tenant_for_token_hash(self, token_sha256: str) -> str | None:
        item = self._get(f"TOKEN#{token_sha256}", "TOKEN")
        return str(item["tenant_id"]) if item else None

    def put_token(self, token_sha256: str, tenant_id: str, label: str) -> None:
        with aws_call("PutItem"):
            self._table.put_item(
                Item={"pk": f"TOKEN#{token_sha256}", "sk": "TOKEN", "tenant_id": tenant_id, "label": label}
            )

    # -- plumbing --------------------------------------------------------------------------------

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        with aws_call("GetItem"):
            item = self._table.get_item(Key={"pk": pk, "sk": sk}, ConsistentRead=True).get("Item")
        return dict(item) if item else None

    def _query(
        self, pk: str, prefix: str, limit: int, next_token: str | None, condition: Any = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        return query_page(self._table, pk, prefix, limit, next_token, condition)


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


class _ConditionFailed(Exception):
    """Internal signal: a transaction's condition failed."""
