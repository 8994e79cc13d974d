"""What the API asks of a rollout that exists: reading and listing it, and cancel, pause, resume and
apply, each checked against the rollout's status before it changes anything.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from chalicelib.domain.errors import Conflict, TransientAwsError
from chalicelib.domain.model import Page, utc_now
from chalicelib.domain.rollouts import (
    RUNNING_ROLLOUT,
    ItemStatus,
    RolloutFilter,
    RolloutMode,
    RolloutStatus,
    RolloutView,
    page_items,
)
from chalicelib.service.rollouts.failures import RolloutFailures

logger = logging.getLogger(__name__)

# A rollout that ended with items that had not (its workflow was stopped, or failed past its Catch).
ENDED_EARLY = frozenset({RolloutStatus.FAILED, RolloutStatus.CANCELLED})


class RolloutLifecycle(RolloutFailures):
    def get(
        self,
        tenant_id: str,
        rollout_id: str,
        limit: int | None = None,
        after: int = -1,
        status: ItemStatus | None = None,
    ) -> RolloutView:
        """The rollout with its counts over every item; with ``limit``, one page of its items: those
        after item index ``after`` (from ``item_cursor``), of ``status`` if given."""
        rollout = self._rollout(tenant_id, rollout_id)
        items = self._store.list_items(rollout_id)
        if rollout.status in ENDED_EARLY and not all(item.ended for item in items):
            items = self._settle_ended(rollout, items)
        if limit is None:
            return RolloutView(rollout, items)
        return RolloutView(rollout, items, page_items(rollout_id, items, limit, after, status))

    def list_rollouts(
        self, tenant_id: str, filters: RolloutFilter, *, limit: int, next_token: str | None
    ) -> Page:
        rollouts, token = self._store.list_rollouts(tenant_id, filters, limit=limit, next_token=next_token)
        return Page([rollout.public() for rollout in rollouts], token)

    def cancel(self, tenant_id: str, rollout_id: str) -> RolloutView:
        rollout = self._rollout(tenant_id, rollout_id)
        if rollout.status in RUNNING_ROLLOUT:
            # The workflow sees the flag: running items finish, nothing new starts.
            self._store.request_cancel(tenant_id, rollout_id)
        elif rollout.status in (RolloutStatus.PAUSED, RolloutStatus.PLANNED):
            self._store.request_cancel(tenant_id, rollout_id)  # no execution runs: end it here
            try:
                self._finish(replace(rollout, cancel_requested=True), RolloutStatus.CANCELLED)
            except TransientAwsError:
                if self._rollout(tenant_id, rollout_id).status is not RolloutStatus.CANCELLED:
                    raise  # not ended: the caller's retry (503) ends it
                # Ended; only its announcement was throttled, and no step will retry it here.
                logger.warning(
                    "rollout cancelled, not announced (throttled)", extra={"rollout_id": rollout_id}
                )
        else:
            raise Conflict(
                f"Rollout {rollout_id} has ended ({rollout.status.value}); there is nothing to cancel.",
                code="ROLLOUT_ENDED",
                hint="Start a new rollout to deploy again.",
            )
        return self.get(tenant_id, rollout_id)

    def pause(self, tenant_id: str, rollout_id: str) -> RolloutView:
        """Stop starting waves: the running wave's items finish, then the rollout waits PAUSED until
        resumed (or cancelled). Asking again, or asking a paused rollout, changes nothing."""
        rollout = self._rollout(tenant_id, rollout_id)
        if rollout.status is RolloutStatus.PAUSED:
            return self.get(tenant_id, rollout_id)
        if rollout.status not in RUNNING_ROLLOUT or rollout.cancel_requested:
            raise Conflict(
                f"Rollout {rollout_id} is {rollout.status.value}"
                + (" and being cancelled" if rollout.cancel_requested else "")
                + "; only a running rollout can be paused.",
                code="ROLLOUT_NOT_RUNNING",
                hint="A paused rollout is resumed with POST /rollouts/{id}/resume; an ended one cannot pause.",
            )
        self._store.request_pause(tenant_id, rollout_id, True)
        return self.get(tenant_id, rollout_id)

    def resume(self, tenant_id: str, rollout_id: str) -> RolloutView:
        rollout = self._rollout(tenant_id, rollout_id)
        if rollout.status is not RolloutStatus.PAUSED:
            raise Conflict(
                f"Rollout {rollout_id} is {rollout.status.value}, not PAUSED.",
                code="ROLLOUT_NOT_PAUSED",
                hint="Only a paused rollout (by a failed canary, or on request) can be resumed.",
            )
        # Resuming accepts the failures so far: the tolerance counts only those that come after.
        resumed = replace(
            rollout,
            status=RolloutStatus.PENDING,
            attempt=rollout.attempt + 1,
            accepted_failures=rollout.failed,
            updated_at=utc_now(),
        )
        self._store.save_rollout(resumed)
        self._start(resumed)
        return self.get(tenant_id, rollout_id)

    def apply(self, tenant_id: str, rollout_id: str) -> RolloutView:
        """Execute the change sets a PLANNED rollout made, item by item, in the same waves."""
        rollout = self._rollout(tenant_id, rollout_id)
        if rollout.status is not RolloutStatus.PLANNED:
            raise Conflict(
                f"Rollout {rollout_id} is {rollout.status.value}, not PLANNED.",
                code="ROLLOUT_NOT_PLANNED",
                hint='Create the rollout with "mode": "plan", wait for PLANNED, then apply it.',
            )
        items = self._store.list_items(rollout_id)
        stale = []
        for item in items:
            # Items whose plan found no changes too: a stack changed since then is no longer "no changes".
            if item.status is not ItemStatus.PLANNED or item.deployment_id is None:
                continue
            deployment = self._deployments.get(tenant_id, item.deployment_id)
            if (
                deployment.operation.operation_id != item.operation_id
                or deployment.operation.status.value != ("PLANNED")
            ):
                stale.append({"item_id": item.index, "deployment_id": item.deployment_id})
        if stale:
            raise Conflict(
                f"{len(stale)} item(s) changed since the plan was made.",
                code="PLAN_STALE",
                hint="Create a new plan rollout and review it again.",
                details={"items": stale},
            )
        now = utc_now()
        for item in items:
            if item.status is ItemStatus.PLANNED:
                self._store.save_item(
                    # No task waits for the plan's item any more: its token goes (the start writes its own).
                    replace(
                        item,
                        status=ItemStatus.PENDING,
                        start_attempted_at=None,
                        updated_at=now,
                        task_token=None,
                    ),
                    reopen=True,
                )
        applying = replace(
            rollout,
            mode=RolloutMode.APPLY_PLAN,
            status=RolloutStatus.PENDING,
            next_wave=0,
            running_wave=None,
            attempt=rollout.attempt + 1,
            accepted_failures=rollout.failed,
            updated_at=now,
        )
        self._store.save_rollout(applying)
        self._start(applying)
        return self.get(tenant_id, rollout_id)
