"""The steps of ``statemachine/deployment.asl.json``: lock, start, poll, release, record failure.

Each step re-reads the deployment from the store and re-assumes the target role; nothing but ids
and the poll interval travels in the execution's state. Every step is safe to run twice (Lambda may
retry): the lock is re-entrant for its owner, stack calls carry a ClientRequestToken derived from the
operation id, and a create that finds its own stack already started takes it up instead of failing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from chalicelib.domain.errors import DeployerError, StackLocked, StackOperationError
from chalicelib.domain.model import (
    Action,
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
    ErrorInfo,
    EventSource,
    OperationRequest,
    OperationStatus,
    Target,
    utc_now,
)
from chalicelib.domain.stack_status import STUCK_HINTS, StackPhase, is_failure_event, phase_of
from chalicelib.service.deployments import lock_key
from chalicelib.service.ports import DeploymentStore, LockStore, StackGateway, StackSpec, TargetAccess
from chalicelib.service.targets import TargetService

DEPLOYMENT_TAG = "nexus:deployment-id"
NO_CHANGES_MARKERS = ("didn't contain changes", "No updates are to be performed")


@dataclass(frozen=True)
class StepInput:
    tenant_id: str
    deployment_id: str
    operation_id: str
    wait_seconds: int
    max_wait_seconds: int

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> StepInput:
        progress = event.get("progress") or {}
        return cls(
            tenant_id=str(event["tenant_id"]),
            deployment_id=str(event["deployment_id"]),
            operation_id=str(event["operation_id"]),
            wait_seconds=int(progress.get("wait_seconds", event.get("wait_seconds", 5))),
            max_wait_seconds=int(event.get("max_wait_seconds", 60)),
        )


@dataclass(frozen=True)
class WorkflowSettings:
    lock_lease_seconds: int = 900
    operation_timeout_seconds: int = 6 * 3600


def _progress(done: bool, succeeded: bool, wait_seconds: int) -> dict[str, Any]:
    return {"done": done, "succeeded": succeeded, "wait_seconds": wait_seconds}


class WorkflowService:
    def __init__(
        self,
        deployments: DeploymentStore,
        locks: LockStore,
        targets: TargetService,
        access: TargetAccess,
        settings: WorkflowSettings,
    ) -> None:
        self._store = deployments
        self._locks = locks
        self._targets = targets
        self._access = access
        self._settings = settings

    # -- steps -----------------------------------------------------------------------------------

    def acquire_lock(self, step: StepInput) -> dict[str, Any]:
        deployment = self._current(step)
        key = lock_key(deployment.account_id, deployment.region, deployment.stack_name)
        if not self._locks.acquire_lock(key, step.operation_id, self._settings.lock_lease_seconds):
            holder = self._locks.lock_holder(key)
            raise StackLocked(
                f"Stack {deployment.stack_name} in {deployment.account_id}/{deployment.region} "
                f"is locked by operation {holder}.",
                details={"operation_id": holder},
            )
        started = replace(
            deployment,
            status=DeploymentStatus.IN_PROGRESS,
            operation=replace(deployment.operation, status=OperationStatus.IN_PROGRESS),
            updated_at=utc_now(),
        )
        self._store.save_deployment(started)
        self._event(deployment, "LOCKED", "lock taken on the stack")
        return {}

    def start_stack_operation(self, step: StepInput) -> dict[str, Any]:
        deployment = self._current(step)
        if deployment.operation.phase != "pending":
            # A repeated invocation: the stack call was already made; go on polling.
            return _progress(False, False, step.wait_seconds)
        request = self._request(deployment)
        stacks = self._stacks(deployment)
        operation = deployment.operation
        token = operation.client_request_token
        existing = stacks.describe_stack(deployment.stack_id or deployment.stack_name)
        if operation.action is Action.CREATE:
            if existing is not None and existing.tags.get(DEPLOYMENT_TAG) == deployment.deployment_id:
                stack_id = existing.stack_id  # our own create, repeated: take it up
            elif existing is not None and phase_of(existing.status) is not StackPhase.GONE:
                raise StackOperationError(
                    f"A stack named {deployment.stack_name} already exists in {deployment.account_id}/"
                    f"{deployment.region} and was not created by this service.",
                    code="STACK_EXISTS",
                    hint="Choose another stack_name, or delete the existing stack first.",
                )
            else:
                stack_id = stacks.create_stack(self._spec(deployment, request), token)
            updated = replace(deployment, stack_id=stack_id, operation=replace(operation, phase="executing"))
            message = f"CreateStack started ({token})"
        elif operation.action is Action.UPDATE:
            if existing is None or phase_of(existing.status) is StackPhase.GONE:
                raise StackOperationError(
                    f"Stack {deployment.stack_name} no longer exists in {deployment.account_id}/"
                    f"{deployment.region}.",
                    code="STACK_NOT_FOUND",
                    hint="Delete this deployment and create it again.",
                )
            if existing.status == "ROLLBACK_COMPLETE":
                raise StackOperationError(
                    f"Stack {deployment.stack_name} is in ROLLBACK_COMPLETE: its first create failed, "
                    "so it cannot be updated.",
                    code="STACK_NOT_UPDATABLE",
                    hint="Delete this deployment (DELETE /deployments/{id}), then create it again.",
                )
            change_set = f"nexus-{operation.operation_id}"
            stacks.create_change_set(self._spec(deployment, request), change_set)
            updated = replace(
                deployment,
                stack_id=existing.stack_id,
                operation=replace(operation, phase="changeset", change_set_name=change_set),
            )
            message = f"change set {change_set} requested"
        else:
            if existing is None or phase_of(existing.status) is StackPhase.GONE:
                return self._finish_deleted(deployment, "the stack was already gone", step)
            stacks.delete_stack(existing.stack_id, token)
            updated = replace(
                deployment, stack_id=existing.stack_id, operation=replace(operation, phase="executing")
            )
            message = f"DeleteStack started ({token})"
        self._store.save_deployment(replace(updated, updated_at=utc_now()))
        self._event(deployment, "STARTED", message)
        return _progress(False, False, step.wait_seconds)

    def poll_stack(self, step: StepInput) -> dict[str, Any]:
        deployment = self._current(step)
        key = lock_key(deployment.account_id, deployment.region, deployment.stack_name)
        self._locks.acquire_lock(key, step.operation_id, self._settings.lock_lease_seconds)  # renew lease
        next_wait = min(step.max_wait_seconds, math.ceil(step.wait_seconds * 1.5))
        self._check_deadline(deployment)
        stacks = self._stacks(deployment)
        if deployment.operation.phase == "changeset":
            return self._poll_change_set(deployment, stacks, step, next_wait)
        return self._poll_stack_status(deployment, stacks, step, next_wait)

    def release_lock(self, step: StepInput) -> dict[str, Any]:
        """Also released before the final state is written; this step makes sure, whatever happened."""
        deployment = self._deployment(step)
        self._locks.release_lock(
            lock_key(deployment.account_id, deployment.region, deployment.stack_name), step.operation_id
        )
        return {}

    def record_failure(self, step: StepInput, error: dict[str, Any]) -> dict[str, Any]:
        """Catch-all: turn a step's error into an explained FAILED state and free the stack."""
        info = error_from_state(error)
        deployment = self._deployment(step)
        # Conditional on the owner: frees the lock only if this operation holds it.
        self._locks.release_lock(
            lock_key(deployment.account_id, deployment.region, deployment.stack_name), step.operation_id
        )
        if deployment.operation.operation_id == step.operation_id and deployment.operation.running:
            self._fail(deployment, info)
        return {"recorded": info.code}

    # -- polling ---------------------------------------------------------------------------------

    def _poll_change_set(
        self, deployment: Deployment, stacks: StackGateway, step: StepInput, next_wait: int
    ) -> dict[str, Any]:
        operation = deployment.operation
        name = operation.change_set_name or f"nexus-{operation.operation_id}"
        stack = deployment.stack_id or deployment.stack_name
        change_set = stacks.describe_change_set(stack, name)
        if change_set.status in ("CREATE_PENDING", "CREATE_IN_PROGRESS"):
            return _progress(False, False, next_wait)
        if change_set.status == "FAILED":
            reason = change_set.status_reason or "the change set failed"
            if any(marker in reason for marker in NO_CHANGES_MARKERS):
                stacks.delete_change_set(stack, name)
                current = stacks.describe_stack(stack)
                return self._succeed(deployment, current.outputs if current else {}, "no changes to apply")
            raise StackOperationError(
                f"CloudFormation refused the change set: {reason}",
                code="CHANGE_SET_FAILED",
                hint="Fix the template or parameters as the reason says, then update again.",
            )
        stacks.execute_change_set(stack, name, operation.client_request_token)
        self._store.save_deployment(
            replace(deployment, operation=replace(operation, phase="executing"), updated_at=utc_now())
        )
        self._event(deployment, "EXECUTING", f"change set {name} executing")
        return _progress(False, False, next_wait)

    def _poll_stack_status(
        self, deployment: Deployment, stacks: StackGateway, step: StepInput, next_wait: int
    ) -> dict[str, Any]:
        operation = deployment.operation
        stack_ref = deployment.stack_id or deployment.stack_name
        events = stacks.new_events(
            stack_ref, operation.client_request_token, operation.last_event_id, operation.started_at
        )
        if events:
            self._store.append_events(
                deployment.deployment_id,
                [
                    DeploymentEvent(
                        e.timestamp,
                        EventSource.STACK,
                        e.status,
                        e.logical_id,
                        e.reason or f"{e.resource_type} {e.status}",
                    )
                    for e in events
                ],
            )
            deployment = replace(deployment, operation=replace(operation, last_event_id=events[-1].event_id))
        stack = stacks.describe_stack(stack_ref)
        status = stack.status if stack else "DELETE_COMPLETE"
        phase = phase_of(status)
        deployment = replace(deployment, stack_status=status, updated_at=utc_now())
        if phase is StackPhase.IN_PROGRESS:
            self._store.save_deployment(deployment)
            return _progress(False, False, next_wait)
        if operation.action is Action.DELETE:
            if phase is StackPhase.GONE:
                return self._finish_deleted(deployment, "stack deleted", step)
            raise StackOperationError(
                f"DeleteStack ended in {status}: {self._failure_reason(events, stack.status_reason if stack else None)}",
                code="STACK_DELETE_FAILED",
                hint=STUCK_HINTS.get(status, "Read the stack events, fix what blocks the delete, retry."),
            )
        if phase is StackPhase.SUCCEEDED and stack is not None:
            return self._succeed(deployment, stack.outputs, f"stack {status}")
        reason = self._failure_reason(events, stack.status_reason if stack else None)
        verb = "create" if operation.action is Action.CREATE else "update"
        self._store.save_deployment(deployment)
        raise StackOperationError(
            f"Stack {verb} ended in {status}: {reason}",
            code="STACK_CREATE_FAILED" if operation.action is Action.CREATE else "STACK_UPDATE_FAILED",
            hint=STUCK_HINTS.get(
                status,
                "Fix the failing resource in the template (see the deployment's events), then "
                + ("delete and create again." if status == "ROLLBACK_COMPLETE" else "update again."),
            ),
        )

    @staticmethod
    def _failure_reason(events: list[Any], stack_reason: str | None) -> str:
        for event in events:
            if is_failure_event(event.status) and event.reason and event.logical_id:
                return f"resource {event.logical_id} ({event.resource_type}) failed: {event.reason}"
        return stack_reason or "no reason given by CloudFormation"

    # -- outcomes --------------------------------------------------------------------------------

    def _succeed(self, deployment: Deployment, outputs: dict[str, str], message: str) -> dict[str, Any]:
        self._release(deployment)
        done = replace(
            deployment,
            status=DeploymentStatus.ACTIVE,
            outputs=dict(outputs),
            error=None,
            ever_active=True,
            operation=replace(deployment.operation, status=OperationStatus.SUCCEEDED, ended_at=utc_now()),
            updated_at=utc_now(),
        )
        self._store.save_deployment(done)
        self._event(deployment, "SUCCEEDED", message)
        return _progress(True, True, 0)

    def _finish_deleted(self, deployment: Deployment, message: str, step: StepInput) -> dict[str, Any]:
        self._release(deployment)
        done = replace(
            deployment,
            status=DeploymentStatus.DELETED,
            stack_status="DELETE_COMPLETE",
            outputs={},
            error=None,
            operation=replace(deployment.operation, status=OperationStatus.SUCCEEDED, ended_at=utc_now()),
            updated_at=utc_now(),
        )
        self._store.save_deployment(done)
        self._store.release_stack_name(done)
        self._event(deployment, "SUCCEEDED", message)
        return _progress(True, True, 0)

    def _fail(self, deployment: Deployment, info: ErrorInfo) -> None:
        failed = replace(
            deployment,
            status=DeploymentStatus.FAILED,
            error=info,
            operation=replace(deployment.operation, status=OperationStatus.FAILED, ended_at=utc_now()),
            updated_at=utc_now(),
        )
        self._store.save_deployment(failed)
        self._event(deployment, "FAILED", f"{info.code}: {info.message}")

    def _release(self, deployment: Deployment) -> None:
        # Before the final state is written, so a client that sees the operation ended can act at once.
        self._locks.release_lock(
            lock_key(deployment.account_id, deployment.region, deployment.stack_name),
            deployment.operation.operation_id,
        )

    # -- plumbing --------------------------------------------------------------------------------

    def _deployment(self, step: StepInput) -> Deployment:
        deployment = self._store.get_deployment(step.tenant_id, step.deployment_id)
        if deployment is None:
            raise DeployerError(f"Deployment {step.deployment_id} vanished from the store.")
        return deployment

    def _current(self, step: StepInput) -> Deployment:
        deployment = self._deployment(step)
        if deployment.operation.operation_id != step.operation_id:
            raise DeployerError(
                f"Operation {step.operation_id} is no longer the deployment's current operation.",
                code="STALE_OPERATION",
            )
        return deployment

    def _request(self, deployment: Deployment) -> OperationRequest:
        request = self._store.get_request(deployment.deployment_id, deployment.operation.operation_id)
        if request is None:
            raise DeployerError(f"Operation {deployment.operation.operation_id} has no stored request.")
        return request

    def _target(self, deployment: Deployment) -> Target:
        return self._targets.get(deployment.tenant_id, deployment.target_id)

    def _stacks(self, deployment: Deployment) -> StackGateway:
        target = self._target(deployment)
        return self._access.stacks(
            role_arn=target.role_arn,
            external_id=target.external_id,
            session_name=f"nexus-{deployment.operation.operation_id}",
            region=deployment.region,
        )

    @staticmethod
    def _spec(deployment: Deployment, request: OperationRequest) -> StackSpec:
        return StackSpec(
            stack_name=deployment.stack_name,
            template_body=request.template_body or "",
            parameters=request.parameters,
            tags={**request.tags, DEPLOYMENT_TAG: deployment.deployment_id},
        )

    def _check_deadline(self, deployment: Deployment) -> None:
        started = datetime.fromisoformat(deployment.operation.started_at.replace("Z", "+00:00"))
        if (datetime.now(UTC) - started).total_seconds() > self._settings.operation_timeout_seconds:
            raise StackOperationError(
                f"The stack operation did not finish within {self._settings.operation_timeout_seconds} s.",
                code="OPERATION_TIMED_OUT",
                hint="Look at the stack in the target account; when it settles, retry the operation.",
            )

    def _event(self, deployment: Deployment, status: str, message: str) -> None:
        self._store.append_events(
            deployment.deployment_id,
            [DeploymentEvent(utc_now(), EventSource.ORCHESTRATOR, status, deployment.stack_name, message)],
        )


def error_from_state(error: dict[str, Any]) -> ErrorInfo:
    """Read the ``{"Error", "Cause"}`` that a Catch put in the state into code, message and hint.

    Step handlers raise DeployerErrors whose Lambda error message is their JSON ``as_dict``; any
    other failure (a bug, a Lambda timeout) becomes INTERNAL_ERROR with what Step Functions said.
    """
    name = str(error.get("Error", "States.Runtime"))
    cause = error.get("Cause") or ""
    message: Any = cause
    try:
        parsed = json.loads(cause)
        message = parsed.get("errorMessage", cause) if isinstance(parsed, dict) else cause
        body = json.loads(message) if isinstance(message, str) else None
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict) and {"code", "message", "hint"} <= body.keys():
        return ErrorInfo(str(body["code"]), str(body["message"]), str(body["hint"]))
    if name == "States.Timeout":
        return ErrorInfo("STEP_TIMED_OUT", "A workflow step timed out.", "Retry the operation.")
    return ErrorInfo(
        "INTERNAL_ERROR",
        f"{name}: {str(message)[:500]}",
        DeployerError.hint,
    )
