"""The interfaces the services need from the outside world, as ``typing.Protocol``s.

The adapters in ``chalicelib/adapters`` implement them with boto3; tests may implement them in
memory. The small frozen dataclasses here are the data that crosses those boundaries, so the
service layer never sees a boto3 response shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib.domain.model import Deployment, DeploymentEvent, OperationRequest, Page, Target


@dataclass(frozen=True)
class StackInfo:
    stack_id: str
    stack_name: str
    status: str
    status_reason: str | None
    outputs: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StackEventInfo:
    event_id: str
    timestamp: str
    logical_id: str
    resource_type: str
    status: str
    reason: str | None
    client_request_token: str | None


@dataclass(frozen=True)
class ChangeSetInfo:
    status: str  # CREATE_PENDING | CREATE_IN_PROGRESS | CREATE_COMPLETE | FAILED | DELETE_*
    status_reason: str | None
    execution_status: str | None
    has_changes: bool


@dataclass(frozen=True)
class StackSpec:
    stack_name: str
    template_body: str
    parameters: dict[str, str]
    tags: dict[str, str]


class TargetStore(Protocol):
    def put_target(self, target: Target) -> None: ...
    def get_target(self, tenant_id: str, target_id: str) -> Target | None: ...
    def list_targets(self, tenant_id: str, limit: int, next_token: str | None) -> Page: ...
    def delete_target(self, tenant_id: str, target_id: str) -> None: ...


class DeploymentStore(Protocol):
    def create_deployment(self, deployment: Deployment, request: OperationRequest) -> None:
        """Write a new deployment and claim its (target, region, stack name); Conflict if taken."""

    def begin_operation(self, deployment: Deployment, request: OperationRequest) -> None:
        """Replace the deployment's operation; Conflict if its current operation still runs."""

    def save_deployment(self, deployment: Deployment) -> None:
        """Persist progress of the deployment's current operation; refused for a stale operation."""

    def release_stack_name(self, deployment: Deployment) -> None: ...
    def get_deployment(self, tenant_id: str, deployment_id: str) -> Deployment | None: ...
    def get_request(self, deployment_id: str, operation_id: str) -> OperationRequest | None: ...
    def list_deployments(
        self,
        tenant_id: str,
        *,
        target_id: str | None,
        status: str | None,
        limit: int,
        next_token: str | None,
    ) -> Page: ...
    def count_live_deployments(self, tenant_id: str, target_id: str) -> int: ...
    def append_events(self, deployment_id: str, events: list[DeploymentEvent]) -> None: ...
    def list_events(self, deployment_id: str, limit: int, next_token: str | None) -> Page: ...


class LockStore(Protocol):
    def acquire_lock(self, key: str, owner: str, lease_seconds: int) -> bool:
        """Take or renew the lock; True when ``owner`` holds it afterwards."""

    def release_lock(self, key: str, owner: str) -> None: ...
    def lock_holder(self, key: str) -> str | None: ...


class TokenStore(Protocol):
    def tenant_for_token_hash(self, token_sha256: str) -> str | None: ...
    def put_token(self, token_sha256: str, tenant_id: str, label: str) -> None: ...


class WorkflowStarter(Protocol):
    def start(self, execution_name: str, execution_input: dict[str, Any]) -> str: ...


class StackGateway(Protocol):
    """CloudFormation in one target account and region, through an assumed role."""

    def describe_stack(self, stack: str) -> StackInfo | None: ...
    def create_stack(self, spec: StackSpec, client_request_token: str) -> str: ...
    def create_change_set(self, spec: StackSpec, change_set_name: str) -> None: ...
    def describe_change_set(self, stack: str, change_set_name: str) -> ChangeSetInfo: ...
    def execute_change_set(self, stack: str, change_set_name: str, client_request_token: str) -> None: ...
    def delete_change_set(self, stack: str, change_set_name: str) -> None: ...
    def delete_stack(self, stack_id: str, client_request_token: str) -> None: ...
    def new_events(
        self, stack_id: str, client_request_token: str, since_event_id: str | None, not_before: str
    ) -> list[StackEventInfo]:
        """This operation's events newer than ``since_event_id``, oldest first."""


class TargetAccess(Protocol):
    """Opens a session in a target account; credentials stay inside the returned gateway."""

    def stacks(self, *, role_arn: str, external_id: str, session_name: str, region: str) -> StackGateway: ...


class IdempotencyGuard(Protocol):
    def run(
        self, key: str, fingerprint: str, produce: Callable[[], dict[str, Any]], lambda_context: Any = None
    ) -> dict[str, Any]:
        """Run ``produce`` once per key; replay its result; Conflict when the fingerprint differs."""
