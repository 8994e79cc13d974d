"""A template's parameters as CloudFormation's GetTemplateSummary describes them, and their constraints.

``describe_template`` is what ``POST /templates/describe`` answers (and what the console builds its
parameter form from): every parameter with its Type, Default, AllowedValues, AllowedPattern,
MinLength/MaxLength, MinValue/MaxValue, NoEcho, Description and ConstraintDescription; the labels and
groups of ``Metadata.AWS::CloudFormation::Interface``; the resources counted by type; the capabilities
the template needs; its outputs. No AWS call: the text is read here.

``check_values`` is the server's side of the same constraints, run on every create, update and rollout
before anything is written: a value the console would refuse is refused by the API too, with the
parameter's ConstraintDescription, instead of a FAILED stack a minute later. CloudFormation checks
AllowedPattern with Java's regular expressions; Python's agree on the patterns templates use, and a
pattern Python cannot compile is left to CloudFormation.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.errors import UnprocessableRequest
from chalicelib.domain.templates import NO_ECHO_MASK, load_yaml, parse_template

INTERFACE = "AWS::CloudFormation::Interface"
# Resource types that need CAPABILITY_IAM, and the property that, when set, makes it CAPABILITY_NAMED_IAM.
IAM_NAME_PROPERTIES = {
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
    "AWS::IAM::Policy": None,
    "AWS::IAM::AccessKey": None,
    "AWS::IAM::UserToGroupAddition": None,
    "AWS::IAM::RolePolicy": None,
    "AWS::IAM::UserPolicy": None,
    "AWS::IAM::GroupPolicy": None,
}
LIST_TYPES = ("CommaDelimitedList", "List<")
NUMERIC_TYPES = ("Number", "List<Number>")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    type: str = "String"
    default: str | None = None
    allowed_values: tuple[str, ...] = ()
    allowed_pattern: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    min_value: float | None = None
    max_value: float | None = None
    no_echo: bool = False
    description: str | None = None
    constraint_description: str | None = None
    label: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "default": self.default,
            "allowed_values": list(self.allowed_values),
            "allowed_pattern": self.allowed_pattern,
            "min_length": self.min_length,
            "max_length": self.max_length,
            "min_value": _plain(self.min_value),
            "max_value": _plain(self.max_value),
            "no_echo": self.no_echo,
            "description": self.description,
            "constraint_description": self.constraint_description,
            "label": self.label,
        }

    def violation(self, value: str) -> str | None:
        """What is wrong with ``value`` (as CloudFormation would refuse it), or None."""
        listed = self.type == "CommaDelimitedList" or self.type.startswith("List<")
        for item in [v.strip() for v in value.split(",")] if listed else [value]:
            numeric = self.type in NUMERIC_TYPES
            if numeric and not _NUMBER.match(item):
                return "must be a number"
            if self.allowed_values and item not in self.allowed_values:
                return f"must be one of {', '.join(self.allowed_values)}"
            if numeric:
                number = float(item)
                if self.min_value is not None and number < self.min_value:
                    return f"must be at least {_plain(self.min_value)}"
                if self.max_value is not None and number > self.max_value:
                    return f"must be at most {_plain(self.max_value)}"
                continue
            if self.min_length is not None and len(item) < self.min_length:
                return f"must be at least {self.min_length} characters"
            if self.max_length is not None and len(item) > self.max_length:
                return f"must be at most {self.max_length} characters"
            if self.allowed_pattern is not None and pattern_matches(self.allowed_pattern, item) is False:
                return f"must match the pattern {self.allowed_pattern}"
        return None


# How long one AllowedPattern may take on one value here. A template's pattern is the user's text: one
# such as (a+)+$ backtracks exponentially on a near-miss, and must not hold an API request for hours.
PATTERN_SECONDS = 0.05


def pattern_matches(pattern: str, value: str) -> bool | None:
    """Whether ``value`` wholly matches ``pattern``, or None when that cannot be decided here: a construct
    Python's engine lacks (CloudFormation's is Java's), or a match that takes longer than
    ``PATTERN_SECONDS``. CloudFormation judges those when the stack call is made."""
    import regex  # the ``re`` syntax, with a time limit on a match

    try:
        return (
            regex.compile(pattern, flags=regex.VERSION0).fullmatch(value, timeout=PATTERN_SECONDS) is not None
        )
    except (regex.error, TimeoutError):
        return None


@dataclass(frozen=True)
class TemplateDescription:
    description: str | None
    parameters: tuple[ParameterSpec, ...]
    parameter_groups: tuple[tuple[str, tuple[str, ...]], ...]
    resource_types: dict[str, int]
    capabilities: tuple[str, ...]
    outputs: tuple[dict[str, Any], ...]
    labels: dict[str, str] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "parameters": [p.public() for p in self.parameters],
            "parameter_groups": [
                {"label": label, "parameters": list(names)} for label, names in self.parameter_groups
            ],
            "parameter_labels": dict(self.labels),
            "resource_count": sum(self.resource_types.values()),
            "resource_types": dict(self.resource_types),
            "capabilities": list(self.capabilities),
            "outputs": list(self.outputs),
        }

    def parameter(self, name: str) -> ParameterSpec | None:
        return next((p for p in self.parameters if p.name == name), None)


def _plain(number: float | None) -> float | int | None:
    if number is None:
        return None
    return int(number) if float(number).is_integer() else number


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _int(value: Any) -> int | None:
    try:
        return int(str(value)) if value is not None else None
    except ValueError:
        return None


def _float(value: Any) -> float | None:
    try:
        return float(str(value)) if value is not None else None
    except ValueError:
        return None


def _document(body: str) -> dict[str, Any]:
    parse_template(body)  # the same refusals as a deploy: not a template, no Resources, ...
    try:
        document = json.loads(body)
    except ValueError:
        document = load_yaml(body)
    return dict(document)


def _interface(document: dict[str, Any]) -> tuple[tuple[tuple[str, tuple[str, ...]], ...], dict[str, str]]:
    metadata = document.get("Metadata")
    interface = metadata.get(INTERFACE) if isinstance(metadata, dict) else None
    if not isinstance(interface, dict):
        return (), {}
    groups: list[tuple[str, tuple[str, ...]]] = []
    for group in interface.get("ParameterGroups") or []:
        if not isinstance(group, dict):
            continue
        label = group.get("Label")
        label_text = _text(label.get("default")) if isinstance(label, dict) else _text(label)
        names = tuple(str(n) for n in group.get("Parameters") or [] if isinstance(n, str))
        groups.append((label_text or "Parameters", names))
    labels: dict[str, str] = {}
    raw_labels = interface.get("ParameterLabels")
    for name, label in raw_labels.items() if isinstance(raw_labels, dict) else []:
        text = _text(label.get("default")) if isinstance(label, dict) else _text(label)
        if text:
            labels[str(name)] = text
    return tuple(groups), labels


def _capabilities(document: dict[str, Any]) -> tuple[str, ...]:
    needed: set[str] = set()
    for spec in document["Resources"].values():
        kind = spec.get("Type")
        if kind in IAM_NAME_PROPERTIES:
            name_property = IAM_NAME_PROPERTIES[kind]
            properties = spec.get("Properties") if isinstance(spec.get("Properties"), dict) else {}
            named = name_property is not None and name_property in (properties or {})
            needed.add("CAPABILITY_NAMED_IAM" if named else "CAPABILITY_IAM")
        elif kind in ("AWS::Serverless::Application", "AWS::CloudFormation::Macro"):
            needed.add("CAPABILITY_AUTO_EXPAND")
    if document.get("Transform"):
        needed.add("CAPABILITY_AUTO_EXPAND")
    return tuple(sorted(needed))


def _outputs(document: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    outputs = document.get("Outputs")
    if not isinstance(outputs, dict):
        return ()
    described = []
    for name, spec in outputs.items():
        spec = spec if isinstance(spec, dict) else {}
        export = spec.get("Export")
        export_name = _text(export.get("Name")) if isinstance(export, dict) else None
        described.append(
            {"name": str(name), "description": _text(spec.get("Description")), "export_name": export_name}
        )
    return tuple(described)


def describe_template(body: str) -> TemplateDescription:
    document = _document(body)
    groups, labels = _interface(document)
    parameters = []
    for name, spec in (document.get("Parameters") or {}).items():
        spec = spec if isinstance(spec, dict) else {}
        allowed = spec.get("AllowedValues")
        parameters.append(
            ParameterSpec(
                name=str(name),
                type=_text(spec.get("Type")) or "String",
                default=_text(spec.get("Default")) if "Default" in spec else None,
                allowed_values=tuple(t for t in map(_text, allowed) if t is not None)
                if isinstance(allowed, list)
                else (),
                allowed_pattern=_text(spec.get("AllowedPattern")),
                min_length=_int(spec.get("MinLength")),
                max_length=_int(spec.get("MaxLength")),
                min_value=_float(spec.get("MinValue")),
                max_value=_float(spec.get("MaxValue")),
                no_echo=str(spec.get("NoEcho", "false")).lower() == "true",
                description=_text(spec.get("Description")),
                constraint_description=_text(spec.get("ConstraintDescription")),
                label=labels.get(str(name)),
            )
        )
    types = Counter(str(spec.get("Type")) for spec in document["Resources"].values())
    description = _text(document.get("Description"))
    return TemplateDescription(
        description=description,
        parameters=tuple(parameters),
        parameter_groups=groups,
        resource_types=dict(sorted(types.items())),
        capabilities=_capabilities(document),
        outputs=_outputs(document),
        labels=labels,
    )


def check_values(body: str, given: dict[str, str]) -> None:
    """Refuse values that break their parameter's constraints (all of them listed, 422). A NoEcho
    parameter's mask (``****``, what the API shows) stands for the stack's value, not a value sent:
    whether there is one to keep is ``split_parameters``' rule, and its constraints held when it was sent."""
    description = describe_template(body)
    problems = []
    for name, value in given.items():
        spec = description.parameter(name)
        if spec is not None and spec.no_echo and value == NO_ECHO_MASK:
            continue
        problem = spec.violation(value) if spec is not None else None
        if spec is not None and problem is not None:
            problems.append(
                {
                    "parameter": name,
                    "problem": f"{spec.label or name} {problem}",
                    "constraint_description": spec.constraint_description,
                }
            )
    if problems:
        first = problems[0]
        raise UnprocessableRequest(
            f"Parameter {first['parameter']}: {first['constraint_description'] or first['problem']}",
            code="PARAMETER_CONSTRAINT",
            hint="Give each parameter a value its template allows (see details).",
            details={"parameters": problems},
        )
