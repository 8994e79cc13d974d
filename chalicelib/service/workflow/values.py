"""The values the steps work with: what a step reads from the execution's state (``StepInput``: ids
and settings, never a credential or a template) and the service's own settings (``WorkflowSettings``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.rollouts import ItemRef


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

    @property
    def next_wait_seconds(self) -> int:
        """The next poll's interval: this one's x1.5, capped at ``max_wait_seconds``."""
        return min(self.max_wait_seconds, math.ceil(self.wait_seconds * 1.5))

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
            timed_out=wait_timed_out(event),
            announce_end=event.get("announce_end") is not False,
            rollout_item=ItemRef.from_input(event.get("rollout_item")),
        )


def catch_may_resume(event: dict[str, Any]) -> bool:
    """Whether the execution's definition lets its catch-all (RecordFailure, RecordItemFailure) send it back
    to waiting: the definitions that can mark it (``$.resumable``, set by the Pass state before the
    catch-all: MayResume, MayGoOnWaiting). An execution an earlier definition started does not, and its
    catch-all is followed by its end whatever it answers, so its failure is always recorded. Every
    version reads the error from ``$.error``."""
    return event.get("resumable") is True


def wait_timed_out(event: dict[str, Any]) -> bool:
    """Whether this poll follows a wait for an event (a stack's, an item's end) that timed out.

    The wait's Catch leaves its error in ``$.released``, and nothing clears it, so the polls of a plain
    timed wait that come after it still carry it: only the poll right after the event wait counts, the
    one whose ``progress`` (what the step before the wait answered) sent it to wait for events. With no
    ``progress`` yet (the first PollItem, after StartItem's token wait), the wait was for an event."""
    if (event.get("released") or {}).get("Error") != "States.Timeout":
        return False
    progress = event.get("progress")
    return not isinstance(progress, dict) or progress.get("completion") == "events"


@dataclass(frozen=True)
class WorkflowSettings:
    lock_lease_seconds: int = 900
    operation_timeout_seconds: int = 6 * 3600
    # After a wait that no stack event released although the operation had ended, operations in that
    # account and region poll for this long (see ``_completion_for``).
    events_lost_seconds: int = 3600
