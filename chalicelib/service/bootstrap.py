"""Deploying the bootstrap template with someone's own credentials: one stack, created or updated, watched.

Create the stack, or update it when it exists ("No updates are to be performed." is success), then
read its status and this operation's new events until it settles or the time runs out. Statuses come
from ``chalicelib.domain.stack_status`` so a failed or rolled-back stack is never taken for success; a
failure names the first resource that failed and its reason. ``nexus targets bootstrap`` (from the
operator's machine) and ``POST /targets/{id}/bootstrap`` (the console's access keys or ADFS session,
in the service) both run this loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.domain.bootstrap import BOOTSTRAP_STACK
from chalicelib.domain.errors import StackOperationError
from chalicelib.domain.stack_status import StackPhase, phase_of
from chalicelib.service.onboarding_ports import BootstrapStacks
from chalicelib.service.ports import StackEventInfo

POLL_SECONDS = 2.0


__all__ = ["BOOTSTRAP_STACK", "BootstrapFailed", "StackOutcome", "deploy_stack"]


class BootstrapFailed(StackOperationError):
    pass


@dataclass(frozen=True)
class StackOutcome:
    stack_name: str
    region: str
    status: str
    settled: bool  # False: still in progress when the wait ended
    changed: bool = True
    failed_resource: str | None = None
    reason: str | None = None

    def public(self) -> dict[str, object]:
        return {
            "stack_name": self.stack_name,
            "region": self.region,
            "status": self.status,
            "settled": self.settled,
            "changed": self.changed,
            "failed_resource": self.failed_resource,
            "reason": self.reason,
        }


def _first_failure(events: list[StackEventInfo]) -> StackEventInfo | None:
    return next((e for e in events if e.status.endswith("_FAILED") and e.reason), None)


def deploy_stack(
    stacks: BootstrapStacks,
    stack_name: str,
    template_body: str,
    *,
    region: str,
    parameters: dict[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
    timeout: float = 900.0,
    poll_seconds: float = POLL_SECONDS,
    raise_on_timeout: bool = True,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> StackOutcome:
    """Create or update ``stack_name``; its outcome, or BootstrapFailed when it ends failed."""
    given = dict(parameters or {})
    existing = stacks.find(stack_name)
    seen = {e.event_id for e in stacks.events(stack_name)} if existing else set()
    if existing:
        if not stacks.update(stack_name, template_body, given):
            if progress:
                progress(f"{stack_name}: no changes")
            return StackOutcome(stack_name, region, existing.status, settled=True, changed=False)
    else:
        stacks.create(stack_name, template_body, given)
    deadline = clock() + timeout
    fresh: list[StackEventInfo] = []
    while True:
        for event in stacks.events(stack_name):
            if event.event_id not in seen:
                seen.add(event.event_id)
                fresh.append(event)
                if progress:
                    reason = f" {event.reason}" if event.reason else ""
                    progress(f"  {event.logical_id} {event.status}{reason}")
        stack = stacks.describe(stack_name)
        phase = phase_of(stack.status)
        if phase is StackPhase.SUCCEEDED:
            return StackOutcome(stack_name, region, stack.status, settled=True)
        if phase is not StackPhase.IN_PROGRESS:
            failure = _first_failure(fresh)
            raise BootstrapFailed(
                f"stack {stack_name} ended {stack.status}: "
                + (f"{failure.logical_id}: {failure.reason}" if failure else stack.status_reason or ""),
                code="STACK_OPERATION_FAILED",
                hint="Fix what the failing resource's reason says (often a missing IAM permission of the "
                "credentials used), then bootstrap again: the stack is updated in place.",
                details={
                    "stack_name": stack_name,
                    "region": region,
                    "status": stack.status,
                    "failed_resource": failure.logical_id if failure else None,
                    "reason": failure.reason if failure else stack.status_reason,
                },
            )
        if clock() > deadline:
            if raise_on_timeout:
                raise BootstrapFailed(
                    f"stack {stack_name} still {stack.status} after {timeout:.0f} s", code="TIMEOUT"
                )
            return StackOutcome(stack_name, region, stack.status, settled=False)
        sleep(poll_seconds)
