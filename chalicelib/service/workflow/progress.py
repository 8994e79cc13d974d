"""The ``progress`` a step returns into the state, which IsOperationDone reads: whether the operation
is done, and how the execution waits before the next poll (``completion``).
"""

from __future__ import annotations

from typing import Any

from chalicelib.domain.model import Deployment, OperationStatus
from chalicelib.service.workflow.values import StepInput


def progress(
    done: bool, succeeded: bool, wait_seconds: int, completion: str = "poll", event_timeout_seconds: int = 0
) -> dict[str, Any]:
    """The state's ``progress``: IsOperationDone reads ``done``, then ``completion`` ("events" waits in
    WaitForStackEvent for at most ``event_timeout_seconds``, "poll" in WaitForStack for ``wait_seconds``)."""
    return {
        "done": done,
        "succeeded": succeeded,
        "wait_seconds": wait_seconds,
        "completion": completion,
        "event_timeout_seconds": event_timeout_seconds,
    }


def waiting(step: StepInput, phase: str, wait_seconds: int) -> dict[str, Any]:
    """Not done yet. A change set being computed emits no stack events, so that phase always polls."""
    completion = "poll" if phase == "changeset" else step.completion
    return progress(False, False, wait_seconds, completion, step.event_timeout_seconds)


def ended_progress(deployment: Deployment) -> dict[str, Any] | None:
    """The progress of a step that finds its operation ended: a retried step, or one that outlived its
    stopped execution. It makes no stack call and takes no lock; IsOperationDone goes to ReleaseLock."""
    operation = deployment.operation
    if operation.running:
        return None
    return progress(True, operation.status is not OperationStatus.FAILED, 0)
