"""What CloudFormation checks synchronously in the API call: template format, parameters, state."""

from __future__ import annotations

from typing import Any

from localaws.cloudformation.state import _NOT_UPDATABLE_STATES, _validation_error


def _check_service_role(role_arn: str | None) -> None:
    """A stack's ``RoleARN`` must name a role that CloudFormation may assume, as AWS checks first."""
    from localaws.authorization import CLOUDFORMATION_SERVICE
    from localaws.policy import service_trust_allows
    from localaws.sts import _find_role

    if not role_arn:
        return
    role = _find_role(role_arn)
    if role is None or not service_trust_allows(role.assume_role_policy_document, CLOUDFORMATION_SERVICE):
        raise _validation_error(f"Role {role_arn} is invalid or cannot be assumed")


def _check_updatable(stack: Any) -> None:
    status = stack.status
    if status.endswith("_IN_PROGRESS") or status in _NOT_UPDATABLE_STATES:
        raise _validation_error(f"Stack:{stack.stack_id} is in {status} state and can not be updated.")


def _param_str(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return value if isinstance(value, str) else str(value)


def _resolve_parameters(stack: Any, incoming: list[dict[str, Any]]) -> dict[str, str]:
    """UpdateStack parameters as AWS resolves them (UsePreviousValue works for defaulted parameters too)."""
    resolved: dict[str, str] = {}
    previous = {**stack.resource_map.resolved_parameters, **(stack.parameters or {})}
    for parameter in incoming:
        key = parameter["ParameterKey"]
        if parameter.get("UsePreviousValue"):
            if key not in previous:
                raise _validation_error(
                    f"Invalid input for parameter key {key}. Cannot specify usePreviousValue as true for a "
                    "parameter key not in the previous template"
                )
            resolved[key] = _param_str(previous[key])
        elif "ParameterValue" in parameter:
            resolved[key] = _param_str(parameter["ParameterValue"])
    return resolved


def _parse_template(template: Any) -> dict[str, Any]:
    from localaws.cloudformation.intake import read_template

    if isinstance(template, dict):
        return template
    return read_template(template)


def template_error(exc: BaseException) -> str:
    """The ValidationError message for a template moto could not evaluate (never Python's own text).

    A CloudFormationError keeps its message; anything else is moto failing on something real
    CloudFormation may accept, and is said plainly as what the local AWS does not emulate.
    """
    message = getattr(exc, "message", None)
    if isinstance(exc, _cloudformation_error()) and isinstance(message, str) and message:
        return message
    return (
        "Template error: the local AWS could not evaluate this template's Parameters, Mappings, Conditions "
        "or Outputs: it does not emulate every use of CloudFormation's intrinsic functions"
    )


def _cloudformation_error() -> type[Exception]:
    from moto.cloudformation.exceptions import CloudFormationError

    return CloudFormationError
