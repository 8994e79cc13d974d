"""The one mapping from errors to HTTP answers.

Every error answer has the body ``{"error": {"code", "message", "hint", "details"}}``. Status codes
come from the error's kind, never from its message text. Anything unexpected is logged with its
traceback and answered 500 with a request id, never with the exception's text.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from chalice.app import Response
from pydantic import ValidationError

from chalicelib.domain.errors import DeployerError, ErrorKind
from chalicelib.domain.text import shown

logger = logging.getLogger(__name__)

STATUS_BY_KIND: dict[ErrorKind, int] = {
    ErrorKind.INVALID: 400,
    ErrorKind.UNAUTHENTICATED: 401,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.TOO_LARGE: 413,
    ErrorKind.UNPROCESSABLE: 422,
    ErrorKind.INTERNAL: 500,
    ErrorKind.UPSTREAM: 502,
    ErrorKind.TRANSIENT: 503,
}

JSON_HEADERS = {"Content-Type": "application/json"}


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(body=json.dumps(body), status_code=status, headers={**JSON_HEADERS, **(headers or {})})


def error_response(error: Exception) -> Response:
    if isinstance(error, DeployerError):
        status = STATUS_BY_KIND[error.kind]
        if status >= 500:
            logger.warning("request failed: %s %s", error.code, error.message)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return json_response(status, {"error": error.as_dict()}, headers)
    if isinstance(error, ValidationError):
        return json_response(422, {"error": validation_error_body(error)})
    request_id = str(uuid.uuid4())
    logger.exception("unexpected error (request %s)", request_id)
    return json_response(
        500,
        {
            "error": {
                "code": "INTERNAL_ERROR",
                "message": "The service failed unexpectedly.",
                "hint": DeployerError.hint,
                "details": {"request_id": request_id},
            }
        },
    )


def validation_error_body(error: ValidationError) -> dict[str, Any]:
    problems = [
        {
            "field": shown(".".join(str(part) for part in e["loc"])) or "(body)",
            "problem": e["msg"],
            "type": e["type"],
        }
        for e in error.errors(include_url=False, include_input=False, include_context=False)
    ]
    fields = sorted({p["field"] for p in problems})
    return {
        "code": "VALIDATION_FAILED",
        "message": f"The request is invalid: {', '.join(fields)}.",
        "hint": "Fix the fields listed in details and send the request again.",
        "details": problems,
    }
