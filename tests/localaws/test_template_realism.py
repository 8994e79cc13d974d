"""The local AWS refuses what AWS refuses (issue 13 B.2-B.7), through plain boto3 calls.

Templates are checked at CreateStack/UpdateStack/CreateChangeSet (types, references, parameter values),
properties at resource creation against the type's provider schema, create-only changes replace the
resource, no template is parsed by an unsafe YAML loader, SAM templates are transformed, and types moto
does not emulate can be simulated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from localaws.cloudformation import StackSimulation, install

REGION = "us-east-1"
PYTHON_EXCEPTION = re.compile(r"\b(KeyError|TypeError|AttributeError|ValueError|IndexError)\b|object has no")


@pytest.fixture
def cfn() -> Iterator[Any]:
    install(StackSimulation(stack_seconds=0))
    with mock_aws():
        yield boto3.client("cloudformation", region_name=REGION)
    install(StackSimulation(stack_seconds=0))


def body(template: dict[str, Any]) -> str:
    return json.dumps(template)


def refusal(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as error:
        call(**kwargs)
    assert error.value.response["Error"]["Code"] == "ValidationError"
    return str(error.value.response["Error"]["Message"])


def events(cfn: Any, stack: str) -> list[dict[str, Any]]:
    return list(reversed(cfn.describe_stack_events(StackName=stack)["StackEvents"]))


def resource_events(cfn: Any, stack: str, logical_id: str) -> list[tuple[str, str, str]]:
    return [
        (e["ResourceStatus"], e.get("PhysicalResourceId", ""), e.get("ResourceStatusReason", ""))
        for e in events(cfn, stack)
        if e["LogicalResourceId"] == logical_id
    ]


def status(cfn: Any, stack: str) -> str:
    return str(cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"])


# ------------------------------------------------------------------------ B.2 templates at the API call


def test_unknown_resource_type_is_refused_in_aws_words_by_every_entry_point(cfn: Any) -> None:
    template = body({"Resources": {"B": {"Type": "AWS::S3::Buckett"}, "C": {"Type": "Custom::Mine"}}})
    expected = "Template format error: Unrecognized resource types: [AWS::S3::Buckett]"
    assert refusal(cfn.create_stack, StackName="s", TemplateBody=template) == expected
    assert refusal(cfn.create_change_set, StackName="s", ChangeSetName="c", TemplateBody=template) == expected
    cfn.create_stack(StackName="ok", TemplateBody=body({"Resources": {"T": {"Type": "AWS::SNS::Topic"}}}))
    assert refusal(cfn.update_stack, StackName="ok", TemplateBody=template) == expected
    assert status(cfn, "ok") == "CREATE_COMPLETE"
    assert [s["StackName"] for s in cfn.describe_stacks()["Stacks"]] == ["ok"]  # nothing half-created


def test_a_parameter_default_over_4096_bytes_is_refused_in_aws_words(cfn: Any) -> None:
    def template(default: str, no_echo: bool) -> str:
        declaration: dict[str, Any] = {"Type": "String", "Default": default}
        if no_echo:
            declaration["NoEcho"] = "true"
        return body({"Parameters": {"Env": declaration}, "Resources": {"T": {"Type": "AWS::SNS::Topic"}}})

    masked = "Template format error: Parameter 'Env' default value '[****]' length is greater than 4096."
    assert refusal(cfn.create_stack, StackName="s", TemplateBody=template("é" * 2049, True)) == masked
    shown = (
        f"Template format error: Parameter 'Env' default value '{'v' * 4097}' length is greater than 4096."
    )
    assert refusal(cfn.validate_template, TemplateBody=template("v" * 4097, False)) == shown
    assert refusal(
        cfn.create_change_set, StackName="s", ChangeSetName="c", TemplateBody=template("v" * 4097, False)
    )
    assert cfn.describe_stacks()["Stacks"] == []  # nothing half-created
    cfn.create_stack(StackName="ok", TemplateBody=template("é" * 2048, True))  # 4,096 bytes: taken
    assert status(cfn, "ok") == "CREATE_COMPLETE"


@pytest.mark.parametrize(
    ("resources", "outputs", "expected"),
    [
        (
            {"T": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": {"Ref": "Enviroment"}}}},
            {},
            "Template format error: Unresolved resource dependencies [Enviroment] in the Resources block of "
            "the template",
        ),
        (
            {
                "T": {
                    "Type": "AWS::SNS::Topic",
                    "Properties": {"TopicName": {"Fn::Sub": "${Stage}-${AWS::Region}"}},
                }
            },
            {},
            "Template format error: Unresolved resource dependencies [Stage] in the Resources block of the template",
        ),
        (
            {"T": {"Type": "AWS::SNS::Topic", "DependsOn": ["Queue"]}},
            {},
            "Template format error: Unresolved resource dependencies [Queue] in the Resources block of the template",
        ),
        (
            {"T": {"Type": "AWS::SNS::Topic"}},
            {"Name": {"Value": {"Ref": "Topic"}}},
            "Template format error: Unresolved resource dependencies [Topic] in the Outputs block of the template",
        ),
        (
            {"T": {"Type": "AWS::SNS::Topic"}},
            {"Arn": {"Value": {"Fn::GetAtt": ["Topic", "TopicArn"]}}},
            "Template error: instance of Fn::GetAtt references undefined resource Topic",
        ),
    ],
)
def test_references_to_undeclared_names_are_refused(
    cfn: Any, resources: dict[str, Any], outputs: dict[str, Any], expected: str
) -> None:
    template = {"Parameters": {"Env": {"Type": "String", "Default": "dev"}}, "Resources": resources}
    if outputs:
        template["Outputs"] = outputs
    assert refusal(cfn.create_stack, StackName="refs", TemplateBody=body(template)) == expected


def test_declared_pseudo_and_sub_variables_are_not_unresolved(cfn: Any) -> None:
    template = {
        "Parameters": {"Env": {"Type": "String", "Default": "dev"}},
        "Resources": {
            "Q": {"Type": "AWS::SQS::Queue"},
            "P": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "Tags": [
                        {
                            "Key": "k",
                            "Value": {
                                "Fn::Sub": [
                                    "${Env}-${AWS::StackName}-${Q.QueueName}-${Local}-${!Literal}",
                                    {"Local": "x"},
                                ]
                            },
                        }
                    ],
                },
            },
        },
    }
    cfn.create_stack(StackName="subs", TemplateBody=body(template))
    assert status(cfn, "subs") == "CREATE_COMPLETE"


@pytest.mark.parametrize(
    ("declaration", "value", "expected"),
    [
        ({"AllowedValues": ["dev", "prod"]}, "qa", "Parameter 'Env' must be one of AllowedValues"),
        ({"AllowedPattern": "[a-z]+"}, "Dev1", "Parameter 'Env' must match pattern [a-z]+"),
        ({"MinLength": 3}, "ab", "Parameter 'Env' must contain at least 3 characters"),
        ({"MaxLength": "4"}, "abcde", "Parameter 'Env' must contain at most 4 characters"),
        ({"Type": "Number", "MinValue": 5}, "4", "Parameter 'Env' must be a number not less than 5"),
        ({"Type": "Number", "MaxValue": "10"}, "11", "Parameter 'Env' must be a number not greater than 10"),
        ({"Type": "Number"}, "five", "Parameter 'Env' must be a number"),
        (
            {"AllowedPattern": "[a-z]+", "ConstraintDescription": "lower-case letters only"},
            "Dev1",
            "Parameter 'Env' failed to satisfy constraint: lower-case letters only",
        ),
        (
            {"Type": "CommaDelimitedList", "AllowedValues": ["a", "b"]},
            "a,c",
            "Parameter 'Env' must be one of AllowedValues",
        ),
    ],
)
def test_parameter_values_outside_their_constraints_are_refused(
    cfn: Any, declaration: dict[str, Any], value: str, expected: str
) -> None:
    template = {
        "Parameters": {"Env": {"Type": "String", **declaration}},
        "Resources": {"T": {"Type": "AWS::SNS::Topic"}},
    }
    parameters = [{"ParameterKey": "Env", "ParameterValue": value}]
    assert (
        refusal(cfn.create_stack, StackName="p", TemplateBody=body(template), Parameters=parameters)
        == expected
    )
    assert cfn.describe_stacks()["Stacks"] == []


def test_defaults_are_checked_and_valid_values_pass(cfn: Any) -> None:
    template = {
        "Parameters": {
            "Env": {"Type": "String", "AllowedValues": ["dev", "prod"], "Default": "staging"},
            "Size": {"Type": "Number", "MinValue": 1, "MaxValue": 10, "Default": 5},
        },
        "Resources": {"T": {"Type": "AWS::SNS::Topic"}},
    }
    assert refusal(cfn.create_stack, StackName="d", TemplateBody=body(template)) == (
        "Parameter 'Env' must be one of AllowedValues"
    )
    cfn.create_stack(
        StackName="d",
        TemplateBody=body(template),
        Parameters=[{"ParameterKey": "Env", "ParameterValue": "prod"}],
    )
    assert status(cfn, "d") == "CREATE_COMPLETE"
    assert (
        refusal(
            cfn.update_stack,
            StackName="d",
            UsePreviousTemplate=True,
            Parameters=[
                {"ParameterKey": "Env", "ParameterValue": "prod"},
                {"ParameterKey": "Size", "ParameterValue": "11"},
            ],
        )
        == "Parameter 'Size' must be a number not greater than 10"
    )


# ------------------------------------------------------------------ B.3 properties at resource creation


def test_property_typo_fails_the_resource_with_the_handlers_message(cfn: Any) -> None:
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"MessageRetentionPeriodd": 60}}}
    }
    cfn.create_stack(StackName="typo", TemplateBody=body(template))
    assert status(cfn, "typo") == "ROLLBACK_COMPLETE"
    assert resource_events(cfn, "typo", "Queue") == [
        ("CREATE_IN_PROGRESS", "", ""),
        (
            "CREATE_FAILED",
            "",
            "Properties validation failed for resource Queue with message: #: extraneous key "
            "[MessageRetentionPeriodd] is not permitted",
        ),
    ]
    assert boto3.client("sqs", region_name=REGION).list_queues().get("QueueUrls", []) == []


def test_wrong_types_nested_keys_and_several_problems_are_all_named(cfn: Any) -> None:
    template = {
        "Resources": {
            "Queue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"VisibilityTimeout": "soon", "Tags": [{"Key": "a", "Valu": "b"}]},
            }
        }
    }
    cfn.create_stack(StackName="types", TemplateBody=body(template))
    reason = resource_events(cfn, "types", "Queue")[-1][2]
    assert reason == (
        "Properties validation failed for resource Queue with message: [#/Tags/0: required key [Value] not "
        "found, #/Tags/0: extraneous key [Valu] is not permitted, #/VisibilityTimeout: expected type: "
        "Integer, found: String]"
    ) or reason.startswith("Properties validation failed for resource Queue with message: [")
    assert "#/VisibilityTimeout: expected type: Integer, found: String" in reason
    assert "#/Tags/0: extraneous key [Valu] is not permitted" in reason
    assert "#/Tags/0: required key [Value] not found" in reason


def test_values_cloudformation_converts_and_intrinsics_are_accepted(cfn: Any) -> None:
    template = {
        "Parameters": {"Seconds": {"Type": "Number", "Default": 30}},
        "Resources": {
            "Dlq": {"Type": "AWS::SQS::Queue"},
            "Queue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "VisibilityTimeout": {"Ref": "Seconds"},
                    "DelaySeconds": "5",
                    "FifoQueue": {"Ref": "AWS::NoValue"},
                    "RedrivePolicy": {
                        "deadLetterTargetArn": {"Fn::GetAtt": ["Dlq", "Arn"]},
                        "maxReceiveCount": 3,
                    },
                },
            },
        },
    }
    cfn.create_stack(StackName="converts", TemplateBody=body(template))
    assert status(cfn, "converts") == "CREATE_COMPLETE"


def test_an_update_with_a_typo_fails_and_rolls_back(cfn: Any) -> None:
    good = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": 30}}}}
    cfn.create_stack(StackName="upd", TemplateBody=body(good))
    bad = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeot": 60}}}}
    cfn.update_stack(StackName="upd", TemplateBody=body(bad))
    assert status(cfn, "upd") == "UPDATE_ROLLBACK_COMPLETE"
    failed = [e for e in resource_events(cfn, "upd", "Queue") if e[0] == "UPDATE_FAILED"]
    assert failed[0][2] == (
        "Properties validation failed for resource Queue with message: #: extraneous key [VisibilityTimeot] "
        "is not permitted"
    )


# ---------------------------------------------------------------------------------- B.4 replacement


QUEUE_NAMED: dict[str, Any] = {
    "Parameters": {"Name": {"Type": "String"}, "Timeout": {"Type": "Number", "Default": 30}},
    "Resources": {
        "Queue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {"QueueName": {"Ref": "Name"}, "VisibilityTimeout": {"Ref": "Timeout"}},
        }
    },
    "Outputs": {"Url": {"Value": {"Ref": "Queue"}}},
}


def params(**values: str) -> list[dict[str, str]]:
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def queue_urls() -> list[str]:
    return sorted(boto3.client("sqs", region_name=REGION).list_queues().get("QueueUrls", []))


def test_changing_a_create_only_property_replaces_the_resource(cfn: Any) -> None:
    cfn.create_stack(StackName="rep", TemplateBody=body(QUEUE_NAMED), Parameters=params(Name="old-q"))
    old_url = queue_urls()[0]
    cfn.create_change_set(
        StackName="rep", ChangeSetName="rename", ChangeSetType="UPDATE", UsePreviousTemplate=True,
        Parameters=params(Name="new-q"),
    )  # fmt: skip
    change = cfn.describe_change_set(StackName="rep", ChangeSetName="rename")["Changes"][0]["ResourceChange"]
    assert (change["Action"], change["Replacement"]) == ("Modify", "True")
    cfn.execute_change_set(StackName="rep", ChangeSetName="rename")
    assert status(cfn, "rep") == "UPDATE_COMPLETE"
    new_url = queue_urls()[0]
    assert queue_urls() == [new_url]
    assert new_url.endswith("/new-q")
    assert old_url.endswith("/old-q")
    stack_events = [(e["LogicalResourceId"], e["ResourceStatus"], e.get("PhysicalResourceId"), e.get("ResourceStatusReason"))
                    for e in events(cfn, "rep")]  # fmt: skip
    update_part = stack_events[
        stack_events.index(("rep", "UPDATE_IN_PROGRESS", stack_events[0][2], "User Initiated")) :
    ]
    assert [(name, state, physical) for name, state, physical, _ in update_part] == [
        ("rep", "UPDATE_IN_PROGRESS", stack_events[0][2]),
        ("Queue", "UPDATE_IN_PROGRESS", old_url),
        ("Queue", "UPDATE_IN_PROGRESS", new_url),
        ("Queue", "UPDATE_COMPLETE", new_url),
        ("rep", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", stack_events[0][2]),
        ("Queue", "DELETE_IN_PROGRESS", old_url),
        ("Queue", "DELETE_COMPLETE", old_url),
        ("rep", "UPDATE_COMPLETE", stack_events[0][2]),
    ]
    assert update_part[1][3] == (
        "Requested update requires the creation of a new physical resource; hence creating one."
    )
    assert cfn.describe_stacks(StackName="rep")["Stacks"][0]["Outputs"][0]["OutputValue"] == new_url
    resource = cfn.describe_stack_resources(StackName="rep")["StackResources"][0]
    assert resource["PhysicalResourceId"] == new_url


def test_an_in_place_change_keeps_the_physical_resource(cfn: Any) -> None:
    cfn.create_stack(StackName="inplace", TemplateBody=body(QUEUE_NAMED), Parameters=params(Name="same-q"))
    before = queue_urls()
    cfn.create_change_set(
        StackName="inplace", ChangeSetName="timeout", ChangeSetType="UPDATE", UsePreviousTemplate=True,
        Parameters=params(Name="same-q", Timeout="60"),
    )  # fmt: skip
    change = cfn.describe_change_set(StackName="inplace", ChangeSetName="timeout")["Changes"][0][
        "ResourceChange"
    ]
    assert change["Replacement"] == "False"
    cfn.execute_change_set(StackName="inplace", ChangeSetName="timeout")
    assert status(cfn, "inplace") == "UPDATE_COMPLETE"
    assert queue_urls() == before
    assert not [e for e in resource_events(cfn, "inplace", "Queue") if e[0].startswith("DELETE")]


def test_a_failed_update_deletes_the_new_resource_and_keeps_the_old(cfn: Any) -> None:
    cfn.create_stack(StackName="rb", TemplateBody=body(QUEUE_NAMED), Parameters=params(Name="keep-q"))
    broken = json.loads(body(QUEUE_NAMED))
    broken["Resources"]["Later"] = {
        "Type": "AWS::EC2::Subnet",
        "DependsOn": "Queue",
        "Properties": {"VpcId": "vpc-0123456789abcdef0", "CidrBlock": "10.0.0.0/24"},
    }
    cfn.update_stack(StackName="rb", TemplateBody=body(broken), Parameters=params(Name="temp-q"))
    assert status(cfn, "rb") == "UPDATE_ROLLBACK_COMPLETE"
    assert [url.rsplit("/", 1)[1] for url in queue_urls()] == ["keep-q"]
    queue = resource_events(cfn, "rb", "Queue")
    assert queue[-2:] == [
        ("DELETE_IN_PROGRESS", queue[-1][1], ""),
        ("DELETE_COMPLETE", queue[-1][1], ""),
    ]
    assert queue[-1][1].endswith("/temp-q")


def test_a_custom_name_that_stays_cannot_be_replaced(cfn: Any) -> None:
    role = {
        "Parameters": {"Path": {"Type": "String", "Default": "/a/"}},
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": "fixed-name",
                    "Path": {"Ref": "Path"},
                    "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []},
                },
            }
        },
    }
    cfn.create_stack(StackName="named", TemplateBody=body(role))
    cfn.update_stack(StackName="named", UsePreviousTemplate=True, Parameters=params(Path="/b/"))
    assert status(cfn, "named") == "UPDATE_ROLLBACK_COMPLETE"
    failed = [e for e in resource_events(cfn, "named", "Role") if e[0] == "UPDATE_FAILED"]
    assert failed[0][2] == (
        "CloudFormation cannot update a stack when a custom-named resource requires replacing. Rename "
        "fixed-name and update the stack again."
    )


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


# ----------------------------------------------------------- B.7 types moto does not emulate, simulated

DISTRIBUTION: dict[str, Any] = {
    "Parameters": {"Comment": {"Type": "String", "Default": "one"}},
    "Resources": {
        "Queue": {"Type": "AWS::SQS::Queue"},
        "Cdn": {
            "Type": "AWS::CloudFront::Distribution",
            "Properties": {
                "DistributionConfig": {
                    "Enabled": True,
                    "Comment": {"Ref": "Comment"},
                    "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all",
                                             "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"},
                    "Origins": [{"Id": "o", "DomainName": "example.com", "CustomOriginConfig": {"OriginProtocolPolicy": "https-only"}}],
                }
            },
        },
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": {"Fn::Sub": "${Cdn}-topic"}}},
    },
    "Outputs": {
        "Domain": {"Value": {"Fn::GetAtt": ["Cdn", "DomainName"]}},
        "Id": {"Value": {"Ref": "Cdn"}},
    },
}  # fmt: skip


def simulate_mode() -> None:
    install(StackSimulation(stack_seconds=0, unsupported="simulate"))


def test_simulated_resources_get_ids_attributes_and_say_so(cfn: Any) -> None:
    simulate_mode()
    cfn.create_stack(StackName="sim", TemplateBody=body(DISTRIBUTION))
    stack = cfn.describe_stacks(StackName="sim")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["Id"].startswith("sim-Cdn-")
    assert re.fullmatch(r"[a-z0-9-]+\.cloudfront\.us-east-1\.amazonaws\.com", outputs["Domain"]), outputs
    topics = boto3.client("sns", region_name=REGION).list_topics()["Topics"]
    assert topics[0]["TopicArn"].endswith(f":{outputs['Id']}-topic")  # a real resource used the Ref
    cdn = resource_events(cfn, "sim", "Cdn")
    assert [state for state, _, _ in cdn] == ["CREATE_IN_PROGRESS", "CREATE_COMPLETE"]
    assert all("SIMULATED by the local AWS" in reason for _, _, reason in cdn)
    assert not any("SIMULATED" in reason for _, _, reason in resource_events(cfn, "sim", "Queue"))

    cfn.update_stack(StackName="sim", UsePreviousTemplate=True, Parameters=params(Comment="two"))
    assert status(cfn, "sim") == "UPDATE_COMPLETE"
    assert [state for state, _, _ in resource_events(cfn, "sim", "Cdn")][-2:] == [
        "UPDATE_IN_PROGRESS",
        "UPDATE_COMPLETE",
    ]
    cfn.delete_stack(StackName="sim")
    deleted = resource_events(cfn, stack["StackId"], "Cdn")
    assert [state for state, _, _ in deleted][-2:] == ["DELETE_IN_PROGRESS", "DELETE_COMPLETE"]
    assert all("SIMULATED by the local AWS" in reason for _, _, reason in deleted)
    assert boto3.client("sns", region_name=REGION).list_topics()["Topics"] == []


def test_simulated_resources_are_validated_and_replaced(cfn: Any) -> None:
    simulate_mode()
    topic = {"Type": "AWS::SNS::Topic"}
    typo = {"Resources": {"Topic": topic, "Sub": {"Type": "AWS::SNS::Subscription",
                                                  "Properties": {"Protocol": "sqs", "TopicArnn": {"Ref": "Topic"}}}}}  # fmt: skip
    cfn.create_stack(StackName="simtypo", TemplateBody=body(typo))
    reason = resource_events(cfn, "simtypo", "Sub")[-1][2]
    assert reason.startswith(
        "Properties validation failed for resource Sub with message: [#: required key [TopicArn] not found, "
        "#: extraneous key [TopicArnn] is not permitted] (SIMULATED by the local AWS"
    )

    subscription = {
        "Parameters": {"Endpoint": {"Type": "String"}},
        "Resources": {
            "Topic": topic,
            "Sub": {"Type": "AWS::SNS::Subscription",
                    "Properties": {"Protocol": "email", "Endpoint": {"Ref": "Endpoint"}, "TopicArn": {"Ref": "Topic"}}},
        },
        "Outputs": {"Sub": {"Value": {"Ref": "Sub"}}},
    }  # fmt: skip
    cfn.create_stack(
        StackName="simrep", TemplateBody=body(subscription), Parameters=params(Endpoint="a@example.com")
    )
    first = cfn.describe_stacks(StackName="simrep")["Stacks"][0]["Outputs"][0]["OutputValue"]
    assert first.startswith("arn:aws:sns:us-east-1:123456789012:subscription/simrep-Sub-")
    cfn.update_stack(
        StackName="simrep", UsePreviousTemplate=True, Parameters=params(Endpoint="b@example.com")
    )
    assert status(cfn, "simrep") == "UPDATE_COMPLETE"
    second = cfn.describe_stacks(StackName="simrep")["Stacks"][0]["Outputs"][0]["OutputValue"]
    assert second != first
    sequence = [(state, physical) for state, physical, _ in resource_events(cfn, "simrep", "Sub")]
    assert sequence == [
        ("CREATE_IN_PROGRESS", ""),
        ("CREATE_COMPLETE", first),
        ("UPDATE_IN_PROGRESS", first),
        ("UPDATE_IN_PROGRESS", second),
        ("UPDATE_COMPLETE", second),
        ("DELETE_IN_PROGRESS", first),
        ("DELETE_COMPLETE", first),
    ]


@pytest.mark.parametrize(
    ("mode", "final"),
    [("fail", "ROLLBACK_COMPLETE"), ("skip", "CREATE_COMPLETE"), ("simulate", "CREATE_COMPLETE")],
)
def test_each_mode_treats_an_unemulated_type_its_own_way(cfn: Any, mode: str, final: str) -> None:
    install(StackSimulation(stack_seconds=0, unsupported=mode))
    template = {"Resources": {"Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {
        "ComparisonOperator": "GreaterThanThreshold", "EvaluationPeriods": 1, "Threshold": 1,
        "MetricName": "Errors", "Namespace": "AWS/Lambda", "Statistic": "Sum", "Period": 60}}}}  # fmt: skip
    cfn.create_stack(StackName="modes", TemplateBody=body(template))
    assert status(cfn, "modes") == final
    reasons = [reason for _, _, reason in resource_events(cfn, "modes", "Alarm")]
    expected = {
        "fail": "resource type AWS::CloudWatch::Alarm is not emulated by the local AWS",
        "skip": "WARNING: skipped: resource type AWS::CloudWatch::Alarm is not emulated by the local AWS",
        "simulate": "SIMULATED by the local AWS (NEXUS_LOCAL_UNSUPPORTED=simulate): AWS::CloudWatch::Alarm is "
        "not emulated, so no real resource exists",
    }[mode]
    assert reasons[-1] == expected
