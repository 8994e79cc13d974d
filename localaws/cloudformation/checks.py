"""What CloudFormation refuses in CreateStack, UpdateStack and CreateChangeSet, before any resource exists.

Each check raises the ``ValidationError`` AWS answers, in AWS's words:

* a ``Type`` the region does not have: ``Template format error: Unrecognized resource types: [AWS::S3::Buckett]``
  (the region's list is cfn-lint's copy of the registry, :mod:`.schemas`; ``Custom::*`` is always known);
* a ``Ref``, ``Fn::Sub`` variable, ``Fn::GetAtt`` or ``DependsOn`` naming nothing the template declares:
  ``Template format error: Unresolved resource dependencies [Enviroment] in the Resources block of the
  template`` (or ``Outputs``), and ``Template error: instance of Fn::GetAtt references undefined resource X``;
* a parameter ``Default`` over a parameter value's 4,096 bytes: ``Template format error: Parameter
  'EnvironmentVariables' default value '[****]' length is greater than 4096.`` (the one AWS answer on
  record is of a NoEcho parameter, shown masked; any other's value is shown as it is; bytes are counted,
  as for a value given);
* a parameter value outside its ``AllowedValues``, ``AllowedPattern``, ``MinLength``/``MaxLength`` or
  ``MinValue``/``MaxValue`` (``Parameter 'Env' must be one of AllowedValues``), or the template's own
  ``ConstraintDescription`` when it has one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from chalicelib.domain.parameters import pattern_matches
from chalicelib.domain.templates import MAX_PARAMETER_VALUE_BYTES, default_text
from localaws.cloudformation.schemas import region_types
from localaws.cloudformation.state import _validation_error
from localaws.cloudformation.templates import mapping_items

PSEUDO_PARAMETERS = frozenset(
    {
        "AWS::AccountId",
        "AWS::NotificationARNs",
        "AWS::NoValue",
        "AWS::Partition",
        "AWS::Region",
        "AWS::StackId",
        "AWS::StackName",
        "AWS::URLSuffix",
    }
)
_SUB_VARIABLE = re.compile(r"\$\{([^!}][^}]*)\}")


# The functions CloudFormation knows, in the order its "Encountered unsupported function" message lists them.
FUNCTIONS = (
    "Fn::Base64", "Fn::GetAtt", "Fn::GetAZs", "Fn::ImportValue", "Fn::Join", "Fn::Split", "Fn::FindInMap",
    "Fn::Select", "Ref", "Fn::Equals", "Fn::If", "Fn::Not", "Condition", "Fn::And", "Fn::Or", "Fn::Contains",
    "Fn::EachMemberEquals", "Fn::EachMemberIn", "Fn::ValueOf", "Fn::ValueOfAll", "Fn::RefAll", "Fn::Sub",
    "Fn::Cidr",
)  # fmt: skip
_ALSO_KNOWN = frozenset({"Fn::Transform", "Fn::Length", "Fn::ToJsonString", "Fn::GetStackOutput"})


def check_template(template: Mapping[str, Any], region: str) -> None:
    """Refuse a template CloudFormation would refuse as a whole (functions, types, dependencies)."""
    resources = template.get("Resources")
    if not isinstance(resources, Mapping):
        return  # moto's own parsing reports a template without Resources
    check_functions(template)
    check_resource_types(resources, region)
    check_dependencies(template)
    check_parameter_defaults(template)


def check_parameter_defaults(template: Mapping[str, Any]) -> None:
    """A ``Default`` longer than a parameter value may be refuses the whole template."""
    declared = template.get("Parameters") or {}
    if not isinstance(declared, Mapping):
        return
    for name, declaration in declared.items():
        if not isinstance(declaration, Mapping) or "Default" not in declaration:
            continue
        value = default_text(declaration["Default"])
        if len(value.encode("utf-8")) > MAX_PARAMETER_VALUE_BYTES:
            shown = "[****]" if str(declaration.get("NoEcho", "")).lower() == "true" else value
            raise _validation_error(
                f"Template format error: Parameter '{name}' default value '{shown}' length is greater than "
                f"{MAX_PARAMETER_VALUE_BYTES}."
            )


def check_functions(template: Mapping[str, Any]) -> None:
    """``Template format error: Encountered unsupported function: Fn::X Supported functions are: [...]``."""
    known = set(FUNCTIONS) | _ALSO_KNOWN
    sections = [template.get(section) for section in ("Resources", "Outputs", "Conditions")]
    for key, _item in mapping_items(sections):
        unknown = isinstance(key, str) and key.startswith("Fn::") and key not in known
        if unknown and not key.startswith("Fn::ForEach::"):
            raise _validation_error(
                f"Template format error: Encountered unsupported function: {key} Supported "
                f"functions are: [{', '.join(FUNCTIONS)}]"
            )


def check_resource_types(resources: Mapping[str, Any], region: str) -> None:
    known = region_types(region)
    unknown: list[str] = []
    for resource in resources.values():
        if not isinstance(resource, Mapping):
            continue
        resource_type = str(resource.get("Type", ""))
        if resource_type.startswith("Custom::") or resource_type in known or resource_type in unknown:
            continue
        unknown.append(resource_type)
    if unknown:
        raise _validation_error(f"Template format error: Unrecognized resource types: [{', '.join(unknown)}]")


def _references(value: Any, local: frozenset[str] = frozenset()) -> Iterator[tuple[str, str]]:
    """("Ref" | "GetAtt", name) for every reference in ``value``; ``local`` are Fn::Sub's own variables."""
    if isinstance(value, list):
        for item in value:
            yield from _references(item, local)
        return
    if not isinstance(value, Mapping):
        return
    if len(value) == 1:
        ((key, argument),) = value.items()
        if key == "Ref" and isinstance(argument, str):
            yield "Ref", argument
            return
        if key == "Fn::GetAtt":
            target = argument.split(".", 1)[0] if isinstance(argument, str) else None
            if isinstance(argument, list) and argument and isinstance(argument[0], str):
                target = argument[0]
            if target:
                yield "GetAtt", target
            if isinstance(argument, list):
                yield from _references(argument[1:], local)
            return
        if key == "Fn::Sub":
            text: Any = argument if isinstance(argument, str) else None
            variables: Mapping[str, Any] = {}
            if isinstance(argument, list) and argument:
                text = argument[0]
                variables = argument[1] if len(argument) > 1 and isinstance(argument[1], Mapping) else {}
                yield from _references(list(variables.values()), local)
            if isinstance(text, str):
                names = local | frozenset(str(k) for k in variables)
                for match in _SUB_VARIABLE.finditer(text):
                    name = match.group(1).strip()
                    if name in names:
                        continue
                    if "." in name and name.split(".", 1)[0] not in PSEUDO_PARAMETERS:
                        yield "GetAtt", name.split(".", 1)[0]
                    else:
                        yield "Ref", name
            return
        if key in ("Fn::Transform", "Fn::ForEach::") or key.startswith("Fn::ForEach"):
            return  # expanded by a transform, which the stack check sees afterwards
    for item in value.values():
        yield from _references(item, local)


def check_dependencies(template: Mapping[str, Any]) -> None:
    resources: Mapping[str, Any] = template.get("Resources") or {}
    parameters = template.get("Parameters") or {}
    declared = set(resources) | (set(parameters) if isinstance(parameters, Mapping) else set())
    missing: list[str] = []
    undefined_get_att: list[str] = []
    for resource in resources.values():
        if not isinstance(resource, Mapping):
            continue
        depends = resource.get("DependsOn")
        for name in [depends] if isinstance(depends, str) else list(depends or []):
            if isinstance(name, str) and name not in resources and name not in missing:
                missing.append(name)
        for key in ("Properties", "Metadata", "Condition", "UpdatePolicy", "CreationPolicy"):
            if key == "Condition":
                continue
            for kind, name in _references(resource.get(key)):
                _collect(kind, name, resources, declared, missing, undefined_get_att)
    if missing:
        raise _validation_error(
            f"Template format error: Unresolved resource dependencies [{', '.join(missing)}] in the "
            "Resources block of the template"
        )
    outputs = template.get("Outputs") or {}
    if isinstance(outputs, Mapping):
        for output in outputs.values():
            for kind, name in _references(output):
                _collect(kind, name, resources, declared, missing, undefined_get_att)
    if missing:
        raise _validation_error(
            f"Template format error: Unresolved resource dependencies [{', '.join(missing)}] in the "
            "Outputs block of the template"
        )
    if undefined_get_att:
        raise _validation_error(
            f"Template error: instance of Fn::GetAtt references undefined resource {undefined_get_att[0]}"
        )


def _collect(
    kind: str,
    name: str,
    resources: Mapping[str, Any],
    declared: set[str],
    missing: list[str],
    undefined_get_att: list[str],
) -> None:
    if kind == "Ref":
        if name not in declared and name not in PSEUDO_PARAMETERS and name not in missing:
            missing.append(name)
    elif name not in resources and name not in undefined_get_att:
        undefined_get_att.append(name)


# ------------------------------------------------------------------------------------------ parameters
def _text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _java_pattern(pattern: str) -> str:
    """AllowedPattern is a Java regular expression that must match the whole value: the classes Python
    spells otherwise, rewritten."""
    return pattern.replace("\\p{Alnum}", "[A-Za-z0-9]").replace("\\p{Alpha}", "[A-Za-z]")


def parameter_violation(name: str, declaration: Mapping[str, Any], value: Any) -> str | None:
    """AWS's ValidationError message for ``value`` of parameter ``name``, or None when it is allowed."""
    text = _text(value)
    parameter_type = str(declaration.get("Type", "String"))
    is_list = parameter_type.startswith("List<") or parameter_type == "CommaDelimitedList"
    items = [item.strip() for item in text.split(",")] if is_list else [text]
    problem = _violation(name, parameter_type, declaration, text, items)
    if problem is None:
        return None
    constraint = declaration.get("ConstraintDescription")
    if constraint and problem != "number":
        return f"Parameter '{name}' failed to satisfy constraint: {constraint}"
    if problem == "number":
        return f"Parameter '{name}' must be a number"
    return problem


def _violation(
    name: str, parameter_type: str, declaration: Mapping[str, Any], text: str, items: list[str]
) -> str | None:
    allowed = declaration.get("AllowedValues")
    if isinstance(allowed, list) and allowed:
        choices = {_text(choice) for choice in allowed}
        if any(item not in choices for item in items):
            return f"Parameter '{name}' must be one of AllowedValues"
    pattern = declaration.get("AllowedPattern")
    if isinstance(pattern, str) and pattern:
        java = _java_pattern(pattern)  # undecidable here (a construct or a runaway match): allowed
        if any(pattern_matches(java, item) is False for item in items):
            return f"Parameter '{name}' must match pattern {pattern}"
    for key, wording in (("MinLength", "at least"), ("MaxLength", "at most")):
        limit = _number(_text(declaration[key])) if key in declaration else None
        if limit is None:
            continue
        if (key == "MinLength" and len(text) < limit) or (key == "MaxLength" and len(text) > limit):
            return f"Parameter '{name}' must contain {wording} {int(limit)} characters"
    if parameter_type in ("Number", "List<Number>"):
        numbers = [_number(item) for item in items]
        if any(number is None for number in numbers):
            return "number"
        for key, wording in (("MinValue", "not less than"), ("MaxValue", "not greater than")):
            limit = _number(_text(declaration[key])) if key in declaration else None
            if limit is None:
                continue
            for number in numbers:
                assert number is not None
                if (key == "MinValue" and number < limit) or (key == "MaxValue" and number > limit):
                    shown = int(limit) if limit.is_integer() else limit
                    return f"Parameter '{name}' must be a number {wording} {shown}"
    return None


def check_parameter_values(template: Mapping[str, Any], given: Mapping[str, Any]) -> None:
    """Refuse given (or default) parameter values that break their declaration's constraints."""
    declared = template.get("Parameters") or {}
    if not isinstance(declared, Mapping):
        return
    for name, declaration in declared.items():
        if not isinstance(declaration, Mapping):
            continue
        if name in given:
            value = given[name]
        elif "Default" in declaration:
            value = declaration["Default"]
        else:
            continue  # a missing value is refused by moto's own parameter loading
        problem = parameter_violation(str(name), declaration, value)
        if problem is not None:
            raise _validation_error(problem)
