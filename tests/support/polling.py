"""The tests' one poller: what the code under test does on another thread (a Step Functions execution, an
EventBridge delivery, a Lambda invoked asynchronously) is waited for by asking again until it holds.

A wait that times out fails the test with what it waited for and the last value it saw, so a slow or
stuck run reads as such instead of as a later, puzzling assertion.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


@overload
def until(
    check: Callable[[], T | None],
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
    max_interval: float | None = None,
    what: str = "condition",
) -> T: ...


@overload
def until(
    check: Callable[[], T],
    *,
    ready: Callable[[T], bool],
    timeout: float = 10.0,
    interval: float = 0.05,
    max_interval: float | None = None,
    what: str = "condition",
) -> T: ...


def until(
    check: Callable[[], Any],
    *,
    ready: Callable[[Any], bool] | None = None,
    timeout: float = 10.0,
    interval: float = 0.05,
    max_interval: float | None = None,
    what: str = "condition",
) -> Any:
    """Call ``check`` every ``interval`` seconds until its value is truthy (or, given ``ready``, until
    ``ready(value)`` holds) and return that value; after ``timeout`` seconds raise AssertionError naming
    ``what``, the timeout and the last value seen.

    ``ready`` keeps the value worth showing on a timeout (a deployment's body, an execution's status)
    apart from the condition on it.

    ``max_interval``: the wait between checks grows by half each time, from ``interval`` up to it. For a
    check that costs the process under test its CPU (a GET through the whole API, a DynamoDB query of a
    fleet's items) and a state that stays once reached (an operation ended): asked 50 times a second for
    the length of a rollout, such checks took about 9% of the suite's CPU (py-spy, --gil) from the code they
    wait for."""
    deadline = time.monotonic() + timeout
    delay = interval
    while True:
        value = check()
        if ready(value) if ready is not None else value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; last seen: {value!r}")
        time.sleep(delay)
        if max_interval is not None:
            delay = min(max_interval, delay * 1.5)
