"""tests/support/polling.until: returns the first truthy value (or the first ``ready`` one), and fails
after its timeout naming what it waited for and the last value it saw."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from tests.support.polling import until


def test_returns_the_first_truthy_value_once_it_comes() -> None:
    values: Iterator[object] = iter([None, 0, [], {"status": "SUCCEEDED"}, {"status": "later"}])
    assert until(lambda: next(values), interval=0.001) == {"status": "SUCCEEDED"}
    assert next(values) == {"status": "later"}  # asked no more than needed


def test_with_ready_returns_the_value_that_is_ready() -> None:
    statuses = iter(["RUNNING", "RUNNING", "SUCCEEDED", "RUNNING"])
    assert until(lambda: next(statuses), ready=lambda s: s != "RUNNING", interval=0.001) == "SUCCEEDED"


def test_fails_after_the_timeout_naming_what_the_timeout_and_the_last_value() -> None:
    calls: list[float] = []

    def check() -> str | None:
        calls.append(time.monotonic())
        return None

    started = time.monotonic()
    with pytest.raises(
        AssertionError, match=re.escape("timed out after 0.1 s waiting for the queue; last seen: None")
    ):
        until(check, timeout=0.1, interval=0.01, what="the queue")
    assert time.monotonic() - started >= 0.1
    assert len(calls) >= 2  # asked again between the start and the timeout


def test_a_timeout_shows_the_last_value_given_to_ready() -> None:
    with pytest.raises(AssertionError, match=re.escape("waiting for execution to end; last seen: 'RUNNING'")):
        until(
            lambda: "RUNNING",
            ready=lambda s: s != "RUNNING",
            timeout=0.05,
            interval=0.01,
            what="execution to end",
        )
