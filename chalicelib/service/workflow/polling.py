"""PollStack: where the operation's stack call stands, and its next phase (a change set computed, the
delete half of a recreate done, the stack settled) or how long to wait. A requested cancel is carried
out here.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

from chalicelib.domain.errors import DeployerError, StackOperationError, TransientAwsError
from chalicelib.domain.metrics import WAIT_STACK_EVENT, Metric
from chalicelib.domain.model import Action, Deployment, OperationMode, age_seconds, utc_now
from chalicelib.domain.stack_status import STUCK_HINTS, StackPhase, phase_of
from chalicelib.service.completion import may_be_in_flight
from chalicelib.service.ports import StackEventInfo, StackGateway
from chalicelib.service.workflow.core import executing_status
from chalicelib.service.workflow.event_wait import CANCEL_SUFFIX, EventWaiting
from chalicelib.service.workflow.outcomes import Outcomes
from chalicelib.service.workflow.progress import ended_progress, waiting
from chalicelib.service.workflow.stack_events import (
    StackEvents,
    describe_blockers,
    failure_reason,
    stack_blockers,
    stack_ended_at,
)
from chalicelib.service.workflow.values import StepInput

logger = logging.getLogger(__name__)

NO_CHANGES_MARKERS = ("didn't contain changes", "No updates are to be performed")


class StackPolling(EventWaiting, Outcomes, StackEvents):
    def poll_stack(self, step: StepInput) -> dict[str, Any]:
        deployment = self._current(step)
        ended = ended_progress(deployment)
        if ended is not None:
            return ended
        self._renew_lease(deployment, step)
        next_wait = step.next_wait_seconds
        if deployment.operation.phase in ("changeset", "recreate_delete"):
            self._check_deadline(deployment)  # past it, no further call: the change set, the create
        step = self._completion_for(step, deployment)
        stacks = self._stacks(deployment)
        if deployment.operation.phase == "changeset":
            return self._poll_change_set(deployment, stacks, step, next_wait)
        if deployment.operation.phase == "recreate_delete":
            return self._poll_recreate(deployment, stacks, step, next_wait)
        return self._poll_stack_status(deployment, stacks, step, next_wait)

    def _reconciled(
        self, deployment: Deployment, step: StepInput, status: str, events: list[StackEventInfo]
    ) -> None:
        """After a wait that no event released (``step.timed_out``), the stack status this poll read: one
        no longer in progress had its final event, which was lost (or never sent), and this poll is the
        fallback reconcile. A stack still in progress (one longer than the wait) lost nothing.

        Nor did a stack that ended just before this poll (``may_be_in_flight``: within half the wait, at
        most a minute), by its final stack event's timestamp (or after the events were read, if none
        among them ended it): its event may still be on its way (EventBridge, the forwarding rule, the
        handler's Lambda) while the wait ran out. Counted lost, it would mark the account and region as
        losing events, for a stack that merely ended as its wait did."""
        if not step.timed_out or phase_of(status) is StackPhase.IN_PROGRESS:
            return
        ended_at = stack_ended_at(events, deployment.stack_name)
        ended_seconds_ago = age_seconds(ended_at) if ended_at else 0.0
        if may_be_in_flight(ended_seconds_ago, step.event_timeout_seconds):
            logger.info(
                "the stack ended %.1f s before this poll, as its event wait timed out: its final event "
                "may still be on its way, and is not counted lost",
                ended_seconds_ago,
                extra={"stack": deployment.stack_name, "stack_status": status},
            )
            return
        self._metrics.add(Metric.FALLBACK_RECONCILES, wait=WAIT_STACK_EVENT)
        self._events_lost(deployment)

    def _poll_change_set(
        self, deployment: Deployment, stacks: StackGateway, step: StepInput, next_wait: int
    ) -> dict[str, Any]:
        operation = deployment.operation
        name = operation.change_set_name or f"nexus-{operation.operation_id}"
        stack = deployment.stack_id or deployment.stack_name
        if self._cancel_requested(deployment):
            stacks.delete_change_set(stack, name)
            current = stacks.describe_stack(stack)
            return self._cancelled(
                deployment, current.outputs if current else {}, "change set deleted before it ran"
            )
        change_set = stacks.describe_change_set(stack, name)
        if change_set.status in ("CREATE_PENDING", "CREATE_IN_PROGRESS"):
            return waiting(step, "changeset", next_wait)
        if change_set.status == "FAILED":
            reason = change_set.status_reason or "the change set failed"
            if any(marker in reason for marker in NO_CHANGES_MARKERS):
                # The end first, the change set's deletion last: deleted first, a throttle before the end
                # was written left the step's retry a change set it could no longer read (FAILED).
                if operation.mode is OperationMode.PLAN:
                    ended = self._planned(
                        deployment, stacks, change_set.changes, "no changes: nothing to apply"
                    )
                else:
                    current = stacks.describe_stack(stack)
                    ended = self._succeed(
                        deployment, current.outputs if current else {}, "no changes to apply"
                    )
                try:  # housekeeping: a FAILED change set cannot run
                    stacks.delete_change_set(stack, name)
                except DeployerError as error:
                    logger.warning(
                        "empty change set not deleted", extra={"change_set": name, "error_code": error.code}
                    )
                return ended
            raise StackOperationError(
                f"CloudFormation refused the change set: {reason}",
                code="CHANGE_SET_FAILED",
                hint="Fix the template or parameters as the reason says, then update again.",
            )
        if operation.mode is OperationMode.PLAN:
            return self._planned(deployment, stacks, change_set.changes, f"change set {name} ready to apply")
        stacks.execute_change_set(stack, name, operation.client_request_token)
        self._store.save_deployment(
            replace(
                deployment,
                stack_status=executing_status(deployment.stack_status),
                operation=replace(operation, phase="executing"),
                updated_at=utc_now(),
            )
        )
        self._event(deployment, "EXECUTING", f"change set {name} executing")
        return waiting(step, "executing", next_wait)

    def _poll_stack_status(
        self, deployment: Deployment, stacks: StackGateway, step: StepInput, next_wait: int
    ) -> dict[str, Any]:
        operation = deployment.operation
        stack_ref = deployment.stack_id or deployment.stack_name
        events = self._record_new_events(deployment, stacks, stack_ref)
        if events:
            deployment = replace(deployment, operation=replace(operation, last_event_id=events[-1].event_id))
        stack = stacks.describe_stack(stack_ref)
        status = stack.status if stack else "DELETE_COMPLETE"
        self._reconciled(deployment, step, status, events)
        phase = phase_of(status)
        deployment = replace(deployment, stack_status=status, updated_at=utc_now())
        cancelling = operation.phase == "cancelling"
        if (
            status == "UPDATE_IN_PROGRESS"
            and stack is not None
            and (cancelling or self._cancel_requested(deployment))
        ):
            # The phase is saved before the call, and the call is made again (the same ClientRequestToken)
            # while the update still runs: sent first, a throttle before the phase was saved let the
            # step's retry find the rollback running, send nothing, and wait for the update's own events
            # while the rollback's carry the cancel's token (the wait ran out; the update FAILED, not
            # CANCELLED).
            if not cancelling:
                deployment = replace(deployment, operation=replace(deployment.operation, phase="cancelling"))
                self._store.save_deployment(deployment)
                self._event(
                    deployment, "CANCELLING", "cancel requested: CancelUpdateStack; the update rolls back"
                )
            try:
                stacks.cancel_update_stack(stack.stack_id, operation.client_request_token + CANCEL_SUFFIX)
            except TransientAwsError:
                raise
            except DeployerError as error:
                # The stack left UPDATE_IN_PROGRESS between the read and the call (it ended, or rolls back
                # already): there is nothing left to cancel, and the next read says how it ended.
                logger.warning(
                    "CancelUpdateStack refused",
                    extra={"stack": deployment.stack_name, "error_code": error.code},
                )
        if phase is StackPhase.IN_PROGRESS:
            self._store.save_deployment(deployment)  # the status read, kept even past the deadline
            # Only a stack still in progress is past its deadline: one that ended before this read (its
            # event lost, say, and this the reconcile after the wait) is recorded as it ended.
            self._check_deadline(deployment)
            return waiting(step, deployment.operation.phase, next_wait)
        if operation.phase == "cancelling" and status == "UPDATE_ROLLBACK_COMPLETE" and stack is not None:
            return self._cancelled(deployment, stack.outputs, "update cancelled and rolled back")
        if operation.action is Action.CONTINUE_ROLLBACK:
            if status == "UPDATE_ROLLBACK_COMPLETE" and stack is not None:
                return self._succeed(deployment, stack.outputs, "update rollback completed")
            blockers = stack_blockers(deployment, stacks, stack_ref)
            self._store.save_deployment(deployment)
            raise StackOperationError(
                f"ContinueUpdateRollback ended in {status}; blocked by {describe_blockers(blockers)}",
                code="STACK_ROLLBACK_FAILED",
                hint="Continue again, skipping the blocking resources: POST /deployments/{id}/"
                f'continue-rollback with {{"resources_to_skip": {json.dumps(list(blockers))}}}.',
                details={"blocking_resources": list(blockers)},
            )
        if operation.action is Action.DELETE:
            if phase is StackPhase.GONE:
                return self._finish_deleted(deployment, "stack deleted", step)
            blockers = stack_blockers(deployment, stacks, stack_ref)
            self._store.save_deployment(deployment)
            raise StackOperationError(
                f"DeleteStack ended in {status}; blocked by {describe_blockers(blockers)}",
                code="STACK_DELETE_FAILED",
                hint="Empty or release those resources and delete again, or keep them out of the delete: "
                f"DELETE /deployments/{{id}}?retain={','.join(blockers)}",
                details={"blocking_resources": list(blockers)},
            )
        if status == "UPDATE_ROLLBACK_FAILED":
            blockers = stack_blockers(deployment, stacks, stack_ref)
            self._store.save_deployment(deployment)
            raise StackOperationError(
                f"Stack update failed and its rollback failed too ({status}); blocked by "
                f"{describe_blockers(blockers)}",
                code="STACK_UPDATE_FAILED",
                hint="POST /deployments/{id}/continue-rollback, with "
                f'{{"resources_to_skip": {json.dumps(list(blockers))}}} if they cannot be rolled back.',
                details={"blocking_resources": list(blockers)},
            )
        if phase is StackPhase.SUCCEEDED and stack is not None:
            return self._succeed(deployment, stack.outputs, f"stack {status}")
        reason = failure_reason(events, stack.status_reason if stack else None)
        verb = "create" if operation.action is Action.CREATE else "update"
        self._store.save_deployment(deployment)
        raise StackOperationError(
            f"Stack {verb} ended in {status}: {reason}",
            code="STACK_CREATE_FAILED" if operation.action is Action.CREATE else "STACK_UPDATE_FAILED",
            hint=STUCK_HINTS.get(
                status,
                "Fix the failing resource in the template (see the deployment's events), then "
                + (
                    "deploy again (PUT /deployments/{id}): the failed stack is deleted and created again."
                    if status == "ROLLBACK_COMPLETE" and not deployment.ever_active
                    else "update again."
                ),
            ),
        )

    def _poll_recreate(
        self, deployment: Deployment, stacks: StackGateway, step: StepInput, next_wait: int
    ) -> dict[str, Any]:
        """The delete half of a recreate: when the failed stack is gone, create it again."""
        stack_ref = deployment.stack_id or deployment.stack_name
        events = self._record_new_events(deployment, stacks, stack_ref)
        if events:
            deployment = replace(
                deployment, operation=replace(deployment.operation, last_event_id=events[-1].event_id)
            )
        stack = stacks.describe_stack(stack_ref)
        status = stack.status if stack else "DELETE_COMPLETE"
        self._reconciled(deployment, step, status, events)
        if phase_of(status) is StackPhase.IN_PROGRESS:
            self._store.save_deployment(replace(deployment, stack_status=status, updated_at=utc_now()))
            return waiting(step, "recreate_delete", next_wait)
        if phase_of(status) is not StackPhase.GONE:
            blockers = stack_blockers(deployment, stacks, stack_ref)
            raise StackOperationError(
                f"Deleting the failed stack before creating it again ended in {status}; blocked by "
                f"{describe_blockers(blockers)}",
                code="STACK_DELETE_FAILED",
                hint="Release those resources in the target account, then deploy again.",
                details={"blocking_resources": list(blockers)},
            )
        request = self._request(deployment)
        token = deployment.operation.client_request_token
        stack_id = stacks.create_stack(self._spec(deployment, request), token)
        deployment = replace(
            deployment,
            stack_id=stack_id,
            stack_status="CREATE_IN_PROGRESS",
            operation=replace(deployment.operation, phase="executing", last_event_id=None),
            updated_at=utc_now(),
        )
        self._store.save_deployment(deployment)
        self._forget_secrets(deployment)
        self._event(deployment, "STARTED", f"failed stack deleted; CreateStack started ({token})")
        return waiting(step, "executing", next_wait)
