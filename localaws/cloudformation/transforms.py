"""Template transforms, applied on the local AWS's side as CloudFormation applies them on AWS's.

``Transform: AWS::Serverless-2016-10-31`` (SAM) is expanded with ``aws-sam-translator`` (the library
behind CloudFormation's own SAM transform) before the template is checked and its resources created, so
``AWS::Serverless::Function`` becomes the ``AWS::Lambda::Function``, ``AWS::IAM::Role`` and friends it is
on AWS. SAM's managed-policy names (``Policies: [AmazonS3ReadOnlyAccess]``) are read from moto's copy of
the AWS managed policies. Errors read as AWS's do::

    Transform AWS::Serverless-2016-10-31 failed with: Invalid Serverless Application Specification
    document. Number of errors found: 1. Resource with id [Fn] is invalid. ...

Other transforms (``AWS::Include``, ``AWS::LanguageExtensions``, account macros) are not emulated: the
request is refused with a sentence saying so, never run without them.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

from localaws.cloudformation.state import _validation_error
from localaws.cloudformation.templates import mapping_items

SERVERLESS = "AWS::Serverless-2016-10-31"
_POLICIES: dict[str, dict[str, str]] = {}
_LOCK = threading.Lock()


def declared_transforms(template: Mapping[str, Any]) -> list[str]:
    """The names in the template's ``Transform`` (a name, a list, or ``{Name, Parameters}`` entries)."""
    declared = template.get("Transform")
    entries = declared if isinstance(declared, list) else [declared] if declared else []
    names = []
    for entry in entries:
        name = entry.get("Name") if isinstance(entry, Mapping) else entry
        names.append(str(name))
    return names


def _managed_policies() -> dict[str, str]:
    """AWS managed policy name -> ARN, as IAM's ListPolicies(Scope=AWS) answers (moto's copy)."""
    with _LOCK:
        if "map" not in _POLICIES:
            from moto.iam.aws_managed_policies import aws_managed_policies_data

            data = json.loads(aws_managed_policies_data)
            _POLICIES["map"] = {
                name: f"arn:aws:iam::aws:policy{policy.get('Path', '/')}{name}"
                for name, policy in data.items()
            }
        return _POLICIES["map"]


def inline_transforms(template: Mapping[str, Any]) -> list[str]:
    """The names of the ``Fn::Transform`` snippets anywhere in the template (macros, ``AWS::Include``)."""
    names: list[str] = []
    for key, item in mapping_items(template):
        if key == "Fn::Transform":
            names.extend(name for name in declared_transforms({"Transform": item}) if name not in names)
    return names


def expand(template: dict[str, Any], parameters: Mapping[str, Any], region: str) -> dict[str, Any] | None:
    """The processed template when ``template`` declares transforms, else None (nothing to do)."""
    names = declared_transforms(template)
    names += [name for name in inline_transforms(template) if name not in names]
    if not names:
        return None
    others = [name for name in names if name != SERVERLESS]
    if others:
        raise _validation_error(
            f"The local AWS does not emulate the transform{'s' if len(others) > 1 else ''} "
            f"{', '.join(others)}: deploy this template to AWS, or expand it before sending it"
        )
    return _serverless(template, parameters, region)


def _serverless(template: dict[str, Any], parameters: Mapping[str, Any], region: str) -> dict[str, Any]:
    import boto3
    from samtranslator.model.exceptions import InvalidDocumentException, InvalidTemplateException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    logging.getLogger("samtranslator").setLevel(logging.ERROR)  # its metrics nag on every translation
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    try:
        processed: dict[str, Any] = translator.translate(
            copy.deepcopy(template),
            parameter_values=dict(parameters),
            get_managed_policy_map=_managed_policies,
        )
    except InvalidDocumentException as error:
        causes = " ".join(str(cause.message) for cause in error.causes)
        raise _validation_error(
            f"Transform {SERVERLESS} failed with: {error.message} {causes}".strip()
        ) from None
    except InvalidTemplateException as error:
        raise _validation_error(f"Transform {SERVERLESS} failed with: {error.message}") from None
    except Exception:  # noqa: BLE001 - what CloudFormation answers for a transform's own crash
        raise _validation_error(f"Transform {SERVERLESS} failed with: Internal transform failure.") from None
    processed.pop("Transform", None)
    plain: dict[str, Any] = json.loads(json.dumps(processed, default=str))  # plain values for moto
    return plain
