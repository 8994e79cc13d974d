"""Error translation: a Catch puts the failed step's ``{"Error", "Cause"}`` in the state, and
``error_from_state`` reads it back into the code, message and hint a deployment's ``error`` shows. The
rollouts' steps read theirs with it too (chalicelib/steps/rollout_handlers.py).
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.domain.errors import DeployerError, TransientAwsError
from chalicelib.domain.model import ErrorInfo

# Not AWS_THROTTLED for a step: that code on a FAILED operation says its workflow never started
# (Deployment.never_started), which redeploys and rollout items rely on to start it again.
STEP_THROTTLED_HINT = (
    "AWS (or Lambda's concurrency) stayed throttled for minutes; retry the operation (a rollout: start it "
    "again, items already up to date are skipped)."
)


def error_from_state(error: dict[str, Any]) -> ErrorInfo:
    """Read the ``{"Error", "Cause"}`` that a Catch put in the state into code, message and hint.

    Step handlers raise DeployerErrors whose Lambda error message is their JSON ``as_dict``; a step
    that timed out is STEP_TIMED_OUT; one that AWS throttled through every Retry, its invocation
    (Lambda) or its own calls (a TransientAwsError each attempt), STEP_THROTTLED; any other failure (a
    bug) becomes INTERNAL_ERROR with what Step Functions said.
    """
    name = str(error.get("Error", "States.Runtime"))
    cause = error.get("Cause") or ""
    message: Any = cause
    try:
        parsed = json.loads(cause)
        message = parsed.get("errorMessage", cause) if isinstance(parsed, dict) else cause
        body = json.loads(message) if isinstance(message, str) else None
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict) and {"code", "message", "hint"} <= body.keys():
        if body["code"] == TransientAwsError.code:  # the step's retries ran out, not the start's rounds
            return ErrorInfo(
                "STEP_THROTTLED",
                f"AWS throttled a workflow step through all its retries ({str(body['message'])[:200]}).",
                STEP_THROTTLED_HINT,
            )
        return ErrorInfo(str(body["code"]), str(body["message"]), str(body["hint"]))
    if name == "States.Timeout":
        return ErrorInfo("STEP_TIMED_OUT", "A workflow step timed out.", "Retry the operation.")
    if name == "Lambda.TooManyRequestsException":  # Lambda refused the invocation through every Retry
        return ErrorInfo(
            "STEP_THROTTLED",
            f"Lambda throttled a workflow step's invocation through all its retries ({str(message)[:200]}).",
            STEP_THROTTLED_HINT,
        )
    if name == "Sandbox.Timedout":  # the step's Lambda function ran past its own timeout
        return ErrorInfo(
            "STEP_TIMED_OUT",
            f"A workflow step's Lambda function timed out ({str(message)[:200]}).",
            "Retry the operation; if it times out again, look at the step's logs for the slow call.",
        )
    return ErrorInfo(
        "INTERNAL_ERROR",
        f"{name}: {str(message)[:500]}",
        DeployerError.hint,
    )
