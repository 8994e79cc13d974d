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

Rollout items wait the same way, one level up, and the deployment workflow's last step announces that
the operation ended (``operation_ended``). The item's record holds the token of the StartItem task that
started the operation, and the announcement releases that task directly, with no waiter record. Any
other wait for an operation (a later WaitForItemEnd, or a StartItem that took up an operation an
earlier run started) parks its token on a record (``await_operation``, key ``OPERATION#<operation
id>``), which the announcement releases when the direct release finds its task closed. A lost
announcement is covered by the item wait's timeout (then ``PollItem`` reads the deployment record), as
a lost stack event is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.model import REQUEST_TOKEN_PREFIX, Deployment, stack_key
from chalicelib.domain.rollouts import ItemRef
from chalicelib.observability import bind, restored_keys
from chalicelib.service.ports import CompletionWaiters, StackStatusEvent, TaskCallbacks

STACK_ARN = re.compile(
    r"arn:aws[a-z-]*:cloudformation:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):stack/"
    r"(?P<name>[A-Za-z][-A-Za-z0-9]{0,127})/[-a-f0-9]+"
)


# How long after an end its event (a stack's final one, an item's release) may still be on its way
# (EventBridge, a forwarding rule, a Lambda invoked or retried): at most this, and at most half the wait.
DELIVERY_GRACE_SECONDS = 60


def may_be_in_flight(ended_seconds_ago: float, wait_seconds: int) -> bool:
    """Whether an end found by the reconcile after a wait that timed out is too recent to call its event
    lost: the event may have been on its way as the wait ran out. Past half the wait (tests' short
    waits) or a minute (AWS's 600 s one), it was lost."""
    return ended_seconds_ago < min(wait_seconds / 2, DELIVERY_GRACE_SECONDS)


@dataclass(frozen=True)
class StackRef:
    account_id: str
    region: str
    stack_name: str

    @classmethod
    def from_stack_id(cls, stack_id: str) -> StackRef | None:
        match = STACK_ARN.fullmatch(stack_id)
        if match is None:
            return None
        return cls(match["account"], match["region"], match["name"])

    @property
    def key(self) -> str:
        return stack_key(self.account_id, self.region, self.stack_name)


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
        return self._signal(stack.key, event, released_by("event", event.status))

    def _signal(self, key: str, event: StackStatusEvent, output: dict[str, Any]) -> str:
        """Release the waiter of ``key`` that ``event`` is for (``released``), or keep the event for it
        (``recorded``). A taken token whose task had closed (its wait timed out, or a retry of its step
        parked a new token: Step Functions gives each attempt its own, maybe not yet) does not spend the
        event: it goes to that new waiter, or is kept for it (the new wait would run out its timeout)."""
        task_token = self._signalled(key, event)
        if task_token is None:
            return "recorded"
        if self._release_taken(key, task_token, output):
            return "released"
        again = self._signalled(key, event)
        if again is None:
            return "recorded"
        return "released" if self._release_taken(key, again, output) else "already-released"

    def _signalled(self, key: str, event: StackStatusEvent) -> str | None:
        """``signal``'s task token; from here on this invocation logs as the operation the event is for,
        when the waiter's record keeps its keys (a stack's waiter: ``await_stack``)."""
        signalled = self._waiters.signal(key, event)
        bind(**restored_keys(signalled.log_keys))
        return signalled.task_token

    def await_stack(
        self,
        key: str,
        operation_id: str,
        task_token: str,
        tokens: tuple[str, ...],
        log_keys: Mapping[str, str] | None = None,
    ) -> bool:
        """WaitForStackEvent: park ``task_token`` on the stack ``key`` until an event of one of ``tokens``
        (the operation's ClientRequestTokens) comes; False when one came first (released now).
        ``log_keys``: the operation's ids and correlation id, which the events' lines then carry."""
        return self._park(key, operation_id, task_token, tokens, "recorded-event", log_keys)

    def _park(
        self,
        key: str,
        operation_id: str,
        task_token: str,
        tokens: tuple[str, ...],
        reason: str,
        log_keys: Mapping[str, str] | None = None,
    ) -> bool:
        """Park ``task_token`` at ``key``; if the news it waits for was recorded first, release it now
        (output ``released_by(reason, status)``) and answer False."""
        recorded = self._waiters.wait(key, operation_id, task_token, tokens, log_keys)
        if recorded is None:
            return True
        # If the release fails, the step's retry registers again: it is to find the news this run used up.
        with _giving_back(lambda: self._waiters.restore_event(key, recorded, tokens)):
            self._callbacks.release(task_token, released_by(reason, recorded.status))
        return False

    def events_lost(self, account_id: str, region: str) -> bool:
        """Whether a recent operation in this account and region waited in vain for its stack events."""
        return self._waiters.events_lost(account_id, region)

    def mark_events_lost(self, account_id: str, region: str, seconds: int) -> None:
        self._waiters.mark_events_lost(account_id, region, seconds)

    def wake(self, deployment: Deployment, reason: str) -> bool:
        """Release ``deployment``'s waiting task (if it waits) so that its workflow reconciles now."""
        key = deployment.stack_key
        task_token = self._waiters.wake(key, deployment.operation.operation_id)
        return task_token is not None and self._release_taken(key, task_token, released_by(reason, ""))

    # -- rollout items: released when the operation they started has ended -----------------------

    def await_operation(self, operation_id: str, task_token: str, item: ItemRef | None = None) -> bool:
        """Park ``task_token`` (of rollout ``item``'s iteration) until ``operation_id`` ends; False when it
        already had (released now). The wait is released by the operation's end, or only by the end
        that names this very item (``operation_ended(..., ended_item=item)``)."""
        tokens = (operation_id,) if item is None else (operation_id, _item_token(operation_id, item))
        return self._park(_operation_key(operation_id), operation_id, task_token, tokens, "operation-ended")

    def operation_ended(
        self,
        operation_id: str,
        status: str,
        ended_item: ItemRef | None = None,
        started_by: str | None = None,
    ) -> bool:
        """Release the task waiting for ``operation_id`` (or keep the news for a waiter still to come).
        ``ended_item``: the rollout item the operation ran for, whose end was recorded: only that item's
        wait is released, saying so (``item_ended``), and its iteration is then done. (Another item that
        took up the same operation is not released by it: its wait's timeout reconciles it.)
        ``started_by``: the token of the task that started the operation and waits for it, released
        directly; only when that task is gone does the news go to the waiter record."""
        output = released_by("operation-ended", status, ended_item is not None)
        if started_by is not None and self._callbacks.release(started_by, output):
            return True
        token = operation_id if ended_item is None else _item_token(operation_id, ended_item)
        return (
            self._signal(_operation_key(operation_id), StackStatusEvent(token, status), output) == "released"
        )

    def release(self, task_token: str, reason: str, item_ended: bool = False) -> bool:
        """Release a task that has nothing to wait for (``item_ended``: its rollout item has ended)."""
        return self._callbacks.release(task_token, released_by(reason, "", item_ended))

    def stop_waiting(self, operation_id: str, reason: str) -> bool:
        """Release the task waiting for ``operation_id`` now, if it waits (its waiter found it ended)."""
        key = _operation_key(operation_id)
        task_token = self._waiters.wake(key, operation_id)
        return task_token is not None and self._release_taken(key, task_token, released_by(reason, ""))

    def _release_taken(self, key: str, task_token: str, output: dict[str, Any]) -> bool:
        """Release the task whose token was just taken from the waiter record ``key``. When the release
        fails (SendTaskSuccess throttled past the client's retries, say), the token goes back on the
        record before the error is raised: the event's or step's retry then takes it again, where
        otherwise the task would wait out its timeout (10 minutes by default) for a release that
        happened to fail once. A task that has gone (False) needs nothing put back."""
        with _giving_back(lambda: self._waiters.restore(key, task_token)):
            return self._callbacks.release(task_token, output)


@contextmanager
def _giving_back(give_back: Callable[[], object]) -> Iterator[None]:
    """Run a release; if it fails, ``give_back`` what was taken for it, then let the error go on."""
    try:
        yield
    except Exception:
        give_back()
        raise


def _operation_key(operation_id: str) -> str:
    return f"OPERATION#{operation_id}"


def _item_token(operation_id: str, item: ItemRef) -> str:
    return f"{operation_id}#{item.rollout_id}#{item.index}"


def released_by(reason: str, status: str, item_ended: bool = False) -> dict[str, Any]:
    """The waiting task's output (kept in the execution's history: no ids beyond the status).
    ``item_ended``: the rollout item waiting was ended by the releaser (the rollout's WasItemEnded)."""
    return {"released_by": reason, "status": status, "item_ended": item_ended}
