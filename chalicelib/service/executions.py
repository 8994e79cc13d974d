"""StartExecution tried again through throttles, for a deployment's operation and for a rollout alike.

Both write their record first and start the execution second. Giving up on a throttle there would fail
what was accepted because AWS was briefly busy, so StartExecution is tried up to ``START_ROUNDS`` times,
each with botocore's own retries and backoff (up to about 15 s in standard mode). No round begins once
``START_BUDGET_SECONDS`` have passed, so that the rounds end within an API request's time (API Gateway
waits 29 s; a handler cut off there would leave a PENDING record with no execution to move it); a
rollout's StartItem step, with a longer Lambda timeout, gives them ``ITEM_START_BUDGET_SECONDS``. Each
execution is named after what it runs (an operation id, a rollout's execution name), so a repeated
StartExecution never starts a second one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from chalicelib.domain.errors import TransientAwsError
from chalicelib.service.ports import WorkflowStarter

# StartExecution tries (each botocore's own retries) before what it starts is recorded FAILED.
START_ROUNDS = 3
START_BUDGET_SECONDS = 8.0  # in an API request (API Gateway waits 29 s)
# In a rollout's StartItem step, whose Lambda has 120 s (START_SECONDS): more room for the rounds.
ITEM_START_BUDGET_SECONDS = 60.0


def start_through_throttles(
    workflow: WorkflowStarter,
    name: str,
    execution_input: dict[str, Any],
    clock: Callable[[], float] = time.monotonic,
    budget_seconds: float = START_BUDGET_SECONDS,
) -> str:
    """Start the execution ``name``; the last round's TransientAwsError if AWS throttled them all, or
    when ``budget_seconds`` had passed at the end of a round."""
    began, rounds = clock(), 1
    while True:
        try:
            return workflow.start(name, execution_input)
        except TransientAwsError:
            if rounds == START_ROUNDS or clock() - began >= budget_seconds:
                raise
            rounds += 1
