"""What each CloudFormation stack status means to a deployment, and what the next deploy does about it.

AWS defines 23 stack statuses. Every one is classified twice here: its *phase* (is an operation still
running, did it succeed, is the stack stuck) and its *remedy* (what the next create/update/delete of the
deployment must do with a stack found in that status). Unit tests load the list from botocore's
CloudFormation model and require both maps to cover it exactly, so a status AWS adds fails a test rather
than hanging a workflow or being handled by accident.
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


class Remedy(Enum):
    """What the deployer does with a stack it finds in a given status when the next operation starts."""

    WAIT = "wait"  # an operation is running on the stack: poll until it settles
    UPDATE = "update"  # the stack is usable: update it through a change set
    CREATE = "create"  # there is no stack: create it
    EXECUTE_REVIEW = "execute_review"  # only a CREATE change set exists (a plan): create via a change set
    RECREATE = "recreate"  # ROLLBACK_COMPLETE after a first create: delete it and create it again
    CONTINUE_ROLLBACK = "continue_rollback"  # POST /deployments/{id}/continue-rollback first
    DELETE_RETAINING = "delete_retaining"  # DELETE /deployments/{id}?retain=... the blocking resources
    DELETE = "delete"  # the stack can only be deleted
    OPERATOR = "operator"  # needs a person in the target account (no API can fix it)


STACK_REMEDIES: dict[str, Remedy] = {
    **{s: Remedy.WAIT for s, p in STACK_PHASES.items() if p is StackPhase.IN_PROGRESS},
    "REVIEW_IN_PROGRESS": Remedy.EXECUTE_REVIEW,
    "CREATE_COMPLETE": Remedy.UPDATE,
    "UPDATE_COMPLETE": Remedy.UPDATE,
    "IMPORT_COMPLETE": Remedy.UPDATE,
    "UPDATE_ROLLBACK_COMPLETE": Remedy.UPDATE,
    "IMPORT_ROLLBACK_COMPLETE": Remedy.UPDATE,
    "UPDATE_FAILED": Remedy.UPDATE,  # rollback disabled: a new update (or a rollback) is allowed
    "ROLLBACK_COMPLETE": Remedy.RECREATE,
    "UPDATE_ROLLBACK_FAILED": Remedy.CONTINUE_ROLLBACK,
    "DELETE_FAILED": Remedy.DELETE_RETAINING,
    "ROLLBACK_FAILED": Remedy.DELETE_RETAINING,
    "CREATE_FAILED": Remedy.DELETE,
    "IMPORT_ROLLBACK_FAILED": Remedy.OPERATOR,
    "DELETE_COMPLETE": Remedy.CREATE,
}


def remedy_of(stack_status: str | None) -> Remedy:
    if stack_status is None:
        return Remedy.CREATE
    return STACK_REMEDIES.get(stack_status, Remedy.OPERATOR)
