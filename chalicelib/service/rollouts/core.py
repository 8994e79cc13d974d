"""The state every concern of the rollout service shares, and the helpers they all use.

Why a base class: the concerns (creating a rollout, its lifecycle requests, its waves, an item's start
and end, failures, notifications) each live in a module of their own, but they work on the same
records through the same collaborators (``self._store``, ``self._deployments``, ...). Each concern is a
class over ``RolloutCore``, and ``RolloutService`` (the package) is composed of them all.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any, Protocol

from chalicelib.domain.errors import DeployerError, NotFound
from chalicelib.domain.metrics import Metric
from chalicelib.domain.model import ErrorInfo, utc_now
from chalicelib.domain.rollouts import ItemStatus, Rollout, RolloutItem, RolloutSpec, item_error
from chalicelib.observability import bind
from chalicelib.service.completion import CompletionService
from chalicelib.service.deployments import DeploymentService, PollSettings
from chalicelib.service.notifications import NotificationService
from chalicelib.service.ports import Metrics, NoMetrics, ParameterSecrets, RolloutStore, WorkflowStarter
from chalicelib.service.targets import TargetService

SPECS_KEPT = 64  # rollout specs a process keeps (each holds a template: at most 1 MB)


class RolloutRecords(RolloutStore, Protocol):
    """What the service needs of the store beyond ``RolloutStore`` (``adapters/rollouts.py``)."""

    def stack_deployment_id(self, target_id: str, region: str, stack_name: str) -> str | None:
        """The live deployment holding (target, region, stack name), if any."""

    def claim_notice(self, rollout_id: str, key: str) -> bool:
        """Conditional write: True for the first claim of ``key`` (one status change of the rollout)."""

    def release_notice(self, rollout_id: str, key: str) -> None:
        """Free the claim of ``key`` again: its announcement was not delivered, and is to be sent again."""


def no_item(rollout_id: str, index: int) -> DeployerError:
    return DeployerError(f"Rollout {rollout_id} has no item {index}.")


def not_started(reason: str) -> ErrorInfo:
    """Why an item that never started ended CANCELLED."""
    return ErrorInfo("NOT_STARTED", f"not started: {reason}", "Start a new rollout to deploy it.")


def log_as_item(item: RolloutItem) -> None:
    """From here on, an item step's lines also name the item's operation, once it has one: its input
    names only the rollout and the item, and its record (read by every such step) the rest."""
    bind(deployment_id=item.deployment_id, operation_id=item.operation_id)


class RolloutCore:
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
            raise no_item(rollout_id, index)
        return item

    def _step_item(self, rollout_id: str, index: int) -> RolloutItem:
        """The item an item step (PollItem, WaitForItemEnd, RecordItemFailure) is about, read."""
        item = self._item(rollout_id, index)
        log_as_item(item)
        return item

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
                # The StartItem task's token stays: a retried last step of the item's operation (its
                # release failed after this write) releases that task with it. Once released or timed
                # out, the task is closed and the token refused (TaskTimedOut).
                updated_at=utc_now(),
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
