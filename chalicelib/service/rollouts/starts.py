"""StartItem: starting a rollout item's operation, or taking up the one an earlier start of it began.

Apart because it holds the one write of a start (``ItemStart``, with the operation) and every way a
start is retried, refused or reopened; PollItem and the failed rollout's settling take up what a start
began through ``_taken_up`` here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from chalicelib.domain.errors import Conflict, DeployerError, NotFound, StartGuardFailed, TransientAwsError
from chalicelib.domain.fingerprint import config_hash
from chalicelib.domain.model import (
    Action,
    Deployment,
    ErrorInfo,
    OperationMode,
    Outcome,
    utc_now,
)
from chalicelib.domain.rollouts import (
    RUNNING_ROLLOUT,
    ItemRef,
    ItemStatus,
    Rollout,
    RolloutItem,
    RolloutMode,
    RolloutStatus,
    item_error,
)
from chalicelib.domain.templates import NO_ECHO_MASK
from chalicelib.service.deployments import DeploymentChange, ItemStart, NewDeployment
from chalicelib.service.rollouts.core import RolloutCore, log_as_item, no_item, not_started

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Begun:
    """What StartItem's start of an item came to: the item's ``progress``, the operation it waits for
    (if any), and whether that operation releases this very task at its end (the item's record, written
    with the operation, holds this task's token)."""

    progress: dict[str, Any]
    operation_id: str | None = None
    releases_this_task: bool = False


def _skipped(deployment: Deployment) -> bool:
    """skip_unchanged's answer: the returned deployment's ``outcome`` says nothing was started."""
    return deployment.outcome is Outcome.SKIPPED


_OPERATION_MODE = {
    RolloutMode.APPLY: OperationMode.DEPLOY,
    RolloutMode.PLAN: OperationMode.PLAN,
    RolloutMode.APPLY_PLAN: OperationMode.APPLY,
}


class ItemStarts(RolloutCore):
    def start_item(
        self, tenant_id: str, rollout_id: str, index: int, task_token: str | None = None
    ) -> dict[str, Any]:
        """Start the item's operation. With ``task_token`` (StartItem is a ``.waitForTaskToken`` task):
        park the token until the operation ends (the deployment workflow's last step releases it, as it
        releases WaitForItemEnd's), or release it at once when there is nothing to wait for (the item
        ended already, or completion polls); PollItem then reads the record either way. One step per
        item rather than StartItem, then AwaitItem: one Lambda invocation and two reads fewer.

        An operation this step starts is written with the item, which then holds ``task_token``, and its
        last step releases this task directly: no waiter record. Only an operation taken up from an
        earlier run (whose item holds that run's token) parks the token on a waiter record."""
        direct = task_token if self._waits_for_events else None
        begun = self._begin_item(tenant_id, ItemRef(rollout_id, index, direct))
        progress, operation_id = begun.progress, begun.operation_id
        if task_token is None or self._completion is None:
            return progress
        if not progress["done"] and progress["completion"] == "events" and operation_id is not None:
            if begun.releases_this_task:
                return {"waiting": True}  # the operation's last step releases this task
            waiting = self._completion.await_operation(operation_id, task_token, ItemRef(rollout_id, index))
            return {"waiting": waiting}  # False: it had ended already, and released the token
        if progress["done"]:  # nothing started (skipped, cancelled, failed to start): the item has ended
            self._completion.release(task_token, "item-ended", item_ended=True)
        else:
            self._completion.release(task_token, "started")
        return progress

    def _begin_item(self, tenant_id: str, ref: ItemRef) -> _Begun:
        """Start the item ``ref`` (whose ``task_token``, if any, the started operation is to release),
        or take up what an earlier run of this step started.

        One read (the item and its rollout), and no write of the item's own: the transaction that writes
        the item's operation also records the item as started (``ItemStart.write``, only while the
        item is PENDING). So an item is IN_PROGRESS exactly when an operation was begun for it: a retry of
        this step finds what an earlier run began by reading the item, and an item that ended meanwhile
        (its rollout was cancelled) refuses that transaction whole, so nothing starts."""
        rollout_id, index = ref.rollout_id, ref.index
        item, rollout = self._store.item_and_rollout(tenant_id, rollout_id, index)
        if item is None:
            raise no_item(rollout_id, index)
        log_as_item(item)  # a retry's item names what an earlier run started; a new start binds its own
        found = self._as_found(item)
        if found is not None:
            return found
        if rollout is None:
            raise NotFound(f"Rollout {rollout_id} does not exist.", code="ROLLOUT_NOT_FOUND")
        if item.start_attempted_at is not None:
            # A start that an earlier version marked before it began, or one whose operation's execution
            # never started (``_reopen_unstarted``): take up what it began, if anything.
            taken = self._taken_up(rollout, item)
            if taken is not None:
                return self._as_found(taken) or _Begun(self._done(False, self._poll.initial_seconds))
        if rollout.cancel_requested or rollout.status not in RUNNING_ROLLOUT or rollout.over_tolerance:
            if rollout.cancel_requested or rollout.status is RolloutStatus.CANCELLED:
                reason = "the rollout was cancelled"
            elif rollout.over_tolerance:
                reason = f"more items failed than the rollout's failure tolerance ({rollout.tolerance})"
            else:  # ended while this step ran (its execution was stopped)
                reason = f"the rollout ended {rollout.status.value}"
            error = item_error(item, not_started(reason), None)
            if self._end(tenant_id, item, ItemStatus.CANCELLED, error=error, only_pending=True):
                return _Begun(self._done(True, 0))
            return self._as_now(item)
        attempt = utc_now()
        item = replace(item, start_attempted_at=attempt, updated_at=attempt)
        tried: list[str] = []  # the operation this run's transaction was to record on the item

        def started(deployment_id: str, operation_id: str) -> Mapping[str, Any]:
            tried.append(operation_id)
            running = self._in_progress(item, deployment_id, operation_id)
            # The item holds the token of the task that the operation's last step releases.
            return self._store.start_write(replace(running, task_token=ref.task_token))

        try:
            deployment = self._deploy(rollout, item, ItemStart(ref, started))
        except StartGuardFailed:
            # Another run of this step started the item, or it ended, since it was read: nothing was
            # written. What it is now says what to wait for.
            return self._as_now(item)
        except TransientAwsError:
            # AWS still throttled after botocore's retries: the step's Retry runs it again, and reads
            # whatever this run recorded. Not the item's failure. Only a run that got as far as the
            # operation's transaction can have recorded a start (no more calls otherwise: each may
            # back off again while the step's Lambda timeout runs).
            if tried:
                self._reopen_unstarted(tenant_id, item)
            raise
        except DeployerError as error:
            return self._start_failed(
                tenant_id, item, ErrorInfo(error.code, error.message, error.hint), tried
            )
        if deployment is None or _skipped(deployment):
            skipped_id = deployment.deployment_id if deployment else item.deployment_id
            # Only while PENDING: another run of this step may have started the item since it was read
            # (its operation, already done, is what this run then found unchanged).
            if self._end(tenant_id, item, ItemStatus.SKIPPED, deployment_id=skipped_id, only_pending=True):
                return _Begun(self._done(True, 0))
            return self._as_now(item)
        return _Begun(
            self._done(False, self._poll.initial_seconds),
            deployment.operation.operation_id,
            ref.task_token is not None,
        )

    def _as_now(self, item: RolloutItem) -> _Begun:
        """What a start does with ``item`` (read PENDING) once it has found that another run of the step
        started it, or it ended, meanwhile: the item as it is now says what to wait for."""
        now = self._item(item.rollout_id, item.index)
        return self._as_found(now) or _Begun(self._done(False, self._poll.initial_seconds))

    def _start_failed(self, tenant_id: str, item: RolloutItem, info: ErrorInfo, tried: list[str]) -> _Begun:
        """The start of ``item`` (read PENDING) failed with ``info``: the item FAILED, naming the
        operation's deployment when this run's transaction recorded it (its execution then failed to
        start), unless another run of the step started the item, or it ended, meanwhile."""
        now = self._item(item.rollout_id, item.index)
        if now.status is ItemStatus.IN_PROGRESS and now.operation_id in tried:
            self._fail(tenant_id, now, info, now.deployment_id)
            return _Begun(self._done(True, 0))
        if self._fail(tenant_id, item, info, item.deployment_id, only_pending=True):
            return _Begun(self._done(True, 0))
        return self._as_now(item)

    def _as_found(self, item: RolloutItem) -> _Begun | None:
        """What a start of ``item`` does with an item that is not PENDING: wait for the operation an
        earlier start began (IN_PROGRESS), or nothing (ended); None for a PENDING item."""
        if item.status is ItemStatus.IN_PROGRESS:
            return _Begun(self._done(False, self._poll.initial_seconds), item.operation_id)
        if item.ended:
            return _Begun(self._done(True, 0))
        return None

    def _reopen_unstarted(self, tenant_id: str, item: RolloutItem) -> None:
        """After a start of ``item`` that ended throttled: if its transaction recorded the item as
        started but the operation's execution never started (StartExecution throttled: the operation is
        recorded FAILED with that error), the item is PENDING again, so that the step's retry starts it
        anew, as it would had nothing been written. Any other state is left for the retry to read, as
        is everything when this check itself fails: the throttle is what the step reports."""
        try:
            self._reopen_if_unstarted(tenant_id, item)
        except DeployerError as error:
            logger.warning(
                "throttled rollout item start not checked; its retry reads the item",
                extra={"rollout_id": item.rollout_id, "item": item.index, "error_code": error.code},
            )

    def _reopen_if_unstarted(self, tenant_id: str, item: RolloutItem) -> None:
        current = self._store.get_item(item.rollout_id, item.index)
        if (
            current is None
            or current.status is not ItemStatus.IN_PROGRESS
            or current.start_attempted_at != item.start_attempted_at
            or current.deployment_id is None
        ):
            return
        try:
            deployment = self._deployments.get(tenant_id, current.deployment_id)
        except NotFound:
            return
        if deployment.operation.operation_id == current.operation_id and deployment.never_started:
            self._store.save_item(replace(item, updated_at=utc_now()))

    def _taken_up(self, rollout: Rollout, item: RolloutItem) -> RolloutItem | None:
        """The PENDING ``item``, IN_PROGRESS with the operation that a start of it began (saved so), or
        as it now is if it ended meanwhile; None when no start of it began an operation."""
        if item.start_attempted_at is None:
            return None
        earlier = self._started_since(rollout, item, item.start_attempted_at)
        if earlier is None:
            return None
        taken = self._in_progress(item, earlier.deployment_id, earlier.operation.operation_id)
        return taken if self._store.save_item(taken) else self._item(item.rollout_id, item.index)

    def _deploy(self, rollout: Rollout, item: RolloutItem, start: ItemStart) -> Deployment | None:
        """Start the item's deployment operation, for ``start``; None when there is nothing to do."""
        tenant_id = rollout.tenant_id
        if rollout.mode is RolloutMode.APPLY_PLAN:
            if not item.changes or item.deployment_id is None:
                return None  # the plan found no changes
            return self._deployments.apply(tenant_id, item.deployment_id, for_item=start)
        spec = self._spec(rollout.rollout_id)
        if spec is None:
            raise DeployerError(f"Rollout {rollout.rollout_id} has no stored spec.")
        # A plan previews every item; an apply skips the items whose configuration already succeeded.
        plan = rollout.mode is RolloutMode.PLAN
        mode = OperationMode.PLAN if plan else OperationMode.DEPLOY
        parameters = dict(spec.parameters)
        if NO_ECHO_MASK in parameters.values() and self._secrets is not None:
            parameters.update(self._secrets.get(rollout.rollout_id) or {})
        new = NewDeployment(
            item.target_id, item.region, spec.stack_name, spec.template_body, parameters, spec.tags
        )
        # An item whose stack already has a live deployment updates it (so, among others, a NoEcho value
        # left out is kept there); any other creates its stack. The create's own check covers a race.
        existing = self._deployments.holder(item.target_id, item.region, spec.stack_name)
        if existing is None:
            try:
                return self._deployments.create(
                    tenant_id, new, skip_unchanged=not plan, mode=mode, for_item=start, unclaimed=True
                )
            except Conflict as error:
                existing = error.details.get("deployment_id") if isinstance(error.details, dict) else None
                if error.code != "STACK_ALREADY_DEPLOYED" or not existing:
                    raise
        change = DeploymentChange(spec.template_body, parameters, dict(spec.tags))
        return self._deployments.update(
            tenant_id, str(existing), change, skip_unchanged=not plan, mode=mode, for_item=start
        )

    @staticmethod
    def _in_progress(item: RolloutItem, deployment_id: str, operation_id: str) -> RolloutItem:
        """``item`` running that deployment's operation."""
        return replace(
            item,
            status=ItemStatus.IN_PROGRESS,
            deployment_id=deployment_id,
            operation_id=operation_id,
            updated_at=utc_now(),
        )

    def _started_since(self, rollout: Rollout, item: RolloutItem, since: str) -> Deployment | None:
        """The item's operation that an earlier run of StartItem started at or after ``since``, if any.

        It may, rarely, be one a plain ``POST``/``PUT`` of the same configuration started meanwhile;
        that one does not announce its end, so the item's wait for it ends by its timeout and one
        reconcile (correct, only slower)."""
        if rollout.mode is RolloutMode.APPLY_PLAN:
            deployment_id = item.deployment_id
        else:
            deployment_id = self._store.stack_deployment_id(item.target_id, item.region, rollout.stack_name)
        if deployment_id is None:
            return None
        try:
            deployment = self._deployments.get(rollout.tenant_id, deployment_id)
        except NotFound:
            return None
        operation = deployment.operation
        if deployment.never_started:
            return None  # its execution never started (StartExecution throttled): start the item anew
        if (
            operation.started_at < since
            or operation.mode is not _OPERATION_MODE[rollout.mode]
            or operation.action not in (Action.CREATE, Action.UPDATE)
        ):
            return None
        if rollout.mode is not RolloutMode.APPLY_PLAN:
            # Same configuration as this rollout deploys: not someone else's change made meanwhile.
            spec = self._spec(rollout.rollout_id)
            if spec is None:
                return None
            role_arn = self._targets.get(rollout.tenant_id, item.target_id).role_arn
            if deployment.config_hash != config_hash(
                spec.template_body, spec.parameters, spec.tags, role_arn
            ):
                return None
        return deployment
