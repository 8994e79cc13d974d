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

MAX_TEMPLATE_BYTES = 51_200
MAX_PARAMETERS = 200


@dataclass(frozen=True)
class TemplateSummary:
    resource_count: int
    parameters: dict[str, bool]  # name -> has a default

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


def _load_yaml(text: str) -> Any:
    import yaml  # only templates that are not JSON pay for the YAML parser

    class CfnLoader(yaml.SafeLoader):
        pass

    def short_form(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        if suffix == "Ref":
            return {"Ref": value}
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {f"Fn::{suffix}": value}

    CfnLoader.add_multi_constructor("!", short_form)
    return yaml.load(text, Loader=CfnLoader)  # noqa: S506 - CfnLoader derives from SafeLoader


def parse_template(body: str) -> TemplateSummary:
    """Parse a JSON or YAML template and return what the service needs to know of it."""
    errors: list[str] = []
    document: Any = None
    try:
        document = json.loads(body)
    except ValueError as json_error:
        errors.append(f"not JSON: {json_error}")
        try:
            document = _load_yaml(body)
        except Exception as yaml_error:  # noqa: BLE001 - any YAML failure means "not a template"
            errors.append(f"not YAML: {str(yaml_error).splitlines()[0]}")
            document = None
    if not isinstance(document, dict):
        raise UnprocessableRequest(
            "template_body is not a JSON or YAML CloudFormation template.",
            code="INVALID_TEMPLATE",
            hint="Send the template text itself: a JSON or YAML document with a Resources section.",
            details={"field": "template_body", "errors": errors or ["the document is not a mapping"]},
        )
    resources = document.get("Resources")
    if not isinstance(resources, dict) or not resources:
        raise UnprocessableRequest(
            "The template has no Resources section.",
            code="INVALID_TEMPLATE",
            hint="A CloudFormation template needs a Resources mapping with at least one resource.",
            details={"field": "template_body"},
        )
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
    parameters = {str(name): isinstance(spec, dict) and "Default" in spec for name, spec in declared.items()}
    return TemplateSummary(resource_count=len(resources), parameters=parameters)
