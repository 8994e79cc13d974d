"""StartExecution tried again through throttles, for a deployment's operation and for a rollout alike.

Both write their record first and start the execution second. Giving up on a throttle there would fail
what was accepted because AWS was briefly busy, so StartExecution is tried ``START_ROUNDS`` times, each
with botocore's own retries and backoff. Each execution is named after what it runs (an operation id,
a rollout's execution name), so a repeated StartExecution never starts a second one.
"""

from __future__ import annotations

from typing import Any

from chalicelib.domain.errors import TransientAwsError
from chalicelib.service.ports import WorkflowStarter

# StartExecution tries (each botocore's own retries) before what it starts is recorded FAILED.
START_ROUNDS = 3


def start_through_throttles(workflow: WorkflowStarter, name: str, execution_input: dict[str, Any]) -> str:
    """Start the execution ``name``; the TransientAwsError of the last round if AWS throttled them all."""
    for _ in range(START_ROUNDS - 1):
        try:
            return workflow.start(name, execution_input)
        except TransientAwsError:
            continue
    return workflow.start(name, execution_input)
