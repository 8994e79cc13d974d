"""Fleet rollouts: one stack to many (target, region) items, in waves, with a canary and a brake.

Why waves are planned once, at creation: the item list is fixed when the rollout is accepted, so
it is sorted into waves there and each wave is a contiguous range of item indexes. The workflow
then carries only ``(first, end)`` indexes and integer item ids, never the items themselves, and a
resumed rollout picks up at the next wave without recomputing anything.

The waves: the first ``canary`` items (of the first region in ``region_order``) form a canary wave
that runs alone; a failure in it pauses the rollout. Then one wave per region in ``region_order``,
or one wave with everything left when it is ``"parallel"``. ``max_concurrent`` bounds how many
items of a wave run at once; ``failure_tolerance`` is how many failed items the whole rollout
accepts before it starts nothing new. Both take a count or a percentage ("NN%"), as StackSets does,
rounded down (a concurrency of at least 1).

Telling an owner: a rollout may carry ``Notifications`` (the same settings a deployment carries). Each
time it reaches a status an operator cares about (``ANNOUNCED_ROLLOUT``) it is announced once, keyed by
``notice_key`` (the execution attempt and the status), with ``RolloutView.outcome_message``: ids,
counts, the summary and the failed items, never the template, parameters or notification settings.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from chalicelib.domain.automation import Notifications
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.model import ErrorInfo, utc_now
from chalicelib.domain.paging import decode_token, encode_token

MAX_ROLLOUT_ITEMS = 2_000


class RolloutStatus(StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    PLANNED = "PLANNED"
    PAUSED = "PAUSED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class ItemStatus(StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    PLANNED = "PLANNED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"


class RolloutMode(StrEnum):
    APPLY = "apply"  # create or update every item's stack
    PLAN = "plan"  # change sets only; the rollout ends PLANNED
    APPLY_PLAN = "apply_plan"  # execute the change sets a PLANNED rollout made


RUNNING_ROLLOUT = frozenset({RolloutStatus.PENDING, RolloutStatus.IN_PROGRESS})
# Where a rollout stops and someone should hear of it (PAUSED and PLANNED wait for an operator).
ANNOUNCED_ROLLOUT = frozenset(
    {
        RolloutStatus.SUCCEEDED,
        RolloutStatus.FAILED,
        RolloutStatus.CANCELLED,
        RolloutStatus.PLANNED,
        RolloutStatus.PAUSED,
    }
)
MAX_NOTIFIED_FAILURES = 50  # failed items named in one message (an SNS message holds at most 256 KB)
ENDED_ITEM = frozenset(
    {ItemStatus.PLANNED, ItemStatus.SUCCEEDED, ItemStatus.FAILED, ItemStatus.SKIPPED, ItemStatus.CANCELLED}
)


def _amount(value: int | str, of: int) -> int:
    if isinstance(value, int):
        return value
    return of * int(value.rstrip("%")) // 100


@dataclass(frozen=True)
class Strategy:
    canary: int = 0
    max_concurrent: int | str = 1
    failure_tolerance: int | str = 0
    region_order: tuple[str, ...] | None = None  # None: all regions at once

    def concurrency(self, wave_size: int) -> int:
        return max(1, min(wave_size, _amount(self.max_concurrent, wave_size)))

    def tolerance(self, total_items: int) -> int:
        return _amount(self.failure_tolerance, total_items)

    def public(self) -> dict[str, Any]:
        return {
            "canary": self.canary,
            "max_concurrent": self.max_concurrent,
            "failure_tolerance": self.failure_tolerance,
            "region_order": list(self.region_order) if self.region_order is not None else "parallel",
        }


@dataclass(frozen=True)
class Wave:
    index: int
    name: str  # "canary", a region, or "all"
    first: int  # item indexes [first, end)
    end: int

    @property
    def canary(self) -> bool:
        return self.name == "canary"

    def item_ids(self) -> list[int]:
        return list(range(self.first, self.end))

    def public(self) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "items": self.end - self.first}


@dataclass(frozen=True)
class ItemPlan:
    """One (target, region) before it is an item: what wave planning needs to know of it."""

    target_id: str
    account_id: str
    region: str


def plan_waves(items: list[ItemPlan], strategy: Strategy) -> tuple[list[ItemPlan], list[Wave]]:
    """Sort the items into waves; returns them in wave order (an item's index is its position)."""
    regions = list(strategy.region_order) if strategy.region_order is not None else None
    if regions is None:
        ordered = list(items)
    else:
        rank = {region: n for n, region in enumerate(regions)}
        ordered = sorted(items, key=lambda item: rank[item.region])  # stable: request order within
    waves: list[Wave] = []
    start = 0
    canary = min(strategy.canary, len(ordered))
    if canary and regions is not None:
        first_region = [i for i in ordered if i.region == ordered[0].region]
        canary = min(canary, len(first_region))
    if canary:
        waves.append(Wave(0, "canary", 0, canary))
        start = canary
    if regions is None:
        if start < len(ordered):
            waves.append(Wave(len(waves), "all", start, len(ordered)))
    else:
        for region in regions:
            end = start
            while end < len(ordered) and ordered[end].region == region:
                end += 1
            if end > start:
                waves.append(Wave(len(waves), region, start, end))
            start = end
    return ordered, waves


@dataclass(frozen=True)
class Rollout:
    tenant_id: str
    rollout_id: str
    stack_name: str
    mode: RolloutMode
    strategy: Strategy
    status: RolloutStatus
    waves: tuple[Wave, ...]
    item_count: int
    created_at: str
    updated_at: str
    next_wave: int = 0  # the first wave not started yet
    running_wave: int | None = None
    attempt: int = 1  # executions started: the first, then one per resume or apply
    failed: int = 0  # items FAILED so far (an atomic counter in the store)
    accepted_failures: int = 0  # failures a resume accepted; the tolerance counts those after them
    cancel_requested: bool = False
    pause_requested: bool = False  # POST /rollouts/{id}/pause: stop between waves, until resumed
    planned: bool = False  # a plan ran: items hold change sets that apply executes
    error: ErrorInfo | None = None
    notifications: Notifications | None = None  # told of each ANNOUNCED_ROLLOUT status

    @property
    def tolerance(self) -> int:
        return self.strategy.tolerance(self.item_count)

    def public(self) -> dict[str, Any]:
        """The rollout as ``GET /rollouts`` lists it: no items (``GET /rollouts/{id}`` has them)."""
        return {
            "rollout_id": self.rollout_id,
            "stack_name": self.stack_name,
            "mode": "plan" if self.mode is RolloutMode.PLAN else "apply",
            "status": self.status.value,
            "item_count": self.item_count,
            "failed": self.failed,
            "failure_tolerance": self.tolerance,
            "strategy": self.strategy.public(),
            "error": self.error.as_dict() if self.error else None,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    @property
    def over_tolerance(self) -> bool:
        return self.failed - self.accepted_failures > self.tolerance

    @property
    def execution_name(self) -> str:
        return f"{self.rollout_id}-{self.attempt}"

    @property
    def notice_key(self) -> str:
        """One per status change: an execution (``attempt``) reaches each status at most once."""
        return f"{self.attempt:05d}#{self.status.value}"


@dataclass(frozen=True)
class RolloutFilter:
    """Which of a tenant's rollouts ``GET /rollouts`` lists; None matches anything."""

    status: RolloutStatus | None = None
    stack_name: str | None = None
    target_id: str | None = None  # rollouts with at least one item on that target


@dataclass(frozen=True)
class ItemRef:
    """Which rollout item an operation was started for: its deployment execution carries it, so that
    the execution's last step can record the item's end (one Lambda step fewer per item).

    ``task_token``: the token of the StartItem task that started the operation and waits for its end.
    The item's record keeps it (written with the operation), and the execution's last step, whose
    write of the item's end answers with the item, releases that very task with it, so the wait needs
    no waiter record (two conditional writes fewer per item); if that task is gone (it timed out, or a
    retry replaced it), the last step announces the end to whichever wait registered instead. Not part
    of identity, never in the execution's input (``as_input``); ``from_input`` still reads the one an
    execution started by an earlier version carries.
    """

    rollout_id: str
    index: int
    task_token: str | None = field(default=None, compare=False, repr=False)

    def as_input(self) -> dict[str, Any]:
        """What the operation's execution input carries: the item's id, never ``task_token`` (the item's
        record holds it: ``RolloutItem.task_token``)."""
        return {"rollout_id": self.rollout_id, "item_id": self.index}

    @classmethod
    def from_input(cls, value: Any) -> ItemRef | None:
        if not isinstance(value, dict) or "rollout_id" not in value or "item_id" not in value:
            return None
        token = value.get("task_token")
        return cls(str(value["rollout_id"]), int(value["item_id"]), str(token) if token else None)


@dataclass(frozen=True)
class ItemEndNews:
    """What the last step of an item's operation learnt when it recorded the item's end: whether the
    item has ended, and the token of the StartItem task waiting for that end, which the item's record
    held (None: no task to release directly)."""

    ended: bool
    task_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class RolloutItem:
    rollout_id: str
    index: int
    target_id: str
    account_id: str
    region: str
    wave: int
    status: ItemStatus = ItemStatus.PENDING
    deployment_id: str | None = None
    operation_id: str | None = None
    error: dict[str, Any] | None = None
    changes: list[dict[str, Any]] | None = None
    updated_at: str = ""
    # When a start of the item began (written with its operation, or by an earlier version as a marker
    # before the start): a PENDING item that has it takes up the operation its stack's deployment began
    # since then, if any (chalicelib/service/rollouts/starts.py).
    start_attempted_at: str | None = None
    # The token of the StartItem task that started the item's operation and waits for its end, kept on
    # the item (written with its operation) rather than in that operation's execution input, which
    # Step Functions' status events, and a dead-letter queue, would copy. Never shown (``public``).
    task_token: str | None = field(default=None, repr=False)

    @property
    def ended(self) -> bool:
        return self.status in ENDED_ITEM

    def public(self) -> dict[str, Any]:
        return {
            "item_id": self.index,
            "target_id": self.target_id,
            "account_id": self.account_id,
            "region": self.region,
            "wave": self.wave,
            "deployment_id": self.deployment_id,
            "status": self.status.value,
            "error": self.error,
            "changes": self.changes,
        }


def item_error(item: RolloutItem, info: ErrorInfo, deployment_id: str | None) -> dict[str, Any]:
    """An item's failure: the deployment's code, message and hint, and where it happened."""
    return {
        "code": info.code,
        "message": f"{item.account_id}/{item.region}: {info.message}",
        "hint": info.hint,
        "account_id": item.account_id,
        "region": item.region,
        "target_id": item.target_id,
        "deployment_id": deployment_id,
    }


def _failed_item(item: RolloutItem) -> dict[str, Any]:
    error = item.error or {}
    return {
        "item_id": item.index,
        "target_id": item.target_id,
        "account_id": item.account_id,
        "region": item.region,
        "deployment_id": item.deployment_id,
        "error": {key: error.get(key) for key in ("code", "message", "hint")},
    }


@dataclass(frozen=True)
class ItemPage:
    """The items a response shows (a page, maybe filtered by status) and the token for the next page."""

    items: list[RolloutItem]
    next_token: str | None = None


def _items_pk(rollout_id: str) -> str:
    return f"ROLLOUT#{rollout_id}"


def item_cursor(rollout_id: str, next_token: str | None) -> int:
    """The index of the last item the token's page showed (-1: from the start); a 400 if it is not
    a token of this rollout's items. Checked before anything is read."""
    if not next_token:
        return -1
    sk = decode_token(next_token, _items_pk(rollout_id), "ITEM#")["sk"]
    number = re.fullmatch(r"ITEM#([0-9]{1,9})", sk)
    if number is None:
        raise InvalidRequest("next_token does not belong to this listing.", code="INVALID_NEXT_TOKEN")
    return int(number.group(1))


def page_items(
    rollout_id: str, items: list[RolloutItem], limit: int, after: int = -1, status: ItemStatus | None = None
) -> ItemPage:
    """Up to ``limit`` items in item order after index ``after``, of ``status`` if given.

    A rollout's counts and summary need every item, so the items are read whole and paged here; the
    token has the same form as every other listing's (chalicelib/domain/paging.py).
    """
    chosen = [
        item
        for item in sorted(items, key=lambda i: i.index)
        if item.index > after and (status is None or item.status is status)
    ]
    shown = chosen[:limit]
    if len(chosen) <= limit:
        return ItemPage(shown)
    return ItemPage(shown, encode_token({"pk": _items_pk(rollout_id), "sk": f"ITEM#{shown[-1].index:05d}"}))


@dataclass(frozen=True)
class RolloutView:
    rollout: Rollout
    items: list[RolloutItem] = field(default_factory=list)
    # What public() lists; None: every item. counts() and summary() always cover every item.
    page: ItemPage | None = None

    def counts(self) -> dict[str, int]:
        found = Counter(item.status.value for item in self.items)
        return {status.value: found.get(status.value, 0) for status in ItemStatus}

    def summary(self) -> str:
        items, accounts = len(self.items), len({i.account_id for i in self.items})
        where = f"{items} items in {accounts} accounts"
        planned = [i for i in self.items if i.status is ItemStatus.PLANNED]
        if self.rollout.status is RolloutStatus.PLANNED or (planned and len(planned) == items):
            replacing = sum(1 for i in planned if any(c.get("replacement") for c in i.changes or []))
            iam = sum(1 for i in planned if any(c.get("iam") for c in i.changes or []))
            noop = sum(1 for i in planned if not i.changes)
            failed = sum(1 for i in self.items if i.status is ItemStatus.FAILED)
            parts = [
                f"{replacing} with replacements",
                f"{iam} with IAM changes",
                f"{len(planned) - noop} with changes",
                f"{noop} no-ops",
            ]
            if failed:
                parts.append(f"{failed} failed to plan")
            return f"{where}: " + ", ".join(parts)
        counts = {k: v for k, v in self.counts().items() if v}
        text = f"{where}: " + ", ".join(f"{n} {status.lower()}" for status, n in counts.items())
        failures = [i for i in self.items if i.status is ItemStatus.FAILED and i.error]
        if failures:
            text += "; failed: " + "; ".join(str(i.error["message"]) for i in failures[:5] if i.error)
            if len(failures) > 5:
                text += f"; and {len(failures) - 5} more"
        return text

    def _overview(self) -> dict[str, Any]:
        """What both the API's Rollout and a rollout's notification say about it."""
        rollout = self.rollout
        return {
            "rollout_id": rollout.rollout_id,
            "stack_name": rollout.stack_name,
            "mode": "plan" if rollout.mode is RolloutMode.PLAN else "apply",
            "status": rollout.status.value,
            "counts": self.counts(),
            "summary": self.summary(),
            "failure_tolerance": rollout.tolerance,
            "error": rollout.error.as_dict() if rollout.error else None,
            "created_at": rollout.created_at,
            "updated_at": rollout.updated_at,
        }

    def public(self) -> dict[str, Any]:
        rollout = self.rollout
        return {
            **self._overview(),
            "strategy": rollout.strategy.public(),
            "waves": [{**w.public(), "status": self._wave_status(w)} for w in rollout.waves],
            "notifications": rollout.notifications.public() if rollout.notifications else None,
            "items": [item.public() for item in (self.page.items if self.page else self.items)],
            "next_token": self.page.next_token if self.page else None,
        }

    def outcome_message(self) -> dict[str, Any]:
        """The JSON a rollout's notification carries: what ended and which items failed, and where.

        Nothing from the spec (template, parameters, tags) and no notification settings: only ids,
        statuses, counts, the summary and each failed item's target, account, region and error.
        """
        rollout = self.rollout
        failed = [item for item in self.items if item.status is ItemStatus.FAILED]
        return {
            "type": f"rollout.{rollout.status.value.lower()}",
            "sent_at": utc_now(),
            "rollout": {
                **self._overview(),
                "attempt": rollout.attempt,
                "failed_items": [_failed_item(item) for item in failed[:MAX_NOTIFIED_FAILURES]],
                "failed_items_not_listed": max(0, len(failed) - MAX_NOTIFIED_FAILURES),
            },
        }

    def _wave_status(self, wave: Wave) -> str:
        statuses = {item.status for item in self.items if item.wave == wave.index}
        if not statuses or statuses == {ItemStatus.PENDING}:
            return "PENDING"
        if statuses & {ItemStatus.PENDING, ItemStatus.IN_PROGRESS}:
            return "IN_PROGRESS"
        return "FAILED" if ItemStatus.FAILED in statuses else "ENDED"


@dataclass(frozen=True)
class RolloutSpec:
    """What every item deploys; stored once beside the rollout, never in the execution's state."""

    stack_name: str
    template_body: str
    parameters: dict[str, str]
    tags: dict[str, str]
