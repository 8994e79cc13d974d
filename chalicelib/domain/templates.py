"""Reading a CloudFormation template enough to refuse a bad one before any AWS call.

CloudFormation itself is the judge of a template; this module only catches what is certainly wrong
(not JSON/YAML, no Resources, undeclared or missing parameters), so a caller gets a 4xx at once
instead of a FAILED deployment a minute later. YAML short-form tags (``!Ref``, ``!Sub``, ...) are
read into their long form.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.errors import UnprocessableRequest

MAX_TEMPLATE_BYTES = 51_200  # CloudFormation's TemplateBody
MAX_TEMPLATE_URL_BYTES = 1_048_576  # CloudFormation's TemplateURL (an S3 object)
MAX_RESOURCES = 500
MAX_PARAMETERS = 200
# CloudFormation: a parameter value of up to 4,096 bytes (UTF-8), at most 50 tags per stack (botocore's
# model). The service tags every stack it makes with DEPLOYMENT_TAG, so a request may carry 49 of its own,
# and not that key.
MAX_PARAMETER_VALUE_BYTES = 4096
MAX_STACK_TAGS = 50
DEPLOYMENT_TAG = "nexus:deployment-id"
MAX_USER_TAGS = MAX_STACK_TAGS - 1


def sent_by_url(body: str | bytes) -> bool:
    """A ``template_url`` template CloudFormation reads itself (TemplateURL, through its bucket's region):
    one over TemplateBody's limit. The one rule for the adapter that learns the bucket's region and the
    service that keeps the template with its operation."""
    size = len(body.encode("utf-8")) if isinstance(body, str) else len(body)
    return size > MAX_TEMPLATE_BYTES


MAX_OUTPUTS = 200
MAX_MAPPINGS = 200
# Bounds of our own, far above any real template, below what could exhaust the service or the local AWS:
# how deep mappings and lists nest, and how many YAML nodes a template has once its aliases are expanded
# (a 456-byte "billion laughs" document expands to millions).
MAX_DEPTH = 64
MAX_EXPANDED_NODES = 200_000
NO_ECHO_MASK = "****"  # what CloudFormation shows for a NoEcho parameter, and what we answer

_SECTION_LIMITS = (("Resources", MAX_RESOURCES), ("Parameters", MAX_PARAMETERS), ("Outputs", MAX_OUTPUTS))


@dataclass(frozen=True)
class TemplateSummary:
    resource_count: int
    parameters: dict[str, bool]  # name -> has a default
    no_echo: frozenset[str] = frozenset()  # parameters declared NoEcho: never stored, never answered

    def check_parameters(self, given: dict[str, str]) -> None:
        undeclared = sorted(set(given) - set(self.parameters))
        missing = sorted(name for name, has_default in self.parameters.items() if not has_default)
        missing = [name for name in missing if name not in given]
        if undeclared or missing:
            raise UnprocessableRequest(
                "The parameters do not match the template's Parameters section.",
                code="PARAMETERS_MISMATCH",
                hint="Pass exactly the parameters the template declares; those without a Default are required.",
                details={"undeclared": undeclared, "missing": missing},
            )


def _invalid(message: str, errors: list[str], **details: Any) -> UnprocessableRequest:
    return UnprocessableRequest(
        message,
        code="INVALID_TEMPLATE",
        hint="Send the template text itself: a JSON or YAML document with a Resources section.",
        details={"field": "template_body", "errors": errors, **details},
    )


def _too_deep() -> UnprocessableRequest:
    return UnprocessableRequest(
        f"Template format error: the template nests mappings and lists more than {MAX_DEPTH} deep.",
        code="TEMPLATE_LIMIT_EXCEEDED",
        hint="Flatten the template; no CloudFormation template needs this depth.",
        details={"field": "template_body", "limit": MAX_DEPTH, "what": "depth"},
    )


def short_form(loader: Any, suffix: str, node: Any) -> dict[str, Any]:
    """A YAML constructor for CloudFormation's short tags (``!Ref``, ``!GetAtt A.B``, ``!Sub``, ...): the long
    form, over a scalar, a sequence or a mapping. Shared with the local AWS's own template reader."""
    import yaml

    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


def _yaml_loader() -> type[Any]:
    import yaml  # only templates that are not JSON pay for the YAML parser

    class CfnLoader(yaml.SafeLoader):
        pass

    CfnLoader.add_multi_constructor("!", short_form)
    return CfnLoader


def _children(node: Any) -> list[Any]:
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_expansion(root: Any) -> None:
    """Refuse a YAML node graph whose aliases expand past MAX_EXPANDED_NODES, nest past MAX_DEPTH, or
    refer to themselves. Aliases share nodes, so sizes are memoized per node; no recursion is used."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            on_path.discard(key)
            if size[key] > MAX_EXPANDED_NODES:
                raise UnprocessableRequest(
                    f"Template format error: the YAML expands to more than {MAX_EXPANDED_NODES:,} nodes "
                    "through its aliases.",
                    code="TEMPLATE_LIMIT_EXCEEDED",
                    hint="Write the template without deeply repeated YAML aliases (&anchor / *alias).",
                    details={"field": "template_body", "limit": MAX_EXPANDED_NODES, "what": "yaml_nodes"},
                )
            if depth[key] > MAX_DEPTH:
                raise _too_deep()
            continue
        if key in size:
            continue
        if key in on_path:
            raise _invalid("The template's YAML refers to itself through an alias.", ["recursive alias"])
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in size)


def load_yaml(text: str) -> Any:
    loader = _yaml_loader()(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        _check_expansion(root)
        return loader.construct_document(root)
    finally:
        loader.dispose()


def _check_depth(document: Any) -> None:
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, level = stack.pop()
        if level > MAX_DEPTH:
            raise _too_deep()
        if isinstance(value, dict):
            stack.extend((child, level + 1) for child in value.values())
        elif isinstance(value, list):
            stack.extend((child, level + 1) for child in value)


def _check_limits(document: dict[str, Any]) -> None:
    for section, limit in (*_SECTION_LIMITS, ("Mappings", MAX_MAPPINGS)):
        declared = document.get(section)
        if isinstance(declared, dict) and len(declared) > limit:
            noun = section.lower()
            raise UnprocessableRequest(
                f"Template format error: Number of {noun}, {len(declared)}, is greater than the maximum "
                f"allowed, {limit}.",
                code="TEMPLATE_LIMIT_EXCEEDED",
                hint=f"CloudFormation allows at most {limit} {noun} in one template: split the stack "
                "(nested stacks or several deployments).",
                details={"field": "template_body", "what": noun, "count": len(declared), "limit": limit},
            )


def default_text(default: Any) -> str:
    """A parameter's ``Default`` as CloudFormation takes it: a string (a YAML number or boolean, its text;
    a list, its items joined with commas, as for a ``List<...>`` or ``CommaDelimitedList`` parameter)."""
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, list):
        return ",".join(default_text(item) for item in default)
    return str(default)


def _check_defaults(declared: dict[str, Any]) -> None:
    """A ``Default`` is a parameter value, held to the same 4,096 bytes: CloudFormation refuses the whole
    template otherwise ("Template format error: Parameter 'X' default value '...' length is greater than
    4096."). The value is not repeated here: the parameter may be NoEcho."""
    for name, spec in declared.items():
        if not isinstance(spec, dict) or "Default" not in spec:
            continue
        size = len(default_text(spec["Default"]).encode("utf-8"))
        if size > MAX_PARAMETER_VALUE_BYTES:
            raise UnprocessableRequest(
                f"Template format error: Parameter '{name}' default value is {size} bytes, greater than "
                f"{MAX_PARAMETER_VALUE_BYTES}.",
                code="TEMPLATE_LIMIT_EXCEEDED",
                hint=f"CloudFormation takes a parameter value, a Default too, of at most "
                f"{MAX_PARAMETER_VALUE_BYTES:,} bytes: shorten it, or keep the value in SSM Parameter Store or "
                "S3 and pass its name.",
                details={
                    "field": "template_body",
                    "what": "parameter default",
                    "parameter": str(name),
                    "bytes": size,
                    "limit": MAX_PARAMETER_VALUE_BYTES,
                },
            )


def parse_template(body: str) -> TemplateSummary:
    """Parse a JSON or YAML template and return what the service needs to know of it.

    Refused before any AWS call, as CloudFormation would refuse them (or worse, accept them into a
    failure much later): text that is not Unicode, documents nested or alias-expanded past our bounds,
    sections over CloudFormation's limits (500 resources; 200 parameters, outputs, mappings), and a
    parameter ``Default`` over a parameter value's 4,096 bytes.
    """
    try:
        body.encode("utf-8")
    except UnicodeEncodeError as error:
        raise _invalid(
            "template_body is not valid Unicode text.",
            [f"unpaired surrogate at character {error.start}"],
        ) from None
    errors: list[str] = []
    document: Any = None
    try:
        document = json.loads(body)
    except RecursionError:
        raise _too_deep() from None
    except ValueError as json_error:
        errors.append(f"not JSON: {json_error}")
        try:
            document = load_yaml(body)
        except UnprocessableRequest:
            raise
        except RecursionError:
            raise _too_deep() from None
        except Exception as yaml_error:  # noqa: BLE001 - any YAML failure means "not a template"
            errors.append(f"not YAML: {str(yaml_error).splitlines()[0]}")
            document = None
    if not isinstance(document, dict):
        raise _invalid(
            "template_body is not a JSON or YAML CloudFormation template.",
            errors or ["the document is not a mapping"],
        )
    _check_depth(document)
    resources = document.get("Resources")
    if not isinstance(resources, dict) or not resources:
        raise UnprocessableRequest(
            "The template has no Resources section.",
            code="INVALID_TEMPLATE",
            hint="A CloudFormation template needs a Resources mapping with at least one resource.",
            details={"field": "template_body"},
        )
    _check_limits(document)
    bad = sorted(
        name for name, spec in resources.items() if not isinstance(spec, dict) or not spec.get("Type")
    )
    if bad:
        raise UnprocessableRequest(
            "Some resources have no Type.",
            code="INVALID_TEMPLATE",
            hint="Every resource needs a 'Type', such as AWS::S3::Bucket.",
            details={"field": "template_body", "resources": bad},
        )
    declared = document.get("Parameters") or {}
    if not isinstance(declared, dict):
        raise UnprocessableRequest(
            "The template's Parameters section is not a mapping.",
            code="INVALID_TEMPLATE",
            hint="Parameters maps each parameter name to its declaration.",
            details={"field": "template_body"},
        )
    _check_defaults(declared)
    parameters = {str(name): isinstance(spec, dict) and "Default" in spec for name, spec in declared.items()}
    no_echo = frozenset(
        str(name)
        for name, spec in declared.items()
        if isinstance(spec, dict) and str(spec.get("NoEcho", "")).lower() == "true"
    )
    return TemplateSummary(resource_count=len(resources), parameters=parameters, no_echo=no_echo)
