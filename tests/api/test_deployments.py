"""Deployments through Chalice's test client: validation, conflicts, idempotency, listing."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from chalicelib.adapters.dynamodb import DynamoLockStore, SharedTable
from chalicelib.api import http
from chalicelib.domain.model import canonical_json, stack_key
from localaws.environment import CENTRAL_ACCOUNT
from tests.conftest import (
    OTHER_ACCOUNT,
    TARGET_ACCOUNT,
    TARGET_ROLE,
    call,
    create_target_role,
    register_target,
    stacks_in,
    wait_for,
)

QUEUE = json.dumps(
    {"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}, "Outputs": {"Url": {"Value": {"Ref": "Q"}}}}
)


def deployment_body(target: str, **overrides):
    return {
        "target_id": target,
        "region": "us-east-1",
        "stack_name": "queue",
        "template_body": QUEUE,
        **overrides,
    }


@pytest.fixture
def target(client, tenant, local_aws):
    return register_target(client, tenant, local_aws)


def error_of(response):
    body = json.loads(response.body)
    assert set(body["error"]) == {"code", "message", "hint", "details"}
    return body["error"]


def test_deployment_shape(client, tenant, target):
    response = call(client, "POST", "/deployments", tenant, deployment_body(target["target_id"]))
    assert response.status_code == 202
    deployment = json.loads(response.body)
    assert set(deployment) >= {
        "deployment_id", "target_id", "account_id", "region", "stack_name", "status", "stack_status",
        "stack_id", "outputs", "parameters", "error", "created_at", "updated_at", "operation",
    }  # fmt: skip
    assert deployment["account_id"] == TARGET_ACCOUNT
    assert set(deployment["operation"]) == {
        "operation_id", "action", "status", "started_at", "ended_at", "mode", "resources", "adopt"
    }  # fmt: skip
    assert deployment["operation"]["action"] == "create"
    done = wait_for(client, tenant, deployment["deployment_id"])
    assert done["status"] == "ACTIVE"
    assert done["outputs"]["Url"].startswith("https://")


def test_second_post_for_live_stack_is_409_with_put_hint(client, tenant, target):
    first = call(client, "POST", "/deployments", tenant, deployment_body(target["target_id"]))
    wait_for(client, tenant, json.loads(first.body)["deployment_id"])
    again = call(client, "POST", "/deployments", tenant, deployment_body(target["target_id"]))
    assert again.status_code == 409
    error = error_of(again)
    assert error["code"] == "STACK_ALREADY_DEPLOYED"
    assert "PUT" in error["hint"]
    assert error["details"]["deployment_id"] == json.loads(first.body)["deployment_id"]


def test_operation_while_one_runs_is_409(client, tenant, target, local_aws):
    """Once the create has ended, another operation (say, another team's deployment of the same stack
    in the account) holds the stack's lock: the API refuses a delete with STACK_LOCKED, naming it."""
    created = json.loads(
        call(client, "POST", "/deployments", tenant, deployment_body(target["target_id"])).body
    )
    wait_for(client, tenant, created["deployment_id"])  # its own operation is no longer running
    table = local_aws.central_session().resource("dynamodb").Table(local_aws.central.table_name)
    assert DynamoLockStore(SharedTable(table)).acquire_lock(
        stack_key(TARGET_ACCOUNT, "us-east-1", "queue"), "op-other", 900
    )
    refused = call(client, "DELETE", f"/deployments/{created['deployment_id']}", tenant)
    assert refused.status_code == 409
    error = error_of(refused)
    assert (error["code"], error["details"]["operation_id"]) == ("STACK_LOCKED", "op-other"), error
    assert error["hint"]


def test_idempotency_key_replays_and_starts_one_operation(client, tenant, target, aws_calls):
    body = deployment_body(target["target_id"])
    first = call(client, "POST", "/deployments", tenant, body, Idempotency_Key="k-1")
    second = call(client, "POST", "/deployments", tenant, body, Idempotency_Key="k-1")
    assert first.status_code == second.status_code == 202
    assert json.loads(first.body) == json.loads(second.body)
    assert aws_calls.count("stepfunctions", "StartExecution") == 1
    other = call(
        client, "POST", "/deployments", tenant, {**body, "stack_name": "other"}, Idempotency_Key="k-1"
    )
    assert other.status_code == 409
    assert error_of(other)["code"] == "IDEMPOTENCY_KEY_REUSED"
    listing = json.loads(call(client, "GET", "/deployments", tenant).body)
    assert len(listing["items"]) == 1


def test_a_failed_request_whose_idempotency_record_could_not_be_cleared_can_be_retried(
    client, tenant, target, monkeypatch
):
    """The route fails (AWS throttled its work) and Powertools' delete of the key's in-progress record after
    that failure is throttled too, past botocore's retries. The answer is the route's own error, and the
    record is deleted once more, so the client's retry under the same key runs. Before, the answer was
    "nothing was done" and every retry under the key was refused IDEMPOTENCY_KEY_IN_PROGRESS until the
    record expired (the chaos throttling scenario met this: one create of 100 refused with 409)."""
    from aws_lambda_powertools.utilities.idempotency.persistence.dynamodb import DynamoDBPersistenceLayer

    from chalicelib.service.deployments import DeploymentService
    from tests.support.faults import throttle, throttling_exception

    create, delete = DeploymentService.create, DynamoDBPersistenceLayer._delete_record
    failures = {"create": 1, "delete": 1}

    def throttled_once(self, *args, **kwargs):
        if failures["create"]:
            failures["create"] -= 1
            raise throttle()
        return create(self, *args, **kwargs)

    def delete_throttled_once(self, data_record):
        if failures["delete"]:
            failures["delete"] -= 1
            raise throttling_exception()
        return delete(self, data_record)

    monkeypatch.setattr(DeploymentService, "create", throttled_once)
    monkeypatch.setattr(DynamoDBPersistenceLayer, "_delete_record", delete_throttled_once)
    body = deployment_body(target["target_id"])
    first = call(client, "POST", "/deployments", tenant, body, Idempotency_Key="k-throttled")
    assert first.status_code == 503, first.body
    assert error_of(first)["code"] == "AWS_THROTTLED", first.body
    assert failures == {"create": 0, "delete": 0}
    retried = call(client, "POST", "/deployments", tenant, body, Idempotency_Key="k-throttled")
    assert retried.status_code == 202, retried.body
    replayed = call(client, "POST", "/deployments", tenant, body, Idempotency_Key="k-throttled")
    assert json.loads(replayed.body) == json.loads(retried.body)
    assert "ThrottlingException" in error_of(first)["message"], first.body  # the route's own error


SECRET_QUEUE = json.dumps(
    {
        "Parameters": {"Token": {"Type": "String", "NoEcho": True}},
        "Resources": {"Q": {"Type": "AWS::SQS::Queue"}},
    }
)


def test_an_idempotency_record_keeps_no_fast_hash_of_a_body_with_a_secret(
    client, tenant, target, local_aws, monkeypatch
):
    """The record of an Idempotency-Key keeps a hash of the body, which here holds a NoEcho value: a
    SHA-256 of it (what was kept before) would let that value be guessed offline at SHA-256 speed."""
    seen: list[tuple[str, Any]] = []
    fingerprint = http.body_fingerprint

    def recorded(scope: str, payload: Any) -> str:
        seen.append((scope, payload))
        return fingerprint(scope, payload)

    monkeypatch.setattr(http, "body_fingerprint", recorded)
    body = deployment_body(target["target_id"], template_body=SECRET_QUEUE, parameters={"Token": "hunter22"})
    first = call(client, "POST", "/deployments", tenant, body, Idempotency_Key="k-secret")
    assert first.status_code == 202, first.body
    again = call(client, "POST", "/deployments", tenant, body, Idempotency_Key="k-secret")
    assert again.headers.get("Idempotent-Replayed") == "true"
    changed = {**body, "parameters": {"Token": "hunter23"}}
    refused = call(client, "POST", "/deployments", tenant, changed, Idempotency_Key="k-secret")
    assert error_of(refused)["code"] == "IDEMPOTENCY_KEY_REUSED"  # the secret still tells bodies apart

    table = (
        local_aws.account_session(CENTRAL_ACCOUNT).resource("dynamodb").Table(local_aws.central.table_name)
    )
    (record,) = [item for item in table.scan()["Items"] if item["pk"] == "IDEMPOTENCY"]
    scope, payload = seen[0]
    fast = hashlib.sha256(canonical_json(payload).encode()).hexdigest()
    kept = {str(value) for value in record.values()}
    assert hashlib.md5(json.dumps(fast).encode()).hexdigest() not in kept  # noqa: S324 - Powertools' hash
    assert fast not in kept
    slow = fingerprint(scope, payload)
    assert record["validation"] == hashlib.md5(json.dumps(slow).encode()).hexdigest()  # noqa: S324
    assert "hunter22" not in json.dumps(record, default=str)


def test_template_over_51200_bytes_is_413(client, tenant, target, aws_calls):
    padding = "x" * 51_200
    big = json.dumps({"Description": padding, "Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})
    aws_calls.clear()
    response = call(
        client, "POST", "/deployments", tenant, deployment_body(target["target_id"], template_body=big)
    )
    assert response.status_code == 413
    assert error_of(response)["code"] == "TEMPLATE_TOO_LARGE"
    assert aws_calls.calls == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"stack_name": "9starts-with-digit"}, "stack_name"),
        ({"stack_name": "has_underscore"}, "stack_name"),
        ({"stack_name": "a" * 129}, "stack_name"),
        ({"region": "mars-north-1"}, "region"),
        ({"parameters": {"P": 5}}, "parameters.P"),
        ({"parameters": {f"P{n}": "v" for n in range(201)}}, "parameters"),
        ({"tags": {"k": 1}}, "tags.k"),
        # CloudFormation: 50 tags a stack (the service adds nexus:deployment-id), no empty value.
        ({"tags": {f"k{n}": "v" for n in range(50)}}, "tags"),
        ({"tags": {"k": ""}}, "tags.k"),
        ({"tags": {"Nexus:Deployment-Id": "mine"}}, "tags.Nexus:Deployment-Id.[key]"),
        # CloudFormation: a parameter value of 4,096 bytes, not characters.
        ({"parameters": {"P": "é" * 2049}}, "parameters.P"),
        ({"unknown": "field"}, "unknown"),
        ({"target_id": "not-a-target"}, "target_id"),
    ],
)
def test_invalid_deployment_bodies_are_refused_before_any_aws_call(
    client, tenant, target, aws_calls, overrides, field
):
    aws_calls.clear()
    response = call(client, "POST", "/deployments", tenant, deployment_body(target["target_id"], **overrides))
    assert response.status_code == 422, response.body
    assert field in {d["field"] for d in error_of(response)["details"]}
    assert aws_calls.calls == []


def test_a_template_whose_parameter_default_is_over_4096_bytes_is_refused_before_any_aws_call(
    client, tenant, target, aws_calls
):
    """CloudFormation holds a Default to a parameter value's 4,096 bytes and refuses the whole template;
    the local AWS does too (tests/localaws/test_template_realism_validation.py), but the API answers first."""
    template = json.dumps(
        {
            "Parameters": {"Key": {"Type": "String", "NoEcho": True, "Default": "k" * 4097}},
            "Resources": {"Q": {"Type": "AWS::SQS::Queue"}},
        }
    )
    aws_calls.clear()
    response = call(
        client, "POST", "/deployments", tenant, deployment_body(target["target_id"], template_body=template)
    )
    assert response.status_code == 422, response.body
    error = error_of(response)
    assert error["code"] == "TEMPLATE_LIMIT_EXCEEDED"
    assert error["details"]["parameter"] == "Key"
    assert "kkkk" not in response.body.decode()
    assert aws_calls.calls == []


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        (
            {"notifications": {"webhook_url": "https://127.0.0.1/hook", "webhook_secret": "s" * 32}},
            "INVALID_WEBHOOK_URL",
        ),
        ({"notifications": {"webhook_url": "https://hooks.example.com/x"}}, "WEBHOOK_SECRET_REQUIRED"),
        ({"notifications": {"sns_topic_arn": "not-an-arn"}}, "INVALID_SNS_TOPIC"),
        ({"template_body": None, "template_url": "s3://UPPER_Bucket/key.json"}, "INVALID_TEMPLATE_URL"),
    ],
)
def test_a_malformed_url_or_notification_is_refused_before_the_target_is_read(
    client, tenant, target, aws_calls, overrides, code
):
    aws_calls.clear()
    body = {k: v for k, v in deployment_body(target["target_id"], **overrides).items() if v is not None}
    response = call(client, "POST", "/deployments", tenant, body)
    assert response.status_code == 422, response.body
    assert error_of(response)["code"] == code
    assert aws_calls.calls == []


@pytest.mark.parametrize(
    ("method", "path", "body", "code"),
    [
        ("POST", "/deployments", {"template_body": "not: [a template"}, "INVALID_TEMPLATE"),
        ("POST", "/deployments", {"parameters": {"Nope": "x"}}, "PARAMETERS_MISMATCH"),
        (
            "POST",
            "/deployments",
            {"notifications": {"webhook_url": "https://127.0.0.1/hook", "webhook_secret": "s" * 32}},
            "INVALID_WEBHOOK_URL",
        ),
        ("PUT", f"/deployments/dep-{'0' * 24}", {"template_body": "not: [a template"}, "INVALID_TEMPLATE"),
    ],
)
def test_under_an_idempotency_key_an_invalid_request_writes_no_record_and_is_refused_again(
    client, tenant, target, aws_calls, method, path, body, code
):
    """The route's checks that need no AWS call run before the key's record is written (``precheck``):
    no write, no read; the same key with the same body is refused the same way, not replayed."""
    full = deployment_body(target["target_id"], **body) if method == "POST" else body
    aws_calls.clear()
    for _ in range(2):
        response = call(client, method, path, tenant, full, Idempotency_Key=f"key-{code}")
        assert response.status_code == 422, response.body
        assert error_of(response)["code"] == code
        assert "idempotent-replayed" not in {k.lower() for k in response.headers}
    assert aws_calls.calls == []


@pytest.mark.parametrize(
    ("parameters", "code"),
    [
        ({"Env": "dev", "Nope": "x"}, "PARAMETERS_MISMATCH"),
        ({}, "PARAMETERS_MISMATCH"),  # parameters sent replace the stack's: Env, required, is missing
        ({"Env": "qa"}, "PARAMETER_CONSTRAINT"),
    ],
)
def test_an_update_whose_parameters_break_its_inline_template_is_refused_before_any_aws_call(
    client, tenant, target, aws_calls, parameters, code
):
    """What needs no previous value (a name the template lacks, a value it does not allow) is refused
    before the deployment is read: this id exists nowhere."""
    template = json.dumps(
        {
            "Parameters": {"Env": {"Type": "String", "AllowedValues": ["dev", "prod"]}},
            "Resources": {"Q": {"Type": "AWS::SQS::Queue"}},
        }
    )
    aws_calls.clear()
    body = {"template_body": template, "parameters": parameters}
    response = call(client, "PUT", f"/deployments/dep-{'0' * 24}", tenant, body)
    assert response.status_code == 422, response.body
    assert error_of(response)["code"] == code
    assert aws_calls.calls == []


def test_an_update_whose_template_default_is_over_4096_bytes_is_refused_before_any_aws_call(
    client, tenant, target, aws_calls
):
    """(``target``: the tenant's token was looked up once already, as in the other tests here.)"""
    template = json.dumps(
        {
            "Parameters": {"Key": {"Type": "String", "Default": "k" * 4097}},
            "Resources": {"Q": {"Type": "AWS::SQS::Queue"}},
        }
    )
    aws_calls.clear()
    # Refused before the deployment is even read: this id exists nowhere.
    response = call(client, "PUT", f"/deployments/dep-{'0' * 24}", tenant, {"template_body": template})
    assert response.status_code == 422, response.body
    assert error_of(response)["code"] == "TEMPLATE_LIMIT_EXCEEDED"
    assert aws_calls.calls == []


@pytest.mark.parametrize(
    "template",
    [
        "not a template at all: [",
        "[1, 2, 3]",
        json.dumps({"Resources": {}}),
        json.dumps({"Resources": {"A": {}}}),
    ],
)
def test_templates_that_are_not_cloudformation_are_422(client, tenant, target, template):
    response = call(
        client, "POST", "/deployments", tenant, deployment_body(target["target_id"], template_body=template)
    )
    assert response.status_code == 422
    assert error_of(response)["code"] == "INVALID_TEMPLATE"


def test_yaml_template_with_short_tags_is_accepted(client, tenant, target, local_aws):
    yaml_template = (
        "Resources:\n  Q:\n    Type: AWS::SQS::Queue\nOutputs:\n  Arn:\n    Value: !GetAtt Q.Arn\n"
    )
    response = call(
        client,
        "POST",
        "/deployments",
        tenant,
        deployment_body(target["target_id"], template_body=yaml_template),
    )
    assert response.status_code == 202, response.body
    done = wait_for(client, tenant, json.loads(response.body)["deployment_id"])
    assert done["status"] == "ACTIVE", done
    assert done["outputs"]["Arn"].startswith("arn:aws:sqs:us-east-1:111111111111:")


def test_49_tags_of_the_users_and_the_services_own_make_the_50_a_stack_takes(
    client, tenant, target, local_aws
):
    tags = {f"team-{n}": f"value {n}" for n in range(49)}
    response = call(client, "POST", "/deployments", tenant, deployment_body(target["target_id"], tags=tags))
    assert response.status_code == 202, response.body
    done = wait_for(client, tenant, json.loads(response.body)["deployment_id"])
    assert done["status"] == "ACTIVE", done
    (stack,) = stacks_in(local_aws, TARGET_ACCOUNT)
    stack_tags = {t["Key"]: t["Value"] for t in stack["Tags"]}
    assert stack_tags == {**tags, "nexus:deployment-id": done["deployment_id"]}


def test_parameters_must_match_the_template(client, tenant, target, aws_calls):
    template = json.dumps(
        {"Parameters": {"Need": {"Type": "String"}}, "Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}
    )
    aws_calls.clear()
    response = call(
        client,
        "POST",
        "/deployments",
        tenant,
        deployment_body(target["target_id"], template_body=template, parameters={"Other": "x"}),
    )
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "PARAMETERS_MISMATCH"
    assert error["details"] == {"undeclared": ["Other"], "missing": ["Need"]}
    assert aws_calls.calls == []  # checked before the target is read


def test_region_not_enabled_on_target_is_422(client, tenant, target):
    response = call(
        client, "POST", "/deployments", tenant, deployment_body(target["target_id"], region="ap-south-1")
    )
    assert response.status_code == 422
    assert error_of(response)["code"] == "REGION_NOT_ENABLED"


def test_unknown_target_is_404(client, tenant, services):
    response = call(client, "POST", "/deployments", tenant, deployment_body("tgt-" + "0" * 24))
    assert response.status_code == 404
    assert error_of(response)["code"] == "TARGET_NOT_FOUND"


def test_list_filters_and_events_oldest_first(client, tenant, target, local_aws):
    ids = []
    for name in ("a", "b"):
        created = call(
            client, "POST", "/deployments", tenant, deployment_body(target["target_id"], stack_name=name)
        )
        ids.append(json.loads(created.body)["deployment_id"])
        wait_for(client, tenant, ids[-1])
    call(client, "DELETE", f"/deployments/{ids[0]}", tenant)
    wait_for(client, tenant, ids[0])
    active = json.loads(call(client, "GET", "/deployments?status=ACTIVE", tenant).body)["items"]
    assert [d["deployment_id"] for d in active] == [ids[1]]
    by_target = json.loads(call(client, "GET", f"/deployments?target_id={target['target_id']}", tenant).body)
    assert {d["deployment_id"] for d in by_target["items"]} == set(ids)
    bad = call(client, "GET", "/deployments?status=SLEEPING", tenant)
    assert bad.status_code == 422
    events = json.loads(call(client, "GET", f"/deployments/{ids[0]}/events", tenant).body)["items"]
    assert events[0]["status"] == "ACCEPTED"
    assert events[-1]["status"] == "SUCCEEDED"
    assert {e["source"] for e in events} == {"orchestrator", "stack"}
    assert all(set(e) == {"timestamp", "source", "status", "resource", "message"} for e in events)
    assert [s["StackName"] for s in stacks_in(local_aws, TARGET_ACCOUNT)] == ["b"]


def test_deleted_deployment_frees_the_stack_name(client, tenant, target):
    first = json.loads(
        call(client, "POST", "/deployments", tenant, deployment_body(target["target_id"])).body
    )
    wait_for(client, tenant, first["deployment_id"])
    call(client, "DELETE", f"/deployments/{first['deployment_id']}", tenant)
    assert wait_for(client, tenant, first["deployment_id"])["status"] == "DELETED"
    again = call(client, "DELETE", f"/deployments/{first['deployment_id']}", tenant)
    assert again.status_code == 409
    second = call(client, "POST", "/deployments", tenant, deployment_body(target["target_id"]))
    assert second.status_code == 202


def test_list_filters_by_stack_name_account_and_region(client, tenant, target, local_aws):
    other = json.loads(
        call(
            client,
            "POST",
            "/targets",
            tenant,
            {
                "name": "team-b",
                "account_id": OTHER_ACCOUNT,
                "role_arn": f"arn:aws:iam::{OTHER_ACCOUNT}:role/{TARGET_ROLE}",
                "regions": ["us-east-1"],
            },
        ).body
    )
    create_target_role(local_aws, other["trust_policy"], OTHER_ACCOUNT)
    made = {
        key: json.loads(
            call(
                client,
                "POST",
                "/deployments",
                tenant,
                deployment_body(tid, stack_name=name, region=region),
            ).body
        )["deployment_id"]
        for key, tid, name, region in [
            ("a-east", target["target_id"], "a", "us-east-1"),
            ("b-west", target["target_id"], "b", "eu-west-1"),
            ("a-other", other["target_id"], "a", "us-east-1"),
        ]
    }

    def listed(query: str) -> set[str]:
        response = call(client, "GET", f"/deployments?{query}", tenant)
        assert response.status_code == 200, response.body
        return {d["deployment_id"] for d in json.loads(response.body)["items"]}

    assert listed("stack_name=a") == {made["a-east"], made["a-other"]}
    assert listed(f"account_id={OTHER_ACCOUNT}") == {made["a-other"]}
    assert listed("region=eu-west-1") == {made["b-west"]}
    assert listed(f"account_id={TARGET_ACCOUNT}&region=us-east-1") == {made["a-east"]}
    assert listed(f"target_id={target['target_id']}&stack_name=a") == {made["a-east"]}
    assert listed("stack_name=nothing") == set()
    for wrong in ("region=mars-1", "account_id=12345", "stack_name=has%20space", "account_id=%D9%A1" * 1):
        refused = call(client, "GET", f"/deployments?{wrong}", tenant)
        assert refused.status_code == 422, wrong
    for deployment_id in made.values():
        wait_for(client, tenant, deployment_id)
