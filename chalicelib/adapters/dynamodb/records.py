"""How targets, deployments, operation requests and events are written as items, and read back.

Kept apart from the stores because the item shapes are read beyond them: the automation store's
fleet-wide scan reads deployment items (``deployment_from_item``), and tests write them.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.adapters.dynamodb.table import tenant_pk
from chalicelib.domain.automation import DriftInfo, Notifications
from chalicelib.domain.model import (
    Action,
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
    ErrorInfo,
    Operation,
    OperationMode,
    OperationRequest,
    OperationStatus,
    Target,
)
from chalicelib.domain.plans import Plan


def target_to_item(target: Target) -> dict[str, Any]:
    return {
        "pk": tenant_pk(target.tenant_id),
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
        external_id_checked_at=opt(item.get("external_id_checked_at")),
    )


def deployment_to_item(deployment: Deployment) -> dict[str, Any]:
    op = deployment.operation
    return {
        "pk": tenant_pk(deployment.tenant_id),
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


def opt(value: Any) -> str | None:
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
            ended_at=opt(op.get("ended_at")),
            phase=str(op.get("phase") or "pending"),
            change_set_name=opt(op.get("change_set_name")),
            last_event_id=opt(op.get("last_event_id")),
            mode=OperationMode(op.get("mode") or OperationMode.DEPLOY.value),
            resources=tuple(str(r) for r in op.get("resources") or ()),
            adopt=bool(op.get("adopt", False)),
            holds_secrets=bool(op.get("holds_secrets", False)),
        ),
        created_at=str(item["created_at"]),
        updated_at=str(item["updated_at"]),
        parameters={str(k): str(v) for k, v in (item.get("parameters") or {}).items()},
        tags={str(k): str(v) for k, v in (item.get("tags") or {}).items()},
        stack_status=opt(item.get("stack_status")),
        stack_id=opt(item.get("stack_id")),
        outputs={str(k): str(v) for k, v in (item.get("outputs") or {}).items()},
        error=ErrorInfo(str(error["code"]), str(error["message"]), str(error["hint"])) if error else None,
        ever_active=bool(item.get("ever_active", False)),
        config_hash=opt(item.get("config_hash")),
        last_success_hash=opt(item.get("last_success_hash")),
        plan=Plan.from_item(dict(item["plan"])) if item.get("plan") else None,
        template_url=opt(item.get("template_url")),
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


def event_item(deployment_id: str, event: DeploymentEvent, base_ns: int, n: int) -> dict[str, Any]:
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
