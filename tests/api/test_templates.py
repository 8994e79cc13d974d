"""POST /templates/describe, a deployment's template summary, and the same constraints on deploy.

Through Chalice's test client against the local AWS. describe makes no AWS call beyond the token's
DynamoDB read (counted); a deploy whose values break a constraint is refused before anything is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import call, deploy, deployment_request, register_target, wait_for

WIZARD_APP = (Path(__file__).parents[1] / "console" / "templates" / "wizard-app.yaml").read_text()
IAM_TEMPLATE = json.dumps(
    {
        "Transform": "AWS::Serverless-2016-10-31",
        "Parameters": {
            "Size": {"Type": "Number", "MinValue": "1", "MaxValue": 10, "Default": 2},
            "Zones": {"Type": "CommaDelimitedList", "AllowedValues": ["a", "b", "c"], "Default": "a,b"},
            "Key": {"Type": "AWS::EC2::KeyPair::KeyName"},
        },
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {"RoleName": "fixed", "AssumeRolePolicyDocument": {}},
            },
            "Policy": {"Type": "AWS::IAM::Policy", "Properties": {}},
            "Q1": {"Type": "AWS::SQS::Queue"},
            "Q2": {"Type": "AWS::SQS::Queue"},
        },
        "Outputs": {"Q": {"Value": {"Ref": "Q1"}, "Export": {"Name": "queue-one"}, "Description": "first"}},
    }
)


def describe(client, tenant, body: Any) -> tuple[int, dict[str, Any]]:
    response = call(client, "POST", "/templates/describe", tenant, body)
    return response.status_code, json.loads(response.body)


def test_describe_reads_every_attribute_without_calling_aws(client, tenant, aws_calls) -> None:
    aws_calls.clear()
    status, summary = describe(client, tenant, {"template_body": WIZARD_APP})
    assert status == 200, summary
    assert [c[0] for c in aws_calls.calls] == ["dynamodb"]  # the token's tenant, nothing else
    parameters = {p["name"]: p for p in summary["parameters"]}
    assert list(parameters) == ["Environment", "AppName", "ApiSecret"]
    assert parameters["Environment"]["allowed_values"] == ["dev", "staging", "prod"]
    assert parameters["Environment"]["default"] == "dev"
    assert parameters["Environment"]["label"] == "Deployment environment"
    assert parameters["AppName"] == {
        "name": "AppName",
        "type": "String",
        "default": "orders",
        "allowed_values": [],
        "allowed_pattern": "[a-z][a-z0-9-]*",
        "min_length": 3,
        "max_length": 20,
        "min_value": None,
        "max_value": None,
        "no_echo": False,
        "description": "Lower-case name used in resource names.",
        "constraint_description": "3 to 20 lower-case letters, digits or hyphens, starting with a letter.",
        "label": "Application name",
    }
    assert parameters["ApiSecret"]["no_echo"] is True
    assert parameters["ApiSecret"]["default"] is None
    assert summary["parameter_groups"] == [
        {"label": "Application", "parameters": ["Environment", "AppName"]},
        {"label": "Secrets", "parameters": ["ApiSecret"]},
    ]
    assert summary["parameter_labels"]["ApiSecret"] == "API secret"
    assert summary["resource_types"] == {"AWS::S3::Bucket": 1, "AWS::SQS::Queue": 1}
    assert summary["resource_count"] == 2
    assert summary["capabilities"] == []
    assert summary["outputs"] == [
        {"name": "QueueUrl", "description": "Where work is sent.", "export_name": None},
        {"name": "BucketName", "description": None, "export_name": None},
    ]


def test_describe_refuses_a_malformed_template_url_before_reading_the_target(
    client, tenant, aws_calls
) -> None:
    describe(client, tenant, {"template_body": WIZARD_APP})  # the token's tenant looked up once
    aws_calls.clear()
    status, answer = describe(
        client, tenant, {"template_url": "s3://UPPER_Bucket/key.json", "target_id": "tgt-" + "0" * 24}
    )
    assert status == 422, answer
    assert answer["error"]["code"] == "INVALID_TEMPLATE_URL"
    assert aws_calls.calls == []


def test_describe_counts_types_capabilities_numbers_and_exports(client, tenant) -> None:
    status, summary = describe(client, tenant, {"template_body": IAM_TEMPLATE})
    assert status == 200, summary
    assert summary["resource_types"] == {"AWS::IAM::Policy": 1, "AWS::IAM::Role": 1, "AWS::SQS::Queue": 2}
    assert summary["resource_count"] == 4
    assert summary["capabilities"] == ["CAPABILITY_AUTO_EXPAND", "CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
    size = next(p for p in summary["parameters"] if p["name"] == "Size")
    assert (size["min_value"], size["max_value"], size["default"]) == (1, 10, "2")
    key = next(p for p in summary["parameters"] if p["name"] == "Key")
    assert key["type"] == "AWS::EC2::KeyPair::KeyName"
    assert summary["outputs"] == [{"name": "Q", "description": "first", "export_name": "queue-one"}]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"template_body": "not: [a template"}, 422, "INVALID_TEMPLATE"),
        ({"template_body": json.dumps({"Resources": {}})}, 422, "INVALID_TEMPLATE"),
        ({}, 422, "VALIDATION_FAILED"),
        ({"template_body": "x", "template_url": "s3://b/k"}, 422, "VALIDATION_FAILED"),
        ({"template_url": "s3://bucket/key.yaml"}, 422, "VALIDATION_FAILED"),
        ({"template_body": WIZARD_APP, "extra": 1}, 422, "VALIDATION_FAILED"),
    ],
)
def test_describe_refuses_what_is_not_a_template(client, tenant, body, status, code) -> None:
    got, answer = describe(client, tenant, body)
    assert got == status, answer
    assert answer["error"]["code"] == code
    assert answer["error"]["hint"]


def test_describe_needs_a_token(client) -> None:
    response = call(client, "POST", "/templates/describe", None, {"template_body": WIZARD_APP})
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("parameters", "problem"),
    [
        ({"ApiSecret": "short"}, "ApiSecret"),
        ({"ApiSecret": "long-enough", "AppName": "Not Valid!"}, "3 to 20 lower-case letters"),
        ({"ApiSecret": "long-enough", "AppName": "ab"}, "3 to 20 lower-case letters"),
        ({"ApiSecret": "long-enough", "Environment": "qa"}, "must be one of dev, staging, prod"),
    ],
)
def test_deploy_checks_the_same_constraints_before_writing(
    client, tenant, local_aws, parameters, problem
) -> None:
    target = register_target(client, tenant, local_aws)
    body = deployment_request(target["target_id"], "constrained", WIZARD_APP, parameters=parameters)
    response = call(client, "POST", "/deployments", tenant, body)
    assert response.status_code == 422, response.body
    error = json.loads(response.body)["error"]
    assert error["code"] == "PARAMETER_CONSTRAINT"
    assert problem in json.dumps(error)
    assert "short" not in error["message"]
    assert "long-enough" not in json.dumps(error)
    listed = json.loads(call(client, "GET", "/deployments", tenant).body)
    assert listed["items"] == []


def test_template_summary_of_a_deployment_and_an_update_that_keeps_the_secret(
    client, tenant, local_aws
) -> None:
    target = register_target(client, tenant, local_aws)
    deployment_id = deploy(
        client,
        tenant,
        target["target_id"],
        "summarised",
        WIZARD_APP,
        parameters={"ApiSecret": "first-secret"},
    )
    assert wait_for(client, tenant, deployment_id)["status"] == "ACTIVE"

    response = call(client, "GET", f"/deployments/{deployment_id}/template-summary", tenant)
    assert response.status_code == 200, response.body
    assert [p["name"] for p in json.loads(response.body)["parameters"]] == [
        "Environment",
        "AppName",
        "ApiSecret",
    ]

    # An update that leaves the NoEcho parameter out keeps its value (UsePreviousValue).
    updated = call(
        client, "PUT", f"/deployments/{deployment_id}", tenant, {"parameters": {"Environment": "prod"}}
    )
    assert updated.status_code == 202, updated.body
    assert wait_for(client, tenant, deployment_id)["status"] == "ACTIVE"
    # ... while a plain parameter left out takes its Default, as CloudFormation does.
    refused = call(client, "PUT", f"/deployments/{deployment_id}", tenant, {"parameters": {"AppName": "x"}})
    assert refused.status_code == 422
    assert json.loads(refused.body)["error"]["code"] == "PARAMETER_CONSTRAINT"

    missing = call(client, "GET", "/deployments/dep-000000000000000000000000/template-summary", tenant)
    assert missing.status_code == 404


def test_events_answer_a_cursor_that_reads_only_new_events(client, tenant, local_aws) -> None:
    target = register_target(client, tenant, local_aws)
    queue = json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})
    deployment_id = deploy(client, tenant, target["target_id"], "followed", queue)
    wait_for(client, tenant, deployment_id)
    first = json.loads(call(client, "GET", f"/deployments/{deployment_id}/events?limit=100", tenant).body)
    assert first["items"]
    assert first["next_token"] is None
    assert first["cursor"]
    after = json.loads(
        call(client, "GET", f"/deployments/{deployment_id}/events?next_token={first['cursor']}", tenant).body
    )
    assert after["items"] == []
    assert after["cursor"] == first["cursor"]

    call(client, "DELETE", f"/deployments/{deployment_id}", tenant)
    wait_for(client, tenant, deployment_id)
    newer = json.loads(
        call(client, "GET", f"/deployments/{deployment_id}/events?next_token={first['cursor']}", tenant).body
    )
    assert newer["items"], "the delete's events come after the cursor"
    assert not {json.dumps(e) for e in newer["items"]} & {json.dumps(e) for e in first["items"]}
    assert "delete" in json.dumps(newer["items"]).lower()


RUNAWAY = json.dumps(
    {
        "Parameters": {
            "Name": {"Type": "String", "AllowedPattern": "(a|aa)+$"},
            "Code": {"Type": "String", "AllowedPattern": "[a-z]+"},
        },
        "Resources": {"Q": {"Type": "AWS::SQS::Queue"}},
    }
)


def test_a_runaway_allowed_pattern_is_left_to_cloudformation_not_matched_for_hours(
    client, tenant, local_aws
) -> None:
    """(a|aa)+$ against 40 a's and a '!' backtracks 2^40 times: matched with a time limit, the value is left
    for CloudFormation to judge, so the request is answered (and the local AWS, which uses the same
    limit, creates the stack) while an ordinary pattern on the same template is still checked."""
    target = register_target(client, tenant, local_aws)
    refused = call(
        client,
        "POST",
        "/deployments",
        tenant,
        deployment_request(
            target["target_id"], "runaway", RUNAWAY, parameters={"Name": "a" * 40 + "!", "Code": "NOT-LOWER"}
        ),
    )
    assert refused.status_code == 422, refused.body
    details = json.loads(refused.body)["error"]["details"]["parameters"]
    assert [p["parameter"] for p in details] == ["Code"]  # Name: undecided here, not refused

    deployment_id = deploy(
        client,
        tenant,
        target["target_id"],
        "runaway",
        RUNAWAY,
        parameters={"Name": "a" * 40 + "!", "Code": "ok"},
    )
    assert wait_for(client, tenant, deployment_id)["status"] == "ACTIVE"


def test_pattern_matches_decides_ordinary_patterns_and_gives_up_on_runaway_ones() -> None:
    from chalicelib.domain.parameters import pattern_matches

    assert pattern_matches("[a-z]+", "abc") is True
    assert pattern_matches("[a-z]+", "abc1") is False  # the whole value, as CloudFormation matches
    assert pattern_matches("(?<name", "x") is None  # not a pattern Python's engine reads
    assert pattern_matches("(a|aa)+$", "a" * 40 + "!") is None  # would backtrack 2^40 times
