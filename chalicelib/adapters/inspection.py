"""The HTTP API's way into target accounts: invoke the ``InspectTarget`` function, which runs as the
service role (``chalicelib/service/inspection.py`` says why).

Implements the API side of ``CredentialChecks`` and ``StackLookup``: a synchronous Lambda Invoke with the
ids of the target and the request's correlation id (which the function's log lines carry), the answer
decoded back into the report, the stack or the access error. A function
that fails (an unexpected error, a timeout) is an internal fault of the service, reported as such.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.adapters.errors import aws_call
from chalicelib.domain.errors import DeployerError
from chalicelib.domain.model import Target
from chalicelib.observability import correlation_id
from chalicelib.service.access import AccessReport
from chalicelib.service.inspection import (
    CHECK_CREDENTIALS,
    CHECK_STACK,
    InspectRequest,
    decode_access_error,
    decode_stack,
)
from chalicelib.service.ports import StackInfo


class InspectionFailed(DeployerError):
    code = "INSPECTION_FAILED"
    hint = "The service could not look into the target account; retry, and report it if it persists."


class InvokedInspection:
    # Any: the dev requirements carry no mypy_boto3_lambda stubs.
    def __init__(self, lambda_client: Any, function_name: str) -> None:
        self._lambda = lambda_client
        self._function = function_name

    def validate(self, target: Target) -> AccessReport:
        answer = self._invoke(InspectRequest(CHECK_CREDENTIALS, target.tenant_id, target.target_id))
        return AccessReport.from_public(answer["report"])

    def find_stack(self, target: Target, *, region: str, stack: str, session_name: str) -> StackInfo | None:
        request = InspectRequest(CHECK_STACK, target.tenant_id, target.target_id, region, stack, session_name)
        answer = self._invoke(request)
        error = decode_access_error(answer)
        if error is not None:
            raise error
        return decode_stack(answer)

    def _invoke(self, request: InspectRequest) -> dict[str, Any]:
        # The function's lines carry the request's correlation id, as an execution's steps do.
        payload = request.event(correlation_id())
        with aws_call("Invoke"):
            response = self._lambda.invoke(
                FunctionName=self._function,
                InvocationType="RequestResponse",
                Payload=json.dumps(payload).encode(),
            )
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError") or not isinstance(payload, dict):
            kind = payload.get("errorType", "Error") if isinstance(payload, dict) else "Error"
            raise InspectionFailed(f"InspectTarget failed ({kind}) checking {request.target_id}.")
        return payload
