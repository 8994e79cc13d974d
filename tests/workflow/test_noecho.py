"""NoEcho parameters: never answered, never stored, never in an execution or a log; kept on updates.

The value reaches the stack (an SSM parameter in the target account holds it), and nowhere else: every API
answer of the test, every DynamoDB item, every execution history, the captured logs and the central
account's secrets are searched for it after the operations end.
"""

from __future__ import annotations

import json
import logging

from tests.conftest import (
    TARGET_ACCOUNT,
    call,
    default_profile_and,
    execution_history,
    register_target,
    wait_for,
)

SECRET = "n0echo-Secret-7f3a9c"
NEWER = "n0echo-Rotated-41b2d8"
TEMPLATE = json.dumps(
    {
        "Parameters": {
            "DbPassword": {"Type": "String", "NoEcho": True},
            "Env": {"Type": "String", "Default": "dev"},
        },
        "Resources": {
            "Pw": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": "db-password", "Type": "String", "Value": {"Ref": "DbPassword"}},
            }
        },
        "Outputs": {"Name": {"Value": {"Ref": "Pw"}}},
    }
)


# The guide's policy grants no SSM action: the roles here may manage the parameter that holds the value.
SSM_PARAMETERS = default_profile_and(
    "SsmParameters",
    "ssm:PutParameter",
    "ssm:GetParameters",
    "ssm:AddTagsToResource",
    "ssm:RemoveTagsFromResource",
    "ssm:DeleteParameter",
)


def stack_value(local_aws, name: str) -> str:
    ssm = local_aws.account_session(TARGET_ACCOUNT).client("ssm", region_name="us-east-1")
    return str(ssm.get_parameter(Name=name)["Parameter"]["Value"])


def test_noecho_value_is_masked_kept_on_update_and_found_nowhere(client, tenant, local_aws, caplog, capsys):
    caplog.set_level(logging.DEBUG, logger="chalicelib")
    answers: list[str] = []

    def api(method: str, path: str, body=None):
        response = call(client, method, path, tenant, body)
        answers.append(response.body.decode() if isinstance(response.body, bytes) else str(response.body))
        return response

    target = register_target(client, tenant, local_aws, profile=SSM_PARAMETERS)
    created = api(
        "POST",
        "/deployments",
        {
            "target_id": target["target_id"],
            "region": "us-east-1",
            "stack_name": "db",
            "template_body": TEMPLATE,
            "parameters": {"DbPassword": SECRET, "Env": "prod"},
        },
    )
    assert created.status_code == 202, created.body
    deployment_id = json.loads(created.body)["deployment_id"]
    assert json.loads(created.body)["parameters"] == {"DbPassword": "****", "Env": "prod"}
    done = wait_for(client, tenant, deployment_id)
    assert done["status"] == "ACTIVE", done
    name = done["outputs"]["Name"]
    assert stack_value(local_aws, name) == SECRET

    # Parameters left out: the stack keeps its NoEcho value (UsePreviousValue).
    assert api("PUT", f"/deployments/{deployment_id}", {"tags": {"team": "a"}}).status_code == 202
    assert wait_for(client, tenant, deployment_id)["status"] == "ACTIVE"
    assert stack_value(local_aws, name) == SECRET
    # Parameters sent without it, or with the **** it was shown: kept as well.
    for parameters in ({"Env": "qa"}, {"Env": "qa2", "DbPassword": "****"}):
        assert api("PUT", f"/deployments/{deployment_id}", {"parameters": parameters}).status_code == 202
        assert wait_for(client, tenant, deployment_id)["status"] == "ACTIVE"
        assert stack_value(local_aws, name) == SECRET
    # A new value replaces it.
    assert (
        api("PUT", f"/deployments/{deployment_id}", {"parameters": {"DbPassword": NEWER}}).status_code == 202
    )
    assert wait_for(client, tenant, deployment_id)["status"] == "ACTIVE"
    assert stack_value(local_aws, name) == NEWER
    shown = api("GET", f"/deployments/{deployment_id}")
    assert json.loads(shown.body)["parameters"]["DbPassword"] == "****"
    api("GET", f"/deployments/{deployment_id}/events")

    session = local_aws.central_session()
    items = json.dumps(session.client("dynamodb").scan(TableName=local_aws.central.table_name)["Items"])
    sfn = session.client("stepfunctions")
    executions = sfn.list_executions(stateMachineArn=local_aws.central.state_machine_arn)["executions"]
    histories = "".join(json.dumps(execution_history(local_aws, e["name"]), default=str) for e in executions)
    assert histories.count("ExecutionSucceeded") == 5
    logs = caplog.text + capsys.readouterr().out
    left = session.client("secretsmanager").list_secrets()["SecretList"]
    assert [s["Name"] for s in left if "parameters/" in s["Name"]] == []
    for value in (SECRET, NEWER):
        for name, haystack in (("answers", "".join(answers)), ("items", items), ("histories", histories)):
            assert value not in haystack, name
        assert value not in logs


def test_a_stack_to_create_needs_the_noecho_value(client, tenant, local_aws, aws_calls):
    target = register_target(client, tenant, local_aws, profile=SSM_PARAMETERS)
    aws_calls.clear()
    for parameters in ({}, {"DbPassword": "****"}):
        response = call(
            client,
            "POST",
            "/deployments",
            tenant,
            {
                "target_id": target["target_id"],
                "region": "us-east-1",
                "stack_name": "db",
                "template_body": TEMPLATE,
                "parameters": parameters,
            },
        )
        assert response.status_code == 422, response.body
        error = json.loads(response.body)["error"]
        assert error["code"] == "NOECHO_VALUE_REQUIRED"
        assert error["details"] == {"parameters": ["DbPassword"]}
        assert "sent again" in error["message"]
    # Refused before anything was written or started, beyond reading the target and the token.
    assert aws_calls.count("stepfunctions") == 0
    assert aws_calls.count("secretsmanager") == 0
    assert aws_calls.count("dynamodb", "TransactWriteItems") == 0


def test_noecho_values_past_what_the_secret_store_holds_are_refused_before_any_write(
    client, tenant, local_aws, aws_calls
):
    """Secrets Manager keeps at most 65,536 bytes a secret: 17 certificates of 4,000 characters do not fit."""
    names = [f"Cert{n}" for n in range(17)]
    template = json.dumps(
        {
            "Parameters": {name: {"Type": "String", "NoEcho": True} for name in names},
            "Resources": {"Q": {"Type": "AWS::SQS::Queue"}},
        }
    )
    target = register_target(client, tenant, local_aws, profile=SSM_PARAMETERS)
    aws_calls.clear()
    body = {
        "target_id": target["target_id"],
        "region": "us-east-1",
        "stack_name": "certs",
        "template_body": template,
        "parameters": {name: SECRET + "x" * (4_000 - len(SECRET)) for name in names},
    }
    response = call(client, "POST", "/deployments", tenant, body)
    assert response.status_code == 422, response.body
    error = json.loads(response.body)["error"]
    assert error["code"] == "NOECHO_VALUES_TOO_LARGE"
    assert error["details"]["limit"] == 65_536
    assert error["details"]["bytes"] > 65_536
    assert error["details"]["parameters"] == sorted(names)
    assert SECRET not in response.body.decode()
    assert aws_calls.count("stepfunctions") == 0
    assert aws_calls.count("secretsmanager") == 0
    assert aws_calls.count("dynamodb", "TransactWriteItems") == 0
    # One certificate fewer fits, and deploys.
    del body["parameters"][names[-1]]
    template_16 = json.loads(template)
    del template_16["Parameters"][names[-1]]
    body["template_body"] = json.dumps(template_16)
    assert call(client, "POST", "/deployments", tenant, body).status_code == 202


def test_an_update_whose_template_adds_a_noecho_parameter_needs_its_value(client, tenant, local_aws):
    target = register_target(client, tenant, local_aws, profile=SSM_PARAMETERS)
    plain = json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})
    created = call(
        client,
        "POST",
        "/deployments",
        tenant,
        {"target_id": target["target_id"], "region": "us-east-1", "stack_name": "db", "template_body": plain},
    )
    deployment_id = json.loads(created.body)["deployment_id"]
    assert wait_for(client, tenant, deployment_id)["status"] == "ACTIVE"
    response = call(client, "PUT", f"/deployments/{deployment_id}", tenant, {"template_body": TEMPLATE})
    assert response.status_code == 422, response.body
    assert json.loads(response.body)["error"]["code"] == "NOECHO_VALUE_REQUIRED"
    response = call(
        client,
        "PUT",
        f"/deployments/{deployment_id}",
        tenant,
        {"template_body": TEMPLATE, "parameters": {"DbPassword": SECRET}},
    )
    assert response.status_code == 202, response.body
    assert wait_for(client, tenant, deployment_id)["status"] == "ACTIVE"


def test_a_rollout_keeps_its_noecho_values_only_until_it_ends(client, tenant, local_aws):
    from tests.workflow.test_rollouts import account, register_fleet, start, wait_rollout

    fleet = register_fleet(client, tenant, local_aws, 2, SSM_PARAMETERS)
    body = {
        "stack_name": "db",
        "template_body": TEMPLATE,
        "parameters": {"DbPassword": SECRET},
        "targets": [{"target_id": t["target_id"], "regions": ["us-east-1"]} for t in fleet],
        "strategy": {"max_concurrent": 2},
    }
    rollout = start(client, tenant, body)
    done = wait_rollout(client, tenant, rollout["rollout_id"])
    assert done["status"] == "SUCCEEDED", done
    for n in range(2):
        ssm = local_aws.account_session(account(n)).client("ssm", region_name="us-east-1")
        assert ssm.get_parameter(Name="db-password")["Parameter"]["Value"] == SECRET

    # A second rollout leaving the value out: each item updates its stack and keeps the value.
    kept = start(client, tenant, {**body, "parameters": {"Env": "prod"}})
    assert wait_rollout(client, tenant, kept["rollout_id"])["status"] == "SUCCEEDED"
    for n in range(2):
        ssm = local_aws.account_session(account(n)).client("ssm", region_name="us-east-1")
        assert ssm.get_parameter(Name="db-password")["Parameter"]["Value"] == SECRET

    session = local_aws.central_session()
    items = json.dumps(session.client("dynamodb").scan(TableName=local_aws.central.table_name)["Items"])
    assert SECRET not in items
    left = session.client("secretsmanager").list_secrets()["SecretList"]
    assert [s["Name"] for s in left if "parameters/" in s["Name"]] == []


def test_a_rollout_item_that_creates_its_stack_without_the_value_fails_saying_so(client, tenant, local_aws):
    from tests.workflow.test_rollouts import register_fleet, start, wait_rollout

    fleet = register_fleet(client, tenant, local_aws, 1, SSM_PARAMETERS)
    body = {
        "stack_name": "db",
        "template_body": TEMPLATE,
        "targets": [{"target_id": fleet[0]["target_id"], "regions": ["us-east-1"]}],
    }
    done = wait_rollout(client, tenant, start(client, tenant, body)["rollout_id"])
    assert done["status"] == "FAILED", done
    [item] = done["items"]
    assert item["error"]["code"] == "NOECHO_VALUE_REQUIRED", item


def test_the_mask_of_a_constrained_noecho_value_keeps_it_on_update(client, tenant, local_aws):
    """``****`` (what the API shows) stands for the stack's value: the value's constraints apply to a value
    sent, not to the mask (four characters, under this MinLength of 8)."""
    constrained = json.loads(TEMPLATE)
    constrained["Parameters"]["DbPassword"]["MinLength"] = 8
    target = register_target(client, tenant, local_aws, profile=SSM_PARAMETERS)
    body = {
        "target_id": target["target_id"],
        "region": "us-east-1",
        "stack_name": "db",
        "template_body": json.dumps(constrained),
        "parameters": {"DbPassword": SECRET},
    }
    created = call(client, "POST", "/deployments", tenant, body)
    assert created.status_code == 202, created.body
    deployment_id = json.loads(created.body)["deployment_id"]
    done = wait_for(client, tenant, deployment_id)
    assert done["status"] == "ACTIVE", done
    kept = call(
        client,
        "PUT",
        f"/deployments/{deployment_id}",
        tenant,
        {"parameters": {"DbPassword": "****", "Env": "qa"}},
    )
    assert kept.status_code == 202, kept.body
    assert wait_for(client, tenant, deployment_id)["status"] == "ACTIVE"
    assert stack_value(local_aws, done["outputs"]["Name"]) == SECRET
    short = call(
        client, "PUT", f"/deployments/{deployment_id}", tenant, {"parameters": {"DbPassword": "short"}}
    )
    assert short.status_code == 422, short.body  # a value sent is held to its constraints
    assert json.loads(short.body)["error"]["code"] == "PARAMETER_CONSTRAINT"
