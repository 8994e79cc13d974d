"""A rollout whose workflow failed or ended early: RecordRolloutFailure, the execution's end event,
and the settling of the items that no Map iteration reads any more.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from chalicelib.domain.errors import DeployerError, TransientAwsError
from chalicelib.domain.model import ErrorInfo, ExecutionEnd
from chalicelib.domain.rollouts import RUNNING_ROLLOUT, ItemStatus, Rollout, RolloutItem, RolloutStatus
from chalicelib.service.rollouts.item_ends import RolloutItemEnds
from chalicelib.service.rollouts.waves import RolloutWaves, starting

logger = logging.getLogger(__name__)


class RolloutFailures(RolloutWaves, RolloutItemEnds):
    def record_rollout_failure(self, tenant_id: str, rollout_id: str, info: ErrorInfo) -> dict[str, Any]:
        """The rollout FAILED with a step's error, once the items that were running have ended.

        A failed step ends the Map and every iteration in it, but not the deployments those iterations
        started: each runs on in its own execution. So this step first reads every started item's
        deployment and ends the item as its operation ended; while some still run it answers
        ``in_flight`` and the workflow calls it again after ``wait_seconds``. Only then does the
        rollout end (never-started items CANCELLED) and its owner hear of it, with final counts.
        """
        rollout = self._rollout(tenant_id, rollout_id)
        if rollout.status not in RUNNING_ROLLOUT:
            self._announce(rollout)  # ended by the failed step itself, maybe before it announced that
            return {"recorded": info.code, "in_flight": 0}
        in_flight = self._settle(rollout)
        if in_flight:
            logger.info("rollout failed; waiting for running items", extra={"in_flight": in_flight})
            return {"recorded": info.code, "in_flight": in_flight, "wait_seconds": self._poll.max_seconds}
        self._finish(replace(rollout, error=info), RolloutStatus.FAILED)
        return {"recorded": info.code, "in_flight": 0}

    def execution_ended(self, tenant_id: str, rollout_id: str, end: ExecutionEnd) -> dict[str, Any]:
        """The rollout's execution ended FAILED, TIMED_OUT or ABORTED (Step Functions' event). When its
        own RecordRolloutFailure ended the rollout, nothing to do. Otherwise (stopped, or failed where no
        Catch applies) no step will run again: the rollout ends FAILED now. Items whose operation ended
        end with it, never-started ones are CANCELLED, and the ones still running end later, each
        recorded by its own deployment's last step (no Map iteration waits for them any more)."""
        rollout = self._rollout(tenant_id, rollout_id)
        if rollout.status not in RUNNING_ROLLOUT:
            # Ended already: by the execution's own last step, or by this handler's earlier attempt whose
            # announcement AWS throttled (Lambda runs it again): announce unless that was done.
            self._announce(rollout)
            return {"reconciled": False}
        if end.name != rollout.execution_name:
            # An earlier run's (a resume or an apply starts another): a late or redelivered event.
            return {"reconciled": False, "ignored": "earlier-execution"}
        in_flight = self._settle(rollout)
        if rollout.cancel_requested:  # what its owner asked for: the stop only came first
            self._finish(rollout, RolloutStatus.CANCELLED, spare_starting=True)
            return {"reconciled": True, "recorded": RolloutStatus.CANCELLED.value, "in_flight": in_flight}
        info = end.info(
            "the rollout's workflow",
            "Items still running end on their own. Start the rollout again to deploy the rest: items "
            "already up to date are skipped.",
        )
        # An item whose marked start may still be retried is not cancelled (``starting``); any other
        # start still running (Lambda is not stopped with the execution) is refused once its item ended.
        self._finish(replace(rollout, error=info), RolloutStatus.FAILED, spare_starting=True)
        return {"reconciled": True, "recorded": info.code, "in_flight": in_flight}

    def _settle(self, rollout: Rollout, items: list[RolloutItem] | None = None) -> int:
        """End every started item (of ``items``, as just read, or else of all the rollout's) whose
        operation ended; how many still run."""
        tenant_id = rollout.tenant_id
        running = 0
        for item in self._store.list_items(rollout.rollout_id) if items is None else items:
            if item.status is ItemStatus.PENDING:
                if item.start_attempted_at is None:
                    continue  # no start recorded: the rollout's end cancels it (and refuses a late one)
                # Its StartItem began a start: take up what it started, or wait while it may still run.
                taken = self._taken_up(rollout, item)
                if taken is None:
                    running += starting(item)
                    continue
                item = taken  # IN_PROGRESS, or ended meanwhile
            if item.status is not ItemStatus.IN_PROGRESS:
                continue
            try:
                done = self._reconcile(tenant_id, item, self._poll.max_seconds)["done"]
            except TransientAwsError:
                raise  # the step's Retry
            except DeployerError as error:  # its record cannot be read: it would never settle
                info = ErrorInfo(error.code, error.message, error.hint)
                self._fail(tenant_id, item, info, item.deployment_id)
                done = True
            running += not done
        return running

    def _settle_ended(self, rollout: Rollout, items: list[RolloutItem]) -> list[RolloutItem]:
        """The items of a rollout whose workflow ended while some of its items had not: settled now.

        Its execution was stopped or failed with items running, so no Map iteration reads them any more.
        Each running item ends with its deployment's last step, unless that step could not record it
        (AWS still throttling); a PENDING item spared by the end, because its StartItem was still running,
        stays PENDING if that StartItem died. Reading the rollout settles both: a running item ends as its
        operation did; a PENDING one takes up what its start began, or, once no StartItem can still be
        running (``START_SECONDS``, its Lambda timeout, twice over), ends CANCELLED. Still throttled: the
        items as they are (the next read settles them)."""
        try:
            self._settle(rollout, items)
            items = self._store.list_items(rollout.rollout_id)
            if any(item.status is ItemStatus.PENDING and not starting(item) for item in items):
                reason = f"the rollout ended {rollout.status.value}"
                self._cancel_pending(rollout, items, reason, spare_starting=True)
                items = self._store.list_items(rollout.rollout_id)
        except TransientAwsError:
            logger.warning(
                "ended rollout not settled: AWS throttled", extra={"rollout_id": rollout.rollout_id}
            )
        return items
