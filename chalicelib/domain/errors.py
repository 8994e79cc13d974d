"""Domain errors: a stable ``code``, a one-line ``message`` and a ``hint`` saying what to do.

Each error names its *kind* (invalid input, not found, conflict, ...). The HTTP layer maps kinds to
status codes in one place (``chalicelib/api/errors.py``); the workflow records the same three fields
on a failed deployment. Class names are part of the state machine's contract (its ``Catch`` and
``Retry`` match on them), so they are few and stable.
"""

from __future__ import annotations

from enum import Enum
from typing import Any


class ErrorKind(Enum):
    INVALID = "invalid"
    UNPROCESSABLE = "unprocessable"
    UNAUTHENTICATED = "unauthenticated"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    TOO_LARGE = "too_large"
    UPSTREAM = "upstream"  # an AWS fault in a target account: recorded, explained
    TRANSIENT = "transient"  # throttling and the like: safe to retry
    INTERNAL = "internal"


class DeployerError(Exception):
    """Base of every error the service reports on purpose."""

    kind = ErrorKind.INTERNAL
    code = "INTERNAL_ERROR"
    hint = "This is a fault in NexusAI Deployer; retry, and report it if it persists."

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        hint: str | None = None,
        details: dict[str, Any] | list[Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if hint is not None:
            self.hint = hint
        self.details: dict[str, Any] | list[Any] = details if details is not None else {}

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "hint": self.hint, "details": self.details}


class InvalidRequest(DeployerError):
    kind = ErrorKind.INVALID
    code = "INVALID_REQUEST"
    hint = "Fix the request as the details say and send it again."


class UnprocessableRequest(DeployerError):
    kind = ErrorKind.UNPROCESSABLE
    code = "VALIDATION_FAILED"
    hint = "Fix the fields listed in details and send the request again."


class PayloadTooLarge(DeployerError):
    kind = ErrorKind.TOO_LARGE
    code = "PAYLOAD_TOO_LARGE"
    hint = "CloudFormation accepts a TemplateBody of at most 51,200 bytes; shrink the template."


class Unauthenticated(DeployerError):
    kind = ErrorKind.UNAUTHENTICATED
    code = "UNAUTHENTICATED"
    hint = "Send 'Authorization: Bearer <token>' with a token issued for your tenant."


class NotFound(DeployerError):
    kind = ErrorKind.NOT_FOUND
    code = "NOT_FOUND"
    hint = "Check the id; list the collection to see what exists."


class Conflict(DeployerError):
    kind = ErrorKind.CONFLICT
    code = "CONFLICT"
    hint = "Wait for the running operation to finish, then retry."


class TargetAccessError(DeployerError):
    """The target account could not be reached: AssumeRole refused, role missing, session expired."""

    kind = ErrorKind.UPSTREAM
    code = "ACCESS_DENIED"


# The code of a step's refusal to act for an operation that has ended, or is no longer its deployment's
# current one (the workflow steps, the deployment store's conditional writes).
STALE_OPERATION = "STALE_OPERATION"


class StackOperationError(DeployerError):
    """CloudFormation refused or failed the stack operation."""

    kind = ErrorKind.UPSTREAM
    code = "STACK_OPERATION_FAILED"
    hint = "Read the stack events of this deployment for the failing resource, fix the template, redeploy."


class TransientAwsError(DeployerError):
    """Throttling or a passing service fault; the workflow retries these."""

    kind = ErrorKind.TRANSIENT
    code = "AWS_THROTTLED"
    hint = "AWS is throttling or briefly unavailable; the operation retries with backoff."


class StartGuardFailed(Conflict):
    """The record an operation was started for (a rollout item) had moved on when the operation's first
    write was to record the start with it: that write was refused whole, so nothing started."""

    code = "START_GUARD_FAILED"
    hint = "Read the item again: another run started it, or it ended."


class StackLocked(DeployerError):
    kind = ErrorKind.CONFLICT
    code = "STACK_LOCKED"
    hint = "Another operation holds this stack; wait for it to finish, then retry."
