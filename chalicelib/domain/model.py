"""The records the service keeps: tenants' targets, deployments, their operations and events.

Frozen dataclasses, so a record is a value: services build new ones with ``dataclasses.replace``
and the store persists them whole. Ids are prefixed random hex (``tgt-``, ``dep-``, ``op-``); an
operation id doubles as the execution name and the seed of CloudFormation's ClientRequestToken.
"""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from chalicelib.domain.automation import DriftInfo, Notifications
from chalicelib.domain.errors import TransientAwsError
from chalicelib.domain.plans import Plan


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch_seconds(timestamp: str) -> float:
    """A ``utc_now`` timestamp as seconds since the epoch."""
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def age_seconds(timestamp: str) -> float:
    """How long ago a ``utc_now`` timestamp was; infinitely long for none."""
    if not timestamp:
        return math.inf
    return datetime.now(UTC).timestamp() - epoch_seconds(timestamp)


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def new_external_id() -> str:
    """48 random characters from the ExternalId alphabet; one per target, never chosen by a caller."""
    return "nx-" + secrets.token_urlsafe(36).replace("_", "=")[:45]


# Every CloudFormation request of ours carries ClientRequestToken nexus-<operation id>[-suffix].
REQUEST_TOKEN_PREFIX = "nexus-"  # noqa: S105 - a name prefix, not a secret


class DeploymentStatus(StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    ACTIVE = "ACTIVE"
    FAILED = "FAILED"
    DELETED = "DELETED"
    PLANNED = "PLANNED"  # a create was planned (change set computed, REVIEW_IN_PROGRESS), not yet applied


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    CONTINUE_ROLLBACK = "continue_rollback"
    FORGET = "forget"  # the record of a stack that is gone was dropped; never runs in the workflow


class OperationMode(StrEnum):
    """How a create/update runs: deploy at once, only plan (change set, no execution), or apply a plan."""

    DEPLOY = "deploy"
    PLAN = "plan"
    APPLY = "apply"


class Outcome(StrEnum):
    """What a create/update call did; returned to the caller, never stored."""

    STARTED = "STARTED"  # an operation was accepted and its execution started
    SKIPPED = "SKIPPED"  # skip_unchanged: the configuration equals the last successful one; nothing ran


class OperationStatus(StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    PLANNED = "PLANNED"  # mode=plan ended: the change set is computed and waits for apply
    CANCELLED = "CANCELLED"  # CancelUpdateStack: the update was rolled back on request


RUNNING_OPERATION_STATUSES = frozenset({OperationStatus.PENDING, OperationStatus.IN_PROGRESS})


@dataclass(frozen=True)
class ErrorInfo:
    code: str
    message: str
    hint: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "hint": self.hint}


@dataclass(frozen=True)
class ExecutionEnd:
    """How a workflow execution ended, from Step Functions' "Execution Status Change" event."""

    execution_arn: str
    status: str  # FAILED, TIMED_OUT or ABORTED
    error: str | None = None  # the error's name only: a cause can quote the execution's input

    @property
    def name(self) -> str:
        """The execution's name, the last part of its ARN."""
        return self.execution_arn.rsplit(":", 1)[-1]

    def info(self, whose: str, hint: str) -> ErrorInfo:
        """The error recorded for what ``whose`` execution left unrecorded."""
        code, how = {
            "ABORTED": ("EXECUTION_ABORTED", "was stopped"),
            "TIMED_OUT": ("EXECUTION_TIMED_OUT", "timed out"),
        }.get(self.status, ("EXECUTION_FAILED", f"failed ({self.error or 'no error named'})"))
        return ErrorInfo(
            code, f"The execution of {whose} {how} before it recorded the end ({self.execution_arn}).", hint
        )


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
    permission_profile: str = "default"  # a name in chalicelib/domain/permissions.py PROFILE_NAMES
    # The confused-deputy guard (chalicelib/service/targets.py): whether AssumeRole *without* the external
    # ID was refused when last tried (None: not tried yet), and when.
    external_id_enforced: bool | None = None
    external_id_checked_at: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "target_id": self.target_id,
            "name": self.name,
            "account_id": self.account_id,
            "role_arn": self.role_arn,
            "regions": list(self.regions),
            "external_id": self.external_id,
            "trust_policy": self.trust_policy,
            "permission_profile": self.permission_profile,
            "created_at": self.created_at,
            "external_id_enforced": self.external_id_enforced,
            "external_id_checked_at": self.external_id_checked_at,
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
    mode: OperationMode = OperationMode.DEPLOY
    # Logical ids: RetainResources of a delete, ResourcesToSkip of a continue-rollback.
    resources: tuple[str, ...] = ()
    adopt: bool = False  # a create that may take over an existing stack this service did not make
    # NoEcho values of this operation wait in the secret store (chalicelib/domain/noecho.py) until its
    # stack call; the steps delete them then, and at the operation's end in any case.
    holds_secrets: bool = False

    @property
    def running(self) -> bool:
        return self.status in RUNNING_OPERATION_STATUSES

    @property
    def client_request_token(self) -> str:
        # Same operation, same token: a step that runs twice repeats the same request.
        return f"{REQUEST_TOKEN_PREFIX}{self.operation_id}"

    def public(self) -> dict[str, Any]:
        return {
            "operation_id": self.operation_id,
            "action": self.action.value,
            "status": self.status.value,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "mode": self.mode.value,
            "resources": list(self.resources),
            "adopt": self.adopt,
        }


def stack_key(account_id: str, region: str, stack_name: str) -> str:
    """One stack, wherever it is named: a stack name is unique per account and region."""
    return f"{account_id}#{region}#{stack_name}"


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
    config_hash: str | None = None  # fingerprint of the current operation's configuration
    last_success_hash: str | None = None  # fingerprint of the last create/update that succeeded
    plan: Plan | None = None  # the last plan, until applied or replaced
    outcome: Outcome | None = field(default=None, compare=False)  # set on returned values, never stored
    # Event-driven automation (chalicelib/domain/automation.py).
    template_url: str | None = None
    notifications: Notifications | None = None
    drift: DriftInfo | None = None

    @property
    def live(self) -> bool:
        return self.status is not DeploymentStatus.DELETED

    @property
    def stack_key(self) -> str:
        """The key of this deployment's stack: its lock, its completion waiter, its name claim."""
        return stack_key(self.account_id, self.region, self.stack_name)

    @property
    def never_started(self) -> bool:
        """Its operation was recorded, but its workflow never started: StartExecution was still
        throttled after every round (the operation ended FAILED with the throttle's code)."""
        return (
            self.operation.status is OperationStatus.FAILED
            and self.error is not None
            and self.error.code == TransientAwsError.code
        )

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
            "config_hash": self.config_hash,
            "last_success_hash": self.last_success_hash,
            "changes": [c.public() for c in self.plan.changes] if self.plan else [],
            "plan": self.plan.public() if self.plan else None,
            **({"outcome": self.outcome.value} if self.outcome else {}),
            "template_url": self.template_url,
            "notifications": self.notifications.public() if self.notifications else None,
            "drift": self.drift.public() if self.drift else None,
        }


@dataclass(frozen=True)
class DeploymentFilter:
    """Which of a tenant's deployments a listing shows; None matches anything."""

    target_id: str | None = None
    status: DeploymentStatus | None = None
    stack_name: str | None = None
    account_id: str | None = None
    region: str | None = None
    live: bool | None = None


@dataclass(frozen=True)
class OperationRequest:
    """What one operation deploys; stored beside the deployment, never in the execution's state."""

    deployment_id: str
    operation_id: str
    action: Action
    template_body: str | None
    parameters: dict[str, str]  # NoEcho values masked (****): see chalicelib/domain/noecho.py
    tags: dict[str, str]
    # NoEcho parameters whose values wait in the secret store, and those kept with UsePreviousValue.
    secret_parameters: tuple[str, ...] = ()
    previous_parameters: tuple[str, ...] = ()
    # A template_url template too large for TemplateBody (51,200 bytes) is not kept: CloudFormation
    # reads it from S3 (TemplateURL) at this version.
    template_location: str | None = None
    template_version: str | None = None
    template_region: str | None = None  # the bucket's region; None in a request kept before it was recorded


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
    # Listings that grow at their end (a deployment's events): where the next look should start, on
    # the last page too, so a client that follows them reads only what is new.
    cursor: str | None = None

    def public(self) -> dict[str, Any]:
        answer = {"items": self.items, "next_token": self.next_token}
        return answer if self.cursor is None else {**answer, "cursor": self.cursor}


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
