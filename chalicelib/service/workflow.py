"""The steps of ``statemachine/deployment.asl.json``: lock, start, wait/poll, release, record failure.

Each step re-reads the deployment from the store and re-assumes the target role; only ids and
settings travel in the execution's state (poll intervals, ``completion``, the event wait's timeout,
``announce_end``, and for a rollout item its id and the token of the StartItem task to release: see
``StepInput``), never a credential or a template. Every step is safe to run
twice (Lambda may retry): the lock is re-entrant for its owner, stack calls carry a ClientRequestToken
derived from the operation id, a create that finds its own stack already started takes it up instead
of failing, and the operation's end (its record and final event, one transaction) is written once.

An operation moves through phases kept on its record (``Operation.phase``), so one execution can make
several stack calls without new states in the definition:

    pending --create/delete/continue-rollback/apply--> executing --stack settles--> done
    pending --CreateChangeSet--> changeset --computed--> executing (deploy) | done, PLANNED (plan)
    pending --DeleteStack (ROLLBACK_COMPLETE, never ACTIVE)--> recreate_delete --gone--> executing
    changeset --cancel requested--> done, CANCELLED (the change set is deleted, nothing ran)
    executing --cancel requested: CancelUpdateStack--> cancelling --UPDATE_ROLLBACK_COMPLETE--> CANCELLED

A cancel is requested through the API (``DeploymentService.cancel``), which never assumes target roles:
it records the request in the store, and the next poll of an update carries it out.

Between stack calls the execution waits in one of two ways, chosen by the execution's input
(``completion``, from ``NEXUS_COMPLETION_MODE``) and returned in every step's ``progress``:

* ``poll``: ``WaitForStack`` (interval x1.5, capped) then ``PollStack``;
* ``events``: ``WaitForStackEvent``, a ``.waitForTaskToken`` task whose Lambda (:meth:`await_stack_event`)
  parks its token until the stack's "Stack Status Change" event releases it
  (chalicelib/service/completion.py), or its timeout passes; either way ``PollStack`` then reconciles
  once. A change set being computed emits no stack events, so that phase polls in both modes.

What the start does with a stack it finds is decided by its status's ``Remedy``
(chalicelib/domain/stack_status.py), never by string matching here.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from chalicelib.domain.automation import parse_s3_url
from chalicelib.domain.errors import DeployerError, StackLocked, StackOperationError
from chalicelib.domain.metrics import WAIT_STACK_EVENT, Metric
from chalicelib.domain.model import (
    Action,
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
    ErrorInfo,
    EventSource,
    ExecutionEnd,
    OperationMode,
    OperationRequest,
    OperationStatus,
    Target,
    utc_now,
)
from chalicelib.domain.plans import Plan
from chalicelib.domain.rollouts import ItemEndNews, ItemRef
from chalicelib.domain.stack_status import (
    STUCK_HINTS,
    Remedy,
    StackPhase,
    is_failure_event,
    phase_of,
    remedy_of,
)
from chalicelib.domain.templates import DEPLOYMENT_TAG
from chalicelib.service.completion import CompletionService
from chalicelib.service.operation_metrics import count_ended
from chalicelib.service.ports import (
    DeploymentStore,
    ItemEnds,
    LockStore,
    Metrics,
    NoMetrics,
    ParameterSecrets,
    StackEventInfo,
    StackGateway,
    StackInfo,
    StackSpec,
    TargetAccess,
)
from chalicelib.service.targets import TargetService

NO_CHANGES_MARKERS = ("didn't contain changes", "No updates are to be performed")
STACK_TYPE = "AWS::CloudFormation::Stack"
CANCEL_SUFFIX = "-cancel"  # ClientRequestToken suffixes: one operation, several stack requests
RECREATE_SUFFIX = "-recreate"


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepInput:
    tenant_id: str
    deployment_id: str
    operation_id: str
    wait_seconds: int
    max_wait_seconds: int
    completion: str = "poll"  # "events": wait in WaitForStackEvent (see chalicelib/service/completion.py)
    event_timeout_seconds: int = 600
    timed_out: bool = False  # this PollStack follows a WaitForStackEvent that no event released
    # A rollout item waits for this operation's end (WaitForItemEnd): the last step announces it.
    # Absent from the input of an execution started before the flag existed: announce, as then.
    announce_end: bool = True
    # The rollout item this operation was started for, if any: the last step records its end.
    rollout_item: ItemRef | None = None

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> StepInput:
        progress = event.get("progress") or {}
        return cls(
            tenant_id=str(event["tenant_id"]),
            deployment_id=str(event["deployment_id"]),
            operation_id=str(event["operation_id"]),
            wait_seconds=int(progress.get("wait_seconds", event.get("wait_seconds", 5))),
            max_wait_seconds=int(event.get("max_wait_seconds", 60)),
            completion="events" if event.get("completion") == "events" else "poll",
            event_timeout_seconds=int(event.get("event_timeout_seconds", 600)),
            timed_out=(event.get("released") or {}).get("Error") == "States.Timeout",
            announce_end=event.get("announce_end") is not False,
            rollout_item=ItemRef.from_input(event.get("rollout_item")),
        )


@dataclass(frozen=True)
class WorkflowSettings:
    lock_lease_seconds: int = 900
    operation_timeout_seconds: int = 6 * 3600
    # After a wait that no stack event released although the operation had ended, operations in that
    # account and region poll for this long (see ``_completion_for``).
    events_lost_seconds: int = 3600


def _progress(
    done: bool, succeeded: bool, wait_seconds: int, completion: str = "poll", event_timeout_seconds: int = 0
) -> dict[str, Any]:
    """The state's ``progress``: IsOperationDone reads ``done``, then ``completion`` ("events" waits in
    WaitForStackEvent for at most ``event_timeout_seconds``, "poll" in WaitForStack for ``wait_seconds``)."""
    return {
        "done": done,
        "succeeded": succeeded,
        "wait_seconds": wait_seconds,
        "completion": completion,
        "event_timeout_seconds": event_timeout_seconds,
    }


def _waiting(step: StepInput, phase: str, wait_seconds: int) -> dict[str, Any]:
    """Not done yet. A change set being computed emits no stack events, so that phase always polls."""
    completion = "poll" if phase == "changeset" else step.completion
    return _progress(False, False, wait_seconds, completion, step.event_timeout_seconds)


def _executing_status(before: str | None) -> str:
    """A change set executing: a stack in review (a CREATE change set) is being created, else updated."""
    return "CREATE_IN_PROGRESS" if before in (None, "REVIEW_IN_PROGRESS") else "UPDATE_IN_PROGRESS"


def _ended(deployment: Deployment) -> dict[str, Any] | None:
    """The progress of a step that finds its operation ended: a retried step, or one that outlived its
    stopped execution. It makes no stack call and takes no lock; IsOperationDone goes to ReleaseLock."""
    operation = deployment.operation
    if operation.running:
        return None
    return _progress(True, operation.status is not OperationStatus.FAILED, 0)


def _ended_meanwhile(step: StepInput) -> StackOperationError:
    return StackOperationError(
        f"Operation {step.operation_id} ended while this step ran (its execution was stopped).",
        code="STALE_OPERATION",
        hint="Nothing to do: the deployment shows how it ended.",
    )


def expected_tokens(operation_token: str, phase: str) -> tuple[str, ...]:
    """The ClientRequestTokens whose stack events end the wait of an operation in ``phase``."""
    if phase == "recreate_delete":
        return (operation_token + RECREATE_SUFFIX,)
    if phase == "cancelling":
        return (operation_token, operation_token + CANCEL_SUFFIX)
    return (operation_token,)


class WorkflowService:
    def __init__(
        self,
        deployments: DeploymentStore,
        locks: LockStore,
        targets: TargetService,
        access: TargetAccess,
        settings: WorkflowSettings,
        completion: CompletionService,
        secrets: ParameterSecrets | None = None,
        metrics: Metrics | None = None,
        item_ends: ItemEnds | None = None,
    ) -> None:
        self._metrics = metrics or NoMetrics()
        self._secrets = secrets
        self._item_ends = item_ends  # the rollouts: an item started this operation (``rollout_item``)
        self._store = deployments
        self._locks = locks
        self._targets = targets
        self._access = access
        self._settings = settings
        # Where WaitForStackEvent parks its task token, where lost events are marked, and whom the last
        # step tells that the operation ended (a rollout item waits for it): service/completion.py.
        self._completion = completion

    # -- steps -----------------------------------------------------------------------------------

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

    def start_stack_operation(self, step: StepInput) -> dict[str, Any]:
        deployment = self._current(step)
        ended = _ended(deployment)
        if ended is not None:
            return ended
        step = self._completion_for(step, deployment)
        if deployment.operation.phase != "pending":
            # A repeated invocation: the stack call was already made; go on waiting.
            return _waiting(step, deployment.operation.phase, step.wait_seconds)
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
            if existing is None or existing.status != "UPDATE_ROLLBACK_FAILED":
                raise StackOperationError(
                    f"Stack {deployment.stack_name} is in {existing.status if existing else 'no status'}, "
                    "not UPDATE_ROLLBACK_FAILED.",
                    code="NOT_IN_UPDATE_ROLLBACK_FAILED",
                    hint="Only a stack whose update rollback failed can continue its rollback.",
                )
            stacks.continue_update_rollback(existing.stack_id, token, operation.resources)
            skipped = f", skipping {', '.join(operation.resources)}" if operation.resources else ""
            return self._started(
                deployment,
                existing.stack_id,
                "executing",
                f"ContinueUpdateRollback started ({token}){skipped}",
                step,
                "UPDATE_ROLLBACK_IN_PROGRESS",
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
                _executing_status(existing.status if existing else None),
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
            f"stack is in ROLLBACK_COMPLETE from its failed first create: DeleteStack ({token}), "
            "then CreateStack",
            step,
            "DELETE_IN_PROGRESS",
        )

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
        return _waiting(step, phase, step.wait_seconds)

    def poll_stack(self, step: StepInput) -> dict[str, Any]:
        deployment = self._current(step)
        ended = _ended(deployment)
        if ended is not None:
            return ended
        self._renew_lease(deployment, step)
        next_wait = min(step.max_wait_seconds, math.ceil(step.wait_seconds * 1.5))
        self._check_deadline(deployment)
        step = self._completion_for(step, deployment)
        if step.timed_out:  # no event ended the wait: this reconcile is the fallback (a lost event?)
            self._metrics.add(Metric.FALLBACK_RECONCILES, wait=WAIT_STACK_EVENT)
        stacks = self._stacks(deployment)
        if deployment.operation.phase == "changeset":
            progress = self._poll_change_set(deployment, stacks, step, next_wait)
        elif deployment.operation.phase == "recreate_delete":
            progress = self._poll_recreate(deployment, stacks, step, next_wait)
        else:
            progress = self._poll_stack_status(deployment, stacks, step, next_wait)
        if step.timed_out and progress["done"]:
            self._events_lost(deployment)
        return progress

    def _completion_for(self, step: StepInput, deployment: Deployment) -> StepInput:
        """Poll where stack events were found lost lately, rather than wait for them in vain.

        A region whose forwarding rule is missing (the bootstrap template forwards the events of the
        region it was deployed in) or whose events the service's bus refuses would otherwise cost
        every operation there the whole event wait. One lost event marks the account and region for
        ``events_lost_seconds``; after that, one operation waits for events again, and so finds out
        whether they arrive now.
        """
        if step.completion != "events":
            return step
        if self._completion.events_lost(deployment.account_id, deployment.region):
            return replace(step, completion="poll")
        return step

    def _events_lost(self, deployment: Deployment) -> None:
        """The operation ended, yet no stack event released its wait: it was lost, or never sent."""
        if self._settings.events_lost_seconds <= 0:
            return  # configured to keep waiting for events (each lost one costs its operation the wait)
        self._completion.mark_events_lost(
            deployment.account_id, deployment.region, self._settings.events_lost_seconds
        )
        logger.warning(
            "no Stack Status Change event released the wait of operation %s in account %s, region %s; "
            "operations there poll for %d s. Deploy the bootstrap template's forwarding rule in that "
            "region and allow the account to put events on the service's bus.",
            deployment.operation.operation_id,
            deployment.account_id,
            deployment.region,
            self._settings.events_lost_seconds,
        )

    def await_stack_event(self, step: StepInput, task_token: str) -> dict[str, Any]:
        """WaitForStackEvent's Lambda: park the task token where the stack's events will find it.

        Renews the lock's lease (the wait is shorter than the lease: see Settings). If the event this
        wait is for came first, or a cancel was requested meanwhile, the task is released right away.
        """
        deployment = self._current(step)
        operation = deployment.operation
        if not operation.running:  # nothing to wait for: PollStack then finds it ended
            self._completion.release(task_token, "ended")
            return {"waiting": False}
        key = deployment.stack_key
        self._renew_lease(deployment, step)
        tokens = expected_tokens(operation.client_request_token, operation.phase)
        if not self._completion.await_stack(key, step.operation_id, task_token, tokens):
            return {"waiting": False}  # the event it waits for came first: released already
        if self._cancel_requested(deployment):
            self._completion.release(task_token, "cancel")
            return {"waiting": False}
        return {"waiting": True}

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
        if operation.operation_id != step.operation_id or not operation.running:
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
        if deployment.operation.operation_id == step.operation_id:
            self._forget_secrets(deployment)
        self._announce_end(deployment, step)
        return {"recorded": info.code}

    def _announce_end(self, deployment: Deployment, step: StepInput) -> None:
        """The execution's last step: the rollout item waiting for this operation's end may stop waiting.

        Only operations a rollout started announce (``announce_end``). With the item's id in the input
        (``rollout_item``) this step first records the item's end from the record in hand, and the
        release says so (``item_ended``): the item's Map iteration then ends with no PollItem. The task
        released is the StartItem task whose token the item's record holds; if that task is gone, the
        waiter record's (two conditional writes). Runs again when the step is retried; a second announcement
        finds no task and no waiter, or one whose reconcile sees the same ended record.
        """
        operation = deployment.operation
        if step.announce_end and operation.operation_id == step.operation_id and not operation.running:
            item = step.rollout_item
            news = self._end_item(deployment, item)
            # The waiting task's token is the item record's; an execution an earlier version started
            # carries it in its input instead.
            started_by = news.task_token or (item.task_token if item else None)
            self._completion.operation_ended(
                operation.operation_id, operation.status.value, item if news.ended else None, started_by
            )

    def _end_item(self, deployment: Deployment, item: ItemRef | None) -> ItemEndNews:
        """Record the rollout item's end; a failure here (AWS still throttling) must not fail the
        deployment's last step: the item's own PollItem reads it instead (not ended)."""
        if item is None or self._item_ends is None:
            return ItemEndNews(False)
        try:
            return self._item_ends.end_from_deployment(deployment.tenant_id, item, deployment)
        except DeployerError as error:
            logger.warning(
                "rollout item end not recorded; its workflow reads it",
                extra={"rollout_id": item.rollout_id, "item": item.index, "error_code": error.code},
            )
            return ItemEndNews(False)

    # -- polling ---------------------------------------------------------------------------------

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
            return _waiting(step, "changeset", next_wait)
        if change_set.status == "FAILED":
            reason = change_set.status_reason or "the change set failed"
            if any(marker in reason for marker in NO_CHANGES_MARKERS):
                stacks.delete_change_set(stack, name)
                if operation.mode is OperationMode.PLAN:
                    return self._planned(
                        deployment, stacks, change_set.changes, "no changes: nothing to apply"
                    )
                current = stacks.describe_stack(stack)
                return self._succeed(deployment, current.outputs if current else {}, "no changes to apply")
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
                stack_status=_executing_status(deployment.stack_status),
                operation=replace(operation, phase="executing"),
                updated_at=utc_now(),
            )
        )
        self._event(deployment, "EXECUTING", f"change set {name} executing")
        return _waiting(step, "executing", next_wait)

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
        phase = phase_of(status)
        deployment = replace(deployment, stack_status=status, updated_at=utc_now())
        if status == "UPDATE_IN_PROGRESS" and stack is not None and self._cancel_requested(deployment):
            stacks.cancel_update_stack(stack.stack_id, operation.client_request_token + CANCEL_SUFFIX)
            operation = replace(deployment.operation, phase="cancelling")
            deployment = replace(deployment, operation=operation)
            self._event(deployment, "CANCELLING", "CancelUpdateStack sent; the update rolls back")
        if phase is StackPhase.IN_PROGRESS:
            self._store.save_deployment(deployment)
            return _waiting(step, deployment.operation.phase, next_wait)
        if operation.phase == "cancelling" and status == "UPDATE_ROLLBACK_COMPLETE" and stack is not None:
            return self._cancelled(deployment, stack.outputs, "update cancelled and rolled back")
        if operation.action is Action.CONTINUE_ROLLBACK:
            if status == "UPDATE_ROLLBACK_COMPLETE" and stack is not None:
                return self._succeed(deployment, stack.outputs, "update rollback completed")
            blockers = self._blockers(deployment, stacks, stack_ref)
            self._store.save_deployment(deployment)
            raise StackOperationError(
                f"ContinueUpdateRollback ended in {status}; blocked by {self._describe_blockers(blockers)}",
                code="STACK_ROLLBACK_FAILED",
                hint="Continue again, skipping the blocking resources: POST /deployments/{id}/"
                f'continue-rollback with {{"resources_to_skip": {json.dumps(list(blockers))}}}.',
                details={"blocking_resources": list(blockers)},
            )
        if operation.action is Action.DELETE:
            if phase is StackPhase.GONE:
                return self._finish_deleted(deployment, "stack deleted", step)
            blockers = self._blockers(deployment, stacks, stack_ref)
            self._store.save_deployment(deployment)
            raise StackOperationError(
                f"DeleteStack ended in {status}; blocked by {self._describe_blockers(blockers)}",
                code="STACK_DELETE_FAILED",
                hint="Empty or release those resources and delete again, or keep them out of the delete: "
                f"DELETE /deployments/{{id}}?retain={','.join(blockers)}",
                details={"blocking_resources": list(blockers)},
            )
        if status == "UPDATE_ROLLBACK_FAILED":
            blockers = self._blockers(deployment, stacks, stack_ref)
            self._store.save_deployment(deployment)
            raise StackOperationError(
                f"Stack update failed and its rollback failed too ({status}); blocked by "
                f"{self._describe_blockers(blockers)}",
                code="STACK_UPDATE_FAILED",
                hint="POST /deployments/{id}/continue-rollback, with "
                f'{{"resources_to_skip": {json.dumps(list(blockers))}}} if they cannot be rolled back.',
                details={"blocking_resources": list(blockers)},
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
        if phase_of(status) is StackPhase.IN_PROGRESS:
            self._store.save_deployment(replace(deployment, stack_status=status, updated_at=utc_now()))
            return _waiting(step, "recreate_delete", next_wait)
        if phase_of(status) is not StackPhase.GONE:
            blockers = self._blockers(deployment, stacks, stack_ref)
            raise StackOperationError(
                f"Deleting the failed stack before creating it again ended in {status}; blocked by "
                f"{self._describe_blockers(blockers)}",
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
        return _waiting(step, "executing", next_wait)

    def _record_new_events(
        self, deployment: Deployment, stacks: StackGateway, stack_ref: str
    ) -> list[StackEventInfo]:
        operation = deployment.operation
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
        return events

    def _blockers(self, deployment: Deployment, stacks: StackGateway, stack_ref: str) -> dict[str, str]:
        """Resources that failed in the last phase of this operation (its delete, or its rollback).

        Reads this operation's events again (they stop at the first event of an earlier operation), so
        resources that failed in an earlier poll of the same operation are named too; failures before
        the last stack-level phase (the resource that made an update fail) are not what blocks now.
        """
        operation = deployment.operation
        events = stacks.new_events(stack_ref, operation.client_request_token, None, operation.started_at)
        latest: dict[str, StackEventInfo] = {}
        for event in events:
            stack_level = event.resource_type == STACK_TYPE and event.logical_id == deployment.stack_name
            if stack_level and event.status.endswith("_IN_PROGRESS") and "CLEANUP" not in event.status:
                latest.clear()  # a new phase begins (DELETE_IN_PROGRESS, UPDATE_ROLLBACK_IN_PROGRESS)
            elif not stack_level and event.logical_id:
                latest[event.logical_id] = event
        return {
            name: event.reason or event.status
            for name, event in latest.items()
            if is_failure_event(event.status)
        }

    @staticmethod
    def _describe_blockers(blockers: dict[str, str]) -> str:
        if not blockers:
            return "no resource named by CloudFormation"
        return "; ".join(f"{name} ({reason})" for name, reason in blockers.items())

    @staticmethod
    def _failure_reason(events: list[Any], stack_reason: str | None) -> str:
        for event in events:
            if is_failure_event(event.status) and event.reason and event.logical_id:
                return f"resource {event.logical_id} ({event.resource_type}) failed: {event.reason}"
        return stack_reason or "no reason given by CloudFormation"

    # -- outcomes --------------------------------------------------------------------------------

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
        return _progress(True, True, 0)

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
        return _progress(True, True, 0)

    def _cancel_requested(self, deployment: Deployment) -> bool:
        operation = deployment.operation
        if operation.action is not Action.UPDATE or operation.mode is OperationMode.PLAN:
            return False
        if operation.phase == "cancelling":
            return False  # sent already
        return self._store.cancel_requested(deployment.deployment_id, operation.operation_id)

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
        # The stack name is free before the record says DELETED (as the lock is released before the
        # final state): a client that sees DELETED can create the stack again at once.
        self._store.release_stack_name(done)
        self._finish(done, "SUCCEEDED", message)
        return _progress(True, True, 0)

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

    def _stacks(self, deployment: Deployment, target: Target | None = None) -> StackGateway:
        target = target or self._target(deployment)
        return self._access.stacks(
            role_arn=target.role_arn,
            external_id=target.external_id,
            session_name=f"nexus-{deployment.operation.operation_id}",
            region=deployment.region,
        )

    def _spec(self, deployment: Deployment, request: OperationRequest) -> StackSpec:
        """The stack call's arguments: NoEcho values fetched from the secret store for this call only,
        the ones left out kept with UsePreviousValue, a large S3 template by its URL."""
        parameters = {k: v for k, v in request.parameters.items() if k not in request.previous_parameters}
        if request.secret_parameters:
            values = self._secrets.get(deployment.operation.operation_id) if self._secrets else None
            if values is None:
                raise StackOperationError(
                    "The NoEcho parameter values of this operation are no longer kept.",
                    code="NOECHO_VALUE_REQUIRED",
                    hint="Send the operation again with the NoEcho values: they are kept only until the "
                    "stack call that uses them.",
                    details={"parameters": list(request.secret_parameters)},
                )
            parameters.update(values)
        template_url = None
        if request.template_location is not None:
            # Through the bucket's own region (any other regional endpoint redirects, and CloudFormation
            # does not follow); a request kept before the region was recorded has only the stack's.
            template_url = parse_s3_url(request.template_location).https_url(
                request.template_region or deployment.region, request.template_version
            )
        return StackSpec(
            stack_name=deployment.stack_name,
            template_body=request.template_body or "",
            parameters=parameters,
            tags={**request.tags, DEPLOYMENT_TAG: deployment.deployment_id},
            use_previous=request.previous_parameters,
            template_url=template_url,
        )

    def _forget_secrets(self, deployment: Deployment) -> None:
        """Delete the operation's NoEcho values: once its stack call was made and recorded, and again
        (a no-op by then) when it ends, whatever happened in between."""
        if deployment.operation.holds_secrets and self._secrets is not None:
            self._secrets.delete(deployment.operation.operation_id)

    def _guard_external_id(self, deployment: Deployment, target: Target) -> None:
        """Before the stack call: AssumeRole without the external ID must be refused (the confused
        deputy), tried once per target and recheck interval (chalicelib/service/targets.py)."""
        if self._targets.external_id_check_due(target):
            refused = self._access.refuses_without_external_id(
                role_arn=target.role_arn, session_name=f"nexus-noextid-{deployment.operation.operation_id}"
            )
            target = self._targets.record_external_id_check(target, refused)
        self._targets.check_external_id(target)

    def _check_deadline(self, deployment: Deployment) -> None:
        started = datetime.fromisoformat(deployment.operation.started_at.replace("Z", "+00:00"))
        if (datetime.now(UTC) - started).total_seconds() > self._settings.operation_timeout_seconds:
            raise StackOperationError(
                f"The stack operation did not finish within {self._settings.operation_timeout_seconds} s.",
                code="OPERATION_TIMED_OUT",
                hint="Look at the stack in the target account; when it settles, retry the operation.",
            )

    def _finish(self, ended: Deployment, status: str, message: str) -> None:
        """The ended operation's record with its final event, in one write: a client that sees the
        operation ended finds its events complete, and a retried step writes neither twice."""
        event = DeploymentEvent(utc_now(), EventSource.ORCHESTRATOR, status, ended.stack_name, message)
        if self._store.save_deployment(ended, final_event=event):
            count_ended(self._metrics, ended)

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
    if name == "Sandbox.Timedout":  # the step's Lambda function ran past its own timeout
        return ErrorInfo(
            "STEP_TIMED_OUT",
            f"A workflow step's Lambda function timed out ({str(message)[:200]}).",
            "Retry the operation; if it times out again, look at the step's logs for the slow call.",
        )
    return ErrorInfo(
        "INTERNAL_ERROR",
        f"{name}: {str(message)[:500]}",
        DeployerError.hint,
    )
