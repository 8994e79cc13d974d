"""The local AWS refuses the templates and properties AWS refuses (issue 13 B.2-B.3), through plain
boto3 calls.

Templates are checked at CreateStack/UpdateStack/CreateChangeSet (resource types, references to undeclared
names, parameter values against their constraints), and properties at resource creation against the
type's provider schema: the resource fails with the handler's message.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from tests.localaws.conftest import REGION, body, refusal, resource_events, status

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
