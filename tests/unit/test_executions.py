"""StartExecution through throttles: up to START_ROUNDS rounds, none begun after START_BUDGET_SECONDS."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain.errors import TransientAwsError
from chalicelib.service.executions import (
    ITEM_START_BUDGET_SECONDS,
    START_BUDGET_SECONDS,
    START_ROUNDS,
    start_through_throttles,
)


class Throttled:
    """A starter throttled ``times`` times, each round taking ``seconds`` on the clock it advances."""

    def __init__(self, times: int, seconds: float, clock: list[float]) -> None:
        self.times, self.seconds, self.clock, self.calls = times, seconds, clock, 0

    def start(self, execution_name: str, execution_input: dict[str, Any]) -> str:
        self.calls += 1
        self.clock[0] += self.seconds
        if self.calls <= self.times:
            raise TransientAwsError("StartExecution failed: ThrottlingException: Rate exceeded")
        return f"arn:aws:states:us-east-1:1:execution:m:{execution_name}"


def test_a_start_throttled_in_all_but_the_last_round_starts() -> None:
    clock = [0.0]
    starter = Throttled(START_ROUNDS - 1, 1.0, clock)
    assert start_through_throttles(starter, "op-1", {}, lambda: clock[0]).endswith(":op-1")
    assert starter.calls == START_ROUNDS


def test_a_start_throttled_in_every_round_fails_with_the_throttle() -> None:
    clock = [0.0]
    starter = Throttled(START_ROUNDS, 1.0, clock)
    with pytest.raises(TransientAwsError):
        start_through_throttles(starter, "op-1", {}, lambda: clock[0])
    assert starter.calls == START_ROUNDS


def test_no_round_begins_once_the_budget_is_spent() -> None:
    """Rounds slowed by botocore's backoff: the second ends past the budget, so no third begins, and an
    API request is not cut off while it waits for a start."""
    clock = [0.0]
    starter = Throttled(START_ROUNDS, START_BUDGET_SECONDS * 0.6, clock)
    with pytest.raises(TransientAwsError):
        start_through_throttles(starter, "op-1", {}, lambda: clock[0])
    assert starter.calls == 2


def test_a_rollout_items_start_has_the_longer_budget_of_its_step() -> None:
    """StartItem's Lambda has 120 s: the same slow rounds that an API request cuts at two all run there."""
    clock = [0.0]
    starter = Throttled(START_ROUNDS - 1, START_BUDGET_SECONDS * 0.6, clock)
    started = start_through_throttles(
        starter, "op-1", {}, lambda: clock[0], budget_seconds=ITEM_START_BUDGET_SECONDS
    )
    assert started.endswith(":op-1")
    assert starter.calls == START_ROUNDS
