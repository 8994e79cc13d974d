"""Looking into a target account on the HTTP API's behalf, under the one role target roles trust.

Target trust policies name one principal, the service role (``NEXUS_SERVICE_ROLE_ARN``): the workflow's
steps run under it, and so does the ``InspectTarget`` function. The API's own role cannot assume target
roles, so the two API requests that must look into a target account, Test Credentials
(``POST /targets/{id}/validate``) and ``POST /deployments/{id}/forget``, invoke that function
(``chalicelib/adapters/inspection.py``), which runs ``TargetInspection`` here.

The request carries ids only: the function reads the target (its role ARN and external ID) from the
table itself, so nothing in a request can make the service assume a role that is not a registered
target's. The answer is the report, the stack (or none), or the access error, as JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from chalicelib.domain.errors import InvalidRequest, TargetAccessError
from chalicelib.domain.model import Target
from chalicelib.service.access import AccessReport, TargetChecks
from chalicelib.service.ports import StackInfo, TargetAccess
from chalicelib.service.targets import TargetService

CHECK_CREDENTIALS = "credentials"
CHECK_STACK = "stack"
# Beside the request in the function's event: the API request's correlation id, which the handlers'
# middleware binds to the function's log lines (chalicelib/observability.py); not part of the request.
_CORRELATION_KEY = "correlation_id"


@dataclass(frozen=True)
class InspectRequest:
    check: str  # CHECK_CREDENTIALS | CHECK_STACK
    tenant_id: str
    target_id: str
    region: str = ""
    stack: str = ""
    session_name: str = ""

    def event(self, correlation_id: str | None = None) -> dict[str, str]:
        """The function's event: the request, and the correlation id its lines are to carry."""
        return {**asdict(self), **({_CORRELATION_KEY: correlation_id} if correlation_id else {})}

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> InspectRequest:
        try:
            request = cls(**{k: str(v) for k, v in event.items() if k != _CORRELATION_KEY})
        except TypeError as error:
            raise InvalidRequest(f"InspectTarget: malformed request ({error})") from None
        if request.check not in (CHECK_CREDENTIALS, CHECK_STACK):
            raise InvalidRequest(f"InspectTarget: unknown check {request.check!r}")
        return request


def encode_stack(stack: StackInfo | None) -> dict[str, Any]:
    return {"stack": None if stack is None else asdict(stack)}


def decode_stack(answer: dict[str, Any]) -> StackInfo | None:
    stack = answer.get("stack")
    return None if stack is None else StackInfo(**stack)


def encode_access_error(error: TargetAccessError) -> dict[str, Any]:
    return {"access_error": error.as_dict()}


def decode_access_error(answer: dict[str, Any]) -> TargetAccessError | None:
    error = answer.get("access_error")
    if error is None:
        return None
    return TargetAccessError(
        str(error["message"]), code=str(error["code"]), hint=str(error["hint"]), details=error.get("details")
    )


class TargetInspection:
    """Test Credentials and stack reads, with sessions of the target's role: what InspectTarget runs."""

    def __init__(self, targets: TargetService, checks: TargetChecks, access: TargetAccess) -> None:
        self._targets = targets
        self._checks = checks
        self._access = access

    def validate(self, target: Target) -> AccessReport:
        return self._checks.validate(target)

    def find_stack(self, target: Target, *, region: str, stack: str, session_name: str) -> StackInfo | None:
        gateway = self._access.stacks(
            role_arn=target.role_arn, external_id=target.external_id, session_name=session_name, region=region
        )
        return gateway.describe_stack(stack)

    def handle(self, request: InspectRequest) -> dict[str, Any]:
        """One InspectTarget invocation: the target is read here, never taken from the request."""
        target = self._targets.get(request.tenant_id, request.target_id)
        if request.check == CHECK_CREDENTIALS:
            return {"report": self.validate(target).public()}
        if request.region not in target.regions:
            raise InvalidRequest(f"InspectTarget: {request.region} is not a region of {target.target_id}")
        try:
            found = self.find_stack(
                target, region=request.region, stack=request.stack, session_name=request.session_name
            )
        except TargetAccessError as error:
            return encode_access_error(error)
        return encode_stack(found)
