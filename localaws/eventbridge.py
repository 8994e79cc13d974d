"""EventBridge in the local AWS: CloudFormation's "Stack Status Change" events, and Lambda targets.

Why this exists: on AWS, CloudFormation puts a "CloudFormation Stack Status Change" event on the
stack account's default bus at every stack status change, and EventBridge invokes Lambda targets
asynchronously. moto 5.2.5 does neither: its CloudFormation emits no events, and its
``Rule.send_to_targets`` raises NotImplementedError for a Lambda target. The deployer's event-driven
completion depends on both (a rule in the target account forwards the event to the central bus,
whose rule invokes the ``StackStatusChanged`` function), so this module adds them:

* :func:`stack_status_changed` schedules the event for the moment the simulated stack reaches that
  status (``localaws/cloudformation.py`` calls it for every stack-level status of its timeline) and
  puts it on the stack account's default bus then, unless the status was taken back meanwhile
  (CancelUpdateStack truncates a timeline). moto's own rules and targets route it from there, across
  accounts through an event-bus target as on AWS;
* a Lambda target is invoked asynchronously, as EventBridge does: on the delivery thread, after the
  PutEvents that matched it has returned, with Lambda's retries and dead-letter queue
  (``localaws/async_invoke.py``), through moto's Lambda backend (so the function must exist, and runs
  the project's handler in-process, see ``localaws/lambda_runner.py``).

One daemon thread delivers everything in time order, Lambda's retries included (:func:`deliver`).
Deliveries never raise into moto: a failure to deliver is logged. :func:`reset` drops what is pending
when a ``LocalAws`` stops, so no event reaches the next one.
"""

from __future__ import annotations

import heapq
import inspect
import itertools
import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from localaws import concurrency, faults
from localaws.patching import MotoInternalsChanged

logger = logging.getLogger(__name__)

STACK_STATUS_DETAIL_TYPE = "CloudFormation Stack Status Change"

_original_send: Callable[..., Any] | None = None


class _Delivery:
    """A time-ordered queue of deliveries, run one at a time on a daemon thread."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, Callable[[], None]]] = []
        self._condition = threading.Condition()
        self._sequence = itertools.count()
        self._generation = 0
        self._thread: threading.Thread | None = None

    def submit(self, at: datetime | None, action: Callable[[], None]) -> None:
        due = (at or datetime.now(UTC)).timestamp()
        with self._condition:
            heapq.heappush(self._heap, (due, next(self._sequence), self._generation, action))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="localaws-eventbridge", daemon=True)
                self._thread.start()
            self._condition.notify()

    def reset(self) -> None:
        with self._condition:
            self._heap.clear()
            self._generation += 1

    def idle(self) -> bool:
        """Nothing due now or earlier is waiting (later deliveries may be scheduled)."""
        now = datetime.now(UTC).timestamp()
        with self._condition:
            return not self._heap or self._heap[0][0] > now

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._heap or self._heap[0][0] > datetime.now(UTC).timestamp():
                    timeout = self._heap[0][0] - datetime.now(UTC).timestamp() if self._heap else None
                    self._condition.wait(timeout)
                _due, _n, generation, action = heapq.heappop(self._heap)
                if generation != self._generation:
                    continue
            try:
                action()
            except Exception:
                logger.exception("local EventBridge delivery failed")


_DELIVERY = _Delivery()


def reset() -> None:
    _DELIVERY.reset()


def deliver(action: Callable[[], None], delay: float = 0.0) -> None:
    """Run ``action`` on the delivery thread, ``delay`` seconds from now (soon by default): an
    asynchronous invocation, as AWS makes them (SNS's of its Lambda subscribers too, and Lambda's
    retries of them, ``localaws/async_invoke.py``), never inside the caller's moto request and its lock."""
    _DELIVERY.submit(datetime.now(UTC) + timedelta(seconds=delay) if delay > 0 else None, action)


def idle() -> bool:
    return _DELIVERY.idle()


def stack_status_changed(
    stack: Any,
    at: datetime,
    status: str,
    reason: str | None,
    client_request_token: str | None,
    still_current: Callable[[], bool],
) -> None:
    """Put CloudFormation's event for ``stack`` reaching ``status`` on its account's default bus at ``at``."""
    entry = {
        "Source": "aws.cloudformation",
        "DetailType": STACK_STATUS_DETAIL_TYPE,
        "Resources": [stack.stack_id],
        "Detail": json.dumps(
            {
                "stack-id": stack.stack_id,
                "status-details": {"status": status, "status-reason": reason or ""},
                "client-request-token": client_request_token or "",
            }
        ),
    }
    account_id, region = stack.account_id, stack.region_name

    def put() -> None:
        if not still_current() or faults.drop_stack_event(
            status, stack.name
        ):  # NEXUS_LOCAL_FAULTS drop_stack_events
            return
        from moto.events.models import events_backends

        with concurrency.lock():
            events_backends[account_id][region].put_events([entry])

    _DELIVERY.submit(at, put)


def check_moto_internals() -> None:
    from moto.events.models import Rule

    method = _original_send or getattr(Rule, "send_to_targets", None)
    if method is None or list(inspect.signature(method).parameters)[:3] != [
        "self",
        "original_event",
        "transform_input",
    ]:
        raise MotoInternalsChanged(
            "moto.events.models.Rule.send_to_targets changed; update localaws.eventbridge"
        )


def _is_lambda(target: dict[str, Any]) -> bool:
    return str(target.get("Arn", "")).split(":")[2:3] == ["lambda"]


def install() -> None:
    global _original_send
    if _original_send is not None:
        return
    check_moto_internals()
    from moto.events.models import Rule

    original: Any = Rule.send_to_targets
    _original_send = original

    def send_to_targets(self: Any, original_event: dict[str, Any], transform_input: bool = True) -> None:
        if not self.event_pattern.get_pattern():
            # A schedule rule has no pattern, and on AWS no event put on the bus reaches it; moto's
            # empty pattern matches every event (the drift check ran on each stack event).
            return
        functions = [t for t in self.targets if _is_lambda(t)]
        if not functions:
            original(self, original_event, transform_input)
            return
        if self.event_pattern.matches_event(original_event):
            from localaws import async_invoke

            for target in functions:
                async_invoke.invoke(str(target["Arn"]), json.dumps(original_event))
        others = [t for t in self.targets if not _is_lambda(t)]
        if not others:
            return
        saved, self.targets = self.targets, others  # moto's own targets, as moto delivers them
        try:
            original(self, original_event, transform_input)
        finally:
            self.targets = saved

    setattr(Rule, "send_to_targets", send_to_targets)  # noqa: B010 - a deliberate monkeypatch
