"""StartStackOperation: an operation's first stack call, chosen from the stack found and its status's
``Remedy``: CreateStack, a change set, DeleteStack, ContinueUpdateRollback, executing a planned change
set, or deleting and creating again a stack whose first create failed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from chalicelib.domain.errors import StackOperationError
from chalicelib.domain.model import Action, Deployment, Operation, OperationMode, OperationRequest, utc_now
from chalicelib.domain.stack_status import STUCK_HINTS, Remedy, StackPhase, phase_of, remedy_of
from chalicelib.domain.templates import DEPLOYMENT_TAG
from chalicelib.service.ports import StackGateway, StackInfo
from chalicelib.service.workflow.core import executing_status
from chalicelib.service.workflow.event_wait import RECREATE_SUFFIX, EventWaiting
from chalicelib.service.workflow.outcomes import Outcomes
from chalicelib.service.workflow.progress import ended_progress, waiting
from chalicelib.service.workflow.values import StepInput


class StackStart(EventWaiting, Outcomes):
    def start_stack_operation(self, step: StepInput) -> dict[str, Any]:
        deployment = self._current(step)
        ended = ended_progress(deployment)
        if ended is not None:
            return ended
        step = self._completion_for(step, deployment)
        if deployment.operation.phase != "pending":
            # A repeated invocation: the stack call was already made; go on waiting.
            return waiting(step, deployment.operation.phase, step.wait_seconds)
        self._renew_lease(deployment, step)  # the lock is still this operation's before any stack call
        target = self._target(deployment)
        stacks = self._stacks(deployment, target)
        self._guard_external_id(deployment, target)
        operation = deployment.operation
        token = operation.client_request_token
        existing = stacks.describe_stack(deployment.stack_id or deployment.stack_name)
        gone = existing is None or phase_of(existing.status) is StackPhase.GONE
        mine = existing is not None and (
            existing.tags.get(DEPLOYMENT_TAG) == deployment.deployment_id
            or existing.stack_id == deployment.stack_id
        )
        if mine and existing is not None and existing.status != deployment.stack_status:
            # Record what was found, so a refusal below is also refused up front next time.
            deployment = replace(deployment, stack_status=existing.status)
            self._store.save_deployment(deployment)
        if operation.action is Action.DELETE:
            if existing is None or gone:
                return self._finish_deleted(deployment, "the stack was already gone", step)
            if existing.tags.get(DEPLOYMENT_TAG) != deployment.deployment_id and (
                existing.stack_id != deployment.stack_id
            ):
                # Never delete a stack this deployment neither created nor adopted (e.g. a create that was
                # refused with STACK_EXISTS): the deployment goes, the stack stays.
                return self._finish_deleted(
                    deployment, f"stack {existing.stack_name} is not this deployment's: left in place", step
                )
            stacks.delete_stack(existing.stack_id, token, operation.resources)
            retained = f", retaining {', '.join(operation.resources)}" if operation.resources else ""
            return self._started(
                deployment,
                existing.stack_id,
                "executing",
                f"DeleteStack started ({token}){retained}",
                step,
                "DELETE_IN_PROGRESS",
            )
        if operation.action is Action.CONTINUE_ROLLBACK:
            status = "UPDATE_ROLLBACK_IN_PROGRESS"  # what CloudFormation puts the stack in as it accepts
            if (
                existing is not None
                and existing.status != "UPDATE_ROLLBACK_FAILED"
                and self._called_before(stacks, existing.stack_id, operation, token)
            ):
                status = existing.status  # this step's earlier run made the call, then failed to record it
            elif existing is None or existing.status != "UPDATE_ROLLBACK_FAILED":
                raise StackOperationError(
                    f"Stack {deployment.stack_name} is in {existing.status if existing else 'no status'}, "
                    "not UPDATE_ROLLBACK_FAILED.",
                    code="NOT_IN_UPDATE_ROLLBACK_FAILED",
                    hint="Only a stack whose update rollback failed can continue its rollback.",
                )
            else:
                stacks.continue_update_rollback(existing.stack_id, token, operation.resources)
            skipped = f", skipping {', '.join(operation.resources)}" if operation.resources else ""
            return self._started(
                deployment,
                existing.stack_id,
                "executing",
                f"ContinueUpdateRollback started ({token}){skipped}",
                step,
                status,
            )
        request = self._request(deployment)
        if operation.mode is OperationMode.APPLY:
            name = operation.change_set_name or ""
            stack_ref = deployment.stack_id or deployment.stack_name
            stacks.execute_change_set(stack_ref, name, token)
            return self._started(
                deployment,
                stack_ref,
                "executing",
                f"planned change set {name} executing ({token})",
                step,
                executing_status(existing.status if existing else None),
            )
        ours = existing is not None and existing.tags.get(DEPLOYMENT_TAG) == deployment.deployment_id
        if existing is None or gone:
            if operation.action is Action.UPDATE and deployment.ever_active:
                raise StackOperationError(
                    f"Stack {deployment.stack_name} no longer exists in {deployment.account_id}/"
                    f"{deployment.region}.",
                    code="STACK_NOT_FOUND",
                    hint="Delete this deployment and create it again.",
                )
            return self._start_create(deployment, stacks, request, step, None)
        if operation.action is Action.CREATE and not ours and not operation.adopt:
            raise StackOperationError(
                f"A stack named {deployment.stack_name} already exists in {deployment.account_id}/"
                f"{deployment.region} and was not created by this service.",
                code="STACK_EXISTS",
                hint='Choose another stack_name, or send "adopt": true to take the existing stack over '
                "(it is then updated through change sets).",
            )
        remedy = remedy_of(existing.status)
        repeated = operation.action is Action.CREATE and ours and operation.mode is OperationMode.DEPLOY
        if repeated and remedy is not Remedy.EXECUTE_REVIEW:  # our own create, repeated: take it up
            return self._started(
                deployment,
                existing.stack_id,
                "executing",
                f"CreateStack started ({token})",
                step,
                existing.status,
            )
        if remedy is Remedy.RECREATE:
            return self._start_recreate(deployment, stacks, existing, ours, step)
        if remedy is Remedy.EXECUTE_REVIEW:
            return self._start_create(deployment, stacks, request, step, existing)
        if remedy is not Remedy.UPDATE:
            recreate_token = token + RECREATE_SUFFIX
            if ours and self._called_before(stacks, existing.stack_id, operation, recreate_token):
                # This step's earlier run deleted the failed stack to create it again, then failed to
                # record that: the stack is DELETE_IN_PROGRESS (or DELETE_FAILED) from our own call.
                return self._started(
                    deployment,
                    existing.stack_id,
                    "recreate_delete",
                    _recreate_message(recreate_token),
                    step,
                    existing.status,
                )
            raise StackOperationError(
                f"Stack {deployment.stack_name} is in {existing.status} and cannot be updated.",
                code="STACK_BUSY" if remedy is Remedy.WAIT else "STACK_NOT_UPDATABLE",
                hint="Another operation is running on the stack outside this service; retry when it ends."
                if remedy is Remedy.WAIT
                else STUCK_HINTS.get(existing.status, "Fix the stack in the target account, then retry."),
            )
        change_set = f"nexus-{operation.operation_id}"
        stacks.create_change_set(self._spec(deployment, request), change_set, "UPDATE")
        return self._started(
            replace(deployment, operation=replace(operation, change_set_name=change_set)),
            existing.stack_id,
            "changeset",
            f"change set {change_set} requested"
            + (" (adopting a stack this service did not create)" if not ours else ""),
            step,
            existing.status,
        )

    def _start_create(
        self,
        deployment: Deployment,
        stacks: StackGateway,
        request: OperationRequest,
        step: StepInput,
        review: StackInfo | None,
    ) -> dict[str, Any]:
        """CreateStack, or a CREATE change set when planning or when a plan left the stack in review."""
        operation = deployment.operation
        if operation.mode is OperationMode.PLAN or review is not None:
            change_set = f"nexus-{operation.operation_id}"
            stacks.create_change_set(self._spec(deployment, request), change_set, "CREATE")
            return self._started(
                replace(deployment, operation=replace(operation, change_set_name=change_set)),
                review.stack_id if review else deployment.stack_name,
                "changeset",
                f"change set {change_set} (CREATE) requested",
                step,
                "REVIEW_IN_PROGRESS",  # what a CREATE change set leaves a new stack in
            )
        stack_id = stacks.create_stack(self._spec(deployment, request), operation.client_request_token)
        return self._started(
            deployment,
            stack_id,
            "executing",
            f"CreateStack started ({operation.client_request_token})",
            step,
            "CREATE_IN_PROGRESS",
        )

    def _start_recreate(
        self, deployment: Deployment, stacks: StackGateway, existing: StackInfo, ours: bool, step: StepInput
    ) -> dict[str, Any]:
        """ROLLBACK_COMPLETE: delete and create again, but only a stack of ours that never succeeded."""
        if deployment.ever_active or not ours:
            raise StackOperationError(
                f"Stack {deployment.stack_name} is in ROLLBACK_COMPLETE and "
                + ("this deployment once succeeded" if ours else "was not created by this deployment")
                + ": it is never deleted automatically.",
                code="STACK_NOT_UPDATABLE",
                hint="Look at the stack in the target account; delete it yourself when you are sure, "
                "then deploy again.",
            )
        if deployment.operation.mode is OperationMode.PLAN:
            raise StackOperationError(
                f"Stack {deployment.stack_name} is in ROLLBACK_COMPLETE: there is nothing to plan against.",
                code="STACK_NOT_UPDATABLE",
                hint="Deploy without mode=plan: the failed stack is deleted and created again.",
            )
        token = deployment.operation.client_request_token + RECREATE_SUFFIX
        stacks.delete_stack(existing.stack_id, token)
        return self._started(
            deployment,
            existing.stack_id,
            "recreate_delete",
            _recreate_message(token),
            step,
            "DELETE_IN_PROGRESS",
        )

    @staticmethod
    def _called_before(stacks: StackGateway, stack_id: str, operation: Operation, token: str) -> bool:
        """Whether the stack has events of the call made with ``token``: an earlier run of this step
        made it and then failed to record it (its write throttled past botocore's retries: the step's
        Retry runs it again), so the stack's status is that call's doing, not someone else's. Read only
        when the status found would otherwise refuse the operation."""
        events = stacks.new_events(stack_id, operation.client_request_token, None, operation.started_at)
        return any(event.client_request_token == token for event in events)

    def _started(
        self,
        deployment: Deployment,
        stack_id: str,
        phase: str,
        message: str,
        step: StepInput,
        stack_status: str | None = None,
    ) -> dict[str, Any]:
        """Record the stack call made. ``stack_status``: the status CloudFormation puts the stack in as
        it accepts that call, so that the record shows it while the workflow waits for an event."""
        operation = replace(deployment.operation, phase=phase)
        self._store.save_deployment(
            replace(
                deployment,
                stack_id=stack_id,
                stack_status=stack_status or deployment.stack_status,
                operation=operation,
                updated_at=utc_now(),
            )
        )
        if phase != "recreate_delete":  # a recreate sends the parameters with its CreateStack, later
            self._forget_secrets(deployment)
        self._event(deployment, "STARTED", message)
        return waiting(step, phase, step.wait_seconds)


def _recreate_message(token: str) -> str:
    return (
        f"stack is in ROLLBACK_COMPLETE from its failed first create: DeleteStack ({token}), then CreateStack"
    )
