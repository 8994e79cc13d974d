"""The local AWS reads templates as AWS does (issue 13 B.5-B.6), through plain boto3 calls.

No template is parsed by an unsafe YAML loader (nor expands without bound), SAM templates are
transformed, transforms, macros and functions the local AWS lacks are refused in AWS's words, and a
malformed template gets AWS's format error, never a Python exception.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.localaws.conftest import REGION, body, events, refusal, status

PYTHON_EXCEPTION = re.compile(r"\b(KeyError|TypeError|AttributeError|ValueError|IndexError)\b|object has no")


# ------------------------------------------------------------------------------ B.5 no unsafe YAML


def test_python_object_tags_never_run(cfn: Any, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = (
        "Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n"
        f"    Metadata: !!python/object/apply:os.system ['touch {marker}']\n"
    )
    for call, kwargs in (
        (cfn.create_stack, {"StackName": "evil"}),
        (cfn.create_change_set, {"StackName": "evil", "ChangeSetName": "c", "ChangeSetType": "CREATE"}),
        (cfn.validate_template, {}),
        (cfn.get_template_summary, {}),
    ):
        with pytest.raises(ClientError) as error:
            call(TemplateBody=payload, **kwargs)
        assert error.value.response["Error"]["Code"] == "ValidationError"
        assert "python" not in error.value.response["Error"]["Message"].lower()
    assert not marker.exists()


def test_moto_cloudformation_modules_only_see_the_safe_yaml(cfn: Any) -> None:
    import yaml
    from moto.cloudformation import models, responses, utils
    from moto.cloudformation.exceptions import ValidationError

    from localaws.cloudformation.templates import load_template

    for module in (models, responses, utils):
        assert module.yaml is not yaml
        with pytest.raises(ValidationError, match="YAML not well-formed"):
            module.yaml.load("a: !!python/name:os.system", Loader=yaml.Loader)
    assert models.Stack.parse_template("A: !GetAtt B.C\nD: 2010-09-09") == {
        "A": {"Fn::GetAtt": ["B", "C"]},
        "D": "2010-09-09",
    }
    assert load_template("X: !Sub\n  - ${A}\n  - A: !Ref B") == {
        "X": {"Fn::Sub": ["${A}", {"A": {"Ref": "B"}}]}
    }


def test_yaml_aliases_that_expand_without_bound_are_refused(cfn: Any) -> None:
    laughs = (
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
            f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
            for i in range(7)
        )
        + "Resources:\n  T:\n    Type: AWS::SNS::Topic\n"
    )
    message = refusal(cfn.create_stack, StackName="laughs", TemplateBody=laughs)
    assert message.startswith("Template format error: the YAML expands to more than")


# ---------------------------------------------------------------- B.6 transforms, reasons as on AWS

SAM_FUNCTION = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: index.handler
      InlineCode: "def handler(event, context):\\n    return event\\n"
      Policies: [AmazonSQSReadOnlyAccess]
Outputs:
  Arn:
    Value: !GetAtt Fn.Arn
"""


def test_sam_templates_are_transformed_as_cloudformation_does(cfn: Any) -> None:
    cfn.create_stack(StackName="sam", TemplateBody=SAM_FUNCTION, Capabilities=["CAPABILITY_AUTO_EXPAND"])
    assert status(cfn, "sam") == "CREATE_COMPLETE"
    resources = {
        r["LogicalResourceId"]: r["ResourceType"]
        for r in cfn.describe_stack_resources(StackName="sam")["StackResources"]
    }
    assert resources == {"Fn": "AWS::Lambda::Function", "FnRole": "AWS::IAM::Role"}
    role = boto3.client("iam", region_name=REGION).list_attached_role_policies(
        RoleName=next(
            r["PhysicalResourceId"]
            for r in cfn.describe_stack_resources(StackName="sam")["StackResources"]
            if r["LogicalResourceId"] == "FnRole"
        )
    )
    processed = json.loads(json.dumps(cfn.get_template(StackName="sam")["TemplateBody"]))
    assert processed["Resources"]["FnRole"]["Properties"]["ManagedPolicyArns"] == [
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        "arn:aws:iam::aws:policy/AmazonSQSReadOnlyAccess",
    ]
    assert role["ResponseMetadata"]["HTTPStatusCode"] == 200
    arn = cfn.describe_stacks(StackName="sam")["Stacks"][0]["Outputs"][0]["OutputValue"]
    assert arn.startswith("arn:aws:lambda:us-east-1:123456789012:function:sam-Fn-")


def test_an_invalid_sam_template_fails_with_the_transforms_message(cfn: Any) -> None:
    invalid = "\n".join(line for line in SAM_FUNCTION.splitlines() if "InlineCode" not in line)
    assert refusal(cfn.create_stack, StackName="bad-sam", TemplateBody=invalid) == (
        "Transform AWS::Serverless-2016-10-31 failed with: Invalid Serverless Application Specification "
        "document. Number of errors found: 1. Resource with id [Fn] is invalid. Only one of 'InlineCode' or "
        "'CodeUri' can be set."
    )


def test_transforms_the_local_aws_lacks_are_said_plainly(cfn: Any) -> None:
    template = {"Transform": ["AWS::LanguageExtensions"], "Resources": {"T": {"Type": "AWS::SNS::Topic"}}}
    assert refusal(cfn.create_stack, StackName="lx", TemplateBody=body(template)) == (
        "The local AWS does not emulate the transform AWS::LanguageExtensions: deploy this template to AWS, "
        "or expand it before sending it"
    )


def test_inline_macros_are_said_plainly_too(cfn: Any) -> None:
    template = {
        "Resources": {
            "T": {
                "Type": "AWS::SNS::Topic",
                "Properties": {"TopicName": {"Fn::Transform": {"Name": "Upper"}}},
            }
        }
    }
    assert refusal(cfn.create_stack, StackName="macro", TemplateBody=body(template)) == (
        "The local AWS does not emulate the transform Upper: deploy this template to AWS, or expand it before "
        "sending it"
    )


def test_unknown_functions_are_refused_as_aws_does(cfn: Any) -> None:
    template = (
        "Resources:\n  T:\n    Type: AWS::SNS::Topic\n    Properties:\n      TopicName: !Rain::Embed x\n"
    )
    assert refusal(cfn.create_stack, StackName="fn", TemplateBody=template).startswith(
        "Template format error: Encountered unsupported function: Fn::Rain::Embed Supported functions are: "
        "[Fn::Base64, Fn::GetAtt,"
    )


def test_malformed_templates_get_aws_format_errors_not_exceptions(cfn: Any) -> None:
    assert refusal(cfn.create_stack, StackName="j", TemplateBody='{"Resources": {') == (
        "Template format error: JSON not well-formed. (line 1, column 16)"
    )
    assert refusal(cfn.create_stack, StackName="y", TemplateBody="Resources:\n  - a\n b: [").startswith(
        "Template format error: YAML not well-formed. (line"
    )
    broken_mapping = {
        "Mappings": {"M": {"us-east-1": {"Size": "1"}}},
        "Resources": {
            "T": {
                "Type": "AWS::SNS::Topic",
                "Properties": {"TopicName": {"Fn::FindInMap": ["M", "eu-west-1", "Size"]}},
            }
        },
    }
    cfn.create_stack(StackName="map", TemplateBody=body(broken_mapping))
    texts = json.dumps(cfn.describe_stacks(StackName="map")["Stacks"], default=str) + json.dumps(
        events(cfn, "map"), default=str
    )
    assert not PYTHON_EXCEPTION.search(texts), texts
