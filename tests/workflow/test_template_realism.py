"""What the embedded CloudFormation refuses reaches the API's user as AWS says it (issue 13 B.2-B.6).

Each deployment runs the real workflow on the local AWS; the default permission profile's role deploys.
"""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import call, default_profile_and, register_target, stacks_in, wait_for
from tests.workflow.lifecycle_helpers import settle

NAMED_QUEUE = json.dumps(
    {
        "Parameters": {"Name": {"Type": "String"}},
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Ref": "Name"}}}},
        "Outputs": {"Url": {"Value": {"Ref": "Queue"}}},
    }
)


def deploy(client: Any, tenant: Any, target: dict[str, Any], template: str, **extra: Any) -> dict[str, Any]:
    body = {
        "target_id": target["target_id"],
        "region": "us-east-1",
        "stack_name": "app",
        "template_body": template,
    }
    response = call(client, "POST", "/deployments", tenant, {**body, **extra})
    assert response.status_code == 202, response.body
    return wait_for(client, tenant, json.loads(response.body)["deployment_id"])


def test_a_property_typo_fails_the_deployment_with_the_handlers_message(client, tenant, local_aws):
    target = register_target(client, tenant, local_aws)
    typo = json.dumps(
        {"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimout": 5}}}}
    )
    done = deploy(client, tenant, target, typo)
    assert done["status"] == "FAILED"
    assert done["error"]["code"] == "STACK_CREATE_FAILED"
    assert (
        "Properties validation failed for resource Queue with message: #: extraneous key [VisibilityTimout] is "
        "not permitted" in done["error"]["message"]
    )


def test_an_unknown_type_and_a_bad_parameter_value_are_refused_at_the_stack_call(client, tenant, local_aws):
    target = register_target(client, tenant, local_aws)
    bucket = json.dumps({"Resources": {"B": {"Type": "AWS::S3::Buckett"}}})
    done = deploy(client, tenant, target, bucket)
    assert done["status"] == "FAILED"
    assert (
        "Template format error: Unrecognized resource types: [AWS::S3::Buckett]" in done["error"]["message"]
    )
    env = json.dumps(
        {
            "Parameters": {"Env": {"Type": "String", "AllowedValues": ["dev", "prod"]}},
            "Resources": {"T": {"Type": "AWS::SNS::Topic"}},
        }
    )
    response = call(client, "POST", "/deployments", tenant, {
        "target_id": target["target_id"], "region": "us-east-1", "stack_name": "env", "template_body": env,
        "parameters": {"Env": "qa"}})  # fmt: skip
    if (
        response.status_code == 202
    ):  # the service leaves the value to CloudFormation: the stack call refuses it
        done = wait_for(client, tenant, json.loads(response.body)["deployment_id"])
        assert "Parameter 'Env' must be one of AllowedValues" in done["error"]["message"]
    else:  # the service refuses it itself, before any AWS call
        assert response.status_code == 422, response.body
    assert [s["StackName"] for s in stacks_in(local_aws, target["account_id"])] == []


def test_a_plan_shows_a_replacement_and_apply_replaces_the_queue(client, tenant, local_aws):
    target = register_target(client, tenant, local_aws)
    created = deploy(client, tenant, target, NAMED_QUEUE, parameters={"Name": "first"})
    assert created["status"] == "ACTIVE"
    deployment_id = created["deployment_id"]
    planned = call(
        client,
        "PUT",
        f"/deployments/{deployment_id}",
        tenant,
        {"parameters": {"Name": "second"}, "mode": "plan"},
    )
    assert planned.status_code == 202, planned.body
    plan = settle(client, tenant, deployment_id)
    assert plan["operation"]["status"] == "PLANNED", plan
    assert [(c["logical_id"], c["action"], c["replacement"]) for c in plan["changes"]] == [
        ("Queue", "Modify", True)
    ]
    applied = call(client, "POST", f"/deployments/{deployment_id}/apply", tenant, {})
    assert applied.status_code == 202, applied.body
    done = wait_for(client, tenant, deployment_id)
    assert done["status"] == "ACTIVE"
    sqs = local_aws.account_session(target["account_id"]).client("sqs", region_name="us-east-1")
    assert [url.rsplit("/", 1)[1] for url in sqs.list_queues()["QueueUrls"]] == ["second"]
    assert done["outputs"]["Url"].endswith("/second")


def test_a_sam_template_deploys_through_the_api(client, tenant, local_aws):
    target = register_target(
        client, tenant, local_aws, profile=default_profile_and("SamFunction", "lambda:*", "iam:*")
    )
    sam = "\n".join(
        [
            "Transform: AWS::Serverless-2016-10-31",
            "Resources:",
            "  Fn:",
            "    Type: AWS::Serverless::Function",
            "    Properties:",
            "      Runtime: python3.12",
            "      Handler: index.handler",
            "      InlineCode: 'def handler(event, context): return event'",
        ]
    )
    done = deploy(client, tenant, target, sam)
    assert done["status"] == "ACTIVE", done.get("error")
    cfn = local_aws.account_session(target["account_id"]).client("cloudformation", region_name="us-east-1")
    types = {r["ResourceType"] for r in cfn.describe_stack_resources(StackName="app")["StackResources"]}
    assert types == {"AWS::Lambda::Function", "AWS::IAM::Role"}
