"""Running a rollout: the start of its execution, NextWave's waves, and the rollout's end.

Apart because this is the rollout's own state machine (PENDING, IN_PROGRESS, PAUSED, then its end),
which the API's requests and the workflow's failures drive as well. ``START_SECONDS`` lives here, next
to both its readers (the execution's input and ``starting``).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from chalicelib.domain.errors import DeployerError
from chalicelib.domain.metrics import Metric
from chalicelib.domain.model import ErrorInfo, age_seconds, utc_now
from chalicelib.domain.rollouts import (
    RUNNING_ROLLOUT,
    ItemStatus,
    Rollout,
    RolloutItem,
    RolloutMode,
    RolloutStatus,
    Wave,
    item_error,
)
from chalicelib.observability import correlation_id
from chalicelib.service.executions import start_through_throttles
from chalicelib.service.rollouts.core import not_started
from chalicelib.service.rollouts.notices import RolloutNotices

logger = logging.getLogger(__name__)


# What StartItem's own work may take before its wait begins: its Lambda timeout (.chalice/config.json;
# tests/package pins the two together). 120 s, as the deployment steps that make as many AWS calls: a
# start is a whole create (about 7 calls and StartExecution in up to 3 rounds), and under heavy
# throttling botocore's backoffs overran 30 s (5-7 items of 100 at 30% throttling, RELIABILITY.md).
START_SECONDS = 120


def starting(item: RolloutItem) -> bool:
    """A PENDING item whose start was marked recently enough that its StartItem may still be retried (a
    start whose StartExecution stayed throttled, or an earlier version's marker). A start without a
    mark that is still running needs no sparing: its operation's write is refused once the item ended."""
    began = item.start_attempted_at
    return began is not None and age_seconds(began) <= 2 * START_SECONDS


class RolloutWaves(RolloutNotices):
    def next_wave(self, tenant_id: str, rollout_id: str, last_wave: int | None) -> dict[str, Any]:
        """Close the wave that ran (``last_wave``), then start the next one or end the rollout."""
        rollout = self._rollout(tenant_id, rollout_id)
        if rollout.status not in RUNNING_ROLLOUT:
            # A retry of the run that ended the rollout: announce the end unless that run did.
            self._announce(rollout)
            return {"run": False}
        rollout = replace(rollout, status=RolloutStatus.IN_PROGRESS)
        if rollout.running_wave is not None:
            if last_wave != rollout.running_wave:  # this step ran before and started that wave
                return self._run(rollout.waves[rollout.running_wave], rollout)
            wave = rollout.waves[rollout.running_wave]
            rollout = replace(rollout, running_wave=None, next_wave=wave.index + 1)
            if wave.canary and not rollout.cancel_requested:
                failed = [
                    i
                    for i in self._store.list_items(rollout_id)
                    if i.wave == wave.index and i.status is ItemStatus.FAILED
                ]
                if failed:
                    paused = replace(rollout, status=RolloutStatus.PAUSED, updated_at=utc_now())
                    self._store.save_rollout(paused)
                    self._announce(paused)  # an operator must resume or cancel it
                    return {"run": False}
        if rollout.cancel_requested:
            self._finish(rollout, RolloutStatus.CANCELLED)
            return {"run": False}
        if rollout.over_tolerance:
            self._finish(rollout, RolloutStatus.FAILED)
            return {"run": False}
        if rollout.pause_requested and rollout.next_wave < len(rollout.waves):
            # Between waves, as asked: the flag is spent in the write that pauses (two writes let a
            # throttle between them lose the pause: the retry found no flag and ran the next wave);
            # resume starts the next wave.
            paused = replace(
                rollout, status=RolloutStatus.PAUSED, pause_requested=False, updated_at=utc_now()
            )
            self._store.save_rollout(paused, pause_spent=True)
            self._announce(paused)
            return {"run": False}
        if rollout.next_wave >= len(rollout.waves):
            final = RolloutStatus.PLANNED if rollout.mode is RolloutMode.PLAN else RolloutStatus.SUCCEEDED
            self._finish(rollout, final)
            return {"run": False}
        wave = rollout.waves[rollout.next_wave]
        rollout = replace(rollout, running_wave=wave.index, updated_at=utc_now())
        self._store.save_rollout(rollout)
        return self._run(wave, rollout)

    def _run(self, wave: Wave, rollout: Rollout) -> dict[str, Any]:
        return {
            "run": True,
            "index": wave.index,
            "item_ids": wave.item_ids(),
            "max_concurrency": rollout.strategy.concurrency(wave.end - wave.first),
        }

    def _start(self, rollout: Rollout) -> None:
        execution_input = {
            "tenant_id": rollout.tenant_id,
            "rollout_id": rollout.rollout_id,
            "wait_seconds": self._poll.initial_seconds,
            "max_wait_seconds": self._poll.max_seconds,
            "correlation_id": correlation_id() or rollout.rollout_id,
            # StartItem waits for its operation's end (or this timeout): the wait plus the start itself.
            "start_timeout_seconds": self._poll.event_timeout_seconds + START_SECONDS,
        }
        try:
            start_through_throttles(self._workflow, rollout.execution_name, execution_input)
        except DeployerError as error:
            failed = replace(
                rollout,
                status=RolloutStatus.FAILED,
                error=ErrorInfo(error.code, error.message, error.hint),
                updated_at=utc_now(),
            )
            self._store.save_rollout(failed)
            try:
                self._announce(failed)
            except DeployerError as announce_error:  # the start's error is the one to report
                logger.warning("rollout not announced", extra={"error_code": announce_error.code})
            raise

    def _finish(self, rollout: Rollout, status: RolloutStatus, *, spare_starting: bool = False) -> None:
        """End the rollout; items that never started are CANCELLED, with the reason (``spare_starting``:
        not those whose StartItem began within ``2 * START_SECONDS``, which may still start them)."""
        if self._secrets is not None:  # its NoEcho values, if it had any: no item starts any more
            self._secrets.delete(rollout.rollout_id)
        items = self._store.list_items(rollout.rollout_id)
        error = rollout.error
        if status is RolloutStatus.FAILED and error is None:
            failed = [i for i in items if i.status is ItemStatus.FAILED]
            named = "; ".join(str(i.error["message"]) for i in failed[:10] if i.error)
            error = ErrorInfo(
                "FAILURE_TOLERANCE_EXCEEDED",
                f"{len(failed)} item(s) failed, more than the {rollout.tolerance} tolerated: {named}",
                "Fix the failed items (see each item's error and its deployment's events), then start "
                "the rollout again: items already up to date are skipped.",
            )
        if status in (RolloutStatus.FAILED, RolloutStatus.CANCELLED):
            reason = (
                "the rollout was cancelled" if status is RolloutStatus.CANCELLED else "the rollout failed"
            )
            self._cancel_pending(rollout, items, reason, spare_starting=spare_starting)
        ended = replace(
            rollout,
            status=status,
            running_wave=None,
            planned=rollout.planned or status is RolloutStatus.PLANNED,
            error=error,
            updated_at=utc_now(),
        )
        self._store.save_rollout(ended)
        self._announce(ended)

    def _cancel_pending(
        self, rollout: Rollout, items: list[RolloutItem], reason: str, *, spare_starting: bool
    ) -> None:
        """End the PENDING ``items`` CANCELLED (``spare_starting``: not those whose StartItem may still
        run). A fleet's worth of items in tens of writes, not one per item: NextWave has a timeout."""
        info, now = not_started(reason), utc_now()
        self._store.end_items(
            rollout.tenant_id,
            [
                replace(item, status=ItemStatus.CANCELLED, error=item_error(item, info, None), updated_at=now)
                for item in items
                if item.status is ItemStatus.PENDING and not (spare_starting and starting(item))
            ],
            # counted write by write: a throttle part-way must not lose the count of those ended
            lambda ended: self._metrics.add(Metric.ROLLOUT_ITEMS, ended, status=ItemStatus.CANCELLED.value),
        )
