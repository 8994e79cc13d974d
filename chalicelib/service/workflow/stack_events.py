"""The stack's events: the new ones recorded on the deployment as the operation goes, and what they
tell when it fails (the resources that block a delete or a rollback, why a create or update failed).
"""

from __future__ import annotations

from typing import Any

from chalicelib.domain.model import Deployment, DeploymentEvent, EventSource
from chalicelib.domain.stack_status import StackPhase, is_failure_event, phase_of
from chalicelib.service.ports import StackEventInfo, StackGateway
from chalicelib.service.workflow.core import WorkflowCore

STACK_TYPE = "AWS::CloudFormation::Stack"


def is_stack_level(event: StackEventInfo, stack_name: str) -> bool:
    """The event is the stack's own status change, not one of its resources'."""
    return event.resource_type == STACK_TYPE and event.logical_id == stack_name


def stack_ended_at(events: list[StackEventInfo], stack_name: str) -> str | None:
    """When the stack reached the last of its statuses no longer in progress among ``events`` (oldest
    first), by its stack-level event; None if none of them ended it."""
    for event in reversed(events):
        if is_stack_level(event, stack_name) and phase_of(event.status) is not StackPhase.IN_PROGRESS:
            return event.timestamp
    return None


class StackEvents(WorkflowCore):
    def _record_new_events(
        self, deployment: Deployment, stacks: StackGateway, stack_ref: str
    ) -> list[StackEventInfo]:
        operation = deployment.operation
        events = stacks.new_events(
            stack_ref, operation.client_request_token, operation.last_event_id, operation.started_at
        )
        if events:
            self._store.append_events(
                deployment.deployment_id,
                [
                    DeploymentEvent(
                        e.timestamp,
                        EventSource.STACK,
                        e.status,
                        e.logical_id,
                        e.reason or f"{e.resource_type} {e.status}",
                    )
                    for e in events
                ],
            )
        return events


def stack_blockers(deployment: Deployment, stacks: StackGateway, stack_ref: str) -> dict[str, str]:
    """Resources that failed in the last phase of this operation (its delete, or its rollback).

    Reads this operation's events again (they stop at the first event of an earlier operation), so
    resources that failed in an earlier poll of the same operation are named too; failures before
    the last stack-level phase (the resource that made an update fail) are not what blocks now.
    """
    operation = deployment.operation
    events = stacks.new_events(stack_ref, operation.client_request_token, None, operation.started_at)
    latest: dict[str, StackEventInfo] = {}
    for event in events:
        stack_level = is_stack_level(event, deployment.stack_name)
        if stack_level and event.status.endswith("_IN_PROGRESS") and "CLEANUP" not in event.status:
            latest.clear()  # a new phase begins (DELETE_IN_PROGRESS, UPDATE_ROLLBACK_IN_PROGRESS)
        elif not stack_level and event.logical_id:
            latest[event.logical_id] = event
    return {
        name: event.reason or event.status for name, event in latest.items() if is_failure_event(event.status)
    }


def describe_blockers(blockers: dict[str, str]) -> str:
    if not blockers:
        return "no resource named by CloudFormation"
    return "; ".join(f"{name} ({reason})" for name, reason in blockers.items())


def failure_reason(events: list[Any], stack_reason: str | None) -> str:
    for event in events:
        if is_failure_event(event.status) and event.reason and event.logical_id:
            return f"resource {event.logical_id} ({event.resource_type}) failed: {event.reason}"
    return stack_reason or "no reason given by CloudFormation"
