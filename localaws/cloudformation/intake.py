"""A submitted template, as CloudFormation takes it in before any resource exists.

CreateStack, UpdateStack and CreateChangeSet all start here: the text is read safely
(:mod:`.templates`), its transforms are applied (:mod:`.transforms`), and the processed template and the
parameter values are checked (:mod:`.checks`). The processed template is what the stack keeps and runs, as
on AWS (where ``GetTemplate`` with ``TemplateStage=Processed`` returns it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from localaws.cloudformation.checks import check_parameter_values, check_template
from localaws.cloudformation.state import _validation_error
from localaws.cloudformation.templates import load_template
from localaws.cloudformation.transforms import declared_transforms, expand


def read_template(text: Any) -> dict[str, Any]:
    """The template as a mapping, or AWS's ValidationError."""
    template = load_template(text)
    if not isinstance(template, dict):
        raise _validation_error("Template format error: JSON not well-formed. (line 1, column 1)")
    return template


def prepare(text: Any, parameters: Mapping[str, Any], region: str) -> tuple[str, dict[str, Any]]:
    """(template text to keep, template) after reading, transforming and checking ``text``."""
    template = read_template(text)
    processed = expand(template, parameters, region)
    if processed is not None:
        template = processed
        text = json.dumps(processed)
    check_template(template, region)
    check_parameter_values(template, parameters)
    return str(text), template


def _backend_validate_template(self: Any, template: str) -> list[Any]:
    """ValidateTemplate: the same reading and checks as a create (transforms are declared, not applied).

    Replaces moto's, which runs cfn-lint on a ``file.tmp`` it writes into the working directory and
    answers a YAML error as ``Stack with id Template could not be parsed ... does not exist``.
    """
    document = read_template(template)
    if not declared_transforms(document):
        check_template(document, self.region_name)
    return []
