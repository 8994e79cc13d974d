"""The records the service keeps: tenants' targets, deployments, their operations and events.

Frozen dataclasses, so a record is a value: services build new ones with ``dataclasses.replace``
and the store persists them whole. Ids are prefixed random hex (``tgt-``, ``dep-``, ``op-``); an
operation id doubles as the execution name and the seed of CloudFormation's ClientRequestToken.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def new_external_id() -> str:
    """48 random characters from the ExternalId alphabet; one per target, never chosen by a caller."""
    return "nx-" + secrets.token_urlsafe(36).replace("_", "=")[:45]


class DeploymentStatus(StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    ACTIVE = "ACTIVE"
    FAILED = "FAILED"
    DELETED = "DELETED"


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class OperationStatus(StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


RUNNING_OPERATION_STATUSES = frozenset({OperationStatus.PENDING, OperationStatus.IN_PROGRESS})


@dataclass(frozen=True)
class ErrorInfo:
    code: str
    message: str
    hint: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "hint": self.hint}


@dataclass(frozen=True)
class Target:
    tenant_id: str
    target_id: str
    name: str
    account_id: str
    role_arn: str
    regions: tuple[str, ...]
    external_id: str
    trust_policy: dict[str, Any]
    created_at: str

    def public(self) -> dict[str, Any]:
        return {
            "target_id": self.target_id,
            "name": self.name,
            "account_id": self.account_id,
            "role_arn": self.role_arn,
            "regions": list(self.regions),
            "external_id": self.external_id,
            "trust_policy": self.trust_policy,
            "created_at": self.created_at,
        }


def trust_policy_for(service_principal_arn: str, external_id: str) -> dict[str, Any]:
    """The exact trust policy the target account puts on its deployment role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": service_principal_arn},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
            }
        ],
    }


@dataclass(frozen=True)
class Operation:
    operation_id: str
    action: Action
    status: OperationStatus
    started_at: str
    ended_at: str | None = None
    # Workflow bookkeeping, not part of the public shape.
    phase: str = "pending"
    change_set_name: str | None = None
    last_event_id: str | None = None

    @property
    def running(self) -> bool:
        return self.status in RUNNING_OPERATION_STATUSES

    @property
    def client_request_token(self) -> str:
        # Same operation, same token: a step that runs twice repeats the same request.
        return f"nexus-{self.operation_id}"

    def public(self) -> dict[str, Any]:
        return {
            "operation_id": self.operation_id,
            "action": self.action.value,
            "status": self.status.value,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
        }


@dataclass(frozen=True)
class Deployment:
    tenant_id: str
    deployment_id: str
    target_id: str
    account_id: str
    region: str
    stack_name: str
    status: DeploymentStatus
    operation: Operation
    created_at: str
    updated_at: str
    parameters: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    stack_status: str | None = None
    stack_id: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    error: ErrorInfo | None = None
    ever_active: bool = False

    @property
    def live(self) -> bool:
        return self.status is not DeploymentStatus.DELETED

    def public(self) -> dict[str, Any]:
        return {
            "deployment_id": self.deployment_id,
            "target_id": self.target_id,
            "account_id": self.account_id,
            "region": self.region,
            "stack_name": self.stack_name,
            "status": self.status.value,
            "stack_status": self.stack_status,
            "stack_id": self.stack_id,
            "outputs": dict(self.outputs),
            "parameters": dict(self.parameters),
            "tags": dict(self.tags),
            "error": self.error.as_dict() if self.error else None,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "operation": self.operation.public(),
        }


@dataclass(frozen=True)
class OperationRequest:
    """What one operation deploys; stored beside the deployment, never in the execution's state."""

    deployment_id: str
    operation_id: str
    action: Action
    template_body: str | None
    parameters: dict[str, str]
    tags: dict[str, str]


class EventSource(StrEnum):
    ORCHESTRATOR = "orchestrator"
    STACK = "stack"


@dataclass(frozen=True)
class DeploymentEvent:
    timestamp: str
    source: EventSource
    status: str
    resource: str
    message: str

    def public(self) -> dict[str, str]:
        return {
            "timestamp": self.timestamp,
            "source": self.source.value,
            "status": self.status,
            "resource": self.resource,
            "message": self.message,
        }


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_token: str | None

    def public(self) -> dict[str, Any]:
        return {"items": self.items, "next_token": self.next_token}


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
