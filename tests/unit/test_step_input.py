"""What the deployment workflow's steps read from their input (``StepInput.from_event``)."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.service.completion import may_be_in_flight
from chalicelib.service.workflow import StepInput
from chalicelib.service.workflow.values import wait_timed_out

BASE: dict[str, Any] = {"tenant_id": "t", "deployment_id": "dep-1", "operation_id": "op-1"}


def test_only_an_input_that_says_so_skips_the_end_announcement() -> None:
    assert StepInput.from_event({**BASE, "announce_end": False}).announce_end is False
    assert StepInput.from_event({**BASE, "announce_end": True}).announce_end is True
    # Executions started before the flag existed may have a rollout item waiting: they announce.
    assert StepInput.from_event(BASE).announce_end is True


def test_a_timed_out_event_wait_is_seen_by_the_step_after_it() -> None:
    released = {"released": {"Error": "States.Timeout", "Cause": "no event"}}
    assert StepInput.from_event({**BASE, **released}).timed_out is True
    assert StepInput.from_event({**BASE, "released": {"released_by": "event"}}).timed_out is False


def test_only_the_poll_right_after_an_event_wait_that_timed_out_is_a_timed_out_wait() -> None:
    timeout = {"Error": "States.Timeout", "Cause": "..."}
    assert wait_timed_out({"released": timeout, "progress": {"completion": "events"}})
    assert wait_timed_out({"released": timeout})  # the first PollItem, after StartItem's token wait
    # The timed wait's polls after it: the error stays in the state, the wait was no event wait.
    assert not wait_timed_out({"released": timeout, "progress": {"completion": "poll"}})
    assert not wait_timed_out({"released": {"released": "event"}, "progress": {"completion": "events"}})
    assert not wait_timed_out({"progress": {"completion": "events"}})
    assert not wait_timed_out(
        {"released": {"Error": "States.TaskFailed"}, "progress": {"completion": "events"}}
    )


@pytest.mark.parametrize(
    ("ended_seconds_ago", "wait_seconds", "in_flight"),
    [
        (59.0, 600, True),  # AWS's wait: an end under a minute old may still have its event on the way
        (61.0, 600, False),  # past a minute, however long the wait, the event was lost
        (1.9, 4, True),  # a test's short wait: half of it
        (2.1, 4, False),
        (0.0, 1, True),
    ],
)
def test_an_end_is_too_recent_to_call_its_event_lost_within_half_the_wait_at_most_a_minute(
    ended_seconds_ago: float, wait_seconds: int, in_flight: bool
) -> None:
    assert may_be_in_flight(ended_seconds_ago, wait_seconds) is in_flight
