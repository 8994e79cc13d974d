"""The stack lock: one operation drives a stack at a time. AcquireLock takes it, each step renews its
lease before a stack call (and stops if another operation took the stack meanwhile), and ReleaseLock
frees it whatever happened.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from chalicelib.domain.errors import STALE_OPERATION, DeployerError, StackLocked, StackOperationError
from chalicelib.domain.model import (
    Action,
    Deployment,
    DeploymentStatus,
    OperationMode,
    OperationStatus,
    utc_now,
)
from chalicelib.service.workflow.announcement import EndAnnouncement
from chalicelib.service.workflow.values import StepInput


def _ended_meanwhile(step: StepInput) -> StackOperationError:
    return StackOperationError(
        f"Operation {step.operation_id} ended while this step ran (its execution was stopped).",
        code=STALE_OPERATION,
        hint="Nothing to do: the deployment shows how it ended.",
    )


class StackLocking(EndAnnouncement):
    def acquire_lock(self, step: StepInput) -> dict[str, Any]:
        deployment = self._current(step)
        if not deployment.operation.running:
            return {}  # ended already (its execution was stopped): StartStackOperation goes to the end
        key = deployment.stack_key
        if not self._locks.acquire_lock(key, step.operation_id, self._settings.lock_lease_seconds):
            holder = self._locks.lock_holder(key)
            raise StackLocked(
                f"Stack {deployment.stack_name} in {deployment.account_id}/{deployment.region} "
                f"is locked by operation {holder}.",
                details={"operation_id": holder},
            )
        planning = (
            deployment.operation.mode is OperationMode.PLAN and deployment.operation.action is Action.UPDATE
        )
        started = replace(
            deployment,
            # An update plan changes nothing on the stack: the deployment keeps its status throughout.
            status=deployment.status if planning else DeploymentStatus.IN_PROGRESS,
            operation=replace(deployment.operation, status=OperationStatus.IN_PROGRESS),
            updated_at=utc_now(),
        )
        try:
            self._store.save_deployment(started)
        except DeployerError:  # it ended meanwhile (STALE_OPERATION): the lock just taken is not its own
            self._locks.release_lock(key, step.operation_id)
            raise
        self._event(deployment, "LOCKED", "lock taken on the stack")
        return {}

    def _renew_lease(self, deployment: Deployment, step: StepInput) -> None:
        """Extend this operation's hold on the stack. When the lease ran out and another operation took
        the stack meanwhile, this one stops here, with no further stack call: two operations must never
        drive one stack, and the other one holds it now."""
        key, lease = deployment.stack_key, self._settings.lock_lease_seconds
        if not deployment.operation.running:  # the steps return before: an ended operation takes nothing
            raise _ended_meanwhile(step)
        if self._locks.renew_lock(key, step.operation_id, lease):
            return
        # Not ours any more. Its lease ran out (the lock may be gone): take it again unless another
        # operation did, or unless the operation ended meanwhile (its execution was stopped and its
        # end recorded, which freed the stack): a step still running then must not lock it again.
        if not self._still_running(step):
            raise _ended_meanwhile(step)
        if self._locks.acquire_lock(key, step.operation_id, lease):
            if self._still_running(step):
                return
            # Its end was recorded between the read above and the lock: the lock is not its own.
            self._locks.release_lock(key, step.operation_id)
            raise _ended_meanwhile(step)
        holder = self._locks.lock_holder(key)
        raise StackOperationError(
            f"The lock of operation {step.operation_id} on stack {deployment.stack_name} in "
            f"{deployment.account_id}/{deployment.region} expired ({self._settings.lock_lease_seconds} s "
            f"lease) and operation {holder} took the stack; this operation stops without another "
            "stack call.",
            code="LOCK_LOST",
            hint="Look at the stack's events in the target account: the other operation owns the stack "
            "now. When it has ended, run this one again.",
            details={"operation_id": holder},
        )

    def _still_running(self, step: StepInput) -> bool:
        """The record, read now, still shows this step's operation current and running."""
        current = self._deployment(step).operation
        return current.operation_id == step.operation_id and current.running

    def release_lock(self, step: StepInput) -> dict[str, Any]:
        """Also released before the final state is written; this step makes sure, whatever happened."""
        deployment = self._deployment(step)
        self._locks.release_lock(deployment.stack_key, step.operation_id)
        if deployment.operation.operation_id == step.operation_id:
            self._forget_secrets(deployment)
        self._announce_end(deployment, step)
        return {}
