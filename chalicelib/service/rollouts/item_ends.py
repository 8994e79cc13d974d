"""An item's end: PollItem, WaitForItemEnd, the deployment workflow's report of its operation's end
(``end_from_deployment``), and a step's failure recorded on the item.

Apart because every way an item learns how its operation ended comes down to one mapping of the
deployment record's outcome (``_item_end``): PollItem's reading of the record (``_conclude``, which also
fails the operations that will never be seen to end), and the report of the operation's last step.
"""

from __future__ import annotations

import math
from typing import Any

from chalicelib.domain.errors import DeployerError, NotFound, TransientAwsError
from chalicelib.domain.metrics import WAIT_ITEM_END, Metric
from chalicelib.domain.model import Deployment, ErrorInfo, OperationStatus, age_seconds
from chalicelib.domain.rollouts import ItemEndNews, ItemRef, ItemStatus, RolloutItem
from chalicelib.service.completion import may_be_in_flight
from chalicelib.service.rollouts.starts import ItemStarts

# An item's operation still PENDING this long after it began was never picked up by its execution
# (its starter died between writing it and StartExecution): the item fails instead of waiting forever.
NOT_STARTED_AFTER_SECONDS = 15 * 60


def _item_end(deployment: Deployment) -> tuple[ItemStatus, list[dict[str, Any]] | None] | None:
    """How the item ends with its ``deployment``'s ended (not running) operation: its status, and its
    changes (a plan's, or the none of a skipped apply; None keeps the item's). None: FAILED (the item's
    error is made from the item and the deployment's error, and the rollout counts it)."""
    outcome = deployment.operation.status.value
    if outcome == "FAILED":
        return None
    if outcome in ("PLANNED", "SKIPPED"):
        changes = deployment.public().get("changes") or []
        return ItemStatus(outcome), [dict(c) for c in changes]
    return ItemStatus.SUCCEEDED, None


class RolloutItemEnds(ItemStarts):
    def poll_item(
        self, tenant_id: str, rollout_id: str, index: int, wait_seconds: int, timed_out: bool = False
    ) -> dict[str, Any]:
        """Read the item's deployment and end the item if its operation ended. ``timed_out``: this
        poll follows a wait that no announcement released. It is a fallback reconcile when it finds the
        item ended: the announcement was lost. A wait that timed out on an operation still running (a
        stack longer than the wait) lost nothing."""
        item = self._step_item(rollout_id, index)
        progress = self._reconcile(tenant_id, item, wait_seconds)
        if timed_out and progress["done"] and self._end_was_lost(tenant_id, item):
            self._metrics.add(Metric.FALLBACK_RECONCILES, wait=WAIT_ITEM_END)
        return progress

    def _end_was_lost(self, tenant_id: str, item: RolloutItem) -> bool:
        """Whether the ended ``item``'s end, found by a poll after its wait timed out, was an announcement
        lost: unless its operation ended just before this poll (``may_be_in_flight``, by the operation's
        ``ended_at``), when the release its last step sent may still be on its way as the wait ran out
        (as ``StackPolling._reconciled`` judges a stack's final event). One read (the deployment), after
        a timed-out wait only. ``item`` as this poll read it, before ending it (read again if it was
        PENDING: this poll may have taken up its start). An item that ended otherwise (its operation
        superseded, never started, never seen to end) counts, as before."""
        if item.status is ItemStatus.PENDING:  # this poll may have taken up its start: as it is now
            item = self._item(item.rollout_id, item.index)
        if item.deployment_id is None:
            return True
        # A throttled read (TransientAwsError) is no lost release: it reaches the step's retry, which
        # judges again. Only a deployment that is gone counts.
        try:
            operation = self._deployments.get(tenant_id, item.deployment_id).operation
        except NotFound:
            return True
        if operation.operation_id != item.operation_id or operation.ended_at is None:
            return True
        return not may_be_in_flight(age_seconds(operation.ended_at), self._poll.event_timeout_seconds)

    def _reconcile(self, tenant_id: str, item: RolloutItem, wait_seconds: int) -> dict[str, Any]:
        """End ``item`` if its operation ended (PollItem's work, and the settling after a failure)."""
        rollout_id, index = item.rollout_id, item.index
        if item.ended:
            return self._done(True, 0)
        if item.status is ItemStatus.PENDING:
            item = self._take_up_start(tenant_id, item)
            if item.status is ItemStatus.PENDING:
                wait = min(self._poll.max_seconds, max(1, math.ceil(wait_seconds * 1.5)))
                return {**self._done(False, wait), "completion": "poll"}  # nothing to wait on yet
            if item.ended:
                return self._done(True, 0)
        if item.deployment_id is None:
            raise DeployerError(f"Rollout item {index} of {rollout_id} has no deployment to poll.")
        return self._conclude(
            tenant_id, item, self._deployments.get(tenant_id, item.deployment_id), wait_seconds
        )

    def end_from_deployment(self, tenant_id: str, ref: ItemRef, deployment: Deployment) -> ItemEndNews:
        """The item's deployment execution ended (its last step calls this, with the record it wrote):
        end the item from it, as PollItem would, so that the item's Map iteration needs no PollItem.
        Not ended when the item is not running that operation: PollItem then reads it.
        With the token of the StartItem task waiting for the end, from the item's record.

        An end without a failure is one conditional write that answers with the item (its token), or
        with the item as it is when refused: no read first. A failure also counts on the rollout, in a
        transaction, which answers with nothing: that end reads the item first."""
        operation_id = deployment.operation.operation_id
        if deployment.operation.running:
            return ItemEndNews(False)  # not an end (the last step reports only an ended operation)
        end = _item_end(deployment)
        if end is not None:
            status, changes = end
            written, item = self._store.end_running_item(ref, operation_id, status, changes)
            if written and item is not None:
                self._metrics.add(Metric.ROLLOUT_ITEMS, status=status.value)
                return ItemEndNews(True, item.task_token)
        else:
            item = self._store.get_item(ref.rollout_id, ref.index)
        if item is None:
            return ItemEndNews(False)
        if item.ended:
            # Ended from this operation already: typically this step runs again because its release
            # failed after the end was written (or its answer was lost), so it releases the task again
            # with the token the record kept. A task that has closed meanwhile (released, or timed out
            # and reconciled) refuses it, and the news goes to a waiter, as for an item ended otherwise.
            same = item.operation_id == operation_id
            return ItemEndNews(True, item.task_token if same else None)
        if item.status is not ItemStatus.IN_PROGRESS or item.operation_id != operation_id:
            return ItemEndNews(False)
        return ItemEndNews(bool(self._conclude(tenant_id, item, deployment, 0)["done"]), item.task_token)

    def _conclude(
        self, tenant_id: str, item: RolloutItem, deployment: Deployment, wait_seconds: int
    ) -> dict[str, Any]:
        """End the running ``item`` if its ``deployment``'s operation ended; its progress either way."""
        operation = deployment.operation
        lost = self._never_seen_to_end(item, deployment)
        if lost is not None:
            self._fail(tenant_id, item, lost, deployment.deployment_id)
            return self._done(True, 0)
        if operation.running:
            return self._done(False, min(self._poll.max_seconds, math.ceil(wait_seconds * 1.5)))
        end = _item_end(deployment)
        if end is None:
            info = deployment.error or ErrorInfo(
                "DEPLOYMENT_FAILED", "the deployment failed", "See its events."
            )
            self._fail(tenant_id, item, info, deployment.deployment_id)
        else:
            status, changes = end
            self._end(tenant_id, item, status, changes=changes)
        return self._done(True, 0)

    def _never_seen_to_end(self, item: RolloutItem, deployment: Deployment) -> ErrorInfo | None:
        """Why the item's operation will never be seen to end, if so: another operation replaced it, its
        workflow never picked it up, or it outlived the workflow's own deadline (a stopped execution)."""
        operation = deployment.operation
        if operation.operation_id != item.operation_id:
            return ErrorInfo(
                "OPERATION_SUPERSEDED",
                f"deployment {deployment.deployment_id} started another operation before this one was seen "
                "to end",
                "Look at the deployment; start a new rollout if it needs this template.",
            )
        age = age_seconds(operation.started_at)
        if operation.status is OperationStatus.PENDING and age > NOT_STARTED_AFTER_SECONDS:
            return ErrorInfo(
                "OPERATION_NOT_STARTED",
                f"operation {operation.operation_id} of deployment {deployment.deployment_id} was accepted "
                f"but its workflow did not pick it up within {NOT_STARTED_AFTER_SECONDS // 60} minutes",
                "Look at the deployment; start a new rollout to deploy it again.",
            )
        # past its deadline the workflow records OPERATION_TIMED_OUT within one event wait and a poll
        past = self._operation_timeout + self._poll.event_timeout_seconds + NOT_STARTED_AFTER_SECONDS
        if operation.running and age > past:
            return ErrorInfo(
                "OPERATION_NOT_SEEN_TO_END",
                f"operation {operation.operation_id} of deployment {deployment.deployment_id} still shows "
                f"{operation.status.value} {int(age)} s after it started, past the workflow's own "
                f"{self._operation_timeout} s deadline: its workflow ended without recording how it ended",
                "Look at the deployment's stack in the target account; start a new rollout to deploy it again.",
            )
        return None

    def _take_up_start(self, tenant_id: str, item: RolloutItem) -> RolloutItem:
        """A PENDING item that PollItem reads: its StartItem's wait ended (timed out) with no start
        recorded. A start is recorded with its operation, and StartItem's Lambda timeout (START_SECONDS)
        is shorter than its task's wait, so on AWS no start of it still runs. The item takes up the
        operation a marked start began (an earlier version's, or a throttled one), if any; it stays
        PENDING while its start (or, unmarked, the item) is younger than ``NOT_STARTED_AFTER_SECONDS``;
        past that, with nothing started, it FAILED (its start was lost). A start that the local AWS let
        run past its timeout and that comes later is refused whole: its item has ended."""
        taken = self._taken_up(self._rollout(tenant_id, item.rollout_id), item)
        if taken is not None:
            return taken
        if age_seconds(item.start_attempted_at or item.updated_at) <= NOT_STARTED_AFTER_SECONDS:
            return item
        info = ErrorInfo(
            "ITEM_NOT_STARTED",
            f"item {item.index} was not started: its StartItem step ended without starting an operation "
            f"within {NOT_STARTED_AFTER_SECONDS // 60} minutes",
            "Start a new rollout to deploy it (items already up to date are skipped).",
        )
        self._fail(tenant_id, item, info, item.deployment_id)
        return self._item(item.rollout_id, item.index)

    def await_item(self, tenant_id: str, rollout_id: str, index: int, task_token: str) -> dict[str, Any]:
        """WaitForItemEnd's Lambda: park the Map iteration until the item's operation ends.

        The deployment workflow's last step announces the end (``CompletionService.operation_ended``).
        If the operation ended before this wait was registered, the announcement was kept and releases
        the task at once; if the record shows it ended without one (a workflow that died), this step
        releases it too. Either way ``PollItem`` then reads the record and ends the item.
        """
        if self._completion is None:
            raise DeployerError("Rollout items cannot wait for events without the completion service.")
        item = self._step_item(rollout_id, index)
        if item.ended or item.operation_id is None or item.deployment_id is None:
            self._completion.release(task_token, "nothing-to-wait-for")
            return {"waiting": False}
        if not self._completion.await_operation(item.operation_id, task_token, ItemRef(rollout_id, index)):
            return {"waiting": False}
        operation = self._deployments.get(tenant_id, item.deployment_id).operation
        if operation.operation_id != item.operation_id or not operation.running:
            self._completion.stop_waiting(item.operation_id, "record-ended")
            return {"waiting": False}
        return {"waiting": True}

    def record_item_failure(
        self,
        tenant_id: str,
        rollout_id: str,
        index: int,
        info: ErrorInfo,
        wait_seconds: int,
        resumable: bool = True,
    ) -> dict[str, Any]:
        """RecordItemFailure, the catch-all of the item's steps: a step of the iteration failed (``info``),
        not necessarily the item. An item with nothing started FAILED with the step's error. An item whose
        operation was started (or a start of it began one: ``_taken_up``) ends as that operation does, as
        PollItem would end it: at once if it has ended (or will never be seen to end); while it runs, the
        iteration polls it again after a Wait of at least 1 s (``completion`` "poll", the interval growing
        as PollItem grows it), so a step that keeps failing cannot spin. Before, such an item was FAILED
        with the step's error (a PollItem that timed out: ``STEP_TIMED_OUT``) while its deployment ran on
        and succeeded, and the rollout counted a failure that did not happen against its tolerance. A
        deployment record that cannot be read or judged (other than AWS throttling, left to the step's
        Retry) leaves the step's error to stand. ``recorded``: the step's error code, when the item was
        FAILED with it. Not ``resumable`` (an iteration an earlier definition started, which ends after
        this step whatever it answers): the item is FAILED with the step's error, as then, unless it
        ended.

        No count of these catches in a row, unlike RecordFailure's ``RESUMES_AT_MOST``: each one reads the
        item's operation as PollItem would and ends the item when the operation has ended, so steps that
        fail every time still end it with its operation, or when it is never seen to end
        (``_never_seen_to_end``); a count would fail items whose deployments go on and succeed."""
        item = self._step_item(rollout_id, index)
        if not resumable:
            return {
                **self._done(True, 0),
                "recorded": info.code if self._fail_now(tenant_id, item, info) else None,
            }
        if item.status is ItemStatus.PENDING:
            if item.start_attempted_at is not None:  # a start that may have begun an operation
                item = self._taken_up(self._rollout(tenant_id, rollout_id), item) or item
            if item.status is ItemStatus.PENDING:
                if self._fail(tenant_id, item, info, item.deployment_id, only_pending=True):
                    return {**self._done(True, 0), "recorded": info.code}
                item = self._item(rollout_id, index)  # a start recorded (or an end) since it was read
        if item.ended:
            return {**self._done(True, 0), "recorded": None}
        progress = self._as_its_operation(tenant_id, item, wait_seconds)
        if progress is not None:
            return {**progress, "recorded": None}
        self._fail(tenant_id, item, info, item.deployment_id)
        return {**self._done(True, 0), "recorded": info.code}

    def _fail_now(self, tenant_id: str, item: RolloutItem, info: ErrorInfo) -> bool:
        """End ``item`` FAILED with ``info`` unless it has ended; as it is now if it was read PENDING and a
        start was recorded since (the write only while PENDING is refused): never over a start with a
        stale read. Whether this wrote the failure."""
        if item.ended:
            return False
        if item.status is ItemStatus.PENDING:
            if self._fail(tenant_id, item, info, item.deployment_id, only_pending=True):
                return True
            item = self._item(item.rollout_id, item.index)
            if item.ended:
                return False
        return self._fail(tenant_id, item, info, item.deployment_id)

    def _as_its_operation(
        self, tenant_id: str, item: RolloutItem, wait_seconds: int
    ) -> dict[str, Any] | None:
        """After a step's failure: the running ``item``'s progress by its operation, which ends the item if
        the operation has ended; None when there is no record to go by (the step's error then stands)."""
        if item.status is not ItemStatus.IN_PROGRESS or item.deployment_id is None:
            return None
        try:
            deployment = self._deployments.get(tenant_id, item.deployment_id)
            progress = self._conclude(tenant_id, item, deployment, wait_seconds)
        except TransientAwsError:
            raise  # the step's Retry
        except DeployerError:  # gone, or unreadable: the same fault as the step's, perhaps
            return None
        if progress["done"]:
            return progress
        return {**progress, "completion": "poll", "wait_seconds": max(1, int(progress["wait_seconds"]))}
