"""A resource's properties checked as its handler checks them when CloudFormation creates or updates it.

On AWS the resource handler validates the properties against the type's provider schema and the resource
ends ``CREATE_FAILED`` (``UPDATE_FAILED``) with::

    Properties validation failed for resource Queue with message: #: extraneous key [MessageRetentionPeriodd] is not permitted

Several problems are listed in brackets, ``[#: ..., #/Tags/0: ...]``. References to parameters are
resolved to their values; every other intrinsic function stands for a value known only while the stack
runs, which satisfies any type (:data:`.schemas.UNKNOWN`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from localaws.cloudformation.schemas import UNKNOWN, type_schema


def _literal(value: Any, parameters: Mapping[str, Any]) -> Any:
    """``value`` with parameter Refs resolved, AWS::NoValue removed and other intrinsics unknown."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                if argument == "AWS::NoValue":
                    return _NO_VALUE
                if isinstance(argument, str) and argument in parameters:
                    return parameters[argument]
                return UNKNOWN
            if key.startswith("Fn::") or key == "Condition":
                return UNKNOWN
        result = {}
        for key, item in value.items():
            literal = _literal(item, parameters)
            if literal is not _NO_VALUE:
                result[key] = literal
        return result
    if isinstance(value, list):
        return [item for item in (_literal(v, parameters) for v in value) if item is not _NO_VALUE]
    return value


_NO_VALUE = object()


def property_failure(
    logical_id: str, resource_json: Mapping[str, Any], parameters: Mapping[str, Any], region: str
) -> str | None:
    """The handler's ``Properties validation failed ...`` reason for this resource, or None."""
    schema = type_schema(str(resource_json.get("Type")), region)
    if schema is None:
        return None
    properties = _literal(resource_json.get("Properties") or {}, parameters)
    if properties is UNKNOWN:
        return None
    problems = schema.violations(properties)
    if not problems:
        return None
    message = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
    return f"Properties validation failed for resource {logical_id} with message: {message}"


def resolved_parameters(resources_map: Any) -> dict[str, Any]:
    """The stack's parameter values as the resource map resolved them (text; lists joined)."""
    values: dict[str, Any] = {}
    for name, value in (getattr(resources_map, "resolved_parameters", None) or {}).items():
        values[str(name)] = value
    return values
