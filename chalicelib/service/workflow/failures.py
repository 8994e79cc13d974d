"""Recording a failure: the catch-all RecordFailure step, and an execution that ended without its own
last step (stopped, timed out, or failed where no Catch applies). Either way an operation still running
ends FAILED, its lock is freed, its secrets forgotten and a waiting rollout item told. An operation that
had ended before the step failed keeps its end (RecordFailure then does the failed step's work, and
the execution ends as the operation did).
"""

from __future__ import annotations

from typing import Any

from chalicelib.domain.model import Deployment, ErrorInfo, ExecutionEnd
from chalicelib.service.workflow.announcement import EndAnnouncement
from chalicelib.service.workflow.outcomes import Outcomes
from chalicelib.service.workflow.progress import ended_progress
from chalicelib.service.workflow.step_errors import error_from_state
from chalicelib.service.workflow.values import StepInput


class FailureRecording(EndAnnouncement, Outcomes):
    def record_failure(self, step: StepInput, error: dict[str, Any]) -> dict[str, Any]:
        """Catch-all: turn a step's error into an explained FAILED state and free the stack."""
        return self._record_failed(step, error_from_state(error))

    def execution_ended(self, step: StepInput, end: ExecutionEnd) -> dict[str, Any]:
        """Step Functions says the operation's execution ended FAILED, TIMED_OUT or ABORTED (its
        "Execution Status Change" event). When the execution's own last step recorded the end (every
        failure the definition catches), there is nothing to do. Otherwise the execution was stopped,
        timed out or failed where no Catch applies (``States.Runtime``): its operation would show
        running for ever and its stack stay locked until the lease ran out. It ends FAILED now, as
        RecordFailure would end it: the lock freed, secrets forgotten, a waiting rollout item released.
        """
        deployment = self._deployment(step)
        operation = deployment.operation
        if operation.operation_id != step.operation_id:
            return {"reconciled": False}
        if not operation.running:
            # Ended already: by the execution's own last step, or by this handler's earlier attempt whose
            # rollout item's end AWS throttled (Lambda runs it again): tell a waiting item (a second
            # announcement finds the item ended and its task closed).
            self._announce_end(deployment, step)
            return {"reconciled": False}
        return {
            **self._record_failed(
                step,
                end.info(
                    "the operation's workflow",
                    "The stack may still be changing in the target account: look at it there, and deploy "
                    "again once it has settled.",
                ),
                deployment,
            ),
            "reconciled": True,
        }

    def _record_failed(
        self, step: StepInput, info: ErrorInfo, deployment: Deployment | None = None
    ) -> dict[str, Any]:
        deployment = deployment or self._deployment(step)
        # Conditional on the owner: frees the lock only if this operation holds it.
        self._locks.release_lock(deployment.stack_key, step.operation_id)
        if deployment.operation.operation_id == step.operation_id and deployment.operation.running:
            self._fail(deployment, info)
            deployment = self._deployment(step)
            # Again, once the end is written: a step of the operation still running (its execution was
            # stopped, Lambda was not) may have taken the lock again between the release and the write.
            self._locks.release_lock(deployment.stack_key, step.operation_id)
        operation = deployment.operation
        if operation.operation_id == step.operation_id:
            self._forget_secrets(deployment)
        self._announce_end(deployment, step)
        # The operation had ended, and not FAILED, before the step that failed (its end was written,
        # then ReleaseLock, say, was refused): the execution then ends as the operation did, as
        # DidOperationSucceed decides on the normal path (``ended_progress``).
        ended = ended_progress(deployment) if operation.operation_id == step.operation_id else None
        return {"recorded": info.code, "operation_succeeded": bool(ended and ended["succeeded"])}
