"""Fleet rollouts: one template to many (target, region) items, in waves, as ordinary deployments.

Why each item is an ordinary deployment: ``DeploymentService.create``/``update`` already hold the
per-stack lock, the one-live-deployment-per-stack claim, the idempotent stack calls and the
explained failures. A rollout only decides *when* each item starts and *whether* it may start,
and reads back how it ended. So a rollout item's failure is exactly the failure its deployment
records (account, region, resource, reason), and ``GET /deployments/{id}`` shows each item too.

How it runs (``statemachine/rollout.asl.json``): ``NextWave`` closes the wave that just ran and
picks the next; a Map runs that wave's item ids, each iteration ``StartItem`` (which refuses to
start once the rollout is cancelled or over its failure tolerance), then waits for the operation
to end. With completion by events (the default) the iteration waits (StartItem's own task token,
or ``WaitForItemEnd``) until the deployment workflow's last step, which was given the item's id,
records the item's end from the deployment record it holds (``end_from_deployment``) and releases
the wait saying so (``item_ended``): the iteration then ends with no further step, and a Map slot
costs no transitions while its stack works. Any other release, and a wait that timed out (a lost
release), go to ``PollItem``, which reads the deployment record and ends the item. With ``poll`` it reads the
record every 1 s x 1.5 up to the poll maximum. A failed canary wave pauses the rollout and ends the
execution; ``resume`` starts a new execution at the next wave. Nothing but ids and poll intervals
travels in the execution's state.

Notifications: POST /rollouts takes the ``notifications`` a deployment takes, checked (no I/O)
before anything else and stored (the webhook secret in Secrets Manager) only once the whole rollout
is valid. Every status in ``ANNOUNCED_ROLLOUT`` is then announced through ``NotificationService``:
once per ``Rollout.notice_key``, claimed by a conditional write *after* the status is saved. A step
that Lambda retries after the message went out finds the claim taken; one retried because the
announcement was lost (the status saved, the claim not made) re-reads the final status, and
``next_wave``/``record_rollout_failure`` announce it then.

Why StartItem writes nothing of the item's own: starting an operation (``DeploymentService.create``/
``update``/``apply``) writes the operation in one transaction, and that transaction also records the item
IN_PROGRESS with the operation's ids, only while the item is PENDING (``ItemStart.write``). So an
item is IN_PROGRESS exactly when its operation exists: a retry of the step (Lambda retried it after the
work was done) reads the item and takes up that operation, never starting a second one (which would be
refused with OPERATION_IN_PROGRESS or STACK_LOCKED, or deploy twice); an item the rollout's end cancelled
meanwhile refuses the transaction whole, so nothing starts for it. One read (the item and its rollout
together) and no other write per start. A PENDING item can still carry ``start_attempted_at``: from a
start whose StartExecution stayed throttled (``_reopen_unstarted``) or from an earlier version, which wrote
it as a marker before the start; such an item takes up the operation its stack's deployment began after
the marker, in the rollout's mode, with the rollout's configuration (``config_hash``), if there is one.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from chalicelib.domain.errors import (
    Conflict,
    DeployerError,
    NotFound,
    StartGuardFailed,
    TransientAwsError,
    UnprocessableRequest,
)
from chalicelib.domain.fingerprint import config_hash
from chalicelib.domain.metrics import WAIT_ITEM_END, Metric
from chalicelib.domain.model import (
    Action,
    Deployment,
    ErrorInfo,
    ExecutionEnd,
    OperationMode,
    OperationStatus,
    Outcome,
    Page,
    new_id,
    utc_now,
)
from chalicelib.domain.noecho import ParameterSplit, split_parameters
from chalicelib.domain.parameters import check_values
from chalicelib.domain.rollouts import (
    ANNOUNCED_ROLLOUT,
    MAX_ROLLOUT_ITEMS,
    RUNNING_ROLLOUT,
    ItemEndNews,
    ItemPlan,
    ItemRef,
    ItemStatus,
    Rollout,
    RolloutFilter,
    RolloutItem,
    RolloutMode,
    RolloutSpec,
    RolloutStatus,
    RolloutView,
    Strategy,
    Wave,
    item_error,
    page_items,
    plan_waves,
)
from chalicelib.domain.templates import NO_ECHO_MASK, parse_template
from chalicelib.observability import correlation_id
from chalicelib.service.completion import CompletionService
from chalicelib.service.deployments import (
    DeploymentChange,
    DeploymentService,
    ItemStart,
    NewDeployment,
    PollSettings,
    check_keeps_secrets,
    secrets_kept,
)
from chalicelib.service.notifications import NotificationRequest, NotificationService
from chalicelib.service.ports import Metrics, NoMetrics, ParameterSecrets, RolloutStore, WorkflowStarter
from chalicelib.service.targets import TargetService

logger = logging.getLogger(__name__)

TARGET_PAGE = 100
# An item's operation still PENDING this long after it began was never picked up by its execution
# (its starter died between writing it and StartExecution): the item fails instead of waiting forever.
NOT_STARTED_AFTER_SECONDS = 15 * 60
# What StartItem's own work may take before its wait begins: its Lambda timeout (.chalice/config.json;
# tests/package pins the two together). 120 s, as the deployment steps that make as many AWS calls: a
# start is a whole create (about 7 calls and StartExecution in up to 3 rounds), and under heavy
# throttling botocore's backoffs overran 30 s (5-7 items of 100 at 30% throttling, RELIABILITY.md).
START_SECONDS = 120
# A rollout that ended with items that had not (its workflow was stopped, or failed past its Catch).
ENDED_EARLY = frozenset({RolloutStatus.FAILED, RolloutStatus.CANCELLED})
SPECS_KEPT = 64  # rollout specs a process keeps (each holds a template: at most 1 MB)


class RolloutRecords(RolloutStore, Protocol):
    """What the service needs of the store beyond ``RolloutStore`` (``adapters/rollouts.py``)."""

    def stack_deployment_id(self, target_id: str, region: str, stack_name: str) -> str | None:
        """The live deployment holding (target, region, stack name), if any."""

    def claim_notice(self, rollout_id: str, key: str) -> bool:
        """Conditional write: True for the first claim of ``key`` (one status change of the rollout)."""


@dataclass(frozen=True)
class TargetChoice:
    target_id: str
    regions: tuple[str, ...] | None  # None: every region the target enables


@dataclass(frozen=True)
class NewRollout:
    stack_name: str
    template_body: str
    parameters: dict[str, str]
    tags: dict[str, str]
    targets: tuple[TargetChoice, ...]
    strategy: Strategy
    mode: RolloutMode
    notify: NotificationRequest | None = None  # as the caller sent it; the secret is stored by create


@dataclass(frozen=True)
class _KnownTarget:
    target_id: str
    account_id: str
    regions: tuple[str, ...]


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


def _no_item(rollout_id: str, index: int) -> DeployerError:
    return DeployerError(f"Rollout {rollout_id} has no item {index}.")


def _not_started(reason: str) -> ErrorInfo:
    """Why an item that never started ended CANCELLED."""
    return ErrorInfo("NOT_STARTED", f"not started: {reason}", "Start a new rollout to deploy it.")


def _starting(item: RolloutItem) -> bool:
    """A PENDING item whose start was marked recently enough that its StartItem may still be retried (a
    start whose StartExecution stayed throttled, or an earlier version's marker). A start without a
    mark that is still running needs no sparing: its operation's write is refused once the item ended."""
    began = item.start_attempted_at
    return began is not None and _age_seconds(began) <= 2 * START_SECONDS


def _check_items(new: NewRollout, count: int, regions: set[str]) -> None:
    """A rollout of ``count`` (target, region) items in ``regions``: within the item limit, and its
    ``region_order`` (if any) lists exactly those regions."""
    if count > MAX_ROLLOUT_ITEMS:
        raise UnprocessableRequest(
            f"The rollout has {count} (target, region) items; the limit is {MAX_ROLLOUT_ITEMS}.",
            code="TOO_MANY_ITEMS",
            hint="Split the fleet into several rollouts.",
            details={"field": "targets", "items": count, "limit": MAX_ROLLOUT_ITEMS},
        )
    order = new.strategy.region_order
    if order is not None:
        missing, extra = sorted(regions - set(order)), sorted(set(order) - regions)
        if missing or extra:
            raise UnprocessableRequest(
                "strategy.region_order must list exactly the regions the rollout deploys to.",
                code="REGION_ORDER_MISMATCH",
                hint='List every region once, or send "parallel".',
                details={"field": "strategy.region_order", "missing": missing, "extra": extra},
            )


def _age_seconds(timestamp: str) -> float:
    if not timestamp:
        return math.inf
    started = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return (datetime.now(UTC) - started).total_seconds()


_OPERATION_MODE = {
    RolloutMode.APPLY: OperationMode.DEPLOY,
    RolloutMode.PLAN: OperationMode.PLAN,
    RolloutMode.APPLY_PLAN: OperationMode.APPLY,
}


class RolloutService:
    def __init__(
        self,
        store: RolloutRecords,
        deployments: DeploymentService,
        targets: TargetService,
        workflow: WorkflowStarter,
        poll: PollSettings,
        notifications: NotificationService | None = None,
        completion: CompletionService | None = None,
        secrets: ParameterSecrets | None = None,
        metrics: Metrics | None = None,
        operation_timeout_seconds: int = 6 * 3600,
    ) -> None:
        self._metrics = metrics or NoMetrics()
        # The deployment workflow fails an operation past this deadline (NEXUS_OPERATION_TIMEOUT_SECONDS);
        # an item whose operation still shows running well past it lost its workflow (a stopped
        # execution): it ends FAILED rather than being waited for without end.
        self._operation_timeout = operation_timeout_seconds
        self._secrets = secrets
        self._store = store
        self._deployments = deployments
        self._targets = targets
        self._workflow = workflow
        self._notifications = notifications
        # At least 1 s between reads of an item's deployment record: the deployment's own execution
        # does the fast polling of CloudFormation; a 0 s loop here per running item would only spin.
        self._poll = PollSettings(
            max(1, poll.initial_seconds),
            max(1, poll.initial_seconds, poll.max_seconds),
            poll.completion,
            poll.event_timeout_seconds,
        )
        # With it (and completion "events"), a running item waits for its operation's end instead
        # of reading its deployment record every few seconds.
        self._completion = completion
        # A rollout's spec never changes once written: each process reads it once, not once per item.
        self._specs: dict[str, RolloutSpec] = {}
        self._specs_lock = threading.Lock()  # local mode runs many steps of one process at once

    # -- API ---------------------------------------------------------------------------------------

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

    def check_new(self, new: NewRollout) -> ParameterSplit:
        """What ``create`` refuses with no AWS call (its notification request, template, parameters, a
        NoEcho value with no secret store to keep it, and, when every target names its regions, the item
        count and region_order); the parameters' split."""
        notifier = self._notifier(new.notify)
        if notifier is not None and new.notify is not None:
            notifier.check(new.notify)
        summary = parse_template(new.template_body)
        # NoEcho values go to the secret store under the rollout's id until its items have started;
        # a value left out is each item's business: an update keeps the stack's, a create needs one.
        split = split_parameters(summary, new.parameters, (), strict=False)
        summary.check_parameters({**split.public, **dict.fromkeys(summary.no_echo, NO_ECHO_MASK)})
        check_values(new.template_body, new.parameters)
        check_keeps_secrets(self._secrets, split)  # NoEcho values need the secret store
        if all(choice.regions is not None for choice in new.targets):  # the body says it all
            explicit = [region for choice in new.targets for region in choice.regions or ()]
            _check_items(new, len(explicit), set(explicit))
        return split

    def create(self, tenant_id: str, new: NewRollout) -> RolloutView:
        split = self.check_new(new)  # before any I/O: a malformed request costs no AWS call
        plans = self._item_plans(tenant_id, new)
        ordered, waves = plan_waves(plans, new.strategy)
        notifier = self._notifier(new.notify)
        notifications = None
        if notifier is not None and new.notify is not None:  # last: stores the webhook secret
            accounts = {p.account_id for p in plans}
            notifications = notifier.configure_fleet(tenant_id, accounts, new.notify)
        now = utc_now()
        rollout = Rollout(
            tenant_id=tenant_id,
            rollout_id=new_id("rol"),
            stack_name=new.stack_name,
            mode=new.mode,
            strategy=new.strategy,
            status=RolloutStatus.PENDING,
            waves=tuple(waves),
            item_count=len(ordered),
            created_at=now,
            updated_at=now,
            notifications=notifications,
        )
        wave_of = {index: w.index for w in waves for index in w.item_ids()}
        items = [
            RolloutItem(
                rollout.rollout_id, n, p.target_id, p.account_id, p.region, wave_of[n], updated_at=now
            )
            for n, p in enumerate(ordered)
        ]
        spec = RolloutSpec(new.stack_name, new.template_body, split.public, dict(new.tags))
        try:
            with secrets_kept(self._secrets, rollout.rollout_id, split):
                self._store.create_rollout(rollout, items, spec)
        except BaseException:
            if self._notifications is not None:  # no record refers to the webhook secret stored above
                self._notifications.discard(notifications)
            raise
        self._start(rollout)
        return RolloutView(rollout, items)

    def cancel(self, tenant_id: str, rollout_id: str) -> RolloutView:
        rollout = self._rollout(tenant_id, rollout_id)
        if rollout.status in RUNNING_ROLLOUT:
            # The workflow sees the flag: running items finish, nothing new starts.
            self._store.request_cancel(tenant_id, rollout_id)
        elif rollout.status in (RolloutStatus.PAUSED, RolloutStatus.PLANNED):
            self._store.request_cancel(tenant_id, rollout_id)  # no execution runs: end it here
            self._finish(replace(rollout, cancel_requested=True), RolloutStatus.CANCELLED)
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
                    replace(item, status=ItemStatus.PENDING, start_attempted_at=None, updated_at=now),
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

    # -- workflow steps ----------------------------------------------------------------------------

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
            # Between waves, as asked: the flag is spent; resume starts the next wave.
            paused = replace(
                rollout, status=RolloutStatus.PAUSED, pause_requested=False, updated_at=utc_now()
            )
            self._store.request_pause(tenant_id, rollout_id, False)
            self._store.save_rollout(paused)
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
            raise _no_item(rollout_id, index)
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
            error = item_error(item, _not_started(reason), None)
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
        operation = deployment.operation
        if (
            operation.operation_id == current.operation_id
            and operation.status is OperationStatus.FAILED
            and deployment.error is not None
            and deployment.error.code == TransientAwsError.code
        ):
            self._store.save_item(replace(item, updated_at=utc_now()))

    def poll_item(
        self, tenant_id: str, rollout_id: str, index: int, wait_seconds: int, timed_out: bool = False
    ) -> dict[str, Any]:
        """Read the item's deployment and end the item if its operation ended. ``timed_out``: this
        poll follows a WaitForItemEnd that no announcement of the operation's end released."""
        if timed_out:
            self._metrics.add(Metric.FALLBACK_RECONCILES, wait=WAIT_ITEM_END)
        return self._reconcile(tenant_id, self._item(rollout_id, index), wait_seconds)

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
        With the token of the StartItem task waiting for the end, from the item's record."""
        item = self._store.get_item(ref.rollout_id, ref.index)
        if item is None:
            return ItemEndNews(False)
        if item.ended:
            return ItemEndNews(True)
        if (
            item.status is not ItemStatus.IN_PROGRESS
            or item.operation_id != deployment.operation.operation_id
        ):
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
        outcome = operation.status.value
        if outcome == "FAILED":
            info = deployment.error or ErrorInfo(
                "DEPLOYMENT_FAILED", "the deployment failed", "See its events."
            )
            self._fail(tenant_id, item, info, deployment.deployment_id)
        elif outcome in ("PLANNED", "SKIPPED"):
            changes = deployment.public().get("changes") or []
            self._end(tenant_id, item, ItemStatus(outcome), changes=[dict(c) for c in changes])
        else:
            self._end(tenant_id, item, ItemStatus.SUCCEEDED)
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
        age = _age_seconds(operation.started_at)
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
        if _age_seconds(item.start_attempted_at or item.updated_at) <= NOT_STARTED_AFTER_SECONDS:
            return item
        info = ErrorInfo(
            "ITEM_NOT_STARTED",
            f"item {item.index} was not started: its StartItem step ended without starting an operation "
            f"within {NOT_STARTED_AFTER_SECONDS // 60} minutes",
            "Start a new rollout to deploy it (items already up to date are skipped).",
        )
        self._fail(tenant_id, item, info, item.deployment_id)
        return self._item(item.rollout_id, item.index)

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

    def await_item(self, tenant_id: str, rollout_id: str, index: int, task_token: str) -> dict[str, Any]:
        """WaitForItemEnd's Lambda: park the Map iteration until the item's operation ends.

        The deployment workflow's last step announces the end (``CompletionService.operation_ended``).
        If the operation ended before this wait was registered, the announcement was kept and releases
        the task at once; if the record shows it ended without one (a workflow that died), this step
        releases it too. Either way ``PollItem`` then reads the record and ends the item.
        """
        if self._completion is None:
            raise DeployerError("Rollout items cannot wait for events without the completion service.")
        item = self._item(rollout_id, index)
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

    @property
    def _waits_for_events(self) -> bool:
        """Items wait for their operation's announced end (else they poll its record)."""
        return self._completion is not None and self._poll.completion == "events"

    def _done(self, done: bool, wait_seconds: int) -> dict[str, Any]:
        """The item's ``progress``: IsItemDone reads ``done``, then ``completion`` ("events": wait in
        WaitForItemEnd, at most ``event_timeout_seconds``, for the operation's end; else poll)."""
        return {
            "done": done,
            "wait_seconds": wait_seconds,
            "completion": "events" if self._waits_for_events else "poll",
            "event_timeout_seconds": self._poll.event_timeout_seconds,
        }

    def record_item_failure(
        self, tenant_id: str, rollout_id: str, index: int, info: ErrorInfo
    ) -> dict[str, Any]:
        item = self._item(rollout_id, index)
        if not item.ended:
            self._fail(tenant_id, item, info, item.deployment_id)
        return {"recorded": info.code}

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
        # An item whose marked start may still be retried is not cancelled (``_starting``); any other
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
                    running += _starting(item)
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

    # -- helpers -----------------------------------------------------------------------------------

    def _rollout(self, tenant_id: str, rollout_id: str) -> Rollout:
        rollout = self._store.get_rollout(tenant_id, rollout_id)
        if rollout is None:
            raise NotFound(f"Rollout {rollout_id} does not exist.", code="ROLLOUT_NOT_FOUND")
        return rollout

    def _spec(self, rollout_id: str) -> RolloutSpec | None:
        spec = self._specs.get(rollout_id)
        if spec is None:
            spec = self._store.get_spec(rollout_id)
            if spec is not None:
                with self._specs_lock:
                    if len(self._specs) >= SPECS_KEPT:
                        self._specs.pop(next(iter(self._specs)))  # the oldest
                    self._specs[rollout_id] = spec
        return spec

    def _item(self, rollout_id: str, index: int) -> RolloutItem:
        item = self._store.get_item(rollout_id, index)
        if item is None:
            raise _no_item(rollout_id, index)
        return item

    def _item_plans(self, tenant_id: str, new: NewRollout) -> list[ItemPlan]:
        known = self._all_targets(tenant_id)
        unknown = [c.target_id for c in new.targets if c.target_id not in known]
        if unknown:
            raise UnprocessableRequest(
                f"{len(unknown)} target(s) do not exist: {', '.join(unknown[:10])}.",
                code="TARGET_NOT_FOUND",
                hint="Register the targets first (POST /targets), or leave them out.",
                details={"field": "targets", "unknown": unknown},
            )
        plans: list[ItemPlan] = []
        disabled: list[dict[str, str]] = []
        for choice in new.targets:
            target = known[choice.target_id]
            for region in choice.regions if choice.regions is not None else target.regions:
                if region not in target.regions:
                    disabled.append({"target_id": target.target_id, "region": region})
                plans.append(ItemPlan(target.target_id, target.account_id, region))
        if disabled:
            raise UnprocessableRequest(
                f"{len(disabled)} region(s) are not enabled on their target.",
                code="REGION_NOT_ENABLED",
                hint="Use only regions the target was registered with, or register it with them.",
                details={"field": "targets", "not_enabled": disabled},
            )
        _check_items(new, len(plans), {p.region for p in plans})
        return plans

    def _all_targets(self, tenant_id: str) -> dict[str, _KnownTarget]:
        found: dict[str, _KnownTarget] = {}
        token: str | None = None
        while True:
            page = self._targets.list(tenant_id, TARGET_PAGE, token)
            for t in page.items:
                found[str(t["target_id"])] = _KnownTarget(
                    str(t["target_id"]), str(t["account_id"]), tuple(str(r) for r in t["regions"])
                )
            token = page.next_token
            if token is None:
                return found

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

    def _end(
        self,
        tenant_id: str,
        item: RolloutItem,
        status: ItemStatus,
        *,
        error: dict[str, Any] | None = None,
        changes: list[dict[str, Any]] | None = None,
        deployment_id: str | None = None,
        only_pending: bool = False,
    ) -> bool:
        """End ``item`` (``only_pending``: only if it has not started either); False when it had."""
        ended = self._store.end_item(
            tenant_id,
            replace(
                item,
                status=status,
                error=error,
                changes=changes if changes is not None else item.changes,
                deployment_id=deployment_id or item.deployment_id,
                updated_at=utc_now(),
                task_token=None,  # no task waits for an ended item
            ),
            only_pending=only_pending,
        )
        if ended:  # once per item: a retried step finds it ended and writes nothing
            self._metrics.add(Metric.ROLLOUT_ITEMS, status=status.value)
        return ended

    def _fail(
        self,
        tenant_id: str,
        item: RolloutItem,
        info: ErrorInfo,
        deployment_id: str | None,
        *,
        only_pending: bool = False,
    ) -> bool:
        """End ``item`` FAILED with ``info`` (its deployment, if it has one, named in the error)."""
        error = item_error(item, info, deployment_id)
        return self._end(tenant_id, item, ItemStatus.FAILED, error=error, only_pending=only_pending)

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
        info, now = _not_started(reason), utc_now()
        self._store.end_items(
            rollout.tenant_id,
            [
                replace(item, status=ItemStatus.CANCELLED, error=item_error(item, info, None), updated_at=now)
                for item in items
                if item.status is ItemStatus.PENDING and not (spare_starting and _starting(item))
            ],
        )

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
            if any(item.status is ItemStatus.PENDING and not _starting(item) for item in items):
                reason = f"the rollout ended {rollout.status.value}"
                self._cancel_pending(rollout, items, reason, spare_starting=True)
                items = self._store.list_items(rollout.rollout_id)
        except TransientAwsError:
            logger.warning(
                "ended rollout not settled: AWS throttled", extra={"rollout_id": rollout.rollout_id}
            )
        return items

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
        if (
            operation.status is OperationStatus.FAILED
            and deployment.error is not None
            and (deployment.error.code == TransientAwsError.code)
        ):
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

    def _notifier(self, request: NotificationRequest | None) -> NotificationService | None:
        if request is None:
            return None
        if self._notifications is None:
            raise UnprocessableRequest(
                "Rollout notifications are not available in this version of the service.",
                code="NOTIFICATIONS_NOT_AVAILABLE",
                hint="Leave notifications out.",
                details={"field": "notifications"},
            )
        return self._notifications

    def _announce(self, rollout: Rollout) -> None:
        """Tell the rollout's owner of its status, once per status change (``Rollout.notice_key``).

        The items are read before the claim is taken, so a failure here (raised, and the step
        retried) leaves the claim free; delivery itself never raises.
        """
        config = rollout.notifications
        if config is None or self._notifications is None or rollout.status not in ANNOUNCED_ROLLOUT:
            return
        view = RolloutView(rollout, self._store.list_items(rollout.rollout_id))
        key = rollout.notice_key
        if not self._store.claim_notice(rollout.rollout_id, key):
            return  # announced by an earlier run of this step
        message = view.outcome_message()
        kind = str(message["type"])
        self._notifications.send(
            config,
            message,
            subject=f"NexusAI Deployer: rollout of {rollout.stack_name} {rollout.status.value.lower()}",
            attributes={"type": kind, "rollout_id": rollout.rollout_id},
            delivery_id=hashlib.sha256(f"{rollout.rollout_id}#{key}".encode()).hexdigest()[:32],
            log_fields={"rollout_id": rollout.rollout_id, "notice": key},
        )
        logger.info("rollout announced", extra={"rollout_id": rollout.rollout_id, "notice": key})

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
            self._workflow.start(rollout.execution_name, execution_input)
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
