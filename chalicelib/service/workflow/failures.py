"""Recording a failure: the catch-all RecordFailure step, and an execution that ended without its own
last step (stopped, timed out, or failed where no Catch applies). Either way an operation still running
ends FAILED, its lock is freed, its secrets forgotten and a waiting rollout item told. An operation that
had ended before the step failed keeps its end (RecordFailure then does the failed step's work, and
the execution ends as the operation did). A step's own fault (throttled through its Retry, timed out)
after the stack call, within the operation's deadline, ends nothing: the execution polls the stack again.
"""

from __future__ import annotations

import logging
from typing import Any

from chalicelib.domain.errors import DeployerError, TransientAwsError
from chalicelib.domain.model import Deployment, ErrorInfo, ExecutionEnd, age_seconds
from chalicelib.service.workflow.locking import StackLocking
from chalicelib.service.workflow.outcomes import Outcomes
from chalicelib.service.workflow.progress import ended_progress
from chalicelib.service.workflow.step_errors import error_from_state
from chalicelib.service.workflow.values import StepInput

logger = logging.getLogger(__name__)

# A step's own faults, which say nothing of the stack: AWS throttled the step through all its retries, or it
# ran out of time (its Lambda's or its state's timeout).
STEP_FAULTS = frozenset({"STEP_THROTTLED", "STEP_TIMED_OUT"})
# How many times in a row (with no poll that worked between them) one execution polls its stack again
# after such a fault before it records the failure: a step that fails the same way every time (a poll
# that always outruns its Lambda) then fails the operation within minutes, not at the deadline, hours
# later; each resume costs the execution's history 16 events, or about 55 after a step's whole Retry.
RESUMES_AT_MOST = 10


class FailureRecording(StackLocking, Outcomes):
    def record_failure(
        self, step: StepInput, error: dict[str, Any], *, resumable: bool = False, resumes: int = 0
    ) -> dict[str, Any]:
        """Catch-all: turn a step's error into an explained FAILED state and free the stack; or, for a
        step's own fault once the stack call was made, go back to polling the stack (``_resumed``), when
        the execution's definition can (``resumable``) and has done so fewer than ``RESUMES_AT_MOST``
        times in a row (``resumes``)."""
        info = error_from_state(error)
        resumed = self._resumed(step, info, resumes) if resumable and resumes < RESUMES_AT_MOST else None
        return resumed if resumed is not None else self._record_failed(step, info)

    def _resumed(self, step: StepInput, info: ErrorInfo, resumes: int) -> dict[str, Any] | None:
        """A step's own fault (``STEP_FAULTS``) after the operation's stack call was made: the stack goes
        on changing in the target account whatever became of the step, so the operation is not ended
        FAILED with the step's error and its lock is not freed (another operation would then meet a busy
        stack, and the record would say FAILED of a stack that may well succeed). The execution polls
        the stack again after a Wait (``progress``, "poll", the interval grown as PollStack grows it),
        and the operation ends as its stack does. Only while the operation is within its deadline and
        still holds the stack's lock (renewed here, or taken again if its lease ran out and no other
        operation took it, as every poll does): past the deadline, or with the stack taken over, the
        failure is recorded as before. None: record the failure."""
        if info.code not in STEP_FAULTS:
            return None
        deployment = self._deployment(step)
        operation = deployment.operation
        if (
            operation.operation_id != step.operation_id
            or not operation.running
            or operation.phase == "pending"
        ):
            return None  # ended, another operation's, or no stack call recorded yet
        if age_seconds(operation.started_at) > self._settings.operation_timeout_seconds:
            return None
        try:
            self._renew_lease(deployment, step)
        except TransientAwsError:
            raise  # RecordFailure's Retry
        except DeployerError:  # the stack taken over, or the operation ended meanwhile
            return None
        wait = max(1, step.next_wait_seconds)
        logger.warning(
            "a step failed after the stack call; polling the stack again",
            extra={"error_code": info.code, "wait_seconds": wait, "resumes": resumes + 1},
        )
        # The count rides in the progress: the next PollStack that works replaces it, so it counts faults
        # in a row.
        progress = {"done": False, "completion": "poll", "wait_seconds": wait, "resumes": resumes + 1}
        return {"recorded": None, "operation_succeeded": False, "resumed": True, "progress": progress}

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
