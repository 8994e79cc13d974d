"""Completion without polling: stack events release the workflow's waiting task.

With ``NEXUS_COMPLETION_MODE=events`` the deployment workflow waits for a running stack operation in
its ``WaitForStackEvent`` state, a ``.waitForTaskToken`` task whose Lambda registers the task token
(``WorkflowService.await_stack_event``). This service is the other side:

* a CloudFormation "Stack Status Change" event, forwarded from the target account's default bus to
  the central one by the rule in the bootstrap template, releases the task waiting for that stack;
* a cancel request wakes the waiting task, so that the reconcile carries the cancel out at once.

An event never decides an operation's outcome. Releasing the task only leads to ``PollStack``,
which reads the stack's real status (one DescribeStacks) and its new events, exactly as a poll does;
if the stack is still busy, the workflow waits again. So an event that is forged, duplicated, late,
out of order or from an earlier operation costs at most one early reconcile, and a lost event is
covered by the wait's timeout, after which the same reconcile runs. Events of stacks that are not
ours (no ``nexus-`` ClientRequestToken) and events of statuses still in progress are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.model import REQUEST_TOKEN_PREFIX, Deployment
from chalicelib.service.deployments import lock_key
from chalicelib.service.ports import CompletionWaiters, StackStatusEvent, TaskCallbacks

STACK_ARN = re.compile(
    r"^arn:aws[a-z-]*:cloudformation:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):stack/"
    r"(?P<name>[A-Za-z][-A-Za-z0-9]{0,127})/[-a-f0-9]+$"
)


@dataclass(frozen=True)
class StackRef:
    account_id: str
    region: str
    stack_name: str

    @classmethod
    def from_stack_id(cls, stack_id: str) -> StackRef | None:
        match = STACK_ARN.match(stack_id)
        if match is None:
            return None
        return cls(match["account"], match["region"], match["name"])

    @property
    def key(self) -> str:
        return lock_key(self.account_id, self.region, self.stack_name)


class CompletionService:
    def __init__(self, waiters: CompletionWaiters, callbacks: TaskCallbacks) -> None:
        self._waiters = waiters
        self._callbacks = callbacks

    def stack_status_changed(self, stack: StackRef, event: StackStatusEvent) -> str:
        """What the event did: ``released``, ``recorded`` (no waiter yet), or why it was ignored."""
        if event.status.endswith("_IN_PROGRESS"):
            return "in-progress"
        if not event.client_request_token.startswith(REQUEST_TOKEN_PREFIX):
            return "not-ours"
        task_token = self._waiters.signal(stack.key, event)
        if task_token is None:
            return "recorded"
        released = self._callbacks.release(task_token, released_by("event", event.status))
        return "released" if released else "already-released"

    def wake(self, deployment: Deployment, reason: str) -> bool:
        """Release ``deployment``'s waiting task (if it waits) so that its workflow reconciles now."""
        key = lock_key(deployment.account_id, deployment.region, deployment.stack_name)
        task_token = self._waiters.wake(key, deployment.operation.operation_id)
        return task_token is not None and self._callbacks.release(task_token, released_by(reason, ""))


def released_by(reason: str, status: str) -> dict[str, Any]:
    """The waiting task's output (kept in the execution's history: no ids beyond the status)."""
    return {"released_by": reason, "status": status}
