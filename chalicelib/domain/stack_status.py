"""What each CloudFormation stack status means to a deployment.

AWS defines 23 stack statuses. Every one is classified here; a unit test loads the list from
botocore's CloudFormation model, so a status AWS adds fails a test rather than hanging a workflow.
"""

from __future__ import annotations

from enum import Enum


class StackPhase(Enum):
    IN_PROGRESS = "in_progress"  # keep polling
    SUCCEEDED = "succeeded"  # the operation did what it was asked
    FAILED = "failed"  # the operation failed; the stack is in a usable state again
    STUCK = "stuck"  # the operation failed and the stack needs an operator's action
    GONE = "gone"  # the stack no longer exists


_SUCCEEDED = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}
_FAILED = {"ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_COMPLETE", "UPDATE_FAILED"}
_STUCK = {
    "CREATE_FAILED",
    "ROLLBACK_FAILED",
    "DELETE_FAILED",
    "UPDATE_ROLLBACK_FAILED",
    "IMPORT_ROLLBACK_FAILED",
}
_GONE = {"DELETE_COMPLETE"}

STACK_PHASES: dict[str, StackPhase] = {
    **dict.fromkeys(_SUCCEEDED, StackPhase.SUCCEEDED),
    **dict.fromkeys(_FAILED, StackPhase.FAILED),
    **dict.fromkeys(_STUCK, StackPhase.STUCK),
    **dict.fromkeys(_GONE, StackPhase.GONE),
    **dict.fromkeys(
        (
            "CREATE_IN_PROGRESS",
            "ROLLBACK_IN_PROGRESS",
            "DELETE_IN_PROGRESS",
            "UPDATE_IN_PROGRESS",
            "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
            "UPDATE_ROLLBACK_IN_PROGRESS",
            "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
            "REVIEW_IN_PROGRESS",
            "IMPORT_IN_PROGRESS",
            "IMPORT_ROLLBACK_IN_PROGRESS",
        ),
        StackPhase.IN_PROGRESS,
    ),
}

# Hints for the statuses that need somebody to act.
STUCK_HINTS: dict[str, str] = {
    "CREATE_FAILED": "The stack failed to create and did not roll back; delete the deployment and redeploy.",
    "ROLLBACK_FAILED": "The rollback failed; delete the deployment (retaining the resources that block it).",
    "DELETE_FAILED": "Some resources could not be deleted; empty or release them, then delete again.",
    "UPDATE_ROLLBACK_FAILED": "The update rollback failed; continue the rollback, skipping the resources "
    "that block it, then redeploy.",
    "IMPORT_ROLLBACK_FAILED": "The import rollback failed; fix the resources named in the events, then retry.",
}


def phase_of(stack_status: str) -> StackPhase:
    try:
        return STACK_PHASES[stack_status]
    except KeyError:
        # An unknown status must never be polled forever: treat it as needing an operator.
        return StackPhase.STUCK


def is_failure_event(resource_status: str) -> bool:
    return resource_status.endswith("_FAILED")
