"""How an operation ends: SUCCEEDED, PLANNED, CANCELLED, deleted or FAILED, each as its record and final
event in one write, with the stack's lock released just before.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from chalicelib.domain.model import (
    Action,
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
    ErrorInfo,
    EventSource,
    OperationMode,
    OperationStatus,
    utc_now,
)
from chalicelib.domain.plans import Plan
from chalicelib.service.operation_metrics import count_ended
from chalicelib.service.ports import StackGateway
from chalicelib.service.workflow.core import WorkflowCore
from chalicelib.service.workflow.progress import progress
from chalicelib.service.workflow.values import StepInput


class Outcomes(WorkflowCore):
    def _succeed(self, deployment: Deployment, outputs: dict[str, str], message: str) -> dict[str, Any]:
        self._release(deployment)
        operation = deployment.operation
        deployed = operation.action in (Action.CREATE, Action.UPDATE)
        done = replace(
            deployment,
            status=DeploymentStatus.ACTIVE,
            outputs=dict(outputs),
            error=None,
            ever_active=True,
            operation=replace(operation, status=OperationStatus.SUCCEEDED, ended_at=utc_now()),
            updated_at=utc_now(),
            last_success_hash=deployment.config_hash if deployed else deployment.last_success_hash,
            plan=None if operation.mode is OperationMode.APPLY else deployment.plan,
        )
        self._finish(done, "SUCCEEDED", message)
        return progress(True, True, 0)

    def _planned(
        self, deployment: Deployment, stacks: StackGateway, changes: Any, message: str
    ) -> dict[str, Any]:
        """mode=plan: keep the change set, record its changes, end PLANNED; the stack is untouched."""
        self._release(deployment)
        operation = deployment.operation
        stack = stacks.describe_stack(deployment.stack_id or deployment.stack_name)
        plan = Plan(
            operation_id=operation.operation_id,
            action=operation.action.value,
            change_set_name=operation.change_set_name or f"nexus-{operation.operation_id}",
            config_hash=deployment.config_hash or "",
            base_hash=deployment.last_success_hash,
            created_at=utc_now(),
            changes=tuple(changes),
        )
        done = replace(
            deployment,
            # A create plan has no stack yet (REVIEW_IN_PROGRESS); an update plan leaves the status as it was.
            status=DeploymentStatus.PLANNED if operation.action is Action.CREATE else deployment.status,
            stack_id=stack.stack_id if stack else deployment.stack_id,
            stack_status=stack.status if stack else deployment.stack_status,
            plan=plan,
            operation=replace(operation, status=OperationStatus.PLANNED, ended_at=utc_now()),
            updated_at=utc_now(),
        )
        self._finish(done, "PLANNED", f"{message}: {len(plan.changes)} change(s)")
        return progress(True, True, 0)

    def _cancelled(self, deployment: Deployment, outputs: dict[str, str], message: str) -> dict[str, Any]:
        """The update was cancelled: the stack is at its last successful configuration."""
        self._release(deployment)
        done = replace(
            deployment,
            status=DeploymentStatus.ACTIVE if deployment.ever_active else DeploymentStatus.FAILED,
            outputs=dict(outputs),
            error=None,
            operation=replace(deployment.operation, status=OperationStatus.CANCELLED, ended_at=utc_now()),
            updated_at=utc_now(),
        )
        self._finish(done, "CANCELLED", message)
        return progress(True, True, 0)

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
        # The stack name is free before the record says DELETED (as the lock is released before the
        # final state): a client that sees DELETED can create the stack again at once.
        self._store.release_stack_name(done)
        self._finish(done, "SUCCEEDED", message)
        return progress(True, True, 0)

    def _fail(self, deployment: Deployment, info: ErrorInfo) -> None:
        operation = deployment.operation
        # A failed update plan changed nothing: the deployment keeps its status (the error says why).
        keep = operation.mode is OperationMode.PLAN and operation.action is Action.UPDATE
        failed = replace(
            deployment,
            status=deployment.status if keep else DeploymentStatus.FAILED,
            error=info,
            operation=replace(deployment.operation, status=OperationStatus.FAILED, ended_at=utc_now()),
            updated_at=utc_now(),
        )
        self._finish(failed, "FAILED", f"{info.code}: {info.message}")

    def _release(self, deployment: Deployment) -> None:
        # Before the final state is written, so a client that sees the operation ended can act at once.
        self._locks.release_lock(
            deployment.stack_key,
            deployment.operation.operation_id,
        )

    def _finish(self, ended: Deployment, status: str, message: str) -> None:
        """The ended operation's record with its final event, in one write: a client that sees the
        operation ended finds its events complete, and a retried step writes neither twice."""
        event = DeploymentEvent(utc_now(), EventSource.ORCHESTRATOR, status, ended.stack_name, message)
        if self._store.save_deployment(ended, final_event=event):
            count_ended(self._metrics, ended)
