"""What the deployment workflow's steps read from their input (``StepInput.from_event``)."""

from __future__ import annotations

from typing import Any

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
